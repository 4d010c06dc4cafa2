"""Running a sweep: `sweep run` creates or resumes one, `sweep worker` joins one; both end it the same way."""

from __future__ import annotations

import time
from contextlib import ExitStack

from sweep.config import SweepConfig, check_sampler_packages
from sweep.engine import composition
from sweep.engine.ending import end_sweep
from sweep.engine.jobs import error_summary, start_held, supervise
from sweep.engine.loop import StopSignal, TrialLoop
from sweep.engine.parts import Parts
from sweep.engine.progress import SweepInterrupted, SweepListener, SweepStart, SweepSummary, WorkersFailed
from sweep.engine.tracking_start import TrackingStart
from sweep.errors import AllTrialsFailedError, NotFoundError, StorageUnavailableError
from sweep.executors import check_executor
from sweep.locations import StorageLocation, TrackingLocation, sweep_folder
from sweep.records import SweepIdentity, TrackingReport
from sweep.states import LoopEnd, SweepStatus, sweep_end
from sweep.study.census import Census
from sweep.study.opening import ExistingSweep, after_its_publisher, open_started_sweep, open_sweep
from sweep.study.sharing import TrialGate
from sweep.study.starting import claim_name, parent_params, resumed_config
from sweep.study.stopping import Stopped, rule_that_holds
from sweep.study.storage import grid_size, open_storage, remove_new_journal
from sweep.study.sweep_study import SweepStudy
from sweep.study.warm_start import PriorTrials, read_prior
from sweep.tracking import Recorder
from sweep.tracking.operations import AttachParent, Connect, OpenParent, PreparePublishing, Reconcile
from sweep.trainers.base import Trainer
from sweep.trainers.workdirs import tidy_workdirs
from sweep.urls import redact_text


def run_sweep(config: SweepConfig, *, resume: bool, listener: SweepListener, command_line: str = "",
              environment: dict[str, str] | None = None, flags: frozenset[str] = frozenset(),
              register: str | None = None, parts: Parts | None = None, publish_later: bool = False) -> SweepSummary:
    """Create (or resume) the sweep's study and parent run, then run trials until the target is met.

    On resume the stored config wins; of ``flags`` (the settings the user gave explicitly), only
    trials, timeout, where the stores are and where the trials run (``config.executor``: this process,
    --jobs worker processes, Ray tasks) apply to the resumed sweep. At the end the parent run
    gets the plots and the best model as a pyfunc model, registered as ``register`` when given.

    Order matters for "nothing half-written": the config is already valid, the data is loaded and
    split before any store is touched, and MLflow is reached before the study is created, except by a new
    sweep on a SQLite file of this host, whose first trials run while MLflow starts: a start MLflow refuses
    then removes the study (tracking_start.py).
    ``parts``: the tracking transport, trainer and executor (default_parts(): what `sweep` uses).
    ``publish_later``: return once the study is final, leaving the plots, the best model and the parent run's end
    to a background publisher (ending.py); not with ``register``, whose version the summary names.
    """
    parts = parts or composition.default_parts()
    started = time.perf_counter()
    location = StorageLocation.parse(config.storage)
    if not resume:  # refused before the tracking process starts; a resumed sweep's stores are known later
        check_executor(config.executor, config.resources, location, TrackingLocation.resolve(config.tracking_uri))
    new_journal = location.journal_path
    if new_journal is not None and new_journal.exists():
        new_journal = None  # not ours to remove
    stop = StopSignal(listener.stopping)
    stop.install()  # until the study exists, Ctrl-C stops at once: nothing is written yet
    try:
        recorder = Recorder(parts.transport())  # start importing mlflow in the other process now; it touches no store
        try:
            with ExitStack() as cleanup:  # the executor (a Ray connection) is let go of however the sweep ends
                return _run(config, location, recorder, started, cleanup, parts, stop, resume=resume,
                            listener=listener, command_line=command_line, environment=environment, flags=flags,
                            register=register, publish_later=publish_later and register is None)
        except BaseException:
            recorder.terminate()
            raise
    except BaseException:
        if new_journal is not None:  # failed before the study was linked to MLflow: leave no store behind
            remove_new_journal(new_journal)
        raise
    finally:
        stop.restore()


def _run(config: SweepConfig, location: StorageLocation, recorder: Recorder, started: float, cleanup: ExitStack,
         parts: Parts, stop: StopSignal, *, resume: bool, listener: SweepListener, command_line: str,
         environment: dict[str, str] | None, flags: frozenset[str], register: str | None,
         publish_later: bool) -> SweepSummary:
    # -- where the sweep is: an existing one (resume) or a new name in the storage --
    prior: PriorTrials | None = None  # a new sweep's warm_start trials (a resumed sweep's sampler reads its own)
    if resume:
        # without --name: the latest unfinished sweep, or with --trials the latest one, finished or not
        existing = open_sweep(location, config.name, unfinished=config.name is None and "trials" not in flags,
                              heartbeat=config.heartbeat)
        existing = after_its_publisher(existing, listener.waiting_for_publisher, heartbeat=config.heartbeat)
        storage, stored_tracking = existing.storage, existing.attrs.stored_tracking
        config = resumed_config(existing, config, flags)
        check_sampler_packages(config.sampler)
        config, grid_note = _capped_at_grid(config)
        complete = _complete_already(existing, config, grid_note, started)
        if complete is not None:
            recorder.terminate()
            return complete
        tracking = TrackingLocation.resolve(config.tracking_uri, stored=stored_tracking)
        trainer = parts.trainer(config, tracking)
        cleanup.callback(trainer.close)
        executor = cleanup.enter_context(parts.executor(config.executor, config.resources, location, tracking))
    else:
        existing, stored_tracking = None, None
        check_sampler_packages(config.sampler)
        config, grid_note = _capped_at_grid(config)
        tracking = TrackingLocation.resolve(config.tracking_uri, stored=stored_tracking)
        trainer = parts.trainer(config, tracking)  # bad data or code fails here, before the storage file exists
        cleanup.callback(trainer.close)  # however the sweep ends: a command's watchdog, MLflow's autologging
        # Ray connected (or refused: stores its nodes cannot reach, GPUs short) before any store is written
        executor = cleanup.enter_context(parts.executor(config.executor, config.resources, location, tracking))
        storage = open_storage(location, heartbeat=config.heartbeat)
        prior = read_prior(storage, config, strict=True)  # a missing or unfitting warm_start: refused here
        config = config.replace(name=claim_name(storage, config.name))
    name = config.name
    assert name is not None
    listener.sweep_opening(name, config.trials, existing is not None)
    held = None
    if executor is not None:  # started now, they import what they need while the study and parent run are created
        held = start_held(executor, name, location, tracking, config.trials)
        cleanup.callback(held.pool.close)  # however the start ends: unreleased, they end without a trial

    try:
        identity = SweepIdentity(name, config.experiment, tracking.explicit, config.run_name, dict(config.fixed))
        # a new sweep whose trials run here, on a SQLite file of this host, starts them while the tracking process
        # starts: a thread links the parent run once MLflow answers (tracking_start.py). A tracking server or a
        # bucket is reached first: a wrong password or a missing bucket is named before any trial
        early = held is None and existing is None and tracking.scheme == "sqlite"
        experiment_id = None
        if early:
            recorder.ask(Connect(identity))
        else:
            experiment_id = recorder.connect(identity)
        # -- from here a signal only asks the loop to stop at the next epoch or trial boundary. The study
        # records the sweep and a token before the parent run exists, and the parent carries the token:
        # killed before the link is written, the next run, --resume or sync finds that parent again --
        stop.defer()
        study = (SweepStudy.load(existing, config) if existing is not None
                 else SweepStudy.create(storage, config, name, prior))
        try:
            if existing is not None:
                study.fail_orphaned_trials()
            token = study.record_sweep(experiment_id, tracking)
            study.queue_start_with()  # once the config is stored: a start killed before leaves no trial behind
            open_parent = OpenParent(
                existing.attrs.parent_run_id if existing is not None else None, token=token,
                params=parent_params(config), config_yaml=config.to_yaml(),
                tags={"sweep.status": SweepStatus.RUNNING.value, "sweep.target": str(config.trials),
                      "sweep.storage": str(location), "sweep.command": redact_text(command_line),
                      **warm_start_tags(prior), **(environment or {}), **trainer.provenance()})
            parent_run_id: str | None = None
            if early:
                recorder.ask(open_parent)
            else:
                parent_run_id, _ = recorder.call(open_parent)
                study.link_parent(parent_run_id)
        except BaseException:
            if existing is None:
                study.discard()  # nothing half-written: the name stays free
            raise
        if trainer.model_publishing().pyfunc is not None:  # the end logs one: its set-up loads while trials run
            recorder.send(PreparePublishing())
        if existing is not None:
            reconciled = recorder.call(Reconcile(study.records()))
            study.relink_runs(reconciled.run_ids)  # runs it rebuilt: the study must name them
        gate = TrialGate(location, storage, name)
        ran_before = finished_before(study, config)
        listener.sweep_started(SweepStart(name, config.experiment, parent_run_id, str(location), str(tracking),
                                          config.trials, study.census().finished.finished, existing is not None))
        # -- the trials: in this process, or in workers (--jobs processes, Ray tasks) --
        if held is None:
            tracking_start = TrackingStart(study, recorder) if early else None
            loop = TrialLoop(study, config, trainer, recorder, listener, started, stop, gate, sweep_folder(name),
                             tracking_start=tracking_start)
            try:
                status = loop.run()
                if tracking_start is not None:
                    tracking_start.settle(wait=True)  # the parent and every run id, before the end reads the study
                    parent_run_id = tracking_start.parent_run_id
                    if status is LoopEnd.FINISHED and stop.requested:  # a Ctrl-C while MLflow was still starting
                        status = LoopEnd.INTERRUPTED
            except BaseException:
                if tracking_start is not None and tracking_start.parent_run_id is None:
                    study.discard()  # MLflow refused the start (or it was cut short): nothing half-written
                raise
            trainer_seconds, trials_run, errors = loop.trainer_seconds, loop.trials_run, loop.error_summary()
            failures, jobs_note = [], None
        else:
            status, trials_run, failures, jobs_note = supervise(study, config, held, listener, stop, started,
                                                                recorder)
            trainer_seconds, errors = None, error_summary(study)
        # -- the end: the final best, the study's state, plots and model, the parent run's status --
        final = study.census()
        stopped = stopped_early(final, config, status)
        ending = end_sweep(study, config, recorder, final, sweep_end(status, final.finished),
                           trainer.model_publishing(), register, listener, stopped.rule if stopped else None,
                           publish_later=location if publish_later else None)
        _tidy_workdirs(study, config, final)
        front_size = len(study.front()) if config.multi_objective else None
        mlflow_time = study.mlflow_time(ran_before) if ran_before is not None else None
        gate.close()
    except StorageUnavailableError as lost:  # the storage went away mid-sweep: say how to continue
        raise lost.resumable(f"sweep run --resume --name {name}{location.flag}") from None
    finally:
        stop.restore()
    note = (stopped.reason if stopped else None) or grid_note or jobs_note
    summary = SweepSummary(name, config.experiment, parent_run_id, status, final.finished, final.best,
                           time.perf_counter() - started, trainer_seconds, trials_run, ending.report, str(location),
                           str(tracking), note if status is LoopEnd.FINISHED else None,
                           front_size=front_size, stopped_by=stopped.rule if stopped else None,
                           mlflow_time=mlflow_time, models_autologged=config.trainer.logs_models,
                           publisher=ending.publisher)
    if status is LoopEnd.INTERRUPTED:
        raise SweepInterrupted(summary, location.flag)
    if status is LoopEnd.FAILING:
        raise AllTrialsFailedError(failing_message(final.finished.failed, errors))
    if status is LoopEnd.STOPPED:
        raise WorkersFailed(summary, failures, location.flag)
    if final.finished.complete == 0 and final.finished.failed:
        raise AllTrialsFailedError(all_failed_message(final.finished.failed, errors))
    return summary


def finished_before(study: SweepStudy, config: SweepConfig) -> set[int] | None:
    """The trials finished before this invocation ran any, when its trainer clocks its code's time inside MLflow
    (the summary sums the others'); None for a trainer that does not, so its sweep reads no trial for it."""
    if config.trainer.function is None or config.trainer.mlflow == "off":
        return None
    return set(study.finished_numbers())


def warm_start_tags(prior: PriorTrials | None) -> dict[str, str]:
    """What the parent run says of the sweep its sampler started from (warm_start): its name and the trials
    handed over, and those skipped as outside this sweep's space."""
    if prior is None:
        return {}
    return {"sweep.warm_start": prior.source, "sweep.warm_start_trials": str(len(prior.trials)),
            **({"sweep.warm_start_skipped": str(prior.skipped)} if prior.skipped else {})}


def stopped_early(final: Census, config: SweepConfig, status: LoopEnd) -> Stopped | None:
    """The rule of the config that ended a finished sweep before its target (the stored one, `sweep set`'s),
    else None."""
    if status is not LoopEnd.FINISHED or final.counted >= (final.target or config.trials):
        return None
    return rule_that_holds(final, config)


def failing_message(failed: int, errors: list[tuple[str, int]]) -> str:
    """Why a sweep whose every trial failed the same way stopped early (``errors``: (message, count), most first)."""
    error = errors[0][0] if errors else "unknown error"
    if failed == 1:  # the trainer's code conflicts with the sweep (UnusableTrainer): one trial says so
        return f"trial failed with: {error}; stopping: every trial would fail the same way"
    return f"all {failed} trials failed with: {error}; stopping early"


def all_failed_message(failed: int, errors: list[tuple[str, int]]) -> str:
    """Why a sweep whose every trial failed ended: its most frequent errors, counted."""
    return f"all {failed} trials failed: {'; '.join(f'{count}x {message}' for message, count in errors)}"


def _capped_at_grid(config: SweepConfig) -> tuple[SweepConfig, str | None]:
    """The grid sampler has a fixed number of points: the target is capped there, and the end says so."""
    if config.sampler != "grid":
        return config, None
    size = grid_size(config)
    if config.trials < size:
        return config, None
    return config.replace(trials=size), f"the grid has {size} points: all tried"


def _complete_already(existing: ExistingSweep, config: SweepConfig, grid_note: str | None,
                      started: float) -> SweepSummary | None:
    """A finished sweep resumed without a target above its count, or one a stop rule of its config still holds
    for: nothing to run, and no store is written."""
    if existing.attrs.status != SweepStatus.FINISHED:
        return None
    census = SweepStudy.read(existing, config).census()
    if census.running or census.waiting:
        return None
    stopped = rule_that_holds(census, config) if census.counted < config.trials else None
    if census.counted < config.trials and stopped is None:
        return None
    if stopped is not None:
        note = f"{stopped.reason}: the rule still holds, so no trial starts"
    else:
        note = grid_note or f"sweep {existing.name} is complete; give --trials above {census.counted} to extend it"
    return SweepSummary(existing.name, config.experiment, existing.attrs.parent_run_id or "", LoopEnd.COMPLETE,
                        census.finished, census.best, time.perf_counter() - started, None, 0, TrackingReport(),
                        str(existing.location), existing.attrs.tracking_uri or "", note,
                        stopped_by=stopped.rule if stopped else None)


def _tidy_workdirs(study: SweepStudy, config: SweepConfig, final: Census) -> None:
    """A command's trials: the best trial's working folder is kept, the other finished trials' removed (their
    logs are artifacts of their runs by now: the tracking process has closed), unless keep_workdirs."""
    command = config.trainer.command
    if command is None or command.keep_workdirs or config.name is None:
        return
    tidy_workdirs(sweep_folder(config.name), keep=final.best.number if final.best is not None else None,
                  finished=study.finished_numbers())


def run_worker(name: str, *, storage_url: str | None, tracking_uri: str | None, trials: int | None,
               listener: SweepListener, finalize: bool = True, by_hand: bool = True,
               parts: Parts | None = None) -> SweepSummary:
    """Join an existing sweep: same study, same parent run, child runs under it.

    The worker runs trials until the study holds its target (``trials``, else the sweep's stored
    target) and the other workers' last trials have ended. With ``finalize`` the worker that sees
    the end writes the final best and ends the parent run; several doing it is harmless.
    A worker runs its trials in its own process: of ``parts``, the tracking transport and trainer are used.
    ``by_hand``: started by a user, not by `sweep run --jobs` or a Ray task (see composition.worker_transport).
    """
    parts = parts or composition.default_parts()
    started = time.perf_counter()
    location = StorageLocation.parse(storage_url)
    stop = StopSignal(listener.stopping)
    stop.install()  # before the tracking process starts: a Ctrl-C held during its start is delivered to this
    trainer: Trainer | None = None
    recorder: Recorder | None = None
    try:
        recorder = Recorder(parts.worker_transport(name, location, by_hand) if parts.worker_transport is not None
                            else parts.transport())
        # with the sweep's own heartbeat, the same for every worker; one being started, once its parent run exists
        sweep = open_started_sweep(location, name)
        config = sweep.config.replace(storage=storage_url, tracking_uri=tracking_uri,
                                      trials=trials if trials is not None else sweep.attrs.target)
        check_sampler_packages(config.sampler)
        config, _ = _capped_at_grid(config)  # past its last point the grid would only repeat itself
        tracking = TrackingLocation.resolve(tracking_uri, stored=sweep.attrs.stored_tracking)
        trainer = parts.trainer(config, tracking)
        listener.sweep_opening(name, config.trials, True)
        recorder.connect(SweepIdentity(name, config.experiment, tracking.explicit,
                                       config.run_name, dict(config.fixed)))
        parent_run_id = sweep.attrs.parent_run_id
        if parent_run_id is None:
            raise NotFoundError(f"sweep {name!r} has no parent run yet (its start was cut short); "
                                f"`sweep run --resume --name {name}` finishes starting it")
        recorder.call(AttachParent(parent_run_id))
        stop.defer()
        study = SweepStudy.load(sweep, config)
        gate = TrialGate(location, sweep.storage, name)
        ran_before = finished_before(study, config)
        listener.sweep_started(SweepStart(name, config.experiment, parent_run_id, str(location), str(tracking),
                                          config.trials, study.census().finished.finished, True))
        # a worker given a target of its own keeps it; one given the sweep's follows `sweep set`
        loop = TrialLoop(study, config, trainer, recorder, listener, started, stop, gate, sweep_folder(name),
                         own_target=trials is not None and trials != sweep.attrs.target)
        status = loop.run()
        final = study.census()
        stopped = stopped_early(final, config, status)
        if finalize and status is LoopEnd.FINISHED:
            report = end_sweep(study, config, recorder, final, sweep_end(status, final.finished),
                               trainer.model_publishing(), None, listener, stopped.rule if stopped else None).report
            _tidy_workdirs(study, config, final)
        else:
            report = recorder.close(None, final.finished)
        mlflow_time = study.mlflow_time(ran_before, worker=loop.worker) if ran_before is not None else None
        gate.close()
    except BaseException as error:
        if recorder is not None:
            recorder.terminate()
        if isinstance(error, StorageUnavailableError):  # the storage went away mid-sweep: say how to continue
            raise error.resumable(f"sweep worker {name}{location.flag}") from None
        raise
    finally:
        stop.restore()
        if trainer is not None:
            trainer.close()  # a command's watchdog, MLflow's autologging: however the worker ends
    summary = SweepSummary(name, config.experiment, parent_run_id, status, final.finished, final.best,
                           time.perf_counter() - started, loop.trainer_seconds, loop.trials_run, report,
                           str(location), str(tracking), stopped.reason if stopped else None,
                           stopped_by=stopped.rule if stopped else None, mlflow_time=mlflow_time,
                           models_autologged=config.trainer.logs_models)
    if status is LoopEnd.INTERRUPTED:
        raise SweepInterrupted(summary, location.flag)
    if status is LoopEnd.FAILING:
        raise AllTrialsFailedError(failing_message(final.finished.failed, loop.error_summary()))
    return summary
