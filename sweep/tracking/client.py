"""The sweep loop's handle on the tracking server: typed requests out, replies back, and the server's end."""

from __future__ import annotations

import queue
import time
from typing import Any

from sweep.errors import TrackingError
from sweep.records import BestAgreement, BestTrial, Counts, Reconciled, SweepIdentity, TrackingReport, TrialRecord
from sweep.tracking.protocol import (
    PARENT_CHECK_SECONDS,
    AgreeBest,
    Answer,
    AttachParent,
    Close,
    Connect,
    EndParentIfNeeded,
    EnsureBest,
    Failure,
    FinishTrial,
    OpenParent,
    PublishModel,
    PublishPlots,
    Quit,
    Reconcile,
    RecordBest,
    RecordCounts,
    Request,
    Started,
    StartTrial,
    SyncParent,
    operation,
)
from sweep.tracking.transport import ProcessTransport, TrackingTransport

STARTUP_SECONDS = 180.0  # importing mlflow and migrating a new database, on a slow machine
REPLY_SECONDS = 60.0  # one MLflow call, retries included
QUIT_SECONDS = 60.0  # how long a stopping sweep lets the tracking process finish its current request


class Recorder:
    """The sweep loop's handle on the tracking server, reached through ``transport`` (the tracking process by
    default; a ThreadTransport serves the same requests in this process)."""

    def __init__(self, transport: TrackingTransport | None = None) -> None:
        self._transport: TrackingTransport = transport if transport is not None else ProcessTransport()
        self._transport.start()
        self._run_ids: dict[int, str | None] = {}
        self._store_touched = False  # no request yet: the server has opened no store
        self.experiment_id: str | None = None  # the sweep's experiment, once connect() found it

    # -- set-up, answered synchronously -------------------------------------------------------------

    def connect(self, identity: SweepIdentity) -> str:
        """Reach the tracking store and find or create the experiment; returns its id."""
        self.experiment_id = self.call(Connect(identity), timeout=STARTUP_SECONDS)
        return self.experiment_id

    def open_parent(self, parent_run_id: str | None, *, token: str | None, params: dict[str, Any],
                    tags: dict[str, str], config_yaml: str) -> str:
        """Create the sweep's parent run (tagged with the study's ``token``), or reopen it on resume; a
        parent the study never linked is found by its token and adopted. Returns its run id."""
        return self.call(OpenParent(parent_run_id, params, tags, config_yaml, token), timeout=REPLY_SECONDS)

    def sync_parent(self, parent_run_id: str | None, *, token: str | None, params: dict[str, Any],
                    tags: dict[str, str], config_yaml: str) -> tuple[str, bool]:
        """`sweep sync`: the parent run (adopted by ``token`` when the study links none), recreated when
        MLflow lost it; returns (run id, created)."""
        return self.call(SyncParent(parent_run_id, params, tags, config_yaml, token), timeout=REPLY_SECONDS)

    def end_parent_if_needed(self, status: str | None, counts: Counts) -> bool:
        """End the parent with ``status`` unless it already shows it; True when it changed."""
        return self.call(EndParentIfNeeded(status, counts), timeout=REPLY_SECONDS)

    def attach_parent(self, parent_run_id: str) -> None:
        """Log under an existing parent run without owning it: a worker neither reopens nor ends it."""
        self.call(AttachParent(parent_run_id), timeout=REPLY_SECONDS)

    def reconcile(self, trials: list[TrialRecord]) -> Reconciled:
        """Give every finished trial exactly one ended child run; returns the trials repaired and every
        trial's run id (the study must learn those of runs it created)."""
        return self.call(Reconcile(trials), timeout=REPLY_SECONDS + 2 * len(trials))

    def agree_best(self, best: BestTrial, metric: str, *, builtin: bool = True) -> BestAgreement:
        """`sweep sync`: make the parent's best agree with ``best``; returns what was rewritten and what
        cannot be rebuilt."""
        return self.call(AgreeBest(best, metric, builtin), timeout=REPLY_SECONDS)

    # -- per trial, asynchronous --------------------------------------------------------------------

    def start_trial(self, number: int, start_ms: int) -> None:
        """Ask for the trial's child run now; its id is collected by run_id() when the trial ends."""
        self.send(StartTrial(number, start_ms))

    def run_id(self, number: int, timeout: float = REPLY_SECONDS) -> str | None:
        """The child run id of a started trial, or None when the tracking store could not create it."""
        deadline = time.monotonic() + timeout
        while number not in self._run_ids:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._transport.alive():
                return None
            try:
                reply = self._transport.get(timeout=min(remaining, PARENT_CHECK_SECONDS))
            except queue.Empty:
                continue
            if isinstance(reply, Started):
                self._run_ids[reply.number] = reply.run_id
        # kept until the trial is finished: fit may ask for it (trial.run_id, `mlflow: active`) before the
        # loop asks again for the trial's record; popping it here made that second ask wait REPLY_SECONDS
        return self._run_ids[number]

    def finish_trial(self, record: TrialRecord) -> None:
        self._run_ids.pop(record.number, None)
        self.send(FinishTrial(record))

    def best(self, best: BestTrial, metric: str) -> None:
        self.send(RecordBest(best, metric))

    def counts(self, counts: Counts) -> None:
        self.send(RecordCounts(counts))

    def ensure_best(self, best: BestTrial, metric: str) -> None:
        """Make the parent show ``best`` (found by any worker); its model is copied from its child run."""
        self.send(EnsureBest(best, metric))

    # -- the end ------------------------------------------------------------------------------------

    def plots(self, images: dict[str, bytes], skipped: dict[str, str]) -> None:
        """PNG plots (file name -> bytes) for the parent's plots/ folder, replacing older ones."""
        self.send(PublishPlots(images, skipped))

    def publish_model(self, best: BestTrial | None, register: str | None, *, builtin: bool = True) -> None:
        """Put the best trial's model on the parent (the built-in trainer's as a pyfunc model, a function
        trainer's as it logged it) and register it; the outcome comes back in close()'s report."""
        self.send(PublishModel(best, register, builtin))

    def close(self, status: str | None, counts: Counts) -> TrackingReport:
        """End the parent run with ``status`` once every queued record is written; None leaves the
        parent as it is (a worker that does not own it)."""
        self.send(Close(status, counts))
        while True:
            try:
                report: TrackingReport = self._wait(operation(Close), timeout=None)
                # no join: the child has written everything and exits by itself (tearing down
                # mlflow takes it most of a second that nobody needs to wait for)
                return report
            except KeyboardInterrupt:
                continue  # already closing: a second Ctrl-C must not cut the final writes short

    def terminate(self, grace: float = QUIT_SECONDS) -> None:
        """Stop the process after the request it is serving, then kill it if it does not exit.

        Killed mid-request, it could leave a half-migrated MLflow database that no later run opens;
        asked to quit, it finishes that request first (it ignores Ctrl-C and SIGTERM itself). Before
        any request it has opened no store: a sweep refused early (bad data) need not wait for its
        `import mlflow` to end."""
        if self._transport.alive() and self._store_touched:
            self.send(Quit())
            self._transport.join(timeout=grace)
        self._transport.kill()

    # -- any request --------------------------------------------------------------------------------

    def send(self, request: Request) -> None:
        """Queue a request; a LOG request's failure comes back in close()'s report."""
        self._store_touched = True
        self._transport.put(request)

    def call(self, request: Request, *, timeout: float | None) -> Any:
        """Send a CALL request and wait for its answer; raises TrackingError with the process's one-line error."""
        self.send(request)
        return self._wait(operation(request), timeout=timeout)

    def _wait(self, expected: str, *, timeout: float | None) -> Any:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise TrackingError(f"the MLflow tracking store did not answer within {timeout:.0f} s")
            try:
                reply = self._transport.get(timeout=PARENT_CHECK_SECONDS if remaining is None
                                            else min(remaining, PARENT_CHECK_SECONDS))
            except queue.Empty:
                if not self._transport.alive():
                    raise TrackingError("the tracking process stopped unexpectedly") from None
                continue
            if isinstance(reply, Started):
                self._run_ids[reply.number] = reply.run_id
            elif isinstance(reply, Failure):
                raise TrackingError(reply.message)
            elif isinstance(reply, Answer) and reply.operation == expected:
                return reply.value
