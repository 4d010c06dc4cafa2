"""The trial loop of one process (ask, train, tell, hand the record on) and how a stop reaches it."""

from __future__ import annotations

import functools
import math
import os
import re
import signal
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sweep.config import SweepConfig
from sweep.engine.progress import SweepListener, TrialUpdate
from sweep.engine.tracking_start import TrackingStart
from sweep.errors import StorageUnavailableError, TrackingError
from sweep.records import BestTrial, Counts, MlflowTime, TrialRecord, now_ms
from sweep.states import LoopEnd, TrialState
from sweep.study.census import Census, Tally
from sweep.study.repeats import FinishedSettings
from sweep.study.sharing import TrialGate, heartbeat, worker_id
from sweep.study.stopping import may_start, trial_target
from sweep.study.sweep_study import OPTUNA_PRUNED, SweepStudy
from sweep.tracking import Recorder
from sweep.tracking.operations import FinishTrial, Reconcile, RecordBest, RecordCounts, StartTrial
from sweep.trainers.base import Trainer, TrialOutcome, UnusableTrainer
from sweep.trainers.function import load_constraints_function
from sweep.trial import OptunaTrial, TrialInterrupted, TrialPruned, TrialRun
from sweep.urls import hide_secrets, secrets_in

FAIL_FAST_TRIALS = 5  # this many trials failing with one same error, and none ever succeeded: the sweep stops
WAIT_SECONDS = 0.5  # how often `sweep run` looks at its workers' progress, at most
# how often a worker with no trial left to start looks at the others' last trials: the sweep ends no sooner
LAST_TRIALS_SECONDS = 0.1
# how often a loop looks for the trials of dead workers (a storage read of the running trials): a trial's worker
# is found dead a heartbeat grace period after it stopped, or at once on this host, and this much later at most;
# a loop of short trials then does not read the storage once more per trial for it
DEAD_CHECK_SECONDS = 1.0
INTERRUPTED = "interrupted (Ctrl-C or SIGTERM)"
NO_TRIALS = Census(0, 0, 0, Counts(), None)  # a loop's census before its first look


class StopSignal:
    """Ctrl-C and SIGTERM during a sweep.

    Until ``defer()``, a signal raises KeyboardInterrupt at once. After it, a signal only sets
    ``requested`` (and calls ``on_request`` the first time): the trainer stops at its next epoch or
    report (TrialInterrupted) and the loop starts no new trial, so a stop never lands between Optuna's
    ask and tell or inside an MLflow write. A second signal while the trainer runs (``in_trainer``)
    raises KeyboardInterrupt there: a user's fit that never reports can still be stopped.

    Every signal is remembered, including one that raised: a library can swallow the KeyboardInterrupt
    (Cython module initialisation clears errors, e.g. while numpy.random is imported), and ``defer()``
    then raises it again, so a Ctrl-C during start-up is never lost.
    """

    SIGNALS = ("SIGINT", "SIGTERM")

    def __init__(self, on_request: Callable[[], None] | None = None) -> None:
        self.requested = False
        self.in_trainer = False
        self._on_request = on_request
        self._deferring = False
        self._previous: dict[int, Any] = {}

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # signal handlers can only be set from the main thread; the caller handles stops
        for name in self.SIGNALS:
            signum = getattr(signal, name)
            self._previous[signum] = signal.signal(signum, self._handle)

    def defer(self) -> None:
        """From here a signal asks for a stop; one that came before and was swallowed stops the start now."""
        if self.requested:
            raise KeyboardInterrupt
        self._deferring = True

    def restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def _handle(self, _signum: int, _frame: Any) -> None:
        first = not self.requested
        self.requested = True
        if not self._deferring or (not first and self.in_trainer):
            raise KeyboardInterrupt
        if first and self._on_request is not None:
            self._on_request()


class TrialLoop:
    """The trial loop of one process: ask, train, tell, hand the record to the tracking process.

    Several loops (``--jobs``, ``sweep worker`` on other machines) can share one study: the trial
    budget is counted in the storage under a lock (TrialGate), so exactly the target number of
    trials is started, and a loop waits for the others' last trials before it reports the end.
    The timeout counts from ``run()``: the stores are ready then, and the first trial can start.

    The target is the one the study stores, read at every look (`sweep set NAME --trials M` changes it),
    unless ``own_target``: a `sweep worker --trials N` keeps its N. The config's stop rules (stopping.py)
    are decided at every look too, from the study, so every loop sharing it decides alike.
    """

    def __init__(self, study: SweepStudy, config: SweepConfig, trainer: Trainer, recorder: Recorder,
                 listener: SweepListener, started: float, stop: StopSignal, gate: TrialGate, workdirs: Path,
                 *, own_target: bool = False, tracking_start: TrackingStart | None = None) -> None:
        self.study, self.config, self.trainer, self.recorder = study, config, trainer, recorder
        self.tracking_start = tracking_start  # a new sweep's trials start before MLflow has answered
        self.listener, self.workdirs, self.own_target = listener, workdirs, own_target
        self.started, self.stop, self.gate = started, stop, gate
        # a storage proxy decides the starts, until it says it does not; the loop then keeps no tally of its own (it
        # would read every trial of the study through the proxy at start-up, for a census the proxy's replies bring)
        self.served = study.starts_can_be_served and gate.reaches_proxy
        self._tally = None if self.served else study.tally()  # reads every trial once; each look after, what changed
        self.census = self._tally.census() if self._tally is not None else NO_TRIALS  # until the first start
        self.trainer_seconds = 0.0
        self.trials_run = 0
        self.dead_check_due = 0.0  # time.monotonic() of the next look for dead workers' trials: the first at once
        self.errors: dict[str, int] = {}
        self.unusable = False  # a trial found the trainer's code at odds with the sweep (UnusableTrainer)
        self.worker = worker_id()
        self.secrets = secrets_in(os.environ)  # hidden in every error and traceback a trial leaves
        # repeats: reuse answers a proposal of a complete trial's settings with that trial's result
        self.finished_settings = FinishedSettings(config.fixed) if config.repeats == "reuse" else None
        reference = config.constraints.function
        self.constraints_function = load_constraints_function(reference) if reference is not None else None
        self._note_finished()

    @property
    def tally(self) -> Tally:
        """The loop's census of the study for the gate's way, read in full at its first use."""
        if self._tally is None:
            self._tally = self.study.tally()
        return self._tally

    @property
    def target(self) -> int:
        """The trials the study should hold: the stored target as of the last look, else the config's."""
        return trial_target(self.census, self.config, own_target=self.own_target)

    @property
    def counts(self) -> Counts:
        return self.census.finished

    @property
    def best(self) -> BestTrial | None:
        return self.census.best

    def run(self) -> LoopEnd:
        """Trials until the target is met (FINISHED), a stop (INTERRUPTED), the timeout (TIMEOUT), or every
        trial failing with the same error (FAILING: a missing package, unreadable data)."""
        try:
            return self._run()
        finally:  # the last trial's tell, held back for a start that does not come (SweepStudy.tell)
            self.study.write_held_tell()

    def _run(self) -> LoopEnd:
        deadline = None if self.config.timeout is None else time.perf_counter() + self.config.timeout
        while True:
            if self.stop.requested:
                return LoopEnd.INTERRUPTED
            if deadline is not None and time.perf_counter() >= deadline:
                return LoopEnd.TIMEOUT
            look_for_dead = time.monotonic() >= self.dead_check_due
            if look_for_dead:
                self.dead_check_due = time.monotonic() + DEAD_CHECK_SECONDS
            trial = self._served_trial(look_for_dead) if self.served else None
            if not self.served:  # the gate's way: no proxy decides this sweep's starts
                if look_for_dead:
                    self._reconcile(self.study.fail_dead_trials(self.tally))
                trial = self._next_trial()
            if trial is not None:
                self.one_trial(trial)
                if self.unusable or self.failing():
                    return LoopEnd.FAILING
            elif self.census.running == 0:
                return LoopEnd.FINISHED
            else:
                time.sleep(LAST_TRIALS_SECONDS)  # others run the last trials; theirs may still fail and retry

    def mlflow_ready(self) -> None:
        """Before this thread waits for a reply of the tracking process: a new sweep's parent run is linked first
        (until then only the linking thread reads replies; tracking_start.py)."""
        if self.tracking_start is not None:
            self.tracking_start.ready()

    def _reconcile(self, dead: list[TrialRecord]) -> None:
        for record in dead:
            self.mlflow_ready()
            self.recorder.call(Reconcile([record]))  # its run ends FAILED, like the trial

    def _served_trial(self, look_for_dead: bool) -> OptunaTrial | None:
        """The next trial as the storage proxy decides it (served.py); None, and ``served`` off, where it does not
        decide starts."""
        start = self.study.start_served(self.gate, worker=self.worker, own_target=self.own_target,
                                        look_for_dead=look_for_dead)
        if start is None:
            self.served = False
            return None
        self.census = start.census
        self._reconcile(start.dead)
        return start.trial

    def _next_trial(self) -> OptunaTrial | None:
        with self.gate.held(while_waiting=self.tally.catch_up):  # read others' writes while another holds it
            self.census = self.tally.look()
            self._note_finished()
            if not may_start(self.census, self.config, own_target=self.own_target):
                return None  # the running ones end as usual
            # a WAITING trial (a retry) first, else a new one; marked as this worker's
            return self.study.ask(waiting=bool(self.census.waiting), worker=self.worker)

    def _note_finished(self) -> None:
        if self.finished_settings is not None:
            self.finished_settings.note(self.tally.ended)  # the trials the last look saw finish

    def one_trial(self, trial: OptunaTrial) -> None:
        start_ms = now_ms()
        self.recorder.send(StartTrial(trial.number, start_ms))
        run = TrialRun()
        state, value, error, trace, interrupted = TrialState.COMPLETE, None, None, None, False
        values: tuple[float, ...] | None = None
        constraints: dict[str, float] = {}
        outcome: TrialOutcome | None = None
        same_as: int | None = None
        mlflow_seconds: float | None = None  # the trainer's code inside MLflow, when the trainer clocks it
        clock = time.perf_counter()
        # the run id is answered once (Recorder.run_id hands it over, then forgets it): trial.run_id and the
        # record must both get it
        child_run = functools.cache(lambda: self.mlflow_ready() or self.recorder.run_id(trial.number))
        early = self.tracking_start is not None and self.tracking_start.ahead
        try:
            with heartbeat(trial):
                facing = self.study.facing_trial(trial, run, sweep=self.study.name, metric=self.config.metric,
                                                 space=self.config.space, fixed=self.config.fixed,
                                                 run_id=child_run, workdirs=self.workdirs,
                                                 should_stop=lambda: self.stop.requested,
                                                 experiment_id=lambda: self.mlflow_ready() or
                                                 self.recorder.experiment(),
                                                 storage_step_limit=self.study.step_limit,
                                                 more_objectives=[o.metric for o in self.config.more_objectives])
                same = self.finished_settings.find(run.params) if self.finished_settings is not None else None
                if same is not None:  # the sampler proposed settings a complete trial had: its result answers
                    same_as = same.number
                    run.tags["sweep.same_as"] = str(same.number)
                    outcome = TrialOutcome(same.value, dict(same.metrics))
                else:
                    self.stop.in_trainer = True
                    try:
                        outcome = self.trainer.run(facing)
                    finally:
                        self.stop.in_trainer = False
                        mlflow_seconds = self.trainer.mlflow_seconds()
            value = outcome.value
            values = objective_values(outcome.metrics, self.config) if self.config.multi_objective else None
            if self.config.constraints:
                constraints = self.study.judge(trial, values or (value,), outcome.metrics, self.constraints_function)
        except (TrialPruned, OPTUNA_PRUNED):
            state = TrialState.PRUNED
        except (TrialInterrupted, KeyboardInterrupt) as caught:
            if isinstance(caught, KeyboardInterrupt) and not self.stop.requested:  # the user's code raised it
                state, error, trace = TrialState.FAIL, raised_in_trainer(caught), traceback.format_exc()
            else:  # a stop, or a second Ctrl-C inside the trainer
                state, error, interrupted = TrialState.FAIL, INTERRUPTED, True
        except (StorageUnavailableError, TrackingError):  # the storage went away during the trial (a report), or
            raise  # MLflow refused a start that was not waited for (a trial asked for its run id): the sweep stops
        except UnusableTrainer as caught:  # no later trial can do better: the sweep stops after this one
            state, error, self.unusable = TrialState.FAIL, str(caught), True
        except SystemExit as caught:  # sys.exit() in the user's code (argparse does it) ends its trial, not the sweep
            state, error, trace = TrialState.FAIL, raised_in_trainer(caught), traceback.format_exc()
        except Exception as caught:  # a failing trial must not end the sweep: it becomes a FAIL trial
            state, error, trace = TrialState.FAIL, f"{type(caught).__name__}: {caught}", traceback.format_exc()
        trial_seconds = time.perf_counter() - clock - run.pruner_seconds
        self.trainer_seconds += trial_seconds
        if error is not None:  # the user's code may print a password it was given: none is stored
            error, trace = hide_secrets(error, self.secrets), trace and hide_secrets(trace, self.secrets)
        # before MLflow has answered, a trial whose code did not ask for its run id is told without waiting for it
        run_id = (self.tracking_start.run_id(trial.number)  # type: ignore[union-attr]
                  if early and not child_run.cache_info().currsize else child_run())
        record = TrialRecord(trial.number, state, run.params or dict(trial.params), value,
                             outcome.metrics if outcome else dict(run.metrics), run.curves,
                             outcome.model_json if outcome else None, error, trace,
                             start_ms, now_ms(), run_id, interrupted,
                             tags=run.tags, artifacts=run.artifacts,
                             mlflow_active=self.config.trainer.logs_own_run, same_as=same_as,
                             values=values if state is TrialState.COMPLETE else None,
                             constraints=constraints if state is TrialState.COMPLETE else {},
                             mlflow_time=None if mlflow_seconds is None else MlflowTime(mlflow_seconds, trial_seconds))
        best_before = self.census.best
        # the record goes to MLflow before the study: killed in between, the trial stays RUNNING and a
        # resume fails it and its run; the other order could leave a told trial with an unlogged run
        self.recorder.send(FinishTrial(record))
        # behind a proxy that takes it, the tell's writes go with the next start: one call to the proxy for both
        self.study.tell(trial, record, with_next_start=self.served and self.gate.takes_finish)
        self.trials_run += 1
        if self.tracking_start is not None:
            self.tracking_start.told(trial.number, run_id)
        # the census is refreshed before the next trial; until then this trial counts as finished
        self.census = self.census.after(record, self.config)
        if interrupted:
            return
        if error:
            self.errors[error] = self.errors.get(error, 0) + 1
        if self.census.best is not None and self.census.best is not best_before and \
                self.census.best.number == record.number:
            self.recorder.send(RecordBest(self.census.best, self.config.metric))
        self.recorder.send(RecordCounts(self.counts))
        self.listener.trial_finished(TrialUpdate(record.number, state, value, error, self.counts, self.target,
                                                 self.best, time.perf_counter() - self.started, same_as))

    def failing(self) -> bool:
        """The first trials all failed with one kind of error: the next ones would too, so the sweep stops early."""
        counts = self.counts
        kinds = grouped(self.errors)
        return (len(kinds) == 1 and next(iter(kinds.values()))[1] >= FAIL_FAST_TRIALS
                and counts.complete == 0 and counts.pruned == 0)

    def error_summary(self) -> list[tuple[str, int]]:
        return most_frequent(self.errors)


def objective_values(metrics: dict[str, float], config: SweepConfig) -> tuple[float, ...]:
    """Every objective's value among a finished trial's final metrics (a sweep of several objectives)."""
    values = []
    for objective in config.objectives:
        value = metrics.get(objective.metric)
        if value is None:
            shown = ", ".join(sorted(metrics)[:6]) or "none"
            raise ValueError(f"the trial ended without the objective {objective.metric!r} (its final metrics: "
                             f"{shown}); report it, or change objective:")
        if not math.isfinite(value):
            raise ValueError(f"the objective {objective.metric!r} is {value}; a trial needs a finite value")
        values.append(float(value))
    return tuple(values)


def raised_in_trainer(caught: SystemExit | KeyboardInterrupt) -> str:
    """A trial's error for SystemExit or KeyboardInterrupt from the user's code: what it was, and that it only
    ended the trial ("SystemExit: 3 (sys.exit in the trainer)")."""
    name = type(caught).__name__
    detail = f"{name}: {caught}" if str(caught) else name
    where = "sys.exit in the trainer" if isinstance(caught, SystemExit) else "raised by the trainer, not a signal"
    return f"{detail} ({where})"


def most_frequent(errors: dict[str, int], keep: int = 3) -> list[tuple[str, int]]:
    """(message, count) of the ``keep`` most frequent kinds of error, most first: messages that differ only in run
    ids, trial folders and numbers are one kind (error_kind), shown by the first of them."""
    return sorted(grouped(errors).values(), key=lambda item: -item[1])[:keep]


def grouped(errors: dict[str, int]) -> dict[str, tuple[str, int]]:
    """error_kind -> (its first message, how many trials failed with a message of that kind)."""
    kinds: dict[str, tuple[str, int]] = {}
    for message, count in errors.items():
        kind = error_kind(message)
        first, before = kinds.get(kind, (message, 0))
        kinds[kind] = (first, before + count)
    return kinds


ERROR_VARIABLES = (  # what differs between trials failing the same way, most specific first
    (re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b"), "<id>"),  # a UUID
    (re.compile(r"\b[0-9a-f]{32}\b"), "<id>"),  # an MLflow run id
    (re.compile(r"\S*trial-\d+\S*"), "<trial path>"),  # a path in (or naming) a trial's folder
    (re.compile(r"\d+(\.\d+)?([eE][-+]?\d+)?"), "<n>"),  # a number: a trial's value, step, line number
)


def error_kind(message: str) -> str:
    """``message`` with what varies from trial to trial (ids, trial folders, numbers) replaced by placeholders."""
    for pattern, placeholder in ERROR_VARIABLES:
        message = pattern.sub(placeholder, message)
    return message
