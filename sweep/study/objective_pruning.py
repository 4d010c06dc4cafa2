"""Pruning a sweep of several objectives, which Optuna's core does not do (``trial.report`` and
``trial.should_prune`` raise in a multi-objective study).

A trial reports every objective at a step (``trial.report(step=3, val_accuracy=0.8, model_bytes=4e4)``); the
values are kept on the trial, one system attribute per step. The rule generalises Optuna's MedianPruner: at a
step, each objective is compared with its own median over the complete trials that reached that step, and the
trial is pruned when it is worse than the median on *every* objective, i.e. dominated by the median trial. A
trial that is better on any one objective may still be on the Pareto front, so it runs on. As with the median
pruner, nothing is pruned before ``startup_trials`` trials completed or during the first ``warmup_steps`` steps.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence

import optuna
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from sweep.study.optuna_internals import storage_of, trial_id_of

STEP_VALUES = "sweep.objectives."  # + step: the system attribute holding a trial's objective values at that step


def report_objectives(trial: optuna.trial.Trial, values: Sequence[float], step: int) -> None:
    """Keep ``values`` (one per objective, in the study's order) as ``trial``'s report at ``step``."""
    storage_of(trial.study).set_trial_system_attr(trial_id_of(trial), f"{STEP_VALUES}{step}", list(values))


def reported_steps(trial: FrozenTrial) -> dict[int, list[float]]:
    """A trial's reports: step -> its objective values there."""
    return {int(key[len(STEP_VALUES):]): value for key, value in trial.system_attrs.items()
            if key.startswith(STEP_VALUES)}


def should_prune_objectives(trial: optuna.trial.Trial) -> bool:
    """What the study's pruner says of ``trial`` now, from its last report of every objective."""
    study = trial.study
    frozen = storage_of(study).get_trial(trial_id_of(trial))
    return study.pruner.prune(study, frozen)


class ObjectivesMedianPruner(optuna.pruners.BasePruner):
    """Prune a trial that is worse than the median on every objective at its last reported step (see above)."""

    def __init__(self, *, startup_trials: int, warmup_steps: int) -> None:
        self.startup_trials, self.warmup_steps = startup_trials, warmup_steps

    def prune(self, study: optuna.study.Study, trial: FrozenTrial) -> bool:
        steps = reported_steps(trial)
        if not steps:
            return False
        step = max(steps)
        if step < self.warmup_steps:
            return False
        complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if len(complete) < self.startup_trials:
            return False
        there = [reported[step] for reported in map(reported_steps, complete) if step in reported]
        if not there:
            return False
        return dominated_by_medians(steps[step], there, study.directions)


def dominated_by_medians(values: Sequence[float], others: Sequence[Sequence[float]],
                         directions: Sequence[StudyDirection]) -> bool:
    """Whether ``values`` is worse than the others' median on every objective."""
    for position, direction in enumerate(directions):
        median = statistics.median(other[position] for other in others)
        worse = values[position] < median if direction == StudyDirection.MAXIMIZE else values[position] > median
        if not worse:
            return False
    return True
