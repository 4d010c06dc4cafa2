"""Optuna storages, samplers and pruners: the journal file by default, an RDB URL (PostgreSQL) for teams."""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import BaseStorage, JournalStorage, RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock
from optuna.storages.journal._file import get_lock_file

from sweep.config import SweepConfig
from sweep.errors import NotFoundError, StorageError, SweepConfigError, SweepError
from sweep.space import grid
from sweep.urls import redact_text, redact_url

optuna.logging.set_verbosity(optuna.logging.WARNING)  # the CLI reports progress its own way
# the heartbeat's retry callback and fail_stale_trials are marked experimental; we pin optuna's major version
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
# ask/tell with a heartbeat is what we do on purpose: this loop runs the heartbeat thread itself (heartbeat())
warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used with Study.optimize")

JOURNAL_FILE = "sweep.journal"  # the embedded store: Optuna's journal file, safe for processes on one machine
RDB_SCHEMES = ("sqlite", "postgresql", "postgres", "mysql", "oracle", "mssql")
HEARTBEAT_SECONDS = 10  # RDB storages: a running trial's heartbeat; missing for 3 intervals = its worker died
ATTR = "sweep."  # prefix of every study / trial user attribute this project writes


def default_storage() -> str:
    return str(Path.cwd() / JOURNAL_FILE)


def storage_label(url: str | None) -> str:
    """How a storage is shown and stored: the password never appears."""
    return redact_url(url or default_storage())


def open_storage(url: str | None, *, create: bool = True, heartbeat: int = HEARTBEAT_SECONDS) -> BaseStorage:
    """An RDB URL (PostgreSQL for teams), or a journal file path (the default: ./sweep.journal).

    An RDB storage records a heartbeat for every running trial: a trial whose worker stops beating
    for three intervals is failed by the other workers and retried once (Optuna's heartbeat).
    """
    target = url or default_storage()
    scheme = _scheme(target)
    try:
        if scheme in RDB_SCHEMES:
            return RDBStorage(target, heartbeat_interval=heartbeat, grace_period=3 * heartbeat,
                              heartbeat_stale_trial_callback=STALE_TRIALS)
        if scheme:
            raise StorageError(f"storage {redact_url(target)}: unknown scheme {scheme!r}; use postgresql://..., "
                               f"sqlite:///... or a journal file path")
        path = journal_path(target)
        assert path is not None  # no scheme: a journal file
        if not path.exists() and not create:
            raise NotFoundError(f"no sweeps yet: {path} does not exist; start one with `sweep run`")
        path.parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(_JournalFile(str(path), lock_obj=JournalFileOpenLock(str(path))))
    except SweepError:
        raise
    except ImportError:
        raise StorageError(f"storage {redact_url(target)} needs its database driver: for PostgreSQL, "
                           f"pip install 'sweep[postgres]' (psycopg 3)") from None
    except Exception as error:  # SQLAlchemy, OS and driver errors: one line, password hidden
        detail = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise StorageError(f"cannot open Optuna storage {redact_url(target)}: {redact_text(detail)}") from None


def journal_path(url: str | None) -> Path | None:
    """The journal file a storage URL names (the default one for None); None for a database URL."""
    target = url or default_storage()
    return None if _scheme(target) else Path(target.removeprefix("journal:"))


def _scheme(target: str) -> str:
    return target.split(":", 1)[0].split("+", 1)[0].lower() if "://" in target else ""


class _JournalFile(JournalFileBackend):
    """Optuna's journal file, appended without an fsync per operation.

    Optuna fsyncs every append: ~1 ms each, and a trial is about eight appends (create, one per
    parameter, attributes, tell), the largest cost of a trial after the trainer and the sampler. The
    lock and the single write() per append are kept, so concurrent workers and readers see whole
    lines, and a crash of the process loses nothing that was written; only a power cut can lose the
    last appends, the same trade as SQLite's synchronous=NORMAL.
    """

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        with get_lock_file(self._lock):
            text = "\n".join(json.dumps(log, separators=(",", ":")) for log in logs) + "\n"
            with open(self._file_path, "ab") as file:
                file.write(text.encode("utf-8"))


def make_sampler(config: SweepConfig) -> optuna.samplers.BaseSampler:
    seed = config.seed
    samplers: dict[str, Callable[[], optuna.samplers.BaseSampler]] = {
        "tpe": lambda: optuna.samplers.TPESampler(seed=seed),
        "random": lambda: optuna.samplers.RandomSampler(seed=seed),
        "grid": lambda: optuna.samplers.GridSampler(grid(config.space), seed=seed),
        "cmaes": lambda: optuna.samplers.CmaEsSampler(seed=seed),
        "gp": lambda: optuna.samplers.GPSampler(seed=seed),
        "qmc": lambda: optuna.samplers.QMCSampler(seed=seed),
    }
    try:
        sampler = samplers[config.sampler]()
    except ImportError as error:  # cmaes and gp have optional dependencies
        raise SweepConfigError(f"sampler {config.sampler!r} needs {error.name or 'an extra package'}: "
                               f"pip install {error.name or config.sampler}, or choose another --sampler") from None
    return sampler


def make_pruner(config: SweepConfig) -> optuna.pruners.BasePruner:
    if config.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=config.pruner_startup_trials,
                                           n_warmup_steps=config.pruner_warmup_epochs)
    if config.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=max(1, config.pruner_warmup_epochs))
    return optuna.pruners.NopPruner()


class _StaleTrials:
    """Optuna's heartbeat callback: retry a stale trial once, and remember it so its run can end FAILED."""

    def __init__(self) -> None:
        self._retry = RetryHeartbeatStaleTrialCallback(max_retry=1)
        self.failed: list[optuna.trial.FrozenTrial] = []

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        self._retry(study, trial)
        self.failed.append(trial)


STALE_TRIALS = _StaleTrials()
