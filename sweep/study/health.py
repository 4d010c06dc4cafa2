"""`sweep doctor`'s view of the Optuna storage: reachable, its schema the one this Optuna expects, the sweep in it."""

from __future__ import annotations

from dataclasses import dataclass

from optuna.storages import RDBStorage

from sweep.errors import NotFoundError, StorageError
from sweep.locations import StorageLocation
from sweep.study.attrs import SweepAttrs
from sweep.study.opening import find_sweep
from sweep.study.storage import open_storage


@dataclass(frozen=True)
class StorageHealth:
    """What the storage check found: a line for the user, and the sweep to check the other stores against."""

    summary: str
    sweep_name: str | None  # the sweep asked for, else the latest; None when the storage holds none
    sweep: SweepAttrs | None


def check_storage(storage_url: str | None, name: str | None) -> StorageHealth:
    """Open the storage as a worker would; StorageError (one line, password hidden) when it cannot be used.

    Opening an RDB storage checks its schema: Optuna refuses one older or newer than its own, and the
    refusal names `optuna storage upgrade`. A sweep ``name`` that is not there is NotFoundError.
    """
    location = StorageLocation.parse(storage_url)
    if location.is_journal and location.journal_path is not None and not location.journal_path.exists():
        if name is not None:
            raise NotFoundError(f"no sweep named {name!r}: {location} does not exist; pass --storage "
                                f"or export SWEEP_STORAGE")
        return StorageHealth(f"{location}: no sweeps yet (`sweep run` creates it)", None, None)
    storage = open_storage(location, create=False, read_only=True)
    try:
        schema = ""
        if isinstance(storage, RDBStorage):
            current, head = storage.get_current_version(), storage.get_head_version()
            if current != head:  # Optuna only warns about some of these: a worker would fail later
                raise StorageError(f"storage {location}: schema {current}, this Optuna expects {head}; "
                                   f"run `optuna storage upgrade --storage URL` once, from one host")
            schema = f", schema {current}"
        try:
            row = find_sweep(storage, name)
        except NotFoundError:
            if name is not None:
                raise
            return StorageHealth(f"{location}: reachable{schema}, no sweeps yet", None, None)
        return StorageHealth(f"{location}: reachable{schema}, sweep {row.study_name!r} found", row.study_name,
                             SweepAttrs.read(row))
    finally:
        if isinstance(storage, RDBStorage):
            storage.remove_session()
            storage.engine.dispose()
