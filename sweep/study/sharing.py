"""Sharing one study between workers: the trial budget under a lock, dead workers' trials, heartbeats."""

from __future__ import annotations

import collections
import datetime as dt
import fcntl
import hashlib
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.storages import BaseStorage, RDBStorage, fail_stale_trials
from optuna.storages._heartbeat import get_heartbeat_thread, is_heartbeat_enabled
from optuna.trial import TrialState

from sweep.config import SweepConfig
from sweep.ranking import rank_key
from sweep.records import BestTrial, Counts, TrialRecord
from sweep.study.storage import ATTR, STALE_TRIALS, _scheme, default_storage, journal_path


@dataclass(frozen=True)
class Census:
    """The study as every worker must see it to share the trial budget."""

    counted: int  # trials that count toward the target: all but those replaced by a retry
    running: int
    waiting: int  # retries queued by the heartbeat, to be run before any new trial
    finished: Counts
    best: BestTrial | None

    def after(self, record: TrialRecord, config: SweepConfig) -> Census:
        """This census once the loop's own trial has ended (without reading the storage again)."""
        best = self.best
        if record.value is not None and (best is None or _key(record.value, record.metrics, record.number, config)
                                         < _key(best.value, best.metrics, best.number, config)):
            best = BestTrial(record.number, record.run_id, record.value, record.params, record.metrics,
                             record.model_json)
        return Census(self.counted, max(0, self.running - 1), self.waiting, self.finished.add(record.state), best)


def take_census(study: optuna.Study, config: SweepConfig, memo: dict[int, Any] | None = None) -> Census:
    """Count the study's trials. ``memo`` (kept by a loop between calls) holds the ranking keys of
    completed trials already seen, so a loop ranks only the new ones: a trial's cost stays flat as
    the study grows to thousands of trials."""
    memo = {} if memo is None else memo
    trials = study.get_trials(deepcopy=False)
    retried = {number for t in trials for number in t.system_attrs.get("retry_history", ())}
    counted = [t for t in trials if t.number not in retried]
    for trial in counted:
        if trial.state == TrialState.COMPLETE and trial.value is not None and trial.number not in memo:
            memo[trial.number] = (_key(trial.value, trial.user_attrs.get(f"{ATTR}metrics", {}), trial.number,
                                       config), trial)
    best = None
    if memo:
        top = min(memo.values(), key=lambda item: item[0])[1]
        best = BestTrial(top.number, top.user_attrs.get(f"{ATTR}run_id"), float(top.value),
                         {**config.fixed, **top.params}, dict(top.user_attrs.get(f"{ATTR}metrics", {})), None)
    return Census(len(counted), sum(t.state == TrialState.RUNNING for t in counted),
                  sum(t.state == TrialState.WAITING for t in counted), _count(counted), best)


def _key(value: float, metrics: dict[str, float], number: int, config: SweepConfig) -> tuple[float, float, int]:
    return rank_key(value, metrics, number, metric=config.metric, direction=config.direction)


class TrialGate:
    """A lock around "count the trials, then ask for one", so parallel workers start exactly the target.

    A file lock beside a journal or SQLite file (one machine), a PostgreSQL advisory lock for a
    shared database (many machines); other databases go without, and may start a trial too many.
    """

    def __init__(self, storage_url: str | None, storage: BaseStorage, study_name: str) -> None:
        target = storage_url or default_storage()
        scheme = _scheme(target)
        self._file: Any = None
        self._engine: Any = None
        self._connection: Any = None
        if scheme in ("postgresql", "postgres") and isinstance(storage, RDBStorage):
            self._engine = storage.engine
            self._key = int.from_bytes(hashlib.sha256(study_name.encode()).digest()[:8], "big", signed=True)
        elif scheme in ("", "sqlite"):
            path = journal_path(target) if not scheme else target.split("///", 1)[-1]
            self._file = open(f"{path}.gate", "a+b")  # noqa: SIM115 - held for the gate's life

    def __enter__(self) -> TrialGate:
        if self._file is not None:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_EX)
        elif self._engine is not None:
            from sqlalchemy import text

            self._connection = self._engine.connect()
            self._connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": self._key})
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._file is not None:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
        elif self._connection is not None:
            from sqlalchemy import text

            self._connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self._key})
            self._connection.close()
            self._connection = None

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def fail_dead_trials(study: optuna.Study) -> list[TrialRecord]:
    """Fail (and retry once) the running trials of workers that died; returns them for their runs.

    RDB storages: Optuna's heartbeat. Any storage: a trial whose worker ran on this machine and is
    no longer alive (the journal file has no heartbeat; this covers --jobs on one machine).
    """
    if is_heartbeat_enabled(study._storage):
        fail_stale_trials(study)
    host = socket.gethostname()
    storage = study._storage
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker = str(trial.user_attrs.get(f"{ATTR}worker", ""))
        owner_host, _, pid = worker.rpartition(":")
        if owner_host != host or not pid.isdigit() or int(pid) == os.getpid() or _alive(int(pid)):
            continue
        try:
            storage.set_trial_user_attr(trial._trial_id, f"{ATTR}error", "its worker process died")
            if storage.set_trial_state_values(trial._trial_id, TrialState.FAIL):
                STALE_TRIALS(study, storage.get_trial(trial._trial_id))
        except UpdateFinishedTrialError:
            continue  # another worker failed it first
    dead, STALE_TRIALS.failed = STALE_TRIALS.failed, []
    return [replace(_record_of(trial), state="FAIL", error=trial.user_attrs.get(f"{ATTR}error")
                    or "its worker stopped sending heartbeats") for trial in dead]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextmanager
def heartbeat(trial: optuna.Trial) -> Iterator[None]:
    """Optuna's heartbeat thread for the trial (RDB storages; a no-op on a journal file)."""
    with get_heartbeat_thread(trial._trial_id, trial.study._storage):
        yield


def _fail_orphaned_trials(study: optuna.Study) -> None:
    """On resume: trials left RUNNING by a hard kill become FAIL before new trials start.

    A trial whose worker is alive on this machine is left alone (a `sweep worker` may still be
    running it), and so is one of another machine on a heartbeat storage: the heartbeat decides.
    """
    storage = study._storage
    host = socket.gethostname()
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        owner_host, _, pid = str(trial.user_attrs.get(f"{ATTR}worker", "")).rpartition(":")
        if owner_host == host and pid.isdigit() and _alive(int(pid)):
            continue
        if owner_host not in ("", host) and is_heartbeat_enabled(storage):
            continue
        try:
            storage.set_trial_user_attr(trial._trial_id, f"{ATTR}error", "the sweep process died during this trial")
            storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
        except UpdateFinishedTrialError:
            continue


def _count(trials: list[optuna.trial.FrozenTrial]) -> Counts:
    states = collections.Counter(trial.state for trial in trials)  # one pass, no object per trial
    return Counts(states[TrialState.COMPLETE], states[TrialState.PRUNED], states[TrialState.FAIL])


_STATE_NAMES = {TrialState.COMPLETE: "COMPLETE", TrialState.PRUNED: "PRUNED", TrialState.FAIL: "FAIL"}


def _record_of(trial: optuna.trial.FrozenTrial) -> TrialRecord:
    """A finished trial as the tracking process needs it to rebuild a missing child run."""
    state = _STATE_NAMES.get(trial.state, "FAIL")
    return TrialRecord(trial.number, state, dict(trial.params),  # type: ignore[arg-type]
                       trial.value if state == "COMPLETE" else None,
                       dict(trial.user_attrs.get(f"{ATTR}metrics", {})), {}, None,
                       trial.user_attrs.get(f"{ATTR}error"), None,
                       _ms(trial.datetime_start), _ms(trial.datetime_complete), trial.user_attrs.get(f"{ATTR}run_id"),
                       bool(trial.user_attrs.get(f"{ATTR}interrupted", False)))


def _ms(moment: dt.datetime | None) -> int:
    return int(moment.timestamp() * 1000) if moment is not None else 0
