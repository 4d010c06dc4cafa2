"""Sharing one study between workers: the trial budget under a lock, dead workers' trials, heartbeats."""

from __future__ import annotations

import fcntl
import hashlib
import os
import random
import socket
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import replace
from typing import Any

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.storages import BaseStorage, RDBStorage
from optuna.trial import TrialState

from sweep import states
from sweep.locations import StorageLocation
from sweep.processes import process_alive
from sweep.records import TrialRecord
from sweep.study.attrs import TrialAttrs
from sweep.study.census import record_of
from sweep.study.optuna_internals import (
    fail_stale_trial_ids,
    fail_stale_trials_quietly,
    heartbeat_thread,
    storage_of,
    storage_uses_heartbeat,
    trial_id_of,
)
from sweep.study.patience import Patience, lost_connection
from sweep.study.proxy import LEASE_SECONDS as GATE_LEASE_SECONDS
from sweep.study.proxy import ProxyGate
from sweep.study.remote import redis_url
from sweep.study.served import FinishRequest, StartReply, StartRequest
from sweep.study.storage import STALE_TRIALS

DEAD_WORKER = "its worker process died"
DEAD_SWEEP = "the sweep process died during this trial"
NO_HEARTBEAT = "its worker stopped sending heartbeats"
REDIS_POLL_SECONDS = (0.002, 0.05)  # a worker waiting at the Redis gate tries again after 2 ms, doubling to 50 ms
# a worker waiting at the Redis gate does its waiting work (reading what others wrote) at most this often: at every
# poll, dozens of waiters' reads would take the CPU the holder needs
REDIS_WAITING_WORK_SECONDS = 0.1


class TrialGate:
    """A lock around "count the trials, then ask for one", so parallel workers start exactly the target.

    A file lock beside a journal or SQLite file (one machine), a PostgreSQL advisory lock for a
    shared database (many machines), a Redis lock for a journal in Redis, and a lease served by the
    storage proxy for grpc:// (proxy.py). The Redis lock and the proxy's lease run out after
    GATE_LEASE_SECONDS, so a worker killed while holding one delays the others, never blocks them.
    Other databases go without, and may start a trial too many.
    A server that went away is waited for, as by every storage call (patience.py); a lock whose server went
    away while it was held is gone with its connection (PostgreSQL) or runs out (Redis, the proxy).
    """

    def __init__(self, location: StorageLocation, storage: BaseStorage, study_name: str) -> None:
        self._file: Any = None
        self._engine: Any = None
        self._connection: Any = None
        self._redis_lock: Any = None
        self._proxy: ProxyGate | None = None
        self._patience = Patience(str(location))
        if location.is_postgres and isinstance(storage, RDBStorage):
            self._engine = storage.engine
            self._key = int.from_bytes(hashlib.sha256(study_name.encode()).digest()[:8], "big", signed=True)
        elif location.is_redis:
            import redis

            client = redis.Redis.from_url(redis_url(location))
            self._redis_lock = client.lock(f"{location.redis_prefix}:sweep-gate:{study_name}",
                                           timeout=GATE_LEASE_SECONDS)
        elif location.is_grpc:
            self._proxy = ProxyGate(location, study_name, worker_id())
        elif location.local_file is not None:
            self._file = open(f"{location.local_file}.gate", "a+b")  # noqa: SIM115 - held for the gate's life

    def __enter__(self) -> TrialGate:
        self._patience.call(self._acquire, None)
        return self

    @contextmanager
    def held(self, *, while_waiting: Callable[[], None]) -> Iterator[TrialGate]:
        """The gate, as ``with gate:``; while another worker holds it, ``while_waiting`` is called first (and again
        between a Redis lock's polls): work that then need not be done while this worker holds it."""
        self._patience.call(self._acquire, while_waiting)
        try:
            yield self
        finally:
            self.__exit__()

    def _acquire(self, while_waiting: Callable[[], None] | None) -> None:
        if self._file is not None:
            try:
                fcntl.flock(self._file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if while_waiting is not None:
                    while_waiting()
                fcntl.flock(self._file.fileno(), fcntl.LOCK_EX)
        elif self._redis_lock is not None:
            _acquire_polling(self._redis_lock, while_waiting)
        elif self._proxy is not None:
            self._proxy.acquire(while_waiting)
        elif self._engine is not None:
            from sqlalchemy import text

            connection = self._engine.connect()
            try:
                taken = connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": self._key}).scalar()
                if not taken:
                    if while_waiting is not None:
                        while_waiting()
                    connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": self._key})
            except BaseException:
                connection.close()
                raise
            self._connection = connection

    def __exit__(self, *_exc: object) -> None:
        try:
            self._release()
        except Exception as error:  # _release let go of the connection already: the lock went with it
            if not lost_connection(error):
                raise

    def _release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
        elif self._redis_lock is not None:
            from redis.exceptions import LockError

            with suppress(LockError):  # held past its timeout, and maybe taken since: nothing left to release
                self._redis_lock.release()
        elif self._proxy is not None:
            self._proxy.release()
        elif self._connection is not None:
            from sqlalchemy import text

            connection, self._connection = self._connection, None
            try:
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self._key})
            finally:
                connection.close()

    @property
    def reaches_proxy(self) -> bool:
        """Whether the gate is served by a storage proxy that may decide trial starts itself (start)."""
        return self._proxy is not None and self._proxy.serves_starts

    def start(self, request: StartRequest) -> StartReply | None:
        """A trial start the storage proxy decides for this worker (served.py), without this gate; None where no
        proxy decides starts (any other storage, or a proxy that does not): take the gate instead."""
        if self._proxy is None or not self._proxy.serves_starts:
            return None
        return self._patience.call(self._proxy.start, request)

    @property
    def takes_finish(self) -> bool:
        """Whether the storage proxy decides starts and takes a finished trial's writes with the next one
        (finish_and_start), as far as this gate knows."""
        return self.reaches_proxy and self._proxy is not None and self._proxy.serves_finish

    def finish_and_start(self, request: FinishRequest) -> StartReply | None:
        """A finished trial's writes and the next start in one call to the storage proxy (served.py); None where the
        proxy has no such call: write the finish, then start()."""
        if self._proxy is None or not self._proxy.serves_finish:
            return None
        return self._patience.call(self._proxy.finish_and_start, request)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
        if self._proxy is not None:
            self._proxy.close()


def _acquire_polling(lock: Any, while_waiting: Callable[[], None] | None) -> None:
    """Take a Redis lock, trying again after a growing, jittered pause: Redis cannot wake a waiter, and with
    dozens of workers a fixed short pause would have the waiters' polls crowd out the holder's own work."""
    pause, longest = REDIS_POLL_SECONDS
    due = time.monotonic()  # the next call of while_waiting: at once, then every REDIS_WAITING_WORK_SECONDS
    while not lock.acquire(blocking=False):
        if while_waiting is not None and time.monotonic() >= due:
            while_waiting()
            due = time.monotonic() + REDIS_WAITING_WORK_SECONDS
        time.sleep(random.uniform(pause / 2, pause))
        pause = min(2 * pause, longest)


def worker_id() -> str:
    """host:pid of this process, kept on the trials it runs."""
    return f"{socket.gethostname()}:{os.getpid()}"


def fail_dead_trials(study: optuna.Study, running: list[optuna.trial.FrozenTrial] | None = None
                     ) -> list[TrialRecord]:
    """Fail (and retry once) the running trials of workers that died; returns them for their runs.
    ``running``: the study's running trials as the caller last read them (a loop's Tally), so no look
    through every trial is needed; a trial started since is checked on a later call.

    RDB storages: Optuna's heartbeat. Any storage: a trial whose worker ran on this machine and is
    no longer alive (the journal file has no heartbeat; this covers --jobs on one machine).
    """
    if storage_uses_heartbeat(storage_of(study)):
        fail_stale_trials_quietly(study)
    if running is None:
        running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    fail_trials_of_gone_workers(study, [(trial_id_of(trial), str(TrialAttrs.read(trial).worker or ""))
                                        for trial in running])
    return failed_records()


def fail_found_dead(study: optuna.Study, stale: Sequence[int], on_host: Sequence[tuple[int, str]]
                    ) -> list[TrialRecord]:
    """Fail (and retry once) the trials the storage proxy's census found (served.py): those whose heartbeat went
    silent, and those of this host whose worker process is gone; returns them, for their runs."""
    fail_stale_trial_ids(study, stale)
    fail_trials_of_gone_workers(study, on_host)
    return failed_records()


def fail_trials_of_gone_workers(study: optuna.Study, running: Sequence[tuple[int, str]]) -> None:
    """Of the running trials (trial id, worker), fail those whose worker ran on this host and is no longer alive."""
    storage = storage_of(study)
    host = socket.gethostname()
    for trial_id, worker in running:
        owner_host, _, pid = worker.rpartition(":")
        if owner_host != host or not pid.isdigit() or int(pid) == os.getpid() or process_alive(int(pid)):
            continue
        try:
            TrialAttrs(error=DEAD_WORKER).write_to_storage(storage, trial_id)
            if storage.set_trial_state_values(trial_id, TrialState.FAIL):
                STALE_TRIALS(study, storage.get_trial(trial_id))
        except UpdateFinishedTrialError:
            continue  # another worker failed it first


def failed_records() -> list[TrialRecord]:
    """The trials this process failed as dead since the last call (STALE_TRIALS), as records for their runs."""
    return [replace(record_of(trial), state=states.TrialState.FAIL, error=TrialAttrs.read(trial).error or NO_HEARTBEAT)
            for trial in STALE_TRIALS.take_failed()]


def fail_orphaned_trials(study: optuna.Study) -> None:
    """On resume (before this process runs any trial): trials left RUNNING by a hard kill become FAIL before
    new trials start.

    A trial whose worker is alive on this machine is left alone (a `sweep worker` may still be
    running it), and so is one of another machine on a heartbeat storage: the heartbeat decides.
    """
    storage = storage_of(study)
    host = socket.gethostname()
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        owner_host, _, pid = str(TrialAttrs.read(trial).worker or "").rpartition(":")
        # this process runs none of the sweep's trials yet: one marked as its own was left by an earlier
        # sweep it ran in-process (a fit that raised SystemExit, say), as a hard kill leaves one behind
        if owner_host == host and pid.isdigit() and int(pid) != os.getpid() and process_alive(int(pid)):
            continue
        if owner_host not in ("", host) and storage_uses_heartbeat(storage):
            continue
        try:
            TrialAttrs(error=DEAD_SWEEP).write_to_storage(storage, trial_id_of(trial))
            storage.set_trial_state_values(trial_id_of(trial), TrialState.FAIL)
        except UpdateFinishedTrialError:
            continue




@contextmanager
def heartbeat(trial: optuna.Trial) -> Iterator[None]:
    """Optuna's heartbeat thread for the trial (RDB storages; a no-op on a journal file)."""
    with heartbeat_thread(trial):
        yield
