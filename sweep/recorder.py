"""The tracking process: MLflow logging off the trial's critical path, on the machine's other core.

The sweep loop sends plain records (sweep/records.py) through a queue; a child process owning a
SweepTracker writes them to MLflow while the next trial trains. The loop never imports mlflow; the
child is started first thing, so its `import mlflow` (~1.2 s) overlaps with loading the data and
opening the study (a fresh MLflow SQLite database then costs ~0.7 s of migrations on top).

The child ignores SIGINT/SIGTERM: on Ctrl-C the loop decides how runs end and tells it, and the
child drains its queue before it exits. If the loop dies (SIGKILL), the child notices, ends the
parent and any open child run as KILLED, and exits: no run is left RUNNING.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import signal
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from sweep.errors import TrackingError
from sweep.records import BestTrial, Counts, PublishedModel, SweepIdentity, TrialRecord
from sweep.urls import redact_text

STARTUP_SECONDS = 180.0  # importing mlflow and migrating a new database, on a slow machine
REPLY_SECONDS = 60.0  # one MLflow call, retries included
PARENT_CHECK_SECONDS = 1.0  # how often an idle child checks that the sweep loop is alive
RETRY_FIRST_SECONDS = 0.5  # first pause before retrying an MLflow write; it doubles each time
RETRY_ENV = "SWEEP_TRACKING_RETRY_SECONDS"  # how long one write may keep retrying (default 30 s)


def retry_seconds() -> float:
    return float(os.environ.get(RETRY_ENV, "30"))


QUIT_SECONDS = 60.0  # how long a stopping sweep lets the tracking process finish its current request
COUNTS_SECONDS = 1.0  # the parent's trial counts are rewritten at most this often (and at the end)


@dataclass(frozen=True)
class TrackingReport:
    """What the tracking process could not write; the study still has it (`sweep sync` repairs)."""

    failed_trials: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    plots: list[str] = field(default_factory=list)  # plot files now under plots/ on the parent
    plots_skipped: dict[str, str] = field(default_factory=dict)  # plot -> why it was not made
    model: PublishedModel = field(default_factory=PublishedModel)  # the best model as a pyfunc model


class Recorder:
    """The sweep loop's handle on the tracking process."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")  # a clean interpreter: no forked locks or threads
        self._requests: Any = context.Queue()
        self._replies: Any = context.Queue()
        self._process = context.Process(target=_serve, args=(self._requests, self._replies, os.getpid()),
                                        name="sweep-tracking", daemon=True)
        self._process.start()
        self._run_ids: dict[int, str | None] = {}

    # -- set-up, answered synchronously -------------------------------------------------------------

    def connect(self, identity: SweepIdentity) -> str:
        """Reach the tracking store and find or create the experiment; returns its id."""
        return self._call("connect", identity, timeout=STARTUP_SECONDS)

    def open_parent(self, parent_run_id: str | None, *, params: dict[str, Any], tags: dict[str, str],
                    config_yaml: str) -> str:
        return self._call("open_parent", parent_run_id, params, tags, config_yaml, timeout=REPLY_SECONDS)

    def sync_parent(self, parent_run_id: str | None, *, status: str | None, params: dict[str, Any],
                    tags: dict[str, str], config_yaml: str) -> tuple[str, bool]:
        return self._call("sync_parent", parent_run_id, status, params, tags, config_yaml, timeout=REPLY_SECONDS)

    def end_parent_if_needed(self, status: str | None, counts: Counts) -> bool:
        return self._call("end_parent_if_needed", status, counts, timeout=REPLY_SECONDS)

    def attach_parent(self, parent_run_id: str) -> None:
        """Log under an existing parent run without owning it: a worker neither reopens nor ends it."""
        self._call("attach_parent", parent_run_id, timeout=REPLY_SECONDS)

    def reconcile(self, trials: list[TrialRecord]) -> list[int]:
        """Give every finished trial exactly one ended child run; returns the trial numbers repaired."""
        return self._call("reconcile", trials, timeout=REPLY_SECONDS + 2 * len(trials))

    # -- per trial, asynchronous --------------------------------------------------------------------

    def start_trial(self, number: int, start_ms: int) -> None:
        """Ask for the trial's child run now; its id is collected by run_id() when the trial ends."""
        self._send("start", number, start_ms)

    def run_id(self, number: int, timeout: float = REPLY_SECONDS) -> str | None:
        """The child run id of a started trial, or None when the tracking store could not create it."""
        deadline = time.monotonic() + timeout
        while number not in self._run_ids:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._process.is_alive():
                return None
            try:
                kind, payload = self._replies.get(timeout=min(remaining, PARENT_CHECK_SECONDS))
            except queue.Empty:
                continue
            if kind == "started":
                self._run_ids[payload[0]] = payload[1]
        return self._run_ids.pop(number)

    def finish_trial(self, record: TrialRecord) -> None:
        self._send("finish", record)

    def best(self, best: BestTrial, metric: str) -> None:
        self._send("best", best, metric)

    def counts(self, counts: Counts) -> None:
        self._send("counts", counts)

    def ensure_best(self, best: BestTrial, metric: str) -> None:
        """Make the parent show ``best`` (found by any worker); its model is copied from its child run."""
        self._send("ensure_best", best, metric)

    # -- the end ------------------------------------------------------------------------------------

    def plots(self, images: dict[str, bytes], skipped: dict[str, str]) -> None:
        """PNG plots (file name -> bytes) for the parent's plots/ folder, replacing older ones."""
        self._send("plots", images, skipped)

    def publish_model(self, best: BestTrial | None, register: str | None) -> None:
        """Log the best trial's model as the parent's pyfunc model (and register it); the outcome
        comes back in close()'s report."""
        self._send("publish_model", best, register)

    def close(self, status: str | None, counts: Counts) -> TrackingReport:
        """End the parent run with ``status`` once every queued record is written; None leaves the
        parent as it is (a worker that does not own it)."""
        self._send("close", status, counts)
        while True:
            try:
                report: TrackingReport = self._wait("close", timeout=None)
                # no join: the child has written everything and exits by itself (tearing down
                # mlflow takes it most of a second that nobody needs to wait for)
                return report
            except KeyboardInterrupt:
                continue  # already closing: a second Ctrl-C must not cut the final writes short

    def terminate(self, grace: float = QUIT_SECONDS) -> None:
        """Stop the process after the request it is serving, then kill it if it does not exit.

        Killed mid-request, it could leave a half-migrated MLflow database that no later run opens;
        asked to quit, it finishes that request first (it ignores Ctrl-C and SIGTERM itself)."""
        if self._process.is_alive():
            self._send("quit")
            self._process.join(timeout=grace)
        if self._process.is_alive():
            self._process.kill()
        self._process.join(timeout=5)

    def _send(self, kind: str, *payload: Any) -> None:
        self._requests.put((kind, payload))

    def _call(self, kind: str, *payload: Any, timeout: float | None) -> Any:
        self._send(kind, *payload)
        return self._wait(kind, timeout=timeout)

    def _wait(self, kind: str, *, timeout: float | None) -> Any:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise TrackingError(f"the MLflow tracking store did not answer within {timeout:.0f} s")
            try:
                reply_kind, reply = self._replies.get(timeout=PARENT_CHECK_SECONDS if remaining is None
                                                      else min(remaining, PARENT_CHECK_SECONDS))
            except queue.Empty:
                if not self._process.is_alive():
                    raise TrackingError("the tracking process stopped unexpectedly") from None
                continue
            if reply_kind == "started":
                self._run_ids[reply[0]] = reply[1]
            elif reply_kind == "error":
                raise TrackingError(reply)
            elif reply_kind == kind:
                return reply


# -- the child process -------------------------------------------------------------------------------


def _serve(requests: Any, replies: Any, parent_pid: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    import logging

    logging.getLogger("mlflow").setLevel(logging.WARNING)  # "Creating initial MLflow database tables..." is noise
    logging.getLogger("alembic").setLevel(logging.WARNING)
    try:
        from sweep.tracking import SweepTracker

        logging.getLogger("mlflow").setLevel(logging.WARNING)  # after import: mlflow sets its own level
    except Exception as error:  # a broken installation: tell the loop, in one line
        replies.put(("error", f"cannot start MLflow tracking: {error}"))
        return
    _Server(SweepTracker, replies).loop(requests, parent_pid)


class _Server:
    def __init__(self, tracker_class: Any, replies: Any) -> None:
        self.tracker_class = tracker_class
        self.tracker: Any = None  # made by "connect": the process starts before the sweep has a name
        self.replies = replies
        self.open_runs: dict[int, str] = {}  # trial number -> child run started, not yet finished
        self.report = TrackingReport()
        self.last_counts: Counts | None = None
        self.store_down = False  # a write used up its retries: try the next ones once each
        self.next_counts = 0.0

    def loop(self, requests: Any, parent_pid: int) -> None:
        pending: deque[tuple[str, tuple[Any, ...]]] = deque()
        while True:
            if not pending:
                try:
                    pending.append(requests.get(timeout=PARENT_CHECK_SECONDS))
                except queue.Empty:
                    if os.getppid() != parent_pid:  # the sweep loop died without closing: end our runs
                        self._abandon()
                        return
                    continue
            pending.extend(_drain(requests))
            # The loop waits for a child run id before it tells the trial, so a "start" jumps ahead
            # of earlier trials' logging; one other request is handled before looking again.
            for message in [m for m in pending if m[0] == "start"]:
                pending.remove(message)
                self._handle(*message)
            if not pending:
                continue
            kind, payload = pending.popleft()
            if kind == "close":
                self._close(*payload)
                return
            if kind == "quit":  # the loop is going away on an error: end what it had started
                self._abandon()
                return
            self._handle(kind, payload)
            if self.last_counts is not None and time.monotonic() >= self.next_counts:
                # at most once a second: counts on the parent are a view; each write costs a trial's worth
                self._guard(None, self.tracker.record_counts, self.last_counts, step=self.last_counts.finished)
                self.last_counts = None
                self.next_counts = time.monotonic() + COUNTS_SECONDS

    def _handle(self, kind: str, payload: tuple[Any, ...]) -> None:
        if kind == "connect":
            def connect() -> str:
                self.tracker = self.tracker_class(payload[0])
                return self.tracker.connect()

            self._answer(kind, connect)
        elif kind == "open_parent":
            parent_run_id, params, tags, config_yaml = payload
            self._answer(kind, lambda: self.tracker.open_parent(parent_run_id, params=params, tags=tags,
                                                                config_yaml=config_yaml)[0])
        elif kind == "sync_parent":
            parent_run_id, status, params, tags, config_yaml = payload
            self._answer(kind, lambda: self.tracker.sync_parent(parent_run_id, status=status, params=params,
                                                                tags=tags, config_yaml=config_yaml))
        elif kind == "end_parent_if_needed":
            self._answer(kind, lambda: self.tracker.end_parent_if_needed(*payload))
        elif kind == "attach_parent":
            self._answer(kind, lambda: self.tracker.attach_parent(payload[0]))
        elif kind == "reconcile":
            self._answer(kind, lambda: self.tracker.reconcile(payload[0]))
        elif kind == "start":
            number, start_ms = payload
            run_id = self._guard(number, self.tracker.start_child, number, start_ms)
            if run_id is not None:
                self.open_runs[number] = run_id
            self.replies.put(("started", (number, run_id)))
        elif kind == "finish":
            record: TrialRecord = payload[0]
            run_id = self.open_runs.pop(record.number, None)
            self._guard(record.number, self.tracker.finish_child, _with_run_id(record, run_id))
        elif kind == "best":
            self._guard(None, self.tracker.record_best, *payload)
        elif kind == "ensure_best":
            self._guard(None, self.tracker.ensure_best, *payload)
        elif kind == "counts":
            self.last_counts = payload[0]
        elif kind in ("plots", "publish_model"):
            self._publish(kind, payload)

    def _close(self, status: str | None, counts: Counts) -> None:
        for number, run_id in self.open_runs.items():  # started, never finished: the loop was interrupted
            self._guard(number, self.tracker.fail_run, run_id, "the sweep stopped before this trial ended", "KILLED")
        if status is not None:
            self._guard(None, self.tracker.close_parent, status, counts)
        self.replies.put(("close", self.report))

    def _publish(self, kind: str, payload: tuple[Any, ...]) -> None:
        """Plots and the pyfunc model: what became of them goes back in the close report. A failure is
        never fatal: publish_model turns its own into a warning, _guard keeps anything else."""
        from dataclasses import replace

        if kind == "plots":
            logged = self._guard(None, self.tracker.record_plots, *payload)
            if logged is not None:
                self.report = replace(self.report, plots=logged, plots_skipped=dict(payload[1]))
        else:
            model = self._guard(None, self.tracker.publish_model, *payload)
            if model is not None:
                self.report = replace(self.report, model=model)

    def _abandon(self) -> None:
        if self.tracker is None:
            return
        # a worker's trial is failed in the study (and retried) by the others: its run ends FAILED to match
        status = "KILLED" if self.tracker.owns_parent else "FAILED"
        for run_id in self.open_runs.values():
            self._guard(None, self.tracker.fail_run, run_id, "the sweep process died during this trial", status)
        if self.tracker.parent_run_id is not None and self.tracker.owns_parent:
            self._guard(None, self.tracker.abandon_parent)

    def _answer(self, kind: str, call: Any) -> None:
        try:
            self.replies.put((kind, call()))
        except Exception as error:
            self.replies.put(("error", redact_text(str(error).splitlines()[0]) if str(error) else type(error).__name__))

    def _guard(self, number: int | None, call: Any, *args: Any, **kwargs: Any) -> Any:
        """Run one MLflow write, retrying with backoff; a final failure is remembered, never fatal.

        The study keeps the truth and `sweep sync` rebuilds what MLflow missed. While the store is
        down (a write used up its retries) later writes try once, so a dead server does not stall
        the trials behind a queue of retries; the first write that succeeds ends that state.
        """
        delay, deadline = RETRY_FIRST_SECONDS, time.monotonic() + (0 if self.store_down else retry_seconds())
        while True:
            try:
                result = call(*args, **kwargs)
                self.store_down = False
                return result
            except Exception as error:
                if time.monotonic() + delay <= deadline:
                    time.sleep(delay)
                    delay *= 2
                    continue
                self.store_down = True
                if number is not None and number not in self.report.failed_trials:
                    self.report.failed_trials.append(number)
                message = redact_text(str(error).splitlines()[0]) if str(error) else type(error).__name__
                if len(self.report.errors) < 20:
                    self.report.errors.append(message)
                return None


def _drain(requests: Any) -> list[tuple[str, tuple[Any, ...]]]:
    out = []
    while True:
        try:
            out.append(requests.get_nowait())
        except queue.Empty:
            return out


def _with_run_id(record: TrialRecord, run_id: str | None) -> TrialRecord:
    if run_id is None or record.run_id == run_id:
        return record
    from dataclasses import replace

    return replace(record, run_id=run_id)
