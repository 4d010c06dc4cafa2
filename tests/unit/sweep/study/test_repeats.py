"""Trials with identical settings: found before training (repeats: reuse), marked by show, counted by ls."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import optuna
from hypothesis import given
from hypothesis import strategies as st
from optuna.trial import TrialState

from sweep.study.attrs import TrialAttrs
from sweep.study.census import Tally, record_of
from sweep.study.reading import list_sweeps, sweep_trials
from sweep.study.repeats import FinishedSettings, identical_settings, settings_key
from tests.unit.sweep.study.conftest import add_trial, new_sweep, sweep_config


def trial_with(study: optuna.Study, state: TrialState, value: float | None = None, *, lr: float,
               metrics: dict[str, float] | None = None) -> None:
    """A trial in ``state`` whose lr is ``lr`` (queued, so the sampler does not choose it)."""
    study.enqueue_trial({"lr": lr})
    add_trial(study, state, value, metrics=metrics)


def test_settings_keys_tell_types_apart_and_ignore_order():
    assert settings_key({"a": 1, "b": "x"}) == settings_key({"b": "x", "a": 1})
    assert len({settings_key({"a": 1}), settings_key({"a": 1.0}), settings_key({"a": True})}) == 3
    assert settings_key({"a": 0.1 + 0.2}) != settings_key({"a": 0.3})


def test_finished_settings_find_the_earliest_complete_trial_with_the_same_settings_and_fixed_values(journal):
    study = new_sweep(journal)
    trial_with(study, TrialState.FAIL, lr=0.5)
    trial_with(study, TrialState.COMPLETE, 0.7, lr=0.5, metrics={"val_accuracy": 0.7})
    trial_with(study, TrialState.COMPLETE, 0.7, lr=0.5)
    trial_with(study, TrialState.PRUNED, lr=0.3)
    index = FinishedSettings({"seed": 0})
    index.note(record_of(trial) for trial in study.get_trials(deepcopy=False))
    found = index.find({"seed": 0, "lr": 0.5})
    assert (found.number, found.value, found.metrics) == (1, 0.7, {"val_accuracy": 0.7})
    assert index.find({"seed": 1, "lr": 0.5}) is None  # another fixed value: other settings
    assert index.find({"seed": 0, "lr": 0.3}) is None  # pruned: its result is not known
    assert index.find({"seed": 0, "lr": 0.5, "extra": 1}) is None  # more settings than the trial had


@dataclass
class Suggested:
    number: int
    params: dict[str, Any]


# few values, so that trials share them: equal values of other types or reprs (1, 1.0, True; 0.0, -0.0), and NaN,
# a new one each time as a reader makes them (one NaN object is equal to itself in a dict key)
VALUE = st.sampled_from([1, 1.0, True, 0.0, -0.0, 0.5, None, "1", "a"]) | st.builds(float, st.just("nan"))


@given(st.lists(st.dictionaries(st.sampled_from(["a", "b"]), VALUE, max_size=2), max_size=12), st.randoms())
def test_identical_settings_are_the_repeats_that_comparing_every_trials_settings_finds(params, random):
    trials = [Suggested(number, values) for number, values in enumerate(params)]
    random.shuffle(trials)
    expected = {}
    for trial in sorted(trials, key=lambda t: t.number):
        earlier = [t.number for t in trials if t.number < trial.number and t.params
                   and settings_key(t.params) == settings_key(trial.params)]
        if trial.params and earlier:
            expected[trial.number] = min(earlier)
    assert identical_settings(trials) == expected


def test_identical_settings_map_each_repeat_to_the_earliest_trial_in_any_state(journal):
    study = new_sweep(journal)
    trial_with(study, TrialState.COMPLETE, 0.7, lr=0.5)
    trial_with(study, TrialState.COMPLETE, 0.6, lr=0.4)
    trial_with(study, TrialState.FAIL, lr=0.5)
    trial_with(study, TrialState.PRUNED, lr=0.4)
    trial_with(study, TrialState.COMPLETE, 0.7, lr=0.5)
    assert identical_settings(study.get_trials(deepcopy=False)) == {2: 0, 3: 1, 4: 0}


def test_show_marks_and_ls_counts_trials_with_identical_settings(journal):
    study = new_sweep(journal)
    for lr in (0.5, 0.4, 0.5, 0.5):
        trial_with(study, TrialState.COMPLETE, 0.7, lr=lr)
    row, trials, _ = sweep_trials(journal.secret_url, "demo")
    assert [t.same_as for t in trials] == [None, None, 0, 0]
    assert row.repeats == 2
    assert list_sweeps(journal.secret_url)[0].repeats == 2


def test_the_census_counts_reused_trials_among_the_complete_ones(journal):
    study = new_sweep(journal)
    trial_with(study, TrialState.COMPLETE, 0.7, lr=0.5)
    trial = study.ask()
    trial.suggest_float("lr", 0.1, 1.0)
    TrialAttrs(same_as=0).write(trial)
    study.tell(trial, 0.7)
    counts = Tally(study, sweep_config()).census().finished
    assert (counts.complete, counts.reused) == (2, 1)
    assert sweep_trials(journal.secret_url, "demo")[0].counts.reused == 1


def test_settings_suggested_by_another_study_are_never_confused(tmp_path):
    """Two trials of a define-by-run objective that suggested different names are different settings."""
    study = optuna.create_study()
    first = study.ask()
    first.suggest_float("x", 0, 1)
    study.tell(first, 1.0)
    second = study.ask()
    second.suggest_float("y", 0, 1)
    study.tell(second, 1.0)
    assert identical_settings(study.get_trials(deepcopy=False)) == {}
