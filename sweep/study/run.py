"""Running a sweep: create or resume it, the trial loop, `sweep worker`, and --jobs worker processes."""

from __future__ import annotations

import datetime as dt
import os
import signal
import threading
import time
import traceback
from typing import Any

import optuna
from optuna.storages import BaseStorage
from optuna.study._frozen import FrozenStudy  # what storage.get_all_studies() returns
from optuna.trial import TrialState

from sweep.config import SweepConfig, config_from_yaml
from sweep.errors import AllTrialsFailedError, SweepConfigError
from sweep.objective import TrialInterrupted, TrialPruned, TrialRun, run_trial
from sweep.recorder import Recorder
from sweep.records import BestTrial, Counts, SweepIdentity, TrialRecord
from sweep.study.plots import _publish_results, _remember_model
from sweep.study.progress import SweepInterrupted, SweepListener, SweepStart, SweepSummary, TrialUpdate
from sweep.study.reading import _all_trials, _find_study, _study_exists
from sweep.study.sharing import (
    _STATE_NAMES,
    TrialGate,
    _fail_orphaned_trials,
    _record_of,
    fail_dead_trials,
    heartbeat,
    take_census,
    worker_id,
)
from sweep.study.storage import (
    ATTR,
    HEARTBEAT_SECONDS,
    default_storage,
    journal_path,
    make_pruner,
    make_sampler,
    open_storage,
    storage_label,
)
from sweep.urls import redact_text, redact_url
from sweep.workers import spawn_workers
from trainer import Split, TrainConfig, load_corpus, split

WAIT_SECONDS = 0.5  # how often a worker with no trial left to start looks at the others' last trials


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
    new_journal = journal_path(config.storage)
    if new_journal is not None and new_journal.exists():
        new_journal = None  # not ours to remove
    recorder = Recorder()  # start importing mlflow in the other process now; it touches no store yet
    try:
        return _run(config, recorder, started, resume=resume, listener=listener, command_line=command_line,
                    environment=environment, flags=flags, jobs=jobs, register=register)
    except BaseException:
        recorder.terminate()
        if new_journal is not None and new_journal.exists() and new_journal.stat().st_size == 0:
            new_journal.unlink()  # failed before any study was written: leave no empty store behind
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
    tracking_uri = _resumed_tracking_uri(config.tracking_uri, study_row.user_attrs if study_row else {})
    identity = SweepIdentity(name, config.experiment, tracking_uri)

    stop = StopSignal()
    try:
        stop.install()  # while MLflow is being reached, Ctrl-C stops at once: nothing exists yet
        experiment_id = recorder.connect(identity)
        # from here a signal only asks the loop to stop at the next epoch or trial boundary: the study,
        # the parent run and the study's link to it are made together, or a resume could not find them
        stop.defer()
        study = _open_study(storage, config, name, create=study_row is None)
        attrs = study.user_attrs
        if study_row is not None:
            _fail_orphaned_trials(study)
        parent_run_id = recorder.open_parent(
            attrs.get(f"{ATTR}parent_run_id"),
            params=_parent_params(config), config_yaml=config.replace(name=name).to_yaml(),
            tags={"sweep.status": "running", "sweep.target": str(config.trials),
                  "sweep.storage": storage_label(config.storage), "sweep.command": redact_text(command_line),
                  **(environment or {}), "data.fingerprint": data_fingerprint(data)})
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
        uri = _resumed_tracking_uri(tracking_uri, attrs)
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


def _resumed_tracking_uri(given: str | None, attrs: dict[str, Any]) -> str | None:
    """The URI given, else the sweep's stored one unless it lost its password to redaction (then
    MLFLOW_TRACKING_URI or MLflow's default must say where the runs are)."""
    stored = attrs.get(f"{ATTR}tracking_uri")
    return given or (stored if stored and "***" not in stored else None)


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
        # the record goes to MLflow before the study: killed in between, the trial stays RUNNING and a
        # resume fails it and its run; the other order could leave a told trial with an unlogged run
        self.recorder.finish_trial(record)
        self._tell(trial, record)
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


def _resumed_config(summary: FrozenStudy, given: SweepConfig, flags: frozenset[str]) -> SweepConfig:
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


def _load_split(config: SweepConfig) -> Split:
    corpus = load_corpus(config.data, text_column=config.text_column, label_column=config.label_column)
    return split(corpus, TrainConfig.from_mapping(config.fixed).seed)


def data_fingerprint(data: Split) -> str:
    """Content hashes of the train, validation and test parts: the same data, split the same way."""
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
    taken = {s.study_name for s in storage.get_all_studies()}
    name, suffix = base, 2
    while name in taken:
        name, suffix = f"{base}-{suffix}", suffix + 1
    return name


def _display_uri(tracking_uri: str | None) -> str:

    return tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or "sqlite:///mlflow.db"


def _storage_flag(storage: str | None) -> str:
    return "" if storage is None else f" --storage {redact_url(storage)}"


def _now_ms() -> int:
    return int(time.time() * 1000)


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
