"""The config's rules that end a sweep before its trial target (stop: patience and target, budget: seconds and
trial_seconds), driven in-process on a real journal and MLflow store with a function trainer whose value is
chosen by the trial's number: each rule ends the sweep at the trial it should, and the summary, `sweep ls`, the
study and the parent run say which rule did; `--jobs 2` decides alike; a resume re-evaluates the rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from sweep.config import SweepConfig
from sweep.records import BestTrial, Counts
from sweep.space import FloatRange
from sweep.states import StopRule
from sweep.study.census import Census, SpanUnion
from sweep.study.stopping import rule_that_holds
from tests.support import e2e, inprocess

# the objective of trial N is VALUES[N]: trial 1 is the best, none after it does better
FIT = '''
import time

VALUES = [0.2, 0.9, 0.5, 0.4, 0.3, 0.1, 0.6, 0.7, 0.8, 0.85]


def fit(trial):
    trial.suggest_float("x", 0.0, 1.0)
    time.sleep(trial.params.get("seconds", 0.0))  # a trial that takes time: the budgets' subject
    return VALUES[trial.number]
'''


def write_sweep(folder: Path, body: str, *, seconds: float = 0.0) -> None:
    (folder / "fit.py").write_text(FIT, encoding="utf-8")
    e2e.write_config(folder, "trainer: {function: fit.py:fit}\nobjective: {direction: maximize}\n"
                             "pruner: {name: none}\nsampler: {name: random, seed: 1}\n"
                             f"fixed: {{seconds: {seconds}}}\n" + body)


def census(*, best: float | None = None, after_best: int = 0, trial_seconds: float = 0.0,
           wall_seconds: float = 0.0) -> Census:
    top = BestTrial(1, None, best, {}, {}, None) if best is not None else None
    return Census(3, 0, 0, Counts(complete=3), top, after_best, trial_seconds, wall_seconds)


def config(**rules: object) -> SweepConfig:
    return SweepConfig(space={"lr": FloatRange(0.1, 1.0)}).replace(**rules)


def test_no_rule_holds_without_rules():
    assert rule_that_holds(census(best=1.0, after_best=99, trial_seconds=1e9, wall_seconds=1e9), config()) is None


def test_target_is_direction_aware():
    assert rule_that_holds(census(best=0.91), config(stop_target=0.9)).rule is StopRule.TARGET
    assert rule_that_holds(census(best=0.89), config(stop_target=0.9)) is None
    loss = config(metric="val_loss", direction="minimize", stop_target=0.3)
    assert rule_that_holds(census(best=0.29), loss).rule is StopRule.TARGET
    assert rule_that_holds(census(best=0.31), loss) is None


def test_patience_counts_the_finished_trials_after_the_best():
    assert rule_that_holds(census(best=0.5, after_best=3), config(stop_patience=3)).rule is StopRule.PATIENCE
    assert rule_that_holds(census(best=0.5, after_best=2), config(stop_patience=3)) is None


def test_budgets_compare_wall_and_summed_trial_seconds():
    assert rule_that_holds(census(wall_seconds=10), config(budget_seconds=10)).rule is StopRule.SECONDS
    assert rule_that_holds(census(wall_seconds=9, trial_seconds=30), config(budget_seconds=10)) is None
    assert rule_that_holds(census(trial_seconds=30), config(budget_trial_seconds=30)).rule is StopRule.TRIAL_SECONDS


def test_budgets_count_the_running_trials_time_up_to_now():
    running = Census(3, 2, 0, Counts(complete=1), None, trial_seconds=4.0, wall_seconds=7.0,
                     running_since=(10.5, 12.0), covered_since=0.5)
    assert running.trial_seconds_at(20.0) == 4.0 + 9.5 + 8.0
    assert running.wall_seconds_at(20.0) == 7.0 + 9.5 - 0.5  # [10.5, 20] with the 0.5 s it shares counted once
    assert rule_that_holds(running, config(budget_seconds=16.0), now=20.0).rule is StopRule.SECONDS
    assert rule_that_holds(running, config(budget_seconds=16.5), now=20.0) is None


def test_span_union_counts_overlapping_time_once():
    spans = SpanUnion()
    for start, end in ((0, 2), (5, 6), (1, 3), (10, 11), (2.5, 5.5)):
        spans.add(start, end)
    assert spans.total == 7  # [0, 6] and [10, 11]
    assert spans.covered_after(10.5) == 0.5
    assert spans.covered_after(4) == 3


@pytest.mark.slow
@pytest.mark.usefixtures("mlflow_db")
def test_patience_ends_the_sweep_after_that_many_trials_without_a_better_one(tmp_path: Path):
    write_sweep(tmp_path, "trials: 10\nstop: {patience: 3}\n")
    result = inprocess.sweep(tmp_path, "run", "--config", "sweep.yaml", "--name", "calm")
    assert result.returncode == 0, result.stderr
    assert "sweep calm finished (stopped by patience): 5 trials" in result.stdout, result.stdout
    assert "3 finished trials since trial 1's best without a better one" in result.stdout
    assert len(e2e.study(tmp_path, "calm").trials) == 5
    parent, children = e2e.runs(tmp_path, experiment="sweep")
    assert parent.info.status == "FINISHED" and len(children) == 5
    assert parent.data.tags["sweep.stopped_by"] == "patience"
    listed = inprocess.sweep(tmp_path, "ls")
    assert "finished (patience)" in listed.stdout and "5/10" in listed.stdout, listed.stdout


@pytest.mark.slow
@pytest.mark.usefixtures("mlflow_db")
def test_target_ends_the_sweep_once_the_best_is_good_enough_and_a_resume_keeps_it_ended(tmp_path: Path):
    write_sweep(tmp_path, "trials: 10\nstop: {target: 0.85}\n")
    result = inprocess.sweep(tmp_path, "run", "--config", "sweep.yaml", "--name", "enough")
    assert result.returncode == 0, result.stderr
    assert "sweep enough finished (stopped by target): 2 trials" in result.stdout, result.stdout
    assert e2e.study(tmp_path, "enough").user_attrs["sweep.stopped_by"] == "target"

    again = inprocess.sweep(tmp_path, "run", "--resume", "--name", "enough", "--trials", "20")
    assert again.returncode == 0, again.stderr
    assert "sweep enough complete (stopped by target): 2 trials" in again.stdout, again.stdout
    assert "reached stop.target 0.85: the rule still holds, so no trial starts" in again.stdout
    assert len(e2e.study(tmp_path, "enough").trials) == 2, "the rule still holds: no trial starts"


@pytest.mark.slow
@pytest.mark.usefixtures("mlflow_db")
def test_two_jobs_stop_by_the_same_rule(tmp_path: Path):
    write_sweep(tmp_path, "trials: 10\nstop: {target: 0.85}\n")
    result = inprocess.sweep(tmp_path, "run", "--config", "sweep.yaml", "--name", "pair", "--jobs", "2")
    assert result.returncode == 0, result.stderr
    assert "sweep pair finished (stopped by target)" in result.stdout, result.stdout
    trials = e2e.study(tmp_path, "pair").trials
    assert all(t.state.name == "COMPLETE" for t in trials) and len(trials) < 10
    # once the first trial that reached the target was told, no worker starts another; the other worker may have
    # been starting one at that moment (its look at the study came before the tell): at most that one, then
    reached = min(t.datetime_complete for t in trials if t.value >= 0.85)
    assert len([t for t in trials if t.datetime_start > reached]) <= 1
    parent, _ = e2e.runs(tmp_path, experiment="sweep")
    assert parent.data.tags["sweep.stopped_by"] == "target"


@pytest.mark.slow
@pytest.mark.usefixtures("mlflow_db")
def test_trial_seconds_budget_stops_new_trials_once_the_trials_took_it(tmp_path: Path):
    write_sweep(tmp_path, "trials: 10\nbudget: {trial_seconds: 0.5}\n", seconds=0.2)
    result = inprocess.sweep(tmp_path, "run", "--config", "sweep.yaml", "--name", "thrifty")
    assert result.returncode == 0, result.stderr
    assert "(stopped by budget.trial_seconds)" in result.stdout, result.stdout
    trials = e2e.study(tmp_path, "thrifty").trials
    spent = [(t.datetime_complete - t.datetime_start).total_seconds() for t in trials]
    assert sum(spent[:-1]) < 0.5 <= sum(spent), "the last trial was the one that spent the budget"


@pytest.mark.slow
@pytest.mark.usefixtures("mlflow_db")
def test_wall_seconds_budget_counts_the_time_trials_ran(tmp_path: Path):
    write_sweep(tmp_path, "trials: 10\nbudget: {seconds: 0.5}\n", seconds=0.2)
    result = inprocess.sweep(tmp_path, "run", "--config", "sweep.yaml", "--name", "brief")
    assert result.returncode == 0, result.stderr
    assert "(stopped by budget.seconds)" in result.stdout, result.stdout
    trials = e2e.study(tmp_path, "brief").trials
    before_last, spans = SpanUnion(), SpanUnion()
    for trial in trials:
        span = (trial.datetime_start.timestamp(), trial.datetime_complete.timestamp())
        spans.add(*span)
        if trial is not trials[-1]:
            before_last.add(*span)
    assert before_last.total < 0.5 <= spans.total < 10 * 0.2, "the last trial was the one that spent the budget"
