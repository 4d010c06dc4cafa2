"""sweep/trial.py: what fit(trial) receives, driven by a real Optuna trial on an in-memory study."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from sweep.space import FloatRange, IntRange
from sweep.trial import Trial, TrialInterrupted, TrialRun


@pytest.fixture
def study() -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.create_study(direction="maximize", pruner=optuna.pruners.NopPruner())


def make(study: optuna.Study, tmp_path: Path, *, space=None, fixed=None, stop=lambda: False,
         metric: str = "score") -> tuple[Trial, TrialRun, optuna.Trial]:
    optuna_trial = study.ask()
    run = TrialRun()
    trial = Trial(optuna_trial, run, sweep="demo", metric=metric, space=space or {}, fixed=fixed or {},
                  run_id=lambda: "run-123", workdirs=tmp_path / "sweeps" / "demo", should_stop=stop)
    return trial, run, optuna_trial


def test_params_hold_the_fixed_values_and_the_space_suggestions_before_fit_runs(study, tmp_path):
    trial, _, optuna_trial = make(study, tmp_path, space={"lr": FloatRange(0.1, 1.0), "depth": IntRange(1, 4)},
                                  fixed={"seed": 3})
    assert trial.params["seed"] == 3
    assert 0.1 <= trial.params["lr"] <= 1.0 and 1 <= trial.params["depth"] <= 4
    assert set(optuna_trial.params) == {"lr", "depth"}  # the sampler only sees what it tunes


def test_define_by_run_suggestions_use_optuna_and_land_in_params(study, tmp_path):
    trial, run, optuna_trial = make(study, tmp_path)
    family = trial.suggest_categorical("family", ["tree", "linear"])
    alpha = trial.suggest_float("alpha", 1e-4, 1.0, log=True)
    depth = trial.suggest_int("depth", 2, 8, step=2)
    assert run.params == {"family": family, "alpha": alpha, "depth": depth}
    assert optuna_trial.params == run.params
    assert depth in (2, 4, 6, 8)


def test_a_fixed_name_wins_over_its_suggestion_and_is_not_sampled(study, tmp_path):
    trial, _, optuna_trial = make(study, tmp_path, fixed={"alpha": 0.5, "family": "tree"})
    assert trial.suggest_float("alpha", 1e-4, 1.0, log=True) == 0.5
    assert trial.suggest_categorical("family", ["tree", "linear"]) == "tree"
    assert optuna_trial.params == {}


def test_report_with_metrics_logs_curves_and_feeds_the_objective_to_the_pruner(study, tmp_path):
    trial, run, optuna_trial = make(study, tmp_path)
    trial.report(step=1, score=0.5, loss=2.0)
    trial.report(step=2, score=0.7, loss=1.5)
    assert run.curves == {"score": [(1, 0.5), (2, 0.7)], "loss": [(1, 2.0), (2, 1.5)]}
    study.tell(optuna_trial, 0.7)
    assert study.trials[0].intermediate_values == {1: 0.5, 2: 0.7}


def test_report_in_optunas_form_is_the_objectives_curve_too(study, tmp_path):
    trial, run, optuna_trial = make(study, tmp_path)
    trial.report(0.25, 3)
    assert run.curves == {"score": [(3, 0.25)]}
    study.tell(optuna_trial, 0.25)
    assert study.trials[0].intermediate_values == {3: 0.25}


def test_report_of_other_metrics_only_logs_them(study, tmp_path):
    trial, run, optuna_trial = make(study, tmp_path)
    trial.report(step=0, loss=1.0)
    study.tell(optuna_trial, 1.0)
    assert run.curves == {"loss": [(0, 1.0)]} and study.trials[0].intermediate_values == {}


def test_the_same_step_twice_keeps_one_point_the_last(study, tmp_path):
    trial, run, _ = make(study, tmp_path)
    trial.log_metrics({"score": 0.1}, step=4)
    trial.report(0.2, 4)
    assert run.curves["score"] == [(4, 0.2)]


@pytest.mark.parametrize("step", [None, -1, 1.5, True, 2**63, 2**70])
def test_report_needs_a_non_negative_integer_step(study, tmp_path, step):
    trial, _, _ = make(study, tmp_path)
    with pytest.raises(TypeError, match="step must be a non-negative integer"):
        trial.report(0.5, step)
    if step is not None:  # log_metrics without a step: final values
        with pytest.raises(TypeError, match="step must be a non-negative integer"):
            trial.log_metrics({"score": 0.5}, step=step)


def test_the_largest_step_mlflow_stores_is_taken(study, tmp_path):
    trial, run, _ = make(study, tmp_path)
    trial.log_metrics({"score": 0.5}, step=2**63 - 1)
    assert run.curves == {"score": [(2**63 - 1, 0.5)]}


@pytest.mark.parametrize("name", ["", "/loss", "a//b", "../up", "loss!", "x" * 251, 3])
def test_a_metric_name_mlflow_refuses_is_refused_where_it_enters(study, tmp_path, name):
    trial, _, _ = make(study, tmp_path)
    with pytest.raises(ValueError, match="is not a metric name"):
        trial.log_metrics({name: 0.5})
    if isinstance(name, str):  # report's names are keywords: always strings
        with pytest.raises(ValueError, match="is not a metric name"):
            trial.report(step=1, **{name: 0.5})


@pytest.mark.parametrize("name", ["val/loss", "acc top-1", "f1.macro", "eval:loss", "x" * 250])
def test_metric_names_mlflow_takes_are_taken(study, tmp_path, name):
    trial, run, _ = make(study, tmp_path)
    trial.log_metrics({name: 0.5})
    assert run.metrics == {name: 0.5}


@pytest.mark.parametrize("value", ["high", None, b"1", True, object()])
def test_a_metric_that_is_not_a_number_is_refused_naming_it(study, tmp_path, value):
    trial, _, _ = make(study, tmp_path)
    with pytest.raises(TypeError, match=r"trial\.log_metrics: acc is"):
        trial.log_metrics({"acc": value})


def test_numpy_numbers_are_numbers(study, tmp_path):
    np = pytest.importorskip("numpy")
    trial, run, _ = make(study, tmp_path)
    trial.log_metrics({"acc": np.float32(0.5), "n": np.int64(3)})
    assert run.metrics == {"acc": 0.5, "n": 3.0} and trial.final_metrics == run.metrics


def test_log_params_adds_and_refuses_to_change_a_value(study, tmp_path):
    trial, run, _ = make(study, tmp_path, fixed={"seed": 1})
    trial.log_params({"n_features": 30, "seed": 1})
    assert run.params == {"seed": 1, "n_features": 30}
    with pytest.raises(ValueError, match="'seed' is already 1"):
        trial.log_params({"seed": 2})


def test_tags_become_strings_and_artifacts_must_exist(study, tmp_path):
    trial, run, _ = make(study, tmp_path)
    trial.set_tags({"note": "first", "round": 2})
    assert run.tags == {"note": "first", "round": "2"}
    with pytest.raises(FileNotFoundError, match="no such file"):
        trial.log_artifact(tmp_path / "missing.txt")
    (tmp_path / "notes.txt").write_text("hello")
    trial.log_artifact(tmp_path / "notes.txt")
    assert run.artifacts == [str((tmp_path / "notes.txt").resolve())]


def test_workdir_is_made_on_first_use_one_per_trial(study, tmp_path):
    trial, _, _ = make(study, tmp_path)
    other, _, _ = make(study, tmp_path)
    assert not (tmp_path / "sweeps").exists()
    assert trial.workdir == tmp_path / "sweeps" / "demo" / "trial-0" and trial.workdir.is_dir()
    assert other.workdir.name == "trial-1"


def test_identity_of_the_trial(study, tmp_path):
    trial, _, _ = make(study, tmp_path)
    assert (trial.number, trial.sweep, trial.run_id) == (0, "demo", "run-123")


def test_once_the_sweep_is_stopping_the_next_report_raises_trial_interrupted(study, tmp_path):
    stopping = [False]
    trial, run, _ = make(study, tmp_path, stop=lambda: stopping[0])
    trial.report(step=1, score=0.1)
    stopping[0] = True
    with pytest.raises(TrialInterrupted, match="interrupted at step 2"):
        trial.report(step=2, score=0.2)
    with pytest.raises(TrialInterrupted):
        trial.should_prune()
    assert run.curves == {"score": [(1, 0.1)]}


def test_should_prune_asks_the_studys_pruner(tmp_path):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize",
                                pruner=optuna.pruners.ThresholdPruner(lower=0.5))
    trial, _, _ = make(study, tmp_path)
    trial.report(step=1, score=0.9)
    assert not trial.should_prune()
    trial.report(step=2, score=0.1)
    assert trial.should_prune()
