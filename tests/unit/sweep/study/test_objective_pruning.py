"""Pruning on several curves: a trial worse than the complete trials' median on every objective at its step."""

from __future__ import annotations

import optuna
import pytest

from sweep.study.objective_pruning import ObjectivesMedianPruner, report_objectives, should_prune_objectives


def study_with(complete: list[list[float]], *, startup_trials: int = 2, warmup_steps: int = 0) -> optuna.Study:
    """A study maximizing the first objective and minimizing the second, whose complete trials reported
    ``complete`` (one [first, second] each) at step 1."""
    study = optuna.create_study(directions=["maximize", "minimize"],
                                pruner=ObjectivesMedianPruner(startup_trials=startup_trials,
                                                              warmup_steps=warmup_steps))
    for values in complete:
        trial = study.ask()
        report_objectives(trial, values, 1)
        study.tell(trial, values)
    return study


@pytest.mark.parametrize(("values", "pruned"), [
    ([0.1, 9.0], True),  # worse on both: dominated by the medians
    ([0.9, 9.0], False),  # better on the first: may still be on the front
    ([0.1, 1.0], False),  # better on the second
    ([0.5, 5.0], False),  # equal to the medians is not worse
])
def test_a_trial_is_pruned_only_when_worse_than_the_median_on_every_objective(values, pruned):
    study = study_with([[0.4, 6.0], [0.6, 4.0], [0.5, 5.0]])
    trial = study.ask()
    report_objectives(trial, values, 1)
    assert should_prune_objectives(trial) is pruned


def test_nothing_is_pruned_before_the_startup_trials_completed_or_during_the_warmup():
    early = study_with([[0.4, 6.0]], startup_trials=2)
    trial = early.ask()
    report_objectives(trial, [0.0, 99.0], 1)
    assert not should_prune_objectives(trial)
    warm = study_with([[0.4, 6.0], [0.6, 4.0]], warmup_steps=5)
    trial = warm.ask()
    report_objectives(trial, [0.0, 99.0], 1)
    assert not should_prune_objectives(trial)


def test_a_step_no_complete_trial_reached_prunes_nothing():
    study = study_with([[0.4, 6.0], [0.6, 4.0]])
    trial = study.ask()
    report_objectives(trial, [0.0, 99.0], 7)
    assert not should_prune_objectives(trial)
