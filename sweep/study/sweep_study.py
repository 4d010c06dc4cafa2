"""One sweep's Optuna study as the engine (sweep/engine/) uses it: the engine reaches Optuna through this only.

SweepStudy holds the optuna.Study of one sweep and the config it runs with, and gives the engine what it
needs in the engine's own terms (records, a census, trials to run through sweep.trial.OptunaTrial), never
an Optuna type to look into:

- opening: ``create`` a new sweep's study, ``load`` one to run trials, ``read`` one to look only;
- the trial loop: a Tally of the trials, dead workers' trials failed, the next trial asked under the
  caller's trial gate (its sampler stream chosen, its worker marked), a finished trial told;
- the sweep: its census, its trials as records, its failed trials' errors, when its trials ran, what the
  study keeps about the sweep (its state, parent run, published model, relinked runs), and its plots.
"""

from __future__ import annotations

import copy
import math
import socket
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import optuna
from optuna.storages import BaseStorage
from optuna.trial import TrialState

from sweep import states
from sweep.config import SweepConfig
from sweep.constraints import violations
from sweep.locations import TrackingLocation
from sweep.ranking import pareto_front, signed
from sweep.records import FrontMember, MlflowTime, PublishedModel, TrialRecord
from sweep.study.attrs import SweepAttrs, TrialAttrs, relink_runs
from sweep.study.census import Census, Tally, is_feasible, optuna_state, record_of, take_census
from sweep.study.full_trial import FullTrial
from sweep.study.opening import ExistingSweep
from sweep.study.optuna_internals import (
    HeldWrites,
    ask_new,
    database_url_of,
    heartbeat_grace,
    holding_back,
    params_together,
    quiet_heartbeat_warnings,
    storage_of,
    tell_without_reading_back,
    trial_id_of,
    trial_of,
    write_held,
)
from sweep.study.plots import StudyPlots, study_plots
from sweep.study.queue import QueuedTrial, queue_start_with, queue_trial
from sweep.study.seeding import SamplerStreams
from sweep.study.served import FinishRequest, StartReply, StartRequest
from sweep.study.sharing import TrialGate, fail_dead_trials, fail_found_dead, fail_orphaned_trials
from sweep.study.starting import create_study, discard_new_study, link_parent, record_sweep
from sweep.study.warm_start import PriorTrials
from sweep.trial import MAX_STEP, OptunaTrial, Trial, TrialRun

OPTUNA_PRUNED = optuna.TrialPruned  # what an unchanged Optuna objective raises to prune: as sweep.TrialPruned
DATABASE_STEP_LIMIT = 2**31 - 1  # Optuna's RDB schema keeps an intermediate value's step as INTEGER
UNKNOWN_ERROR = "unknown error"  # a failed trial that kept no error (killed before it could write one)


@dataclass(frozen=True)
class ServedStart:
    """A start the storage proxy decided: the census it decided from, the trial to run (None: none starts), and the
    dead workers' trials its look found, failed here (records for their runs)."""

    census: Census
    trial: OptunaTrial | None
    dead: list[TrialRecord]


@dataclass(frozen=True)
class TrialSpan:
    """When one trial ran (POSIX timestamps); None where the study has no time (a trial still running)."""

    number: int
    started: float | None
    completed: float | None


class SweepStudy:
    """The Optuna study of one sweep, and the config it runs with (its sampler and pruner, its metric)."""

    def __init__(self, study: optuna.Study, config: SweepConfig) -> None:
        self._study = study
        self.config = config
        self.streams = SamplerStreams(config)  # no two processes (or starts) replay one sampler sequence
        self._config_text: str | None = None  # the config as YAML, sent with each start a storage proxy decides
        self._held: HeldWrites | None = None  # the last tell's writes, to go with the next start (tell)

    @classmethod
    def create(cls, storage: BaseStorage, config: SweepConfig, name: str,
               prior: PriorTrials | None = None) -> SweepStudy:
        """A new sweep's study, its sampler reading ``prior`` (warm_start: read_prior) first; a sweep started at
        the same time that took the name first stops this one."""
        return cls(create_study(storage, config, name, prior), config)

    @classmethod
    def load(cls, sweep: ExistingSweep, config: SweepConfig | None = None) -> SweepStudy:
        """An existing sweep's study with the sampler and pruner of ``config`` (the stored one by default)."""
        wanted = config or sweep.config
        return cls(sweep.load(wanted), wanted)

    @classmethod
    def read(cls, sweep: ExistingSweep, config: SweepConfig | None = None) -> SweepStudy:
        """An existing sweep's study to read only (no sampler is built)."""
        return cls(sweep.read(), config or sweep.config)

    @property
    def name(self) -> str:
        return self._study.study_name

    # -- the trial loop -------------------------------------------------------------------------------------

    def tally(self) -> Tally:
        """A census kept up to date by reading only what changed (reads every trial now, once)."""
        return Tally(self._study, self.config)

    def fail_dead_trials(self, tally: Tally) -> list[TrialRecord]:
        """Fail (and retry once) the running trials, as ``tally`` last saw them, of workers that died; returns
        them, so that their runs end FAILED too."""
        return fail_dead_trials(self._study, tally.running)

    def ask(self, *, waiting: bool, worker: str) -> OptunaTrial:
        """The next trial, asked while the caller holds the trial gate: a WAITING trial (a retry) first when
        the caller's census saw one (``waiting``), else a new one. Its sampler stream is chosen before it
        samples anything, and it is marked as run by ``worker``, so that a dead worker's trial is failed."""
        marked = TrialAttrs(worker=worker)
        with quiet_heartbeat_warnings():
            # Optuna looks for a waiting trial among all the study's trials: skipped when the census saw none
            trial = self._study.ask() if waiting else ask_new(self._study, marked.items())
        if waiting:
            marked.write(trial)
        self.streams.before_sampling(self._study, trial.number)
        if self.streams.samples_at_ask:
            trial.relative_params  # noqa: B018 - sampled now, under the gate (see SamplerStreams)
        return trial

    @property
    def starts_can_be_served(self) -> bool:
        """Whether a storage proxy may decide this sweep's trial starts (served.py): not when a trial must sample
        under the gate (QMC), nor with ``repeats: reuse`` (a loop notes the trials its own looks saw finish)."""
        return not self.streams.samples_at_ask and self.config.repeats != "reuse"

    def start_served(self, gate: TrialGate, *, worker: str, own_target: bool, look_for_dead: bool
                     ) -> ServedStart | None:
        """The next trial as the storage proxy decides it (served.py), with the census it decided from, instead of
        a look and an ask under the gate; None where the gate's storage decides no starts (take the gate then).
        ``look_for_dead``: the proxy also names dead workers' trials, failed (and retried once) here."""
        if self._config_text is None:
            self._config_text = self.config.to_yaml()
        storage = storage_of(self._study)
        grace = heartbeat_grace(storage) if look_for_dead else None
        reply = self._start_after_tell(gate, StartRequest(self.name, worker, self._config_text, own_target, grace,
                                                          socket.gethostname() if look_for_dead else None))
        if reply is None:
            return None
        dead = fail_found_dead(self._study, reply.stale, reply.on_host) if look_for_dead else []
        trial = None
        if reply.trial is not None:
            with quiet_heartbeat_warnings():
                trial = trial_of(self._study, trial_id_of(reply.trial), reply.trial)
            self.streams.before_sampling(self._study, trial.number)
        return ServedStart(reply.census, trial, dead)

    def _start_after_tell(self, gate: TrialGate, request: StartRequest) -> StartReply | None:
        """The start, with the last tell's held writes when there are some (one call); a proxy without that call
        gets the writes one by one first."""
        held, self._held = self._held, None  # a call that fails is not made again by write_held_tell
        if held is not None:
            reply = gate.finish_and_start(FinishRequest(held, request))
            if reply is not None:
                return reply
            write_held(storage_of(self._study), held)
        return gate.start(request)

    def write_held_tell(self) -> None:
        """The last tell's writes held back for a next start that did not come (tell): written now, one by one."""
        held, self._held = self._held, None
        if held is not None:
            write_held(storage_of(self._study), held)

    @property
    def step_limit(self) -> int:
        """The largest intermediate step the storage keeps: a database server's column is a 32-bit integer (SQLite
        keeps any 64-bit one)."""
        url = database_url_of(self._study)
        return DATABASE_STEP_LIMIT if url is not None and not url.startswith("sqlite") else MAX_STEP

    def facing_trial(self, trial: OptunaTrial, run: TrialRun, **sweep_settings: Any) -> Trial:
        """What the trainer's fit receives for ``trial`` (as ``ask`` gave it): a sweep.Trial that is also the
        optuna.trial.Trial, every Optuna member working (full_trial.py). Made, it has suggested the space's params:
        written to a storage proxy in one call (one per param otherwise), before the trainer starts."""
        with params_together(self._study, trial):  # type: ignore[arg-type]
            return FullTrial(trial, run, **sweep_settings)  # type: ignore[arg-type]

    def judge(self, trial: OptunaTrial, values: Sequence[float], metrics: Mapping[str, float],
              function: Callable[[optuna.trial.FrozenTrial], Any] | None) -> dict[str, float]:
        """A trial that ran to its end, against the sweep's constraints: each one's value (feasible: all zero or
        less). ``function`` is the config's constraints function (Optuna's constraints_func), given the trial as
        it will be once told."""
        constraints = self.config.constraints
        if function is None:
            return violations(constraints.bounds, metrics)
        finished = copy.copy(storage_of(self._study).get_trial(trial_id_of(trial)))  # type: ignore[arg-type]
        finished.state, finished.values = TrialState.COMPLETE, list(values)
        returned = function(finished)
        try:
            given = [float(value) for value in returned]
        except (TypeError, ValueError):
            raise TypeError(f"the constraints function {constraints.function} returned {returned!r}; return a "
                            f"sequence of numbers (feasible: each zero or less)") from None
        if any(math.isnan(value) for value in given):
            raise ValueError(f"the constraints function {constraints.function} returned NaN; return numbers")
        return {f"c{position}": value for position, value in enumerate(given)}

    def tell(self, trial: OptunaTrial, record: TrialRecord, *, with_next_start: bool = False) -> None:
        """The trial's end in the study: its attributes and constraints (they can only be written while it
        runs), then its state and, when COMPLETE, its value (or every objective's).

        ``with_next_start`` (a loop whose starts the storage proxy decides): Optuna's tell runs now, but what it
        writes is held back to go with the next start_served in one call to the proxy; write_held_tell writes it
        when the loop starts no further trial."""
        if not with_next_start:
            self._tell(trial, record)
            return
        with holding_back(self._study, trial) as held:  # type: ignore[arg-type]
            try:
                self._tell(trial, record)
            finally:  # what a tell that failed had written still goes (as it would have, one write at a time)
                self._held = held

    def _tell(self, trial: OptunaTrial, record: TrialRecord) -> None:
        TrialAttrs(record.run_id, record.metrics, record.error, record.interrupted,
                   same_as=record.same_as, mlflow_time=record.mlflow_time).write(trial)  # type: ignore[arg-type]
        for key, value in record.constraints.items():
            trial.set_constraint(key, value)  # type: ignore[attr-defined]
        complete = record.state is states.TrialState.COMPLETE
        told = (list(record.values) if record.values is not None else record.value) if complete else None
        tell_without_reading_back(self._study, trial, told, optuna_state(record.state))  # type: ignore[arg-type]

    # -- the sweep ------------------------------------------------------------------------------------------

    def census(self) -> Census:
        """Count the study's trials, reading every one."""
        return take_census(self._study, self.config)

    def records(self) -> list[TrialRecord]:
        """Every trial that has ended as the tracking process needs it to rebuild a missing child run (on resume,
        after fail_orphaned_trials). A WAITING trial (queued, or a retry) has no run until a worker takes it, and a
        trial still RUNNING is a live worker's (another process of this host, or another host on a heartbeat
        storage): its run is that worker's to end, or the heartbeat's to fail."""
        return [record_of(trial) for trial in self._study.get_trials(deepcopy=False)
                if trial.state not in (TrialState.WAITING, TrialState.RUNNING)]

    def finished_records(self) -> list[TrialRecord]:
        """The finished trials as records, with every param the trial had: the sweep's fixed settings and
        whatever it suggested (define-by-run included)."""
        return [replace(record_of(trial), params={**self.config.fixed, **trial.params})
                for trial in self._study.get_trials(deepcopy=False) if trial.state.is_finished()]

    def finished_numbers(self) -> list[int]:
        return [trial.number for trial in self._study.get_trials(deepcopy=False) if trial.state.is_finished()]

    def mlflow_time(self, skip: Collection[int] = (), worker: str | None = None) -> MlflowTime | None:
        """The time the finished trials (but those numbered in ``skip``; only ``worker``'s when given) spent inside
        MLflow, summed over those whose trainer clocked it (wherever they ran); None when none did."""
        attrs = [TrialAttrs.read(trial) for trial in self._study.get_trials(deepcopy=False)
                 if trial.state.is_finished() and trial.number not in skip]
        clocked = [a.mlflow_time for a in attrs if a.mlflow_time is not None and worker in (None, a.worker)]
        return sum(clocked[1:], clocked[0]) if clocked else None

    def spans(self, numbers: Collection[int]) -> list[TrialSpan]:
        """When each of the trials ``numbers`` ran, in trial order."""
        return [TrialSpan(trial.number, _timestamp(trial.datetime_start), _timestamp(trial.datetime_complete))
                for trial in self._study.get_trials(deepcopy=False) if trial.number in numbers]

    def failed_errors(self) -> dict[str, int]:
        """The failed trials' one-line errors, each with how many trials failed with it (in trial order)."""
        errors: dict[str, int] = {}
        for trial in self._study.get_trials(deepcopy=False, states=(TrialState.FAIL,)):
            message = str(TrialAttrs.read(trial).error or UNKNOWN_ERROR)
            errors[message] = errors.get(message, 0) + 1
        return errors

    def fail_orphaned_trials(self) -> None:
        """On resume: trials left RUNNING by a hard kill become FAIL before new trials start."""
        fail_orphaned_trials(self._study)

    def record_sweep(self, experiment_id: str | None, tracking: TrackingLocation) -> str:
        """What the study keeps about its sweep, before its parent run exists; returns the parent's token
        (``experiment_id`` None: MLflow has not answered yet, link_parent writes it)."""
        return record_sweep(self._study, self.config, experiment_id, tracking)

    def queue_start_with(self) -> None:
        """The config's start_with param sets as the first trials, when the study holds none yet."""
        queue_start_with(self._study, self.config)

    def queue_trial(self, params: Mapping[str, Any]) -> QueuedTrial:
        """A trial with ``params`` queued for the next free worker (the caller holds the trial gate)."""
        return queue_trial(self._study, self.config, params)

    def link_parent(self, parent_run_id: str, experiment_id: str | None = None) -> None:
        """The study's link to its parent run, and "running"; with ``experiment_id`` when record_sweep had none."""
        link_parent(self._study, parent_run_id, experiment_id)

    def adopt_parent(self, parent_run_id: str, status: str) -> None:
        """The parent run `sweep sync` found or made for the sweep, and the sweep's state."""
        self._update(parent_run_id=parent_run_id, status=status)

    def discard(self) -> None:
        """Remove this study, made by this invocation, when its start failed before the parent run was linked."""
        discard_new_study(self._study)

    def set_status(self, status: str, stopped_by: str | None = None) -> None:
        """The sweep's state: running, finished, failed or interrupted (`sweep ls`, `--resume` read it), and
        the rule that ended it early (``stopped_by``; "" clears an earlier one, None leaves it)."""
        self._update(status=status, stopped_by=stopped_by)

    def remember_model(self, model: PublishedModel) -> None:
        """The best model's URI, trial and registered version, for `sweep best` (no MLflow there); a model
        that was not published here (a worker's: the sweep's owner publishes) leaves the study's as it is."""
        if model.uri is None and model.warning is None:
            return
        registered_trial = model.trial if model.registered is not None else None
        self._update(model_uri=model.uri, model_trial=model.trial, registered_model=model.registered,
                     registered_trial=registered_trial)

    def relink_runs(self, found: Mapping[int, str]) -> list[int]:
        """Follow the child runs MLflow holds now (trial number -> run id); returns the trials whose run changed."""
        return relink_runs(self._study, found)

    def front(self) -> list[FrontMember]:
        """The Pareto front: the feasible complete trials no other dominates (of identical values, the first),
        best first on the first objective (then the next)."""
        attrs = SweepAttrs.read(self._study)
        objectives = self.config.objectives
        complete = [t for t in self._study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                    if t.values and is_feasible(t)]
        points = [(t.number, [signed(v, o.direction) for v, o in zip(t.values, objectives)]) for t in complete]
        by_number = {t.number: t for t in complete}
        members = [by_number[number] for number in pareto_front(points)]  # best first
        return [FrontMember(t.number, attrs.run_id_of(t.number, TrialAttrs.read(t).run_id),
                            {**self.config.fixed, **t.params},
                            {o.metric: value for o, value in zip(objectives, t.values)}) for t in members]

    def plots(self) -> StudyPlots:
        """The study's plots, as SVG documents."""
        return study_plots(self._study)

    def _update(self, **changes: Any) -> None:
        replace(SweepAttrs.read(self._study), **changes).write(self._study)


def _timestamp(moment: Any) -> float | None:
    return moment.timestamp() if moment is not None else None
