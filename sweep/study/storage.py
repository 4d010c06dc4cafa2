"""Where studies live and how they are searched: opening a storage (journal file, RDB URL, a journal in Redis,
a `sweep storage-proxy`), samplers, pruners."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import BaseStorage, JournalStorage, RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.storages.journal import JournalFileOpenLock

from sweep.config import SweepConfig, check_sampler_packages
from sweep.errors import NotFoundError, StorageError, SweepConfigError, SweepError
from sweep.locations import STORAGE_FORMS, StorageLocation
from sweep.space import grid
from sweep.study.journal_repair import find_broken_line, find_unusable_record, set_aside_torn_tail
from sweep.study.objective_pruning import ObjectivesMedianPruner
from sweep.study.optuna_internals import CompactJournalStorage, JournalFileNoFsync, quiet_heartbeat_warnings
from sweep.study.patience import Patience, PatientStorage
from sweep.study.remote import open_redis_journal, open_storage_proxy
from sweep.urls import misread_password, redact_text

HEARTBEAT_SECONDS = 10  # RDB storages: a running trial's heartbeat; missing for 3 intervals = its worker died

log = logging.getLogger(__name__)  # warnings for the user: the CLI shows the "sweep" loggers on stderr


def configure_optuna() -> None:
    """Optuna's own log lines off (warnings stay): the CLI reports progress its own way.

    Called by the commands that run Optuna, never at import: importing sweep changes nothing outside it.
    """
    optuna.logging.set_verbosity(optuna.logging.WARNING)


def open_storage(location: StorageLocation | str | None, *, create: bool = True,
                 heartbeat: int = HEARTBEAT_SECONDS, read_only: bool = False) -> BaseStorage:
    """An RDB storage (PostgreSQL for teams, SQLite), or a journal file (the default: ./sweep.journal).

    ``location`` may also be the storage as a user gives it (a URL or path; None for the default).
    A journal opened to be written first has a torn last line set aside (logged as a warning); a
    broken line inside it is reported with its number, and nothing is written. ``read_only`` callers
    leave the file alone: Optuna's reader skips a torn last line by itself.
    An RDB storage records a heartbeat for every running trial: a trial whose worker stops beating
    for three intervals is failed by the other workers and retried once (Optuna's heartbeat).
    With ``create`` False a missing journal file is NotFoundError: there is nothing to read.
    """
    if not isinstance(location, StorageLocation):
        location = StorageLocation.parse(location)
    try:
        if location.is_database:
            if misread_password(location.url):
                raise StorageError(f"storage {location}: the password holds a character that must be "
                                   f"percent-encoded in a URL (at sign as %40, slash as %2F, space as %20); encode it")
            return open_database(location, heartbeat=heartbeat)
        if location.is_redis:
            return open_redis_journal(location, heartbeat=heartbeat, callback=STALE_TRIALS)
        if location.is_grpc:
            return open_storage_proxy(location, heartbeat=heartbeat, callback=STALE_TRIALS)
        path = location.journal_path
        if path is None:
            raise StorageError(f"storage {location}: unknown scheme {location.scheme!r}; use {STORAGE_FORMS}")
        if not path.exists() and not create:
            raise NotFoundError(f"no sweeps yet: {path} does not exist; start one with `sweep run`")
        path.parent.mkdir(parents=True, exist_ok=True)
        if not read_only:
            torn = set_aside_torn_tail(path)
            if torn is not None:
                log.warning(torn.message())
        try:
            return CompactJournalStorage(JournalFileNoFsync(str(path), lock_obj=JournalFileOpenLock(str(path))))
        except ValueError:  # a line Optuna cannot decode, with lines after it
            raise find_broken_line(path) or StorageError(f"cannot open Optuna storage {path}: unreadable") from None
        except (AssertionError, KeyError, TypeError, IndexError, AttributeError):  # JSON, not a record it applies
            raise find_unusable_record(path) or StorageError(f"cannot open Optuna storage {path}: unreadable"
                                                             ) from None
    except SweepError:
        raise
    except ImportError:
        raise StorageError(f"storage {location} needs its driver: {DRIVERS.get(location.scheme, DRIVERS['postgresql'])}"
                           ) from None
    except Exception as error:  # SQLAlchemy, OS and driver errors: one line, password hidden
        detail = opening_failure(error)
        raise StorageError(f"cannot open Optuna storage {location}: {redact_text(detail)}") from None


def opening_failure(error: Exception) -> str:
    """One line saying why a storage could not be opened. Optuna reports every failed commit as "An exception is
    raised during the commit ... e.g. exceeding max length", whatever the database said: the database's own words
    (the innermost error) are given instead, with what to do when it refused a connection for too many of them."""
    chain = [error]
    while (chain[-1].__cause__ or chain[-1].__context__) is not None and len(chain) < CHAIN_LIMIT:
        chain.append(chain[-1].__cause__ or chain[-1].__context__)  # type: ignore[arg-type]
    refused = next((str(link) for link in reversed(chain) if any(sign in str(link) for sign in TOO_MANY)), None)
    if refused is not None:
        words = refused.strip().splitlines()[0].rpartition("FATAL:")[2].strip()
        return (f"the database refused a connection: {words}; run fewer workers, raise the database's connection limit "
                f"(max_connections), or serve the study with `sweep storage-proxy` (one process holds the connections)")
    if isinstance(error, optuna.exceptions.StorageInternalError):
        error = chain[-1]
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


# PostgreSQL's words when its max_connections, or a role's or a database's connection limit, is reached
TOO_MANY = ("too many clients already", "too many connections for")
CHAIN_LIMIT = 20  # causes followed at most (a chain is a few errors deep)


def remove_new_journal(path: Path) -> None:
    """A journal file this invocation created, and the trial gate's file beside it, once it holds no study (the
    start failed and discarded its own): nothing is left behind. One another sweep wrote to meanwhile stays."""
    if path.exists() and path.stat().st_size > 0:
        try:
            if open_storage(StorageLocation.parse(str(path)), create=False, read_only=True).get_all_studies():
                return
        except Exception:  # unreadable: not ours to judge, so it stays
            return
    for leftover in (path, path.with_name(path.name + ".gate")):
        leftover.unlink(missing_ok=True)


def open_database(location: StorageLocation, *, heartbeat: int) -> RDBStorage:
    """An RDB storage with the trial heartbeat. A new database gets Optuna's tables (and alembic's version table)
    from whichever process opens it first; two opening it at once (two workers, a worker and `sweep doctor`)
    race on creating the same table, and the loser's error only says so: after a pause, the tables are there."""
    import sqlalchemy.exc  # here, not at the top: every command imports this module, few open a database

    for attempt in range(SCHEMA_RACE_ATTEMPTS):
        try:
            with quiet_heartbeat_warnings():  # the heartbeat arguments are marked experimental
                if location.is_sqlite:  # a local file: nothing to wait for
                    return RDBStorage(location.secret_url, heartbeat_interval=heartbeat, grace_period=3 * heartbeat,
                                      heartbeat_stale_trial_callback=STALE_TRIALS)
                return PatientRDBStorage(Patience(str(location)), location.secret_url, heartbeat_interval=heartbeat,
                                         grace_period=3 * heartbeat, heartbeat_stale_trial_callback=STALE_TRIALS)
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError) as error:
            if attempt + 1 == SCHEMA_RACE_ATTEMPTS or not lost_schema_race(error):
                raise
            time.sleep(SCHEMA_RACE_PAUSE * (attempt + 1))
    raise AssertionError("unreachable")  # the last attempt returns or raises


class PatientRDBStorage(PatientStorage, RDBStorage):
    """A database server's storage whose calls wait (a bounded time) for a server that went away (patience.py)."""

    def __init__(self, patience: Patience, url: str, **options: Any) -> None:
        self.patience = patience  # first: RDBStorage's own start calls storage methods
        super().__init__(url, **options)


SCHEMA_RACE_ATTEMPTS = 5  # another process creating a new database's tables at the same moment
SCHEMA_RACE_PAUSE = 0.2  # seconds, growing with each attempt
SCHEMA_RACE_SIGNS = ("already exists", "pg_type_typname_nsp_index", "duplicate key value violates unique constraint")


def lost_schema_race(error: Exception) -> bool:
    """Whether creating a table failed because another process created it (or its row type) just before."""
    text = str(getattr(error, "orig", None) or error)
    return any(sign in text for sign in SCHEMA_RACE_SIGNS)


DRIVERS = {  # what a storage scheme needs installed, as the ImportError's one-line fix
    "postgresql": "for PostgreSQL, pip install 'sweep[postgres]' (psycopg 3)",
    "redis": "pip install 'sweep[redis]'",
    "rediss": "pip install 'sweep[redis]'",
    "grpc": "pip install 'sweep[grpc]'",
}


def storage_hint(storage: BaseStorage) -> str:
    """How an error message names a storage it searched (never its URL: that may hold a password)."""
    return "the journal storage" if isinstance(storage, JournalStorage) else "the storage"


class AskTellGridSampler(optuna.samplers.GridSampler):
    """Optuna's grid sampler without its study.stop() once the grid is exhausted: that call only works
    inside study.optimize, and raises with ask and tell. The sweep's target is capped at the grid size."""

    def after_trial(self, study: optuna.Study, trial: optuna.trial.FrozenTrial,
                    state: optuna.trial.TrialState, values: Sequence[float] | None) -> None:
        return None


def grid_size(config: SweepConfig) -> int:
    """How many points the grid sampler has for the config's space."""
    return math.prod(len(values) for values in grid(config.space).values())


def make_sampler(config: SweepConfig, *, stream: int | None = None) -> optuna.samplers.BaseSampler:
    """The sweep's sampler, seeded with ``config.seed``; with ``stream``, its random draws come from that seed
    instead (another process's or another start's sequence: see seeding.py). QMC keeps ``config.seed`` for
    its sequence in every process, so its points stay spread; only its first, random trial takes ``stream``.
    TPE's constant liar is named, not left to Optuna's default: parallel workers rely on it to propose
    away from the trials other workers are running (GP does the same by itself with q-batch EI)."""
    check_sampler_packages(config.sampler)
    seed = config.seed if stream is None else stream
    samplers: dict[str, Callable[[], optuna.samplers.BaseSampler]] = {
        "tpe": lambda: optuna.samplers.TPESampler(seed=seed, constant_liar=True),
        "random": lambda: optuna.samplers.RandomSampler(seed=seed),
        "grid": lambda: AskTellGridSampler(grid(config.space), seed=seed),
        "cmaes": lambda: optuna.samplers.CmaEsSampler(seed=seed),
        "gp": lambda: optuna.samplers.GPSampler(seed=seed),
        "nsga2": lambda: optuna.samplers.NSGAIISampler(seed=seed),
        "qmc": lambda: optuna.samplers.QMCSampler(seed=config.seed,
                                                  independent_sampler=optuna.samplers.RandomSampler(seed=seed)),
    }
    try:
        sampler = samplers[config.sampler]()
    except ImportError as error:  # cmaes and gp have optional dependencies
        raise SweepConfigError(f"sampler {config.sampler!r} needs {error.name or 'an extra package'}: "
                               f"pip install {error.name or config.sampler}, or choose another --sampler") from None
    return sampler


def make_pruner(config: SweepConfig) -> optuna.pruners.BasePruner:
    if config.multi_objective and config.pruner == "median":  # each objective against its own median
        return ObjectivesMedianPruner(startup_trials=config.pruner_startup_trials,
                                      warmup_steps=config.pruner_warmup_epochs)
    if config.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=config.pruner_startup_trials,
                                           n_warmup_steps=config.pruner_warmup_epochs)
    if config.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=max(1, config.pruner_warmup_epochs))
    return optuna.pruners.NopPruner()


class StaleTrials:
    """Optuna's heartbeat callback: retry a stale trial once, and remember it so its run can end FAILED."""

    def __init__(self) -> None:
        self._retry: RetryHeartbeatStaleTrialCallback | None = None  # made on first use: it warns (experimental)
        self.failed: list[optuna.trial.FrozenTrial] = []

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if self._retry is None:
            with quiet_heartbeat_warnings():
                self._retry = RetryHeartbeatStaleTrialCallback(max_retry=1)
        with quiet_heartbeat_warnings():
            self._retry(study, trial)
        self.failed.append(trial)

    def take_failed(self) -> list[optuna.trial.FrozenTrial]:
        """The trials failed since the last call (their runs must end FAILED too)."""
        failed, self.failed = self.failed, []
        return failed


STALE_TRIALS = StaleTrials()  # one per process: RDBStorage calls it, fail_dead_trials reads what it failed
