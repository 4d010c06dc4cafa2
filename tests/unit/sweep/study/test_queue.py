"""Queued trials: start_with's sets as the first trials, `sweep enqueue`'s trial counted toward the target."""

from __future__ import annotations

from optuna.trial import TrialState

from sweep.study.attrs import SweepAttrs
from sweep.study.queue import queue_start_with, queue_trial
from sweep.study.reading import sweep_trials
from sweep.study.starting import create_study
from sweep.study.storage import open_storage
from tests.unit.sweep.study.conftest import add_trial, new_sweep, sweep_config


def test_start_with_sets_are_queued_as_the_first_trials_once(journal):
    config = sweep_config(trials=4, start_with=({"lr": 0.5}, {"lr": 0.25}))
    study = create_study(open_storage(journal), config, "steered")
    queue_start_with(study, config)
    queue_start_with(study, config)  # a resume: the study holds trials, none is queued again
    trials = study.get_trials(deepcopy=False)
    assert [(t.number, t.state, t.system_attrs["fixed_params"]) for t in trials] == [
        (0, TrialState.WAITING, {"lr": 0.5}), (1, TrialState.WAITING, {"lr": 0.25})]


def test_a_queued_trial_counts_toward_a_target_not_yet_started(journal):
    study = new_sweep(journal, config=sweep_config(trials=4))
    add_trial(study, TrialState.COMPLETE, 0.5)
    queued = queue_trial(study, sweep_config(trials=4), {"lr": 0.3})
    assert (queued.number, queued.target, queued.target_raised) == (1, 4, False)
    assert SweepAttrs.read(study).target == 4
    waiting = study.get_trials(deepcopy=False)[1]
    assert (waiting.state, waiting.system_attrs["fixed_params"]) == (TrialState.WAITING, {"lr": 0.3})


def test_a_trial_queued_into_a_sweep_that_started_its_target_raises_the_target_by_one(journal):
    study = new_sweep(journal, config=sweep_config(trials=2), status="finished")
    add_trial(study, TrialState.COMPLETE, 0.5)
    add_trial(study, TrialState.FAIL)
    queued = queue_trial(study, sweep_config(trials=2), {"lr": 0.3})
    assert (queued.number, queued.target, queued.target_raised) == (2, 3, True)
    assert SweepAttrs.read(study).target == 3


def test_a_queued_trial_shows_the_params_it_will_run_with(journal):
    study = new_sweep(journal, config=sweep_config(trials=4))
    queue_trial(study, sweep_config(trials=4), {"lr": 0.3})
    _, [row], _ = sweep_trials(str(journal), "demo")
    assert (row.number, row.state, row.params) == (0, "WAITING", {"lr": 0.3})
