"""Every Optuna call of the project: storage, sampler, pruner, creating and resuming a sweep, the trial loop.

The study is the source of truth (which trials ran, with what settings and result); MLflow is the
view people browse, written by the tracking process (sweep/recorder.py) off the critical path.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import json
import os
import signal
import socket
import threading
import time
import traceback
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.storages import BaseStorage, JournalStorage, RDBStorage, RetryHeartbeatStaleTrialCallback, fail_stale_trials
from optuna.storages._heartbeat import get_heartbeat_thread, is_heartbeat_enabled
from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock
from optuna.storages.journal._file import get_lock_file
from optuna.trial import TrialState

from sweep.config import SweepConfig, config_from_yaml
from sweep.errors import AllTrialsFailedError, NotFoundError, StorageError, SweepConfigError, SweepError
from sweep.objective import TrialInterrupted, TrialPruned, TrialRun, run_trial
from sweep.ranking import rank_key
from sweep.recorder import Recorder, TrackingReport
from sweep.records import BestTrial, Counts, SweepIdentity, TrialRecord
from sweep.space import grid
from sweep.urls import redact_text, redact_url
from sweep.workers import spawn_workers
from trainer import Split, TrainConfig, load_corpus, split

optuna.logging.set_verbosity(optuna.logging.WARNING)  # the CLI reports progress its own way
# the heartbeat's retry callback and fail_stale_trials are marked experimental; we pin optuna's major version
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
# ask/tell with a heartbeat is what we do on purpose: this loop runs the heartbeat thread itself (heartbeat())
warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used with Study.optimize")

JOURNAL_FILE = "sweep.journal"  # the embedded store: Optuna's journal file, safe for processes on one machine
RDB_SCHEMES = ("sqlite", "postgresql", "postgres", "mysql", "oracle", "mssql")
HEARTBEAT_SECONDS = 10  # RDB storages: a running trial's heartbeat; missing for 3 intervals = its worker died
WAIT_SECONDS = 0.5  # how often a worker with no trial left to start looks at the others' last trials
ATTR = "sweep."  # prefix of every study / trial user attribute this project writes


# -- storage ----------------------------------------------------------------------------------------


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
        path = Path(target.removeprefix("journal:"))
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


# -- sampler and pruner -----------------------------------------------------------------------------


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


# -- progress -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SweepStart:
    name: str
    experiment: str
    parent_run_id: str
    storage: str  # redacted
    tracking_uri: str  # redacted
    target: int
    already_finished: int
    resumed: bool


@dataclass(frozen=True)
class TrialUpdate:
    number: int
    state: str
    value: float | None
    error: str | None
    counts: Counts
    target: int
    best: BestTrial | None
    elapsed: float


class SweepListener(Protocol):
    def sweep_started(self, start: SweepStart) -> None: ...

    def trial_finished(self, update: TrialUpdate) -> None: ...


@dataclass(frozen=True)
class SweepSummary:
    name: str
    experiment: str
    parent_run_id: str
    status: str  # finished | interrupted | timeout
    counts: Counts
    best: BestTrial | None
    elapsed: float
    trainer_seconds: float | None  # time inside the trainer (None when worker processes ran the trials)
    trials_run: int  # trials this invocation ran
    tracking: TrackingReport = field(default_factory=TrackingReport)
    storage: str = ""
    tracking_uri: str = ""


class SweepInterrupted(SweepError):
    """Ctrl-C or SIGTERM: every run ended KILLED; the message says how to resume."""

    exit_code = 130

    def __init__(self, summary: SweepSummary, storage_flag: str) -> None:
        super().__init__(f"interrupted with {summary.counts.finished} trials finished; "
                         f"resume with: sweep run --resume --name {summary.name}{storage_flag}")
        self.summary = summary


# -- the sweep ------------------------------------------------------------------------------------


def run_sweep(config: SweepConfig, *, resume: bool, listener: SweepListener, command_line: str = "",
              environment: dict[str, str] | None = None, flags: frozenset[str] = frozenset(),
              jobs: int = 1, register: str | None = None) -> SweepSummary:
    """Create (or resume) the sweep's study and parent run, then run trials until the target is met.

    On resume the stored config wins; of ``flags`` (the settings the user gave explicitly), only
    trials, timeout and where the stores are apply to the resumed sweep. At the end the parent run
    gets the plots and the best model as a pyfunc model, registered as ``register`` when given.

    Order matters for "nothing half-written": the config is already valid, the data is loaded and
    split before any store is touched, and MLflow is reached before the study is created.
    """
    started = time.perf_counter()
    recorder = Recorder()  # start importing mlflow in the other process now; it touches no store yet
    try:
        return _run(config, recorder, started, resume=resume, listener=listener, command_line=command_line,
                    environment=environment, flags=flags, jobs=jobs, register=register)
    except BaseException:
        recorder.terminate()
        raise


def _run(config: SweepConfig, recorder: Recorder, started: float, *, resume: bool, listener: SweepListener,
         command_line: str, environment: dict[str, str] | None, flags: frozenset[str], jobs: int,
         register: str | None = None) -> SweepSummary:
    if resume:
        storage = open_storage(config.storage, create=False, heartbeat=config.heartbeat)  # nothing to resume
        study_row = _find_study(storage, config.name, resume=True)
        config = _resumed_config(study_row, config, flags)
        data = _load_split(config)
    else:
        study_row = None
        data = _load_split(config)  # bad data fails here, before the storage file exists
        storage = open_storage(config.storage, heartbeat=config.heartbeat)
        if config.name is not None and _study_exists(storage, config.name):
            raise SweepConfigError(f"a sweep named {config.name!r} exists already; add --resume to continue it, "
                                   f"or choose another --name")
    name = config.name or _new_name(storage)
    tracking_uri = config.tracking_uri or (study_row.user_attrs.get(f"{ATTR}tracking_uri") if study_row else None)
    if tracking_uri is not None and "***" in tracking_uri:
        tracking_uri = None  # a stored URI lost its password: the flag or MLFLOW_TRACKING_URI must give it
    identity = SweepIdentity(name, config.experiment, tracking_uri)

    stop = StopSignal()
    try:
        stop.install()  # until the parent run exists, Ctrl-C stops at once: nothing needs ending yet
        experiment_id = recorder.connect(identity)
        study = _open_study(storage, config, name, create=study_row is None)
        attrs = study.user_attrs
        if study_row is not None:
            _fail_orphaned_trials(study)
        parent_run_id = recorder.open_parent(
            attrs.get(f"{ATTR}parent_run_id"),
            params=_parent_params(config), config_yaml=config.replace(name=name).to_yaml(),
            tags={"sweep.status": "running", "sweep.target": str(config.trials),
                  "sweep.storage": storage_label(config.storage), "sweep.command": redact_text(command_line),
                  **(environment or {}), "data.fingerprint": data_fingerprint(config, data)})
        stop.defer()  # from here a signal only asks the loop to stop at the next epoch or trial boundary
        _set_study_attrs(study, config, name, parent_run_id, experiment_id, tracking_uri)
        if study_row is not None:
            recorder.reconcile([_record_of(trial) for trial in _all_trials(study)])
        gate = TrialGate(config.storage, storage, name)
        listener.sweep_started(SweepStart(name, config.experiment, parent_run_id, storage_label(config.storage),
                                          redact_url(_display_uri(tracking_uri)), config.trials,
                                          take_census(study, config).finished.finished, study_row is not None))
        if jobs == 1:
            loop = _Loop(study, config, data, recorder, listener, started, stop, gate)
            status = loop.run()
            trainer_seconds, trials_run, errors = loop.trainer_seconds, loop.trials_run, loop.error_summary()
        else:
            status, trials_run = _supervise(study, config, jobs, tracking_uri, listener, stop, started)
            trainer_seconds, errors = None, _error_summary(study)
        final = take_census(study, config)
        if final.best is not None:
            recorder.ensure_best(final.best, config.metric)  # right whichever worker found it
        summary_status = "KILLED" if status == "interrupted" else (
            "FAILED" if final.finished.complete == 0 and final.finished.failed else "FINISHED")
        study.set_user_attr(f"{ATTR}status", "finished" if status == "finished" else "interrupted")
        _publish_results(study, recorder, final.best, register)
        report = recorder.close(summary_status, final.finished)
        _remember_model(study, report)
        gate.close()
    finally:
        stop.restore()
    summary = SweepSummary(name, config.experiment, parent_run_id, status, final.finished, final.best,
                           time.perf_counter() - started, trainer_seconds, trials_run, report,
                           storage_label(config.storage), redact_url(_display_uri(tracking_uri)))
    if status == "interrupted":
        raise SweepInterrupted(summary, _storage_flag(config.storage))
    if final.finished.complete == 0 and final.finished.failed:
        raise AllTrialsFailedError(f"all {final.finished.failed} trials failed: {'; '.join(errors)}")
    return summary


def run_worker(name: str, *, storage_url: str | None, tracking_uri: str | None, trials: int | None,
               listener: SweepListener, finalize: bool = True) -> SweepSummary:
    """Join an existing sweep: same study, same parent run, child runs under it.

    The worker runs trials until the study holds its target (``trials``, else the sweep's stored
    target) and the other workers' last trials have ended. With ``finalize`` the worker that sees
    the end writes the final best and ends the parent run; several doing it is harmless.
    """
    started = time.perf_counter()
    recorder = Recorder()
    stop = StopSignal()
    try:
        stop.install()
        storage = open_storage(storage_url, create=False)
        row = _find_study(storage, name, resume=False)
        attrs = row.user_attrs
        config = config_from_yaml(attrs[f"{ATTR}config"]).replace(
            name=name, storage=storage_url, tracking_uri=tracking_uri,
            trials=trials if trials is not None else int(attrs.get(f"{ATTR}target", 0)))
        if config.heartbeat != HEARTBEAT_SECONDS:  # the sweep's own heartbeat, the same for every worker
            storage = open_storage(storage_url, create=False, heartbeat=config.heartbeat)
        data = _load_split(config)
        stored_uri = attrs.get(f"{ATTR}tracking_uri")
        uri = tracking_uri or (stored_uri if stored_uri and "***" not in stored_uri else None)
        recorder.connect(SweepIdentity(name, config.experiment, uri))
        parent_run_id = attrs[f"{ATTR}parent_run_id"]
        recorder.attach_parent(parent_run_id)
        stop.defer()
        study = _open_study(storage, config, name, create=False)
        gate = TrialGate(storage_url, storage, name)
        listener.sweep_started(SweepStart(name, config.experiment, parent_run_id, storage_label(storage_url),
                                          redact_url(_display_uri(uri)), config.trials,
                                          take_census(study, config).finished.finished, True))
        loop = _Loop(study, config, data, recorder, listener, started, stop, gate)
        status = loop.run()
        final = take_census(study, config)
        owner_status = None
        if finalize and status == "finished":
            if final.best is not None:
                recorder.ensure_best(final.best, config.metric)
            owner_status = "FINISHED" if final.finished.complete else "FAILED"
            study.set_user_attr(f"{ATTR}status", "finished")
            _publish_results(study, recorder, final.best, None)  # the sweep ends here: plots and model too
        report = recorder.close(owner_status, final.finished)
        if owner_status is not None:
            _remember_model(study, report)
        gate.close()
    except BaseException:
        recorder.terminate()
        raise
    finally:
        stop.restore()
    summary = SweepSummary(name, config.experiment, parent_run_id, status, final.finished, final.best,
                           time.perf_counter() - started, loop.trainer_seconds, loop.trials_run, report,
                           storage_label(storage_url), redact_url(_display_uri(uri)))
    if status == "interrupted":
        raise SweepInterrupted(summary, _storage_flag(storage_url))
    return summary


def _supervise(study: optuna.Study, config: SweepConfig, jobs: int, tracking_uri: str | None,
               listener: SweepListener, stop: StopSignal, started: float) -> tuple[str, int]:
    """Run the trials in ``jobs`` worker processes; report their progress from the study."""
    before = {t.number for t in study.get_trials(deepcopy=False) if t.state.is_finished()}
    pool = spawn_workers(study.study_name, jobs, storage=config.storage or default_storage(),
                         tracking_uri=tracking_uri, target=config.trials)
    reported = set(before)
    stopping = False
    while True:
        alive = pool.alive()
        if stop.requested and not stopping:
            pool.stop()  # a SIGTERM to this process only: pass it on (Ctrl-C reached them already)
            stopping = True
        census = take_census(study, config)
        for trial in study.get_trials(deepcopy=False):
            if trial.state.is_finished() and trial.number not in reported:
                reported.add(trial.number)
                if trial.user_attrs.get(f"{ATTR}interrupted"):
                    continue
                state = _STATE_NAMES.get(trial.state, "FAIL")
                listener.trial_finished(TrialUpdate(
                    trial.number, state, trial.value if state == "COMPLETE" else None,
                    trial.user_attrs.get(f"{ATTR}error"), census.finished, config.trials, census.best,
                    time.perf_counter() - started))
        if alive == 0:
            break
        time.sleep(WAIT_SECONDS)
    pool.wait()
    census = take_census(study, config)
    done = census.finished.finished >= config.trials and census.running == 0
    return ("finished" if done and not stop.requested else "interrupted"), len(reported - before)


def _error_summary(study: optuna.Study) -> list[str]:
    errors: dict[str, int] = {}
    for trial in study.get_trials(deepcopy=False, states=(TrialState.FAIL,)):
        message = str(trial.user_attrs.get(f"{ATTR}error", "unknown error"))
        errors[message] = errors.get(message, 0) + 1
    return [f"{count}x {message}" for message, count in sorted(errors.items(), key=lambda item: -item[1])[:3]]


class _Loop:
    """The trial loop of one process: ask, train, tell, hand the record to the tracking process.

    Several loops (``--jobs``, ``sweep worker`` on other machines) can share one study: the trial
    budget is counted in the storage under a lock (TrialGate), so exactly the target number of
    trials is started, and a loop waits for the others' last trials before it reports the end.
    """

    def __init__(self, study: optuna.Study, config: SweepConfig, data: Split, recorder: Recorder,
                 listener: SweepListener, started: float, stop: StopSignal, gate: TrialGate) -> None:
        self.study, self.config, self.data, self.recorder, self.listener = study, config, data, recorder, listener
        self.started, self.stop, self.gate = started, stop, gate
        self._ranked: dict[int, Any] = {}  # completed trials already ranked (take_census's memo)
        self.census = take_census(study, config, self._ranked)
        self.trainer_seconds = 0.0
        self.trials_run = 0
        self.errors: dict[str, int] = {}
        self.worker = worker_id()

    @property
    def counts(self) -> Counts:
        return self.census.finished

    @property
    def best(self) -> BestTrial | None:
        return self.census.best

    def run(self) -> str:
        deadline = None if self.config.timeout is None else self.started + self.config.timeout
        while True:
            if self.stop.requested:
                return "interrupted"
            if deadline is not None and time.perf_counter() >= deadline:
                return "timeout"
            for record in fail_dead_trials(self.study):
                self.recorder.reconcile([record])  # its run ends FAILED, like the trial
            trial = self._next_trial()
            if trial is not None:
                self.one_trial(trial)
            elif self.census.running == 0:
                return "finished"
            else:
                time.sleep(WAIT_SECONDS)  # other workers run the last trials; theirs may still fail and retry

    def _next_trial(self) -> optuna.Trial | None:
        with self.gate:
            self.census = take_census(self.study, self.config, self._ranked)
            if not (self.census.waiting or self.census.counted < self.config.trials):
                return None
            trial = self.study.ask()  # a WAITING trial (a retry) first, else a new one
            trial.set_user_attr(f"{ATTR}worker", self.worker)  # who runs it: a dead worker's trial is failed
            return trial

    def one_trial(self, trial: optuna.Trial) -> None:
        start_ms = _now_ms()
        self.recorder.start_trial(trial.number, start_ms)
        run = TrialRun()
        state, value, error, trace, interrupted = "COMPLETE", None, None, None, False
        try:
            with heartbeat(trial):
                result = run_trial(trial, self.config, self.data, run, should_stop=lambda: self.stop.requested)
            value = result.metrics[self.config.metric]
        except TrialPruned:
            state = "PRUNED"
        except TrialInterrupted:
            state, error, interrupted = "FAIL", "interrupted (Ctrl-C or SIGTERM)", True
        except Exception as caught:  # a failing trial must not end the sweep: it becomes a FAIL trial
            state, error, trace = "FAIL", f"{type(caught).__name__}: {caught}", traceback.format_exc()
        self.trainer_seconds += run.trainer_seconds
        record = TrialRecord(trial.number, state, run.params or dict(trial.params), value,
                             dict(run.result.metrics) if run.result else {}, run.curves,
                             run.result.model.to_json() if run.result else None, error, trace,
                             start_ms, _now_ms(), self.recorder.run_id(trial.number), interrupted)
        best_before = self.census.best
        self._tell(trial, record)
        self.recorder.finish_trial(record)
        self.trials_run += 1
        # the census is refreshed before the next trial; until then this trial counts as finished
        self.census = self.census.after(record, self.config)
        if interrupted:
            return
        if error:
            self.errors[error] = self.errors.get(error, 0) + 1
        if self.census.best is not None and self.census.best is not best_before and \
                self.census.best.number == record.number:
            self.recorder.best(self.census.best, self.config.metric)
        self.recorder.counts(self.counts)
        self.listener.trial_finished(TrialUpdate(record.number, state, value, error, self.counts, self.config.trials,
                                                 self.best, time.perf_counter() - self.started))

    def _tell(self, trial: optuna.Trial, record: TrialRecord) -> None:
        # trial user attributes can only be written while the trial runs, so before tell()
        if record.run_id is not None:
            trial.set_user_attr(f"{ATTR}run_id", record.run_id)
        if record.metrics:  # one attribute for all of them: every attribute is one storage write
            trial.set_user_attr(f"{ATTR}metrics", record.metrics)
        if record.error:
            trial.set_user_attr(f"{ATTR}error", record.error)
        if record.interrupted:
            trial.set_user_attr(f"{ATTR}interrupted", True)
        states = {"COMPLETE": TrialState.COMPLETE, "PRUNED": TrialState.PRUNED, "FAIL": TrialState.FAIL}
        self.study.tell(trial, record.value if record.state == "COMPLETE" else None, state=states[record.state])

    def error_summary(self) -> list[str]:
        ranked = sorted(self.errors.items(), key=lambda item: -item[1])[:3]
        return [f"{count}x {message}" for message, count in ranked]


# -- sharing one study between workers --------------------------------------------------------------


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
            path = target.removeprefix("journal:") if not scheme else target.split("///", 1)[-1]
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


class _StaleTrials:
    """Optuna's heartbeat callback: retry a stale trial once, and remember it so its run can end FAILED."""

    def __init__(self) -> None:
        self._retry = RetryHeartbeatStaleTrialCallback(max_retry=1)
        self.failed: list[optuna.trial.FrozenTrial] = []

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        self._retry(study, trial)
        self.failed.append(trial)


STALE_TRIALS = _StaleTrials()


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


# -- reading sweeps (report.py formats these) -----------------------------------------------------------


@dataclass(frozen=True)
class SweepRow:
    name: str
    status: str
    counts: Counts
    target: int
    best_value: float | None
    created: str
    experiment: str
    parent_run_id: str | None
    metric: str
    direction: str
    experiment_id: str | None = None
    tracking_uri: str | None = None  # as the sweep stored it: redacted, maybe relative (sqlite:///mlflow.db)
    model_uri: str | None = None  # the parent's pyfunc model (runs:/<parent>/model), logged at the end
    model_trial: int | None = None  # whose model that is: stale unless it is the best trial's
    registered_model: str | None = None  # "NAME/VERSION" of the last `sweep run --register NAME`
    registered_trial: int | None = None  # whose model that version holds


def _published(attrs: dict[str, Any]) -> dict[str, Any]:
    """The SweepRow fields written at a sweep's end and for `sweep ui` (older sweeps lack them)."""
    return {key: attrs.get(f"{ATTR}{key}") for key in ("experiment_id", "tracking_uri", "model_uri", "model_trial",
                                                       "registered_model", "registered_trial")}


@dataclass(frozen=True)
class TrialRow:
    number: int
    state: str
    value: float | None
    params: dict[str, Any]
    metrics: dict[str, float]
    run_id: str | None
    error: str | None


def list_sweeps(storage_url: str | None) -> list[SweepRow]:
    """Every sweep in the storage, oldest first; none when the default journal file does not exist yet."""
    try:
        storage = open_storage(storage_url, create=False)
    except NotFoundError:
        return []
    rows = []
    for summary in optuna.get_all_study_summaries(storage, include_best_trial=False):
        attrs = summary.user_attrs
        if f"{ATTR}config" not in attrs:
            continue  # a study some other tool made
        study = optuna.load_study(study_name=summary.study_name, storage=storage)
        trials = _all_trials(study)
        counts = _count(trials)
        best = _best_row(trials, attrs)
        rows.append(SweepRow(summary.study_name, attrs.get(f"{ATTR}status", "unknown"), counts,
                             int(attrs.get(f"{ATTR}target", 0)), best.value if best else None,
                             attrs.get(f"{ATTR}created", ""), attrs.get(f"{ATTR}experiment", ""),
                             attrs.get(f"{ATTR}parent_run_id"), attrs.get(f"{ATTR}metric", "val_accuracy"),
                             attrs.get(f"{ATTR}direction", "maximize"), **_published(attrs)))
    return sorted(rows, key=lambda row: row.created)


def sweep_trials(storage_url: str | None, name: str | None) -> tuple[SweepRow, list[TrialRow], dict[str, Any]]:
    """One sweep (the latest when no name is given), its trials, and its stored config as a mapping."""
    storage = open_storage(storage_url, create=False)
    summary = _find_study(storage, name, resume=False)
    study = optuna.load_study(study_name=summary.study_name, storage=storage)
    attrs = study.user_attrs
    trials = _all_trials(study)
    rows = [_trial_row(trial) for trial in trials]
    best = _best_row(trials, attrs)
    sweep = SweepRow(study.study_name, attrs.get(f"{ATTR}status", "unknown"), _count(trials),
                     int(attrs.get(f"{ATTR}target", 0)), best.value if best else None, attrs.get(f"{ATTR}created", ""),
                     attrs.get(f"{ATTR}experiment", ""), attrs.get(f"{ATTR}parent_run_id"),
                     attrs.get(f"{ATTR}metric", "val_accuracy"), attrs.get(f"{ATTR}direction", "maximize"),
                     **_published(attrs))
    return sweep, rows, config_from_yaml(attrs[f"{ATTR}config"]).to_file_dict()


# -- helpers --------------------------------------------------------------------------------------------


def _find_study(storage: BaseStorage, name: str | None, *, resume: bool) -> optuna.study.StudySummary:
    summaries = [s for s in optuna.get_all_study_summaries(storage, include_best_trial=False)
                 if f"{ATTR}config" in s.user_attrs]
    if name is not None:
        for summary in summaries:
            if summary.study_name == name:
                return summary
        raise NotFoundError(f"no sweep named {name!r} in {_storage_hint(storage)}; `sweep ls` lists them")
    if resume:
        summaries = [s for s in summaries if s.user_attrs.get(f"{ATTR}status") != "finished"]
    if not summaries:
        what = "unfinished sweep" if resume else "sweep"
        raise NotFoundError(f"no {what} in {_storage_hint(storage)}; start one with `sweep run`")
    return max(summaries, key=lambda s: s.user_attrs.get(f"{ATTR}created", ""))


def _study_exists(storage: BaseStorage, name: str) -> bool:
    return any(s.study_name == name for s in optuna.get_all_study_summaries(storage, include_best_trial=False))


def _resumed_config(summary: optuna.study.StudySummary, given: SweepConfig, flags: frozenset[str]) -> SweepConfig:
    """The stored config wins on resume (same space, sampler, objective); only the target, timeout and
    where the stores are can change, and the target only when --trials is given."""
    stored = config_from_yaml(summary.user_attrs[f"{ATTR}config"])
    target = given.trials if "trials" in flags else int(summary.user_attrs.get(f"{ATTR}target", stored.trials))
    return stored.replace(name=summary.study_name, trials=target,
                          timeout=given.timeout if "timeout" in flags else None,
                          storage=given.storage, tracking_uri=given.tracking_uri)


def _open_study(storage: BaseStorage, config: SweepConfig, name: str, *, create: bool) -> optuna.Study:
    sampler, pruner = make_sampler(config), make_pruner(config)
    if create:
        return optuna.create_study(study_name=name, storage=storage, sampler=sampler, pruner=pruner,
                                   direction=config.direction)
    return optuna.load_study(study_name=name, storage=storage, sampler=sampler, pruner=pruner)


def _set_study_attrs(study: optuna.Study, config: SweepConfig, name: str, parent_run_id: str, experiment_id: str,
                     tracking_uri: str | None) -> None:
    attrs = study.user_attrs
    wanted = {"config": config.replace(name=name).to_yaml(), "parent_run_id": parent_run_id,
              "experiment": config.experiment, "experiment_id": experiment_id,
              "tracking_uri": redact_url(_display_uri(tracking_uri)), "metric": config.metric,
              "direction": config.direction, "target": config.trials, "status": "running"}
    if f"{ATTR}created" not in attrs:
        wanted["created"] = dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")
    for key, value in wanted.items():
        if attrs.get(f"{ATTR}{key}") != value:
            study.set_user_attr(f"{ATTR}{key}", value)


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


def _all_trials(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return study.get_trials(deepcopy=False)


def _count(trials: list[optuna.trial.FrozenTrial]) -> Counts:
    counts = Counts()
    for trial in trials:
        if trial.state in _STATE_NAMES:
            counts = counts.add(_STATE_NAMES[trial.state])
    return counts


_STATE_NAMES = {TrialState.COMPLETE: "COMPLETE", TrialState.PRUNED: "PRUNED", TrialState.FAIL: "FAIL"}


def _best_row(trials: list[optuna.trial.FrozenTrial], attrs: dict[str, Any]) -> TrialRow | None:
    metric, direction = attrs.get(f"{ATTR}metric", "val_accuracy"), attrs.get(f"{ATTR}direction", "maximize")
    complete = [t for t in trials if t.state == TrialState.COMPLETE and t.value is not None]
    if not complete:
        return None
    best = min(complete, key=lambda t: rank_key(t.value, t.user_attrs.get(f"{ATTR}metrics", {}), t.number,
                                                 metric=metric, direction=direction))
    return _trial_row(best)


def _trial_row(trial: optuna.trial.FrozenTrial) -> TrialRow:
    return TrialRow(trial.number, trial.state.name, trial.value if trial.state == TrialState.COMPLETE else None,
                    dict(trial.params), dict(trial.user_attrs.get(f"{ATTR}metrics", {})),
                    trial.user_attrs.get(f"{ATTR}run_id"), trial.user_attrs.get(f"{ATTR}error"))


def _record_of(trial: optuna.trial.FrozenTrial) -> TrialRecord:
    """A finished trial as the tracking process needs it to rebuild a missing child run."""
    state = _STATE_NAMES.get(trial.state, "FAIL")
    return TrialRecord(trial.number, state, dict(trial.params),  # type: ignore[arg-type]
                       trial.value if state == "COMPLETE" else None,
                       dict(trial.user_attrs.get(f"{ATTR}metrics", {})), {}, None,
                       trial.user_attrs.get(f"{ATTR}error"), None,
                       _ms(trial.datetime_start), _ms(trial.datetime_complete), trial.user_attrs.get(f"{ATTR}run_id"),
                       bool(trial.user_attrs.get(f"{ATTR}interrupted", False)))


def _load_split(config: SweepConfig) -> Split:
    corpus = load_corpus(config.data, text_column=config.text_column, label_column=config.label_column)
    return split(corpus, TrainConfig.from_mapping(config.fixed).seed)


def data_fingerprint(config: SweepConfig, data: Split) -> str:
    return ":".join(part.fingerprint() for part in (data.train, data.val, data.test))[:50]


def _parent_params(config: SweepConfig) -> dict[str, Any]:
    """What cannot change on resume (the stored config wins), so MLflow's immutable params fit it."""
    params: dict[str, Any] = {"metric": config.metric, "direction": config.direction, "sampler": config.sampler,
                              "sampler_seed": config.seed, "pruner": config.pruner, "data": config.data}
    params.update({f"fixed.{name}": value for name, value in config.fixed.items()})
    params.update({f"space.{name}": _describe(dimension) for name, dimension in config.space.items()})
    return params


def _describe(dimension: Any) -> str:
    from sweep.space import to_yaml_dict

    return ", ".join(f"{key}={value}" for key, value in to_yaml_dict(dimension).items())


def _new_name(storage: BaseStorage) -> str:
    base = "sweep-" + dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    taken = {s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)}
    name, suffix = base, 2
    while name in taken:
        name, suffix = f"{base}-{suffix}", suffix + 1
    return name


def _display_uri(tracking_uri: str | None) -> str:
    import os

    return tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or "sqlite:///mlflow.db"


def _storage_flag(storage: str | None) -> str:
    return "" if storage is None else f" --storage {redact_url(storage)}"


def _storage_hint(storage: BaseStorage) -> str:
    if isinstance(storage, JournalStorage):
        return "the journal storage"
    return "the storage"


def _now_ms() -> int:
    return int(time.time() * 1000)


def _ms(moment: dt.datetime | None) -> int:
    return int(moment.timestamp() * 1000) if moment is not None else 0


class StopSignal:
    """Ctrl-C and SIGTERM during a sweep.

    Until ``defer()``, a signal raises KeyboardInterrupt at once. After it, a signal only sets
    ``requested``: the trainer stops at its next epoch (TrialInterrupted) and the loop starts no new
    trial, so a stop never lands between Optuna's ask and tell or inside an MLflow write.
    """

    SIGNALS = ("SIGINT", "SIGTERM")

    def __init__(self) -> None:
        self.requested = False
        self._deferring = False
        self._previous: dict[int, Any] = {}

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # signal handlers can only be set from the main thread; the caller handles stops
        for name in self.SIGNALS:
            signum = getattr(signal, name)
            self._previous[signum] = signal.signal(signum, self._handle)

    def defer(self) -> None:
        self._deferring = True

    def restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def _handle(self, _signum: int, _frame: Any) -> None:
        if not self._deferring:
            raise KeyboardInterrupt
        self.requested = True


# -- the end of a sweep: plots and the best model on the parent run ---------------------------------------

PLOT_DPI = 80  # ~510x380 px per panel: readable in the MLflow UI, ~20-150 kB per PNG, quick to encode
# completed trials a plot needs to show anything: a comparison needs two; a history starts with one
PLOT_MIN_TRIALS = {"optimization_history": 1, "param_importances": 2, "parallel_coordinate": 2, "slice": 2}


@dataclass(frozen=True)
class StudyPlots:
    images: dict[str, bytes]  # file name (optimization_history.png, ...) -> PNG
    skipped: dict[str, str]  # plot name -> why it was not made
    seconds: float  # what making them cost, matplotlib's import included


def study_plots(study: optuna.Study) -> StudyPlots:
    """Optuna's optimization history, parameter importances, parallel coordinates and slice plots, as PNGs.

    A plot the trials cannot support yet is skipped with a reason, never an error: a sweep's result
    matters more than its pictures. matplotlib (~0.3 s to import) is loaded here only, at the end of a
    sweep. Importances come from PED-ANOVA: numpy only and milliseconds, where Optuna's default
    (fANOVA) fits a scikit-learn random forest (about a second with its import).
    """
    started = time.perf_counter()
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    skipped: dict[str, str] = {}
    for plot, needed in PLOT_MIN_TRIALS.items():
        if len(complete) < needed:
            skipped[plot] = f"needs {needed} completed trial{'s' if needed > 1 else ''}, the sweep has {len(complete)}"
    if "param_importances" not in skipped and not _params_vary(complete):
        skipped["param_importances"] = "every completed trial has the same settings"
    if len(skipped) == len(PLOT_MIN_TRIALS):
        return StudyPlots({}, skipped, time.perf_counter() - started)

    try:
        import matplotlib
    except ImportError:  # MLflow brings it, but mlflow-skinny does not
        reason = "matplotlib is not installed: pip install matplotlib"
        return StudyPlots({}, {plot: skipped.get(plot, reason) for plot in PLOT_MIN_TRIALS},
                          time.perf_counter() - started)

    import sys

    if "matplotlib.pyplot" not in sys.modules:  # switching a caller's backend later would close its figures
        matplotlib.use("Agg")  # files only: no display, no GUI toolkit
    import matplotlib.pyplot as plt

    plots, evaluator = _optuna_matplotlib()
    metric = str(study.user_attrs.get(f"{ATTR}metric", "Objective Value"))  # axis labels say what was optimized
    makers: dict[str, Callable[[optuna.Study], Any]] = {
        "optimization_history": lambda s: plots.plot_optimization_history(s, target_name=metric),
        "param_importances": lambda s: plots.plot_param_importances(s, evaluator=evaluator, target_name=metric),
        "parallel_coordinate": lambda s: plots.plot_parallel_coordinate(s, target_name=metric),
        "slice": lambda s: plots.plot_slice(s, target_name=metric),
    }
    images: dict[str, bytes] = {}
    for plot, make in makers.items():
        if plot in skipped:
            continue
        figure = None
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                axes = make(study)
            figure = axes.figure if hasattr(axes, "figure") else axes.flat[0].figure  # slice: an array of axes
            equal = [str(w.message) for w in caught if "importances will be equal" in str(w.message)]
            if equal:  # too few trials for PED-ANOVA's top quantile: every bar would be the same
                skipped[plot] = equal[0]
                continue
            images[f"{plot}.png"] = _png(figure)
        except Exception as error:  # a plot is never worth failing a sweep over
            skipped[plot] = f"{type(error).__name__}: {error}".splitlines()[0]
        finally:
            if figure is not None:
                plt.close(figure)
    return StudyPlots(images, skipped, time.perf_counter() - started)


def _optuna_matplotlib() -> tuple[Any, Any]:
    """optuna.visualization.matplotlib and a PED-ANOVA evaluator, imported without scikit-learn.

    optuna.importance imports scikit-learn (and with it scipy.stats) when it is installed, as MLflow
    makes it, for its fANOVA and mean-decrease-impurity evaluators: ~0.85 s of the ~1.5 s the plots
    would cost, for evaluators never used here. While optuna.importance loads, `import sklearn` fails
    fast, which Optuna takes as "not installed"; scikit-learn stays importable afterwards. The price:
    in this process, Optuna's fANOVA evaluator would report scikit-learn missing (nothing here uses it).
    """
    import sys

    hidden = "optuna.importance" not in sys.modules and "sklearn" not in sys.modules
    if hidden:
        sys.modules["sklearn"] = None  # type: ignore[assignment]  # Python's "this import fails" marker
    try:
        from optuna.importance import PedAnovaImportanceEvaluator  # optuna.importance is lazy: load it now
        from optuna.visualization import matplotlib as plots
    finally:
        if hidden:
            del sys.modules["sklearn"]
    return plots, PedAnovaImportanceEvaluator()


def _params_vary(trials: list[optuna.trial.FrozenTrial]) -> bool:
    """Whether some tuned setting took two values: importances need something to attribute."""
    names = {name for trial in trials for name in trial.params}
    return any(len({repr(trial.params.get(name)) for trial in trials}) > 1 for name in names)


def _png(figure: Any) -> bytes:
    import io

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=PLOT_DPI, bbox_inches="tight")
    return buffer.getvalue()


def _publish_results(study: optuna.Study, recorder: Recorder, best: BestTrial | None, register: str | None) -> None:
    """Plots and the best model for the parent run: once, at the end of an invocation, never per trial.

    The model goes first: the tracking process logs it (~0.5 s) while this process draws the plots.
    """
    recorder.publish_model(best, register)
    try:
        made = study_plots(study)
    except Exception as error:  # pictures are never worth a sweep's result: note it, carry on
        reason = f"{type(error).__name__}: {error}".splitlines()[0]
        made = StudyPlots({}, dict.fromkeys(PLOT_MIN_TRIALS, reason), 0.0)
    recorder.plots(made.images, made.skipped)


def _remember_model(study: optuna.Study, report: TrackingReport) -> None:
    """The pyfunc model's URI, trial and registered version in the study, for `sweep best` (no MLflow there)."""
    attrs = study.user_attrs
    model = report.model
    registered_trial = model.trial if model.registered is not None else None
    for key, value in (("model_uri", model.uri), ("model_trial", model.trial), ("registered_model", model.registered),
                       ("registered_trial", registered_trial)):
        if value is not None and attrs.get(f"{ATTR}{key}") != value:
            study.set_user_attr(f"{ATTR}{key}", value)
