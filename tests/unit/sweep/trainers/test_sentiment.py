"""sweep/trainers/sentiment.py: the checkpoint schedule, and one trial driven by FixedTrial or a fake trial."""

from __future__ import annotations

import itertools
import math
import time
from pathlib import Path

import numpy as np
import pytest
from optuna.trial import FixedTrial

from sweep.config import SweepConfig
from sweep.space import Categorical, FloatRange, IntRange
from sweep.trainers.base import TrialOutcome
from sweep.trainers.sentiment import CURVE_POINTS, SentimentTrainer, checkpoint_epochs
from sweep.trial import OptunaTrial, Trial, TrialPruned, TrialRun
from trainer import Corpus, DivergenceError, Split, TrainConfig

METRICS = ("train_loss", "val_loss", "val_accuracy")


def corpus(texts: list[str], labels: list[int]) -> Corpus:
    return Corpus(tuple(texts), np.asarray(labels, dtype=np.int8), "test")


@pytest.fixture(scope="module")
def tiny_split() -> Split:
    """Twelve short documents: a thousand epochs train in milliseconds."""
    train = corpus(["good fun film", "great acting good", "fun plot loved", "loved it great",
                    "bad film", "awful plot bad", "boring acting", "hated it awful"], [1, 1, 1, 1, 0, 0, 0, 0])
    val = corpus(["good film", "bad plot"], [1, 0])
    test = corpus(["great fun", "awful boring"], [1, 0])
    return Split(train, val, test)


def sweep_config(*, epochs: int | None = None, pruner: str = "median", metric: str = "val_accuracy",
                 space: dict | None = None) -> SweepConfig:
    fixed = {"seed": 0, "l2": 0.001, "vocab_size": 50}
    if epochs is not None:
        fixed["epochs"] = epochs
    return SweepConfig(space=space or {"lr": FloatRange(0.1, 2.0)}, fixed=fixed, pruner=pruner, metric=metric,
                       direction="maximize" if metric == "val_accuracy" else "minimize")


def run_trial(trial: OptunaTrial, config: SweepConfig, data: Split, run: TrialRun) -> TrialOutcome:
    """One trial of the built-in trainer, through the Trial every trainer receives."""
    facing = Trial(trial, run, sweep="test", metric=config.metric, space=config.space, fixed=config.fixed,
                   run_id=lambda: None, workdirs=Path("/nonexistent"))
    trainer = SentimentTrainer(data, config.metric, prunes=config.pruner != "none", data_fingerprint="")
    return trainer.run(facing)


class SkippingClock:
    """A perf_counter for sweep.trial: real time plus the seconds a scripted pruner spent, without sleeping."""

    def __init__(self) -> None:
        self.skipped = 0.0

    def perf_counter(self) -> float:
        return time.perf_counter() + self.skipped


class FakeTrial:
    """The trial methods run_trial uses: fixed suggestions, recorded reports, a scripted pruner."""

    def __init__(self, params: dict, *, prune_at_report: int | None = None, clock: SkippingClock | None = None,
                 prune_seconds: float = 0.0) -> None:
        self.number = 7
        self.params = params
        self.reports: list[tuple[float, int]] = []
        self.prune_at_report = prune_at_report  # 1-based: should_prune says yes after this many reports
        self.clock, self.prune_seconds = clock, prune_seconds  # each should_prune "takes" prune_seconds on it

    def suggest_float(self, name, low, high, *, step=None, log=False):
        return float(self.params[name])

    def suggest_int(self, name, low, high, *, step=1, log=False):
        return int(self.params[name])

    def suggest_categorical(self, name, choices):
        return self.params[name]

    def report(self, value, step):
        self.reports.append((value, step))

    def should_prune(self):
        if self.clock is not None:
            self.clock.skipped += self.prune_seconds
        return self.prune_at_report is not None and len(self.reports) >= self.prune_at_report


def curve_epochs(run: TrialRun, name: str = "val_accuracy") -> list[int]:
    return [epoch for epoch, _ in run.curves[name]]


# -- checkpoint_epochs ------------------------------------------------------------------------------------


def test_checkpoint_epochs_are_log_spaced_from_1():
    assert checkpoint_epochs(100) == [1, 2, 3, 6, 10, 18, 32, 56, 100]


@pytest.mark.parametrize("limit", [1, 2, 7, 10, 99, 100, 1000, 12345])
def test_checkpoint_epochs_start_at_1_increase_strictly_and_stay_within_the_limit(limit):
    epochs = checkpoint_epochs(limit)
    assert epochs[0] == 1
    assert all(a < b for a, b in itertools.pairwise(epochs))
    assert epochs[-1] <= limit


def test_checkpoint_epochs_of_zero_is_empty():
    assert checkpoint_epochs(0) == []


def test_checkpoint_epochs_are_the_same_for_every_limit_so_trials_compare_at_equal_steps():
    longest = checkpoint_epochs(3000)
    for limit in range(1, 3001):
        assert checkpoint_epochs(limit) == [e for e in longest if e <= limit]


def test_checkpoint_epochs_grow_by_about_four_per_decade():
    assert len(checkpoint_epochs(10_000)) <= 4 * 4 + 1


# -- run_trial with FixedTrial ---------------------------------------------------------------------------------


def test_run_trial_params_are_every_trainer_setting_suggested_over_fixed(tiny_split):
    config = sweep_config(space={"lr": FloatRange(0.1, 2.0), "epochs": IntRange(1, 50), "ngrams": Categorical((1, 2))})
    run = TrialRun()
    result = run_trial(FixedTrial({"lr": 0.5, "epochs": 4, "ngrams": 2}), config, tiny_split, run)
    assert run.params == {**TrainConfig().to_dict(), "seed": 0, "l2": 0.001, "vocab_size": 50,
                          "lr": 0.5, "epochs": 4, "ngrams": 2}
    assert isinstance(run.params["epochs"], int) and isinstance(run.params["lr"], float)
    assert result.model_json is not None and '"ngrams":2' in result.model_json


def test_run_trial_records_every_epoch_of_a_short_run(tiny_split):
    run = TrialRun()
    run_trial(FixedTrial({"lr": 0.5}), sweep_config(epochs=12), tiny_split, run)
    assert set(run.curves) == set(METRICS)
    for name in METRICS:
        assert curve_epochs(run, name) == list(range(1, 13))


@pytest.mark.parametrize("pruner", ["median", "none"])
@pytest.mark.parametrize("epochs", [1, 99, 101, 257, 1000])
def test_run_trial_curves_stay_short_and_end_at_the_last_epoch(tiny_split, epochs, pruner):
    run = TrialRun()
    run_trial(FixedTrial({"lr": 0.5}), sweep_config(epochs=epochs, pruner=pruner), tiny_split, run)
    for name in METRICS:
        points = curve_epochs(run, name)
        assert len(points) <= CURVE_POINTS + len(checkpoint_epochs(epochs))
        assert points == sorted(set(points))
        assert points[-1] == epochs
    if pruner == "none":
        assert len(curve_epochs(run)) <= CURVE_POINTS + 1


def test_run_trial_logs_exactly_the_curve_points_and_checkpoints_of_a_long_run(tiny_split):
    run = TrialRun()
    run_trial(FixedTrial({"lr": 0.5}), sweep_config(epochs=257, pruner="median"), tiny_split, run)
    every = math.ceil(257 / CURVE_POINTS)
    assert curve_epochs(run) == sorted({*range(every, 258, every), *checkpoint_epochs(257), 257})


def test_run_trial_curve_values_are_the_trainer_metrics(tiny_split):
    run = TrialRun()
    result = run_trial(FixedTrial({"lr": 0.5}), sweep_config(epochs=30), tiny_split, run)
    assert run.curves["val_accuracy"][-1] == (30, result.metrics["val_accuracy"])
    assert run.curves["val_loss"][-1][1] == pytest.approx(result.metrics["val_loss"])


def test_run_trial_with_a_value_the_trainer_cannot_use_keeps_params_and_time(tiny_split):
    run = TrialRun()
    with pytest.raises(DivergenceError):
        run_trial(FakeTrial({"lr": 1e9}), sweep_config(epochs=50), tiny_split, run)
    assert run.params["lr"] == 1e9


# -- pruning, through a fake trial -------------------------------------------------------------------------


def test_run_trial_reports_the_objective_at_each_checkpoint(tiny_split):
    trial = FakeTrial({"lr": 0.5})
    run = TrialRun()
    run_trial(trial, sweep_config(epochs=60, metric="val_loss"), tiny_split, run)
    assert [step for _, step in trial.reports] == checkpoint_epochs(60)
    val_loss = dict(run.curves["val_loss"])
    assert [value for value, _ in trial.reports] == [val_loss[step] for step in checkpoint_epochs(60)]


def test_pruned_trial_raises_trial_pruned_at_the_third_checkpoint_and_keeps_its_curves(tiny_split):
    trial = FakeTrial({"lr": 0.5}, prune_at_report=3)
    run = TrialRun()
    with pytest.raises(TrialPruned) as caught:
        run_trial(trial, sweep_config(epochs=50), tiny_split, run)
    third = checkpoint_epochs(50)[2]
    assert str(caught.value) == "pruned at epoch 3" and third == 3
    assert [step for _, step in trial.reports] == [1, 2, 3]
    for name in METRICS:
        assert curve_epochs(run, name) == [1, 2, 3]
    assert run.params["lr"] == 0.5


def test_pruned_long_trial_keeps_the_checkpoint_epochs_in_its_curves(tiny_split):
    trial = FakeTrial({"lr": 0.5}, prune_at_report=5)
    run = TrialRun()
    with pytest.raises(TrialPruned) as caught:
        run_trial(trial, sweep_config(epochs=1000), tiny_split, run)
    assert str(caught.value) == "pruned at epoch 10"
    assert curve_epochs(run) == [1, 2, 3, 6, 10]


def test_pruner_none_never_reports_or_asks_to_prune(tiny_split):
    trial = FakeTrial({"lr": 0.5}, prune_at_report=1)
    run = TrialRun()
    outcome = run_trial(trial, sweep_config(epochs=40, pruner="none"), tiny_split, run)
    assert trial.reports == []
    assert outcome.model_json is not None


def test_the_pruners_time_is_counted_apart_from_the_trainers(tiny_split, monkeypatch):
    import sweep.trial

    clock = SkippingClock()
    monkeypatch.setattr(sweep.trial, "time", clock)  # the module reads time.perf_counter()
    trial = FakeTrial({"lr": 0.5}, clock=clock, prune_seconds=1000.0)
    run = TrialRun()
    run_trial(trial, sweep_config(epochs=10), tiny_split, run)
    pruner_calls = len(checkpoint_epochs(10))
    assert len(trial.reports) == pruner_calls == 5
    assert clock.skipped == 5000.0  # the trial took over 5,000 s by its clock, all of it in the pruner
    assert run.pruner_seconds == pytest.approx(5000.0, abs=1.0)


# -- how its best model is published ------------------------------------------------------------------


def stored_model_artifact() -> str:
    """sweep/pyfunc_model.py's MODEL_ARTIFACT, read from its source: importing it registers the model with MLflow."""
    import ast

    import sweep

    tree = ast.parse((Path(sweep.__file__).parent / "pyfunc_model.py").read_text(encoding="utf-8"))
    [value] = [node.value.value for node in tree.body if isinstance(node, ast.Assign)  # type: ignore[attr-defined]
               and [target.id for target in node.targets] == ["MODEL_ARTIFACT"]]  # type: ignore[attr-defined]
    return value


def test_its_best_model_is_a_pyfunc_model_of_its_own_code_over_the_best_trials_model_json():
    recipe = SentimentTrainer.model_publishing().pyfunc
    assert recipe is not None and SentimentTrainer.model_publishing().shown_as == "pyfunc model"
    assert Path(recipe.model_code).name == "pyfunc_model.py" and Path(recipe.model_code).is_file()
    assert recipe.artifact_key == stored_model_artifact()  # where the PythonModel looks for model.json
    assert {"trainer/model.py", "trainer/features.py"} <= set(recipe.code)
    assert "trainer/cli.py" not in recipe.code  # the train CLI needs typer: a model server has no use for it
    assert all(Path(source).is_file() and Path(source).name == Path(shipped).name
               for shipped, source in recipe.code.items())
    assert [requirement.split("==")[0] for requirement in recipe.requirements] == ["numpy", "pandas"]
    assert set(recipe.input_example) == {"text"} and set(recipe.output_example) == {"label", "probability"}
    assert recipe.retrain.format(name="demo") == ("sweep best --name demo --format yaml > best.yaml && "
                                                   "train --config best.yaml")
