"""The tracking server: serves the loop's requests (sweep/tracking/operations.py) by writing them to MLflow.

The sweep loop sends plain records through a queue; this child process writes them to MLflow while
the next trial trains. The loop never imports mlflow; the child is started first thing, so its
`import mlflow` overlaps with loading the data and opening the study.

The child ignores SIGINT/SIGTERM: on Ctrl-C the loop decides how runs end and tells it, and the
child drains its queue before it exits. If the loop dies (SIGKILL), the child notices, ends the
parent and any open child run as KILLED, and exits: no run is left RUNNING.

The server delivers each request as its kind says (sweep/tracking/protocol.py); the request serves itself.
This module imports no mlflow: the tracker is built by the factory given to TrackingServer.
"""

from __future__ import annotations

import logging
import os
import queue
import select
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from sweep import publisher_lock
from sweep.records import Counts, SweepIdentity, TrackingReport
from sweep.states import RunStatus
from sweep.tracking.hub import Hub, HubAddress
from sweep.tracking.protocol import PARENT_CHECK_SECONDS, Answer, Delivery, Failure, Reply, Request, operation
from sweep.tracking.retry import RetryPolicy
from sweep.urls import redact_text

if TYPE_CHECKING:
    from sweep.tracking.tracker import SweepTracker

COUNTS_SECONDS = 1.0  # the parent's trial counts are rewritten at most this often (and at the end)
PUBLISHER_SECONDS = 3600  # a background publisher still at work after this has hung: it ends, sync repairs
ORIGINAL_EXIT_SECONDS = 60  # how long a publisher waits for the tracking process it was copied from to exit
MAX_ERRORS = 20  # errors kept for the close report: the first ones say what went wrong

T = TypeVar("T")


class RequestSource(Protocol):
    def get(self, block: bool = True, timeout: float | None = None) -> Any: ...

    def get_nowait(self) -> Any: ...


class ReplySink(Protocol):
    def put(self, obj: Any, block: bool = True, timeout: float | None = None) -> None: ...


def error_line(error: BaseException) -> str:
    """An error's first line, password hidden (MLflow's messages name the URI they called)."""
    return redact_text(str(error).splitlines()[0]) if str(error) else type(error).__name__


class TrackingServer:
    """Serves requests in order, except that StartTrial jumps ahead of queued logging.

    A write that fails is retried by ``retry`` and then remembered in the report, never fatal: the
    study keeps the truth and `sweep sync` rebuilds what MLflow missed.
    """

    def __init__(self, open_tracker: Callable[[SweepIdentity], SweepTracker], replies: ReplySink, *,
                 retry: RetryPolicy, clock: Callable[[], float] = time.monotonic,
                 poll_seconds: float = PARENT_CHECK_SECONDS, forks: bool = False) -> None:
        self.open_tracker = open_tracker
        self.tracker: SweepTracker | None = None  # made by Connect: the process starts before the sweep has a name
        self.replies = replies
        self.retry = retry
        self.clock = clock
        self.poll_seconds = poll_seconds  # how long an idle server waits for a request before it checks the loop
        self.open_runs: dict[int, str] = {}  # trial number -> child run started, not yet finished
        self.report = TrackingReport()
        self.pending_counts: Counts | None = None
        self.next_counts = 0.0
        self.hub: Hub | None = None  # the sessions of this machine's workers, once OpenHub asked for them
        self.forks = forks  # a process of its own, which may leave a sweep's end to a copy of itself
        self.handed_over = False  # this process's copy publishes the sweep's end: its MLflow state is the copy's
        self.publisher_lock: tuple[int, Path] | None = None  # in that copy: the lock it holds, and its file
        self.original_gone: int | None = None  # in that copy: a pipe's end that reads EOF once this process is gone
        self.sweep_alive: Callable[[], bool] = lambda: True  # the process it serves, as loop() is told to watch it

    def open_hub(self, address: HubAddress) -> None:
        if self.hub is None:
            self.hub = Hub(address, self.open_tracker, self.retry)

    def loop(self, requests: RequestSource, parent_alive: Callable[[], bool]) -> None:
        """Serve until Close or Quit; when the loop's process dies without closing, end its runs and return.
        Workers served through the hub end before their sweep closes (or die with it): their sessions are
        waited for on the way out."""
        self.sweep_alive = parent_alive
        try:
            self.serve_requests(requests, parent_alive)
        finally:
            if self.hub is not None:
                self.hub.close()
            if self.tracker is not None and not self.handed_over:
                self.tracker.store.cleanup()  # its scratch folder: a tracking process ends without the interpreter's

    def serve_requests(self, requests: RequestSource, parent_alive: Callable[[], bool]) -> None:
        pending: deque[Request[Any]] = deque()
        cut_off = False  # the sweep process died halfway through sending a request: nothing more will come
        while True:
            if not pending:
                if cut_off:
                    self.abandon()
                    return
                try:
                    pending.append(requests.get(timeout=self.poll_seconds))
                except queue.Empty:
                    if not parent_alive():  # the sweep loop died without closing: end our runs
                        self.abandon()
                        return
                    continue
                except EOFError:  # PumpedRequests: the sweep's queue ended
                    cut_off = True
                    continue
            taken, ended = drain(requests)
            pending.extend(taken)
            cut_off = cut_off or ended
            # The loop waits for a child run id before it tells the trial, so a start jumps ahead of
            # earlier trials' logging, never of a call (Connect, OpenParent: a new sweep's first trials start
            # before they are answered); one other request is served before looking again.
            starts = list(starts_before_a_call(pending))
            if starts:
                jumping = {id(request) for request in starts}  # a start behind a call waits for its turn
                pending = deque(request for request in pending if id(request) not in jumping)
                for request in starts:
                    self.dispatch(request)
            if not pending:
                continue
            request = pending.popleft()
            self.dispatch(request)
            if request.delivery is Delivery.END:
                return
            self.flush_counts_if_due()

    def dispatch(self, request: Request[Any]) -> None:
        """Serve one request (its own ``serve``); a CALL's result or error goes back as its reply."""
        if request.delivery is not Delivery.CALL:
            request.serve(self)
            return
        try:
            reply: Reply = Answer(operation(request), request.serve(self))
        except Exception as error:
            reply = Failure(error_line(error))
        self.replies.put(reply)

    def guard(self, number: int | None, call: Callable[..., T], *args: Any) -> T | None:
        """Run one MLflow write under the retry policy; a final failure is remembered (for trial ``number``
        when given) and gives None."""
        try:
            return self.retry.run(lambda: call(*args))
        except Exception as error:
            if number is not None and number not in self.report.failed_trials:
                self.report.failed_trials.append(number)
            if len(self.report.errors) < MAX_ERRORS:
                self.report.errors.append(error_line(error))
            return None

    def take_in_sessions(self) -> None:
        """At the sweep's close (its workers have ended): its hub's sessions end, and what they could not write
        joins this report."""
        if self.hub is None:
            return
        hub, self.hub = self.hub, None  # taken in once: the end of a sweep may come here twice (PublishAndClose)
        hub.close()
        for report in hub.session_reports():
            for number in report.failed_trials:
                if number not in self.report.failed_trials:
                    self.report.failed_trials.append(number)
            self.report.errors.extend(report.errors[:max(0, MAX_ERRORS - len(self.report.errors))])

    def connected(self) -> SweepTracker:
        if self.tracker is None:
            raise RuntimeError("the tracking process serves Connect first")
        return self.tracker

    def flush_counts_if_due(self) -> None:
        # at most once a second: counts on the parent are a view; each write costs a trial's worth
        if self.pending_counts is not None and self.clock() >= self.next_counts:
            counts, self.pending_counts = self.pending_counts, None
            self.guard(None, lambda: self.connected().parent.record_counts(counts))
            self.next_counts = self.clock() + COUNTS_SECONDS

    def fork_publisher(self, lock: Path) -> int | None:
        """Leave the rest of the sweep's end to a copy of this process that outlives the sweep: returns the copy's pid
        here, 0 in the copy, None where this server does not fork (a thread's). The copy holds the publisher lock
        (sweep/publisher_lock.py) from before the sweep is answered; it runs in a session of its own (a Ctrl-C at the
        sweep's terminal is not for it), writes to no terminal or pipe of the sweep's, takes SIGTERM, and is ended by
        SIGALRM after PUBLISHER_SECONDS if it hangs (its lock then freed for `sweep sync`).

        Forked, not spawned: MLflow is imported and its stores are open here. What forking a process with threads
        needs: every thread of this process that may hold a lock the copy takes has ended (the hub's, MLflow's pyfunc
        warm-up); the one left, reading the sweep's requests, holds only the queue's lock, which the copy never
        takes. The copy opens its own database connections; this process then ends without closing its own (closing
        SQLite's last connection of a process folds and removes the write-ahead log the copy is using)."""
        if not self.forks:
            return None
        if self.tracker is not None:
            self.tracker.publisher.settle()
        descriptor = publisher_lock.hold(lock)
        ready, detached = os.pipe()
        gone, alive = os.pipe()  # this process keeps ``alive`` open until it exits: the copy then reads EOF
        pid = os.fork()
        if pid:
            os.close(descriptor)  # the copy's descriptor holds the lock
            os.close(detached)
            os.close(gone)
            os.read(ready, 1)  # the copy has let go of the sweep's terminal and pipes, and named itself (or died)
            os.close(ready)
            self.handed_over = True
            return pid
        os.close(ready)
        os.close(alive)
        self.original_gone = gone
        os.setsid()
        quiet = os.open(os.devnull, os.O_RDWR)
        for standard in (0, 1, 2):
            os.dup2(quiet, standard)
        os.close(quiet)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.alarm(PUBLISHER_SECONDS)
        publisher_lock.name_holder(descriptor, os.getpid())
        os.write(detached, b"1")
        os.close(detached)
        self.publisher_lock = (descriptor, lock)
        if "sweep.tracking.store" in sys.modules:  # else it has opened no database
            from sweep.tracking.store import reconnect_after_fork

            reconnect_after_fork()
        if self.tracker is not None and self.tracker.store.metric_rows is not None:
            self.tracker.store.metric_rows.forget_inherited_connections()  # else cleanup() would close them here
        return 0

    def end_publisher(self) -> None:
        """The copy made by fork_publisher has published: its lock is let go of, and it ends."""
        if self.original_gone is not None:
            # SQLite folds and removes a database's write-ahead log when its last connection closes, and the
            # original process exits without closing its own: this copy closes after that exit, then has the log
            # folded by a new process (fold_write_ahead_log), or it stays beside the database until next opened
            select.select([self.original_gone], [], [], ORIGINAL_EXIT_SECONDS)
        if self.tracker is not None:
            self.tracker.store.cleanup()
        close_opened_databases()  # before the lock goes: a waiter may read or remove the database next
        if self.tracker is not None and self.original_gone is not None:
            from sweep.tracking.store import fold_write_ahead_log

            fold_write_ahead_log(self.tracker.store.uri)
        if self.publisher_lock is not None:
            publisher_lock.release(*self.publisher_lock)
        exit_at_once(databases=False)

    def abandon(self) -> None:
        """End every run the loop had open: it died, or quit on an error."""
        if self.tracker is None:
            return
        parent = self.tracker.parent
        # a worker's trial is failed in the study (and retried) by the others: its run ends FAILED to match
        status = RunStatus.KILLED if parent.owns else RunStatus.FAILED
        for run_id in self.open_runs.values():
            self.guard(None, self.tracker.children.fail, run_id, "the sweep process died during this trial", status)
        if parent.run_id is not None and parent.owns:
            self.guard(None, parent.abandon)


def drain(requests: RequestSource) -> tuple[list[Request[Any]], bool]:
    """Every request that has come, and whether the sweep's queue has ended after them."""
    out = []
    while True:
        try:
            out.append(requests.get_nowait())
        except queue.Empty:
            return out, False
        except EOFError:
            return out, True


# -- the child process --------------------------------------------------------------------------------


def serve(requests: RequestSource, replies: Any, parent_pid: int) -> None:
    """The tracking process's entry point: settings, then mlflow, then the loop until Close or Quit; then the process
    ends at once (``replies``: a multiprocessing queue, flushed first)."""
    only_the_sweep_writes(requests)
    requests = PumpedRequests(requests)  # taken off the pipe from now on, while mlflow is imported
    prepare_tracking_process()
    # started with both signals blocked (signals_held): one that arrived meanwhile is now discarded, being ignored
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        from sweep.tracking.tracker import open_tracker

        logging.getLogger("mlflow").setLevel(logging.WARNING)  # after import: mlflow sets its own level
    except Exception as error:  # a broken installation: tell the loop, in one line
        replies.put(Failure(f"cannot start MLflow tracking: {error}"))
        return
    # forking a process that has used macOS's system frameworks (a proxy lookup by `requests` does) can crash the copy
    server = TrackingServer(open_tracker, replies, retry=RetryPolicy.from_environment(),
                            forks=sys.platform.startswith("linux"))
    server.loop(requests, lambda: os.getppid() == parent_pid)
    end_now(replies, databases=not server.handed_over)


class PumpedRequests:
    """The sweep's requests, taken off its queue by a thread of this process as they come (a RequestSource).

    A new sweep's first trials run while this process imports MLflow (engine/tracking_start.py). Unread, their
    records would fill the pipe and wait in the sweep process's own buffer, and a `kill -9` of the sweep would lose
    records of trials its study already holds. Read at once, they are this process's to serve whatever happens to
    the sweep. The queue's end (the sweep died halfway through a request) is an EOFError from get, at its turn."""

    def __init__(self, requests: RequestSource) -> None:
        self._taken: queue.Queue[Request[Any] | None] = queue.Queue()  # None: the sweep's queue has ended
        threading.Thread(target=self._pump, args=(requests,), name="sweep-requests", daemon=True).start()

    def _pump(self, requests: RequestSource) -> None:
        while True:
            try:
                request = requests.get()
            except Exception:  # EOFError or OSError at a half-sent request; any queue that cannot be read on
                self._taken.put(None)
                return
            self._taken.put(request)

    def get(self, block: bool = True, timeout: float | None = None) -> Request[Any]:
        return self._ended_or(self._taken.get(block, timeout))

    def get_nowait(self) -> Request[Any]:
        return self._ended_or(self._taken.get_nowait())

    def _ended_or(self, request: Request[Any] | None) -> Request[Any]:
        if request is None:
            self._taken.put(None)  # every later look finds the end too
            raise EOFError("the sweep process ended halfway through a request")
        return request


def only_the_sweep_writes(requests: Any) -> None:
    """Close this process's copy of the request queue's writing end (multiprocessing hands a child both ends).
    The sweep process is then its only writer, so a sweep killed halfway through sending a request (a large trial
    record, while this process was still importing MLflow) ends the read with EOF instead of a wait for bytes that
    never come."""
    writer = getattr(requests, "_writer", None)
    if writer is not None:
        writer.close()


def prepare_tracking_process() -> None:
    """What a tracking process (a sweep's, or a machine's shared one) sets before it imports mlflow: Ctrl-C and
    SIGTERM ignored (the processes it serves decide how their runs end, and tell it), sweep's MLflow settings, and
    MLflow's and alembic's info lines off ("Creating initial MLflow database tables..." is noise)."""
    from sweep.tracking.settings import configure_process

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    configure_process()  # before mlflow is imported: it reads some of these variables at import
    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)


def end_now(replies: Any, *, databases: bool = True) -> None:
    """End the process once the last reply is through: every write is committed, and the interpreter's teardown of
    mlflow's modules writes nothing but takes seconds, which the sweep waits for (multiprocessing joins its children
    at exit). ``databases``: close this process's MLflow databases first (not when a copy of it uses them)."""
    replies.close()
    replies.join_thread()  # the queue's feeder thread has written every reply to the pipe
    exit_at_once(databases=databases)


def exit_at_once(*, databases: bool = True) -> None:
    """End a tracking process without the interpreter's teardown, once it has let go of its MLflow databases."""
    if databases:
        close_opened_databases()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def close_opened_databases() -> None:
    """This process's MLflow databases closed, if it opened any (it never did when MLflow's import failed)."""
    if "sweep.tracking.store" in sys.modules:
        from sweep.tracking.store import close_databases

        close_databases()


def starts_before_a_call(pending: Iterable[Request[Any]]) -> Iterator[Request[Any]]:
    """The StartTrial requests among ``pending`` that come before its first CALL."""
    for request in pending:
        if request.delivery is Delivery.CALL:
            return
        if request.delivery is Delivery.START:
            yield request
