"""How requests reach the tracking server (sweep/tracking/server.py) and its replies come back.

Two transports carry the same requests to the same dispatch:

- ProcessTransport (what `sweep` uses): a spawned child process. The loop never imports mlflow, the
  child's writes overlap the next trial, and a killed loop is noticed by the child, which ends its runs.
- ThreadTransport: a thread of this process. For the engine driven in-process (tests, notebooks): no
  interpreter to start and no second `import mlflow`. While it serves, MLflow's process-wide settings
  (its tracking URI, sweep's environment defaults) are those of the sweep.
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.resource_tracker
import os
import queue
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol

from sweep.tracking.protocol import Failure, Reply, Request
from sweep.tracking.server import serve


class TrackingTransport(Protocol):
    """A server's two queues and its lifetime, as the Recorder uses them."""

    def start(self) -> None:
        """Start the server; it opens no store until the first request."""

    def put(self, request: Request[Any]) -> None: ...

    def get(self, timeout: float) -> Reply:
        """The next reply; raises queue.Empty after ``timeout`` seconds without one."""

    def alive(self) -> bool: ...

    def join(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for the server to end."""

    def kill(self) -> None:
        """End the server now, whatever it is doing (a process is killed; a thread is left to end, as a daemon)."""

    def closed(self) -> None:
        """The server has answered Close and is ending: a thread is waited for (it puts MLflow's process-wide
        state back on its way out, which the caller's next command must find done); a process is not (it
        exits by itself, and tearing mlflow down is nobody's wait)."""


class ProcessTransport:
    """The tracking server in a spawned child process (a clean interpreter: no forked locks or threads)."""

    def __init__(self) -> None:
        start_resource_tracker_quietly()  # before the queues: their locks start it otherwise, stderr and all
        context = multiprocessing.get_context("spawn")
        self._requests: Any = context.Queue()
        self._replies: Any = context.Queue()
        self._process = context.Process(target=serve, args=(self._requests, self._replies, os.getpid()),
                                        name="sweep-tracking", daemon=True)

    def start(self) -> None:
        try:
            with signals_held():
                self._process.start()
        except BaseException:  # a Ctrl-C held during the start: the child has not even read its arguments
            if self._process.pid is not None:
                self._process.kill()  # quietly: left alone it fails to unpickle them once this process is gone
                self._process.join(timeout=5)
            raise

    def put(self, request: Request[Any]) -> None:
        self._requests.put(request)

    def get(self, timeout: float) -> Reply:
        return self._replies.get(timeout=timeout)

    def alive(self) -> bool:
        return self._process.is_alive()

    def join(self, timeout: float) -> None:
        self._process.join(timeout=timeout)

    def kill(self) -> None:
        if self._process.is_alive():
            self._process.kill()
        self._process.join(timeout=5)

    def closed(self) -> None:
        return None


THREAD_END_SECONDS = 60.0  # a thread that answered Close only restores settings: a bound, never reached


class ThreadTransport:
    """The tracking server on a daemon thread of this process, serving the same requests the same way."""

    def __init__(self) -> None:
        self._requests: queue.Queue[Request[Any]] = queue.Queue()
        self._replies: queue.Queue[Reply] = queue.Queue()
        self._owner_done = threading.Event()  # set by kill(): the server then acts as on a dead sweep process
        self._thread = threading.Thread(target=self._serve, name="sweep-tracking", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _serve(self) -> None:
        from sweep.tracking.retry import RetryPolicy
        from sweep.tracking.server import TrackingServer
        from sweep.tracking.settings import process_settings

        with process_settings(), _quiet_mlflow_logs():
            try:
                from sweep.tracking.tracker import open_tracker
            except Exception as error:  # a broken installation: the same one line as the process says
                self._replies.put(Failure(f"cannot start MLflow tracking: {error}"))
                return
            logging.getLogger("mlflow").setLevel(logging.WARNING)  # after import: mlflow sets its own level
            with _tracking_uri_restored():
                server = TrackingServer(open_tracker, self._replies, retry=RetryPolicy.from_environment(),
                                        poll_seconds=0.1)
                server.loop(self._requests, lambda: not self._owner_done.is_set())

    def put(self, request: Request[Any]) -> None:
        self._requests.put(request)

    def get(self, timeout: float) -> Reply:
        return self._replies.get(timeout=timeout)

    def alive(self) -> bool:
        return self._thread.is_alive()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout=timeout)

    def kill(self) -> None:
        self._owner_done.set()  # at its next idle look the server ends what it had open, then returns
        self._thread.join(timeout=5)

    def closed(self) -> None:
        self._thread.join(timeout=THREAD_END_SECONDS)


@contextmanager
def _quiet_mlflow_logs() -> Iterator[None]:
    """MLflow's and alembic's info lines ("Creating initial MLflow database tables...") off, as the tracking
    process has them, then their levels as they were."""
    loggers = [logging.getLogger(name) for name in ("mlflow", "alembic")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


@contextmanager
def _tracking_uri_restored() -> Iterator[None]:
    """MLflow's process-wide tracking URI (and MLFLOW_TRACKING_URI, which set_tracking_uri copies it into) as
    they were before the server set the sweep's (TrackingStore does). Unset before: unset after, not MLflow's
    default resolved for the folder the sweep ran in, which a later sweep in another folder would inherit."""
    import mlflow

    before = mlflow.get_tracking_uri() if mlflow.is_tracking_uri_set() else None
    try:
        yield
    finally:
        mlflow.set_tracking_uri(before)  # type: ignore[arg-type]  # None unsets it, as MLflow documents


def start_resource_tracker_quietly() -> None:
    """multiprocessing's resource tracker, started with its stdout and stderr on /dev/null. It outlives a sweep
    killed with kill -9 and then warns of "leaked semaphore objects" (the tracking queues' locks, which it cleans up
    itself) on the terminal the sweep ran in, after the shell prompt: noise about a cleanup that worked. And it
    lives as long as the sweep's background publisher (which inherits its pipe): holding the sweep's stdout, it
    would make a pipe reading `sweep run` (`| tee`, a test's capture) wait for the publisher."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = {standard: os.dup(standard) for standard in (1, 2)}
    try:
        with open(os.devnull, "wb") as devnull:
            for standard in saved:
                os.dup2(devnull.fileno(), standard)
            multiprocessing.resource_tracker.ensure_running()
    finally:
        for standard, copy in saved.items():
            os.dup2(copy, standard)
            os.close(copy)


@contextmanager
def signals_held() -> Iterator[None]:
    """SIGINT and SIGTERM held back for the block, then delivered to this process when it ends.

    A spawned child inherits the blocked mask across exec, so a Ctrl-C while the tracking process is still
    importing waits until it has set SIG_IGN (see `serve`) instead of printing a KeyboardInterrupt traceback.
    Holding rather than ignoring keeps the signal for the sweep itself: one sent to the process group at that
    moment still stops it, once the child has been handed everything it needs. The signals are blocked on
    this thread (what the child inherits) and caught process-wide (another thread may be the one the kernel
    picks). multiprocessing's resource tracker unblocks both signals whenever it starts, so it starts first.
    """
    multiprocessing.resource_tracker.ensure_running()  # started quietly by ProcessTransport(): a probe here
    held = (signal.SIGINT, signal.SIGTERM)
    caught: list[int] = []
    on_main_thread = threading.current_thread() is threading.main_thread()  # the only one that sets handlers
    saved = {number: signal.signal(number, lambda signum, _frame: caught.append(signum))
             for number in held} if on_main_thread else {}
    before = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)  # runs the handlers of what was pending, at once
        for number, handler in saved.items():
            signal.signal(number, handler if handler is not None else signal.SIG_DFL)
        for number in dict.fromkeys(caught):
            signal.raise_signal(number)
