"""Opening an existing sweep: its storage, its study row, its stored config, then the loaded study."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass

import optuna
from optuna.storages import BaseStorage

from sweep.config import SweepConfig
from sweep.locations import StorageLocation
from sweep.publisher_lock import lock_path, wait_until_free
from sweep.states import SweepStatus
from sweep.study.attrs import SweepAttrs
from sweep.study.optuna_internals import FrozenStudy
from sweep.study.plain import choose_sweep
from sweep.study.storage import HEARTBEAT_SECONDS, make_pruner, make_sampler, open_storage, storage_hint
from sweep.study.warm_start import read_prior, with_prior

STARTING_SECONDS = 120.0  # a sweep's start that has not linked its parent run after this long was cut short
STARTING_LOOK_SECONDS = 0.2  # how often a joining worker reads a sweep being started again


@dataclass(frozen=True)
class ExistingSweep:
    """A sweep found in its storage, before its study is loaded (which replays it, and needs a sampler)."""

    location: StorageLocation
    storage: BaseStorage
    name: str
    attrs: SweepAttrs
    config: SweepConfig  # as stored (its name set); the caller replaces what the invocation may change

    def load(self, config: SweepConfig | None = None) -> optuna.Study:
        """The study, with the sampler and pruner of ``config`` (the stored one by default): to run trials. The
        sampler reads its warm_start sweep's trials first while that sweep is there (read_prior)."""
        wanted = config or self.config
        sampler = with_prior(make_sampler(wanted), read_prior(self.storage, wanted, strict=False))
        return optuna.load_study(study_name=self.name, storage=self.storage, sampler=sampler,
                                 pruner=make_pruner(wanted))

    def read(self) -> optuna.Study:
        """The study for reading only: no sampler is built."""
        return optuna.load_study(study_name=self.name, storage=self.storage)


def open_sweep(location: StorageLocation, name: str | None, *, unfinished: bool = False,
               heartbeat: int | None = None, read_only: bool = False) -> ExistingSweep:
    """The sweep ``name`` (else the latest, the latest unfinished one with ``unfinished``) in ``location``.

    Raises NotFoundError when the storage or the sweep does not exist. The storage is opened with
    the sweep's own heartbeat unless ``heartbeat`` says otherwise, so every worker beats alike.
    ``read_only`` leaves a journal's torn last line in place (readers skip it; writers set it aside).
    """
    storage = open_storage(location, create=False, heartbeat=heartbeat or HEARTBEAT_SECONDS, read_only=read_only)
    row = find_sweep(storage, name, unfinished=unfinished)
    attrs = SweepAttrs.read(row)
    config = attrs.stored_config.replace(name=row.study_name)
    if heartbeat is None and config.heartbeat != HEARTBEAT_SECONDS and not location.is_journal:
        storage = open_storage(location, create=False, heartbeat=config.heartbeat, read_only=read_only)
    return ExistingSweep(location, storage, row.study_name, attrs, config)


def after_its_publisher(sweep: ExistingSweep, on_wait: Callable[[int], None] | None, *,
                        heartbeat: int | None) -> ExistingSweep:
    """``sweep`` once no background publisher writes its end (sweep/publisher_lock.py; ``on_wait`` is told its pid),
    read again (with ``heartbeat``) if one did: it remembers the model it published in the study."""
    if not wait_until_free(lock_path(sweep.location, sweep.name), on_wait):
        return sweep
    return open_sweep(sweep.location, sweep.name, heartbeat=heartbeat)


def open_started_sweep(location: StorageLocation, name: str) -> ExistingSweep:
    """open_sweep for a worker joining the sweep: one being started (its first trials run before MLflow has made
    its parent run) is read again until its parent run is linked. One whose start began more than
    STARTING_SECONDS ago without a parent was cut short, and is returned as it is."""
    sweep = open_sweep(location, name)
    while sweep.attrs.parent_run_id is None and sweep.attrs.status == SweepStatus.STARTING.value:
        created = sweep.attrs.created
        if created is None or started_seconds_ago(created) > STARTING_SECONDS:
            return sweep
        time.sleep(STARTING_LOOK_SECONDS)
        sweep = open_sweep(location, name)
    return sweep


def started_seconds_ago(created: str) -> float:
    return (dt.datetime.now(dt.timezone.utc) - dt.datetime.fromisoformat(created)).total_seconds()


def find_sweep(storage: BaseStorage, name: str | None, *, unfinished: bool = False) -> FrozenStudy:
    """A sweep's row in the storage: by name, else the latest (unfinished) one. Studies of other tools are skipped."""
    rows = storage.get_all_studies()
    return rows[choose_sweep([(row.study_name, row.user_attrs) for row in rows], name,
                             hint=storage_hint(storage), unfinished=unfinished)]
