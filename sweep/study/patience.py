"""A storage reached over the network (PostgreSQL, a journal in Redis, `sweep storage-proxy`) that stops answering
mid-sweep: every storage call is tried again with backoff for a bounded time, so a server restarted within it costs
a pause, not the sweep, and a trial whose work had finished waits for its result to be written instead of losing
it. Past that time the call raises StorageUnavailableError: one line naming the storage (the engine adds the
resume command).

Only a lost connection is retried (refused, reset, timed out); an answer that is an error (a missing table, a
finished trial written again) is raised at once, as before.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from sweep.errors import StorageUnavailableError, first_line
from sweep.study.optuna_internals import STORAGE_CALLS

RETRY_ENV = "SWEEP_STORAGE_RETRY_SECONDS"  # how long one storage call may keep trying while the storage is away
RETRY_DEFAULT_SECONDS = 120.0
FIRST_PAUSE_SECONDS = 0.2  # doubling after each try, up to LONGEST_PAUSE_SECONDS
LONGEST_PAUSE_SECONDS = 5.0

# what a database driver says when its server is away (down, restarting, unreachable), rather than answering
# with an error: a database that does not exist or a refused password is never waited for
SERVER_AWAY_SIGNS = ("connection refused", "could not connect", "server closed the connection", "connection reset",
                     "connection timed out", "timeout expired", "the database system is starting up",
                     "the database system is shutting down", "the database system is in recovery mode",
                     "terminating connection due to administrator command", "no route to host",
                     "network is unreachable", "connection is closed", "consuming input failed")

log = logging.getLogger(__name__)  # shown by the CLI on stderr: a sweep that waits says why

T = TypeVar("T")


def retry_seconds() -> float:
    """How long one storage call may keep trying: SWEEP_STORAGE_RETRY_SECONDS, else the default."""
    return float(os.environ.get(RETRY_ENV, str(RETRY_DEFAULT_SECONDS)))


def lost_connection(error: BaseException) -> bool:
    """Whether ``error`` (or what caused it) is a connection to the storage lost or refused, which a server
    coming back can fix."""
    return connection_loss(error) is not None


def connection_loss(error: BaseException) -> BaseException | None:
    """The lost or refused connection in ``error``'s chain (itself, or what caused it), else None. The client
    libraries are looked up only if already imported: they raised it."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, ConnectionError | TimeoutError):
            return seen
        redis_errors = sys.modules.get("redis.exceptions")
        if redis_errors is not None and isinstance(seen, redis_errors.ConnectionError | redis_errors.TimeoutError):
            return seen
        grpc = sys.modules.get("grpc")
        if grpc is not None and isinstance(seen, grpc.RpcError) and _grpc_unavailable(grpc, seen):
            return seen
        sqlalchemy_errors = sys.modules.get("sqlalchemy.exc")
        if sqlalchemy_errors is not None and isinstance(seen, sqlalchemy_errors.DBAPIError) and (
                seen.connection_invalidated or any(sign in str(seen).lower() for sign in SERVER_AWAY_SIGNS)):
            return seen.orig if seen.orig is not None else seen
        seen = seen.__cause__ or seen.__context__
    return None


def describe_loss(error: BaseException) -> str:
    """One line on how the connection was lost (gRPC's status, the database driver's words), not the wrapper's."""
    loss = connection_loss(error) or error
    code, details = getattr(loss, "code", None), getattr(loss, "details", None)
    if callable(code) and callable(details):  # a gRPC error
        lines = str(details() or "").splitlines()
        return f"{code().name}: {lines[0] if lines else ''}".rstrip(": ")
    return first_line(loss).rstrip(".")


def _grpc_unavailable(grpc: Any, error: Any) -> bool:
    code = getattr(error, "code", None)
    return callable(code) and code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


class Patience:
    """Calls to one storage, each tried again while the connection is lost, for up to ``budget_seconds``.

    A call made inside another (Optuna's storage methods call each other) is not retried on its own: the
    outermost call is, so the budget is never multiplied. Safe to share between threads (the heartbeat).
    """

    def __init__(self, storage_name: str, budget_seconds: float | None = None, *,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
        self.storage_name = storage_name
        self.budget_seconds = retry_seconds() if budget_seconds is None else budget_seconds
        self._clock, self._sleep = clock, sleep
        self._inside = threading.local()
        self._waiting = False  # said so on stderr; said again when it answers

    def __getstate__(self) -> dict[str, Any]:  # a storage is pickled with its patience (to a Ray task, say)
        return {"storage_name": self.storage_name, "budget_seconds": self.budget_seconds}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["storage_name"], state["budget_seconds"])  # type: ignore[misc]

    def call(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        if getattr(self._inside, "depth", 0):
            return function(*args, **kwargs)
        self._inside.depth = 1
        try:
            return self._retrying(lambda: function(*args, **kwargs))
        finally:
            self._inside.depth = 0

    def items(self, produce: Callable[[], Iterator[T]]) -> list[T]:
        """Everything ``produce()`` yields, read again from the start when the connection is lost on the way."""
        return self.call(lambda: list(produce()))

    def _retrying(self, call: Callable[[], T]) -> T:
        deadline = self._clock() + self.budget_seconds
        pause = FIRST_PAUSE_SECONDS
        while True:
            try:
                result = call()
            except Exception as error:
                if not lost_connection(error):
                    raise
                if self._clock() + pause > deadline:
                    raise StorageUnavailableError(
                        f"the Optuna storage {self.storage_name} stopped answering ({describe_loss(error)}); "
                        f"tried for {self.budget_seconds:g} s ({RETRY_ENV} sets how long)") from None
                if not self._waiting:
                    self._waiting = True
                    log.warning("the Optuna storage %s is not answering (%s): trying again for up to %g s",
                                self.storage_name, describe_loss(error), self.budget_seconds)
                self._sleep(pause)
                pause = min(2 * pause, LONGEST_PAUSE_SECONDS)
                continue
            if self._waiting:
                self._waiting = False
                log.warning("the Optuna storage %s answers again", self.storage_name)
            return result


class PatientStorage:
    """Mixed into a storage class before it: every public storage method goes through ``self.patience``.

    A missed heartbeat is not an error of its own: a heartbeat that still fails after the retries is dropped
    (the trial's next write decides), instead of ending Optuna's heartbeat thread with a traceback.
    """

    patience: Patience

    def __getattribute__(self, name: str) -> Any:
        attribute = object.__getattribute__(self, name)
        if name not in STORAGE_CALLS:
            return attribute
        patience = object.__getattribute__(self, "patience")
        if name == "record_heartbeat":
            return lambda *args, **kwargs: _beat(patience, attribute, *args, **kwargs)
        return lambda *args, **kwargs: patience.call(attribute, *args, **kwargs)


def _beat(patience: Patience, record: Callable[..., None], *args: Any, **kwargs: Any) -> None:
    try:
        patience.call(record, *args, **kwargs)
    except StorageUnavailableError:
        return
