"""Read-only views of sweeps in a storage: the list, one sweep's trials (queries.py formats them). Writes nothing."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from typing import Any

import optuna
from optuna.trial import TrialState

from sweep import states
from sweep.errors import NotFoundError
from sweep.locations import StorageLocation, StoredTracking
from sweep.ranking import rank_key
from sweep.records import Counts
from sweep.states import SweepStatus
from sweep.study.attrs import SweepAttrs, TrialAttrs
from sweep.study.census import count_trials, first_value, is_feasible, state_of
from sweep.study.opening import open_sweep
from sweep.study.repeats import identical_settings
from sweep.study.sharing import worker_alive
from sweep.study.storage import HEARTBEAT_SECONDS, open_storage

STALLED_SECONDS = 600  # a "running" sweep with no trial started or ended for this long, and no live worker here


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
    tracking: StoredTracking | None = None  # where the sweep's runs are, as it stored it (redacted)
    model_uri: str | None = None  # the parent's pyfunc model (runs:/<parent>/model), logged at the end
    model_trial: int | None = None  # whose model that is: stale unless it is the best trial's
    registered_model: str | None = None  # "NAME/VERSION" of the last `sweep run --register NAME`
    registered_trial: int | None = None  # whose model that version holds
    liveness: str = ""  # for a "running" sweep: running, running? (cannot tell from here) or stalled
    repeats: int = 0  # trials whose settings an earlier trial of the sweep already had
    more_objectives: tuple[tuple[str, str], ...] = ()  # (metric, direction) of each objective after the first
    stopped_by: str = ""  # the config's rule that ended the sweep before its target (a StopRule), if one did

    @property
    def shown_status(self) -> str:
        """The status as `sweep ls` shows it: a "running" sweep nobody runs any more says so, and a sweep a stop
        rule ended names the rule ("finished (patience)")."""
        if self.stopped_by and self.status == SweepStatus.FINISHED:
            return f"{self.status} ({self.stopped_by})"
        return self.liveness or self.status

    @property
    def tracking_uri(self) -> str | None:
        """The stored tracking URI as shown: redacted, maybe relative (sqlite:///mlflow.db)."""
        return self.tracking.shown if self.tracking is not None else None


@dataclass(frozen=True)
class TrialRow:
    number: int
    state: states.TrialState
    value: float | None
    params: dict[str, Any]
    metrics: dict[str, float]
    run_id: str | None
    error: str | None
    same_as: int | None = None  # the earliest trial with identical settings, when this one repeats it
    values: tuple[float, ...] | None = None  # every objective's value (a complete trial)
    feasible: bool = True  # every constraint met
    on_front: bool = False  # a member of the Pareto front (a sweep of several objectives; set by queries.show)


def list_sweeps(storage_url: str | None) -> list[SweepRow]:
    """Every sweep in the storage, oldest first; none when the default journal file does not exist yet."""
    try:
        storage = open_storage(StorageLocation.parse(storage_url), create=False, read_only=True)
    except NotFoundError:
        return []
    rows = []
    for summary in storage.get_all_studies():  # not get_all_study_summaries: it deep-copies every trial
        attrs = SweepAttrs.read(summary)
        if not attrs.is_sweep:
            continue  # a study some other tool made
        study = optuna.load_study(study_name=summary.study_name, storage=storage)
        rows.append(_sweep_row(study.study_name, attrs, study.get_trials(deepcopy=False)))
    return sorted(rows, key=lambda row: row.created)


def sweep_trials(storage_url: str | None, name: str | None) -> tuple[SweepRow, list[TrialRow], dict[str, Any]]:
    """One sweep (the latest when no name is given), its trials, and its stored config as a mapping."""
    sweep = open_sweep(StorageLocation.parse(storage_url), name, heartbeat=HEARTBEAT_SECONDS, read_only=True)
    trials = sweep.read().get_trials(deepcopy=False)
    same = identical_settings(trials)
    return (_sweep_row(sweep.name, sweep.attrs, trials, same),
            [replace(_trial_row(trial, sweep.attrs), same_as=same.get(trial.number)) for trial in trials],
            sweep.attrs.stored_config.to_file_dict())


def _sweep_row(name: str, attrs: SweepAttrs, trials: list[optuna.trial.FrozenTrial],
               same: dict[int, int] | None = None) -> SweepRow:
    best = _best_row(trials, attrs)
    same = identical_settings(trials) if same is None else same
    return SweepRow(name, attrs.status, count_trials(trials), attrs.target, best.value if best else None,
                    attrs.created or "", attrs.experiment, attrs.parent_run_id, attrs.metric, attrs.direction,
                    attrs.experiment_id, attrs.stored_tracking, attrs.model_uri, attrs.model_trial,
                    attrs.registered_model, attrs.registered_trial,
                    liveness(trials, attrs.created) if attrs.status == SweepStatus.RUNNING else "", len(same),
                    tuple((metric, direction) for metric, direction in attrs.objectives[1:]), attrs.stopped_by or "")


def liveness(trials: list[optuna.trial.FrozenTrial], created: str | None,
             now: dt.datetime | None = None) -> str:
    """Whether a sweep marked running still runs: "running" when a worker of this machine runs one of
    its trials or a trial started or ended recently, "stalled" when its trials' workers here are dead
    or nothing happened for STALLED_SECONDS, "running?" when only other machines' workers could tell."""
    running = [t for t in trials if t.state == TrialState.RUNNING]
    alive = [worker_alive(TrialAttrs.read(t).worker) for t in running]
    if any(state is True for state in alive):
        return "running"
    if running and all(state is False for state in alive):
        return "stalled"  # killed without a chance to say so (a power cut, kill -9)
    moments = [m for t in trials for m in (t.datetime_start, t.datetime_complete) if m is not None]
    if created:
        moments.append(dt.datetime.fromisoformat(created))  # UTC, with its offset
    now = now or dt.datetime.now()
    last = max((m if m.tzinfo is None else m.astimezone().replace(tzinfo=None) for m in moments), default=None)
    if last is not None and (now - last).total_seconds() < STALLED_SECONDS:
        return "running"
    return "running?" if running else "stalled"


def _best_row(trials: list[optuna.trial.FrozenTrial], attrs: SweepAttrs) -> TrialRow | None:
    complete = [t for t in trials if t.state == TrialState.COMPLETE and t.values and is_feasible(t)]
    if not complete:
        return None
    more = attrs.objectives[1:]
    best = min(complete, key=lambda t: rank_key(t.values[0], TrialAttrs.read(t).metrics, t.number,
                                                 metric=attrs.metric, direction=attrs.direction, more=more))
    return _trial_row(best, attrs)


def _trial_row(trial: optuna.trial.FrozenTrial, sweep: SweepAttrs) -> TrialRow:
    attrs = TrialAttrs.read(trial)
    params = trial.params
    if not params and trial.state == TrialState.WAITING:  # queued (start_with, sweep enqueue): what it will run with
        params = trial.system_attrs.get("fixed_params", {})
    complete = trial.state == TrialState.COMPLETE
    return TrialRow(trial.number, state_of(trial.state), first_value(trial) if complete else None,
                    dict(params), attrs.metrics, sweep.run_id_of(trial.number, attrs.run_id), attrs.error,
                    values=tuple(trial.values) if complete and trial.values else None, feasible=is_feasible(trial))
