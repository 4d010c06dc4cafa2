"""Several objectives and constraints in the config: parsed, validated before anything is written, stored."""

from __future__ import annotations

from pathlib import Path

import pytest

from sweep.config import Objective, config_from_yaml, load_config
from sweep.constraints import Bound
from sweep.errors import SweepConfigError

SPACE = "space:\n  lr: {type: float, low: 0.1, high: 1.0}\n"


def config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sweep.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_list_of_objectives_makes_the_first_the_metric_and_keeps_the_others(tmp_path):
    loaded = load_config(config(tmp_path, "objective:\n  - {metric: val_accuracy}\n  - {metric: model_bytes}\n"
                                          "  - {metric: train_seconds}\n" + SPACE))
    assert (loaded.metric, loaded.direction) == ("val_accuracy", "maximize")
    assert loaded.more_objectives == (Objective("model_bytes", "minimize"), Objective("train_seconds", "minimize"))
    assert loaded.multi_objective


def test_a_function_trainers_unnamed_objectives_are_named_as_optuna_names_its_values(tmp_path):
    (tmp_path / "train.py").write_text("def fit(trial):\n    return 1.0, 2.0\n", encoding="utf-8")
    loaded = load_config(config(tmp_path, "trainer: {function: train.py:fit}\n"
                                          "objective: [{direction: maximize}, {direction: minimize}]\n"))
    assert [(o.metric, o.direction) for o in loaded.objectives] == [("values_0", "maximize"), ("values_1", "minimize")]


def test_several_objectives_and_constraints_are_stored_and_read_back_equal(tmp_path):
    loaded = load_config(config(tmp_path, "objective: [{metric: val_accuracy}, {metric: model_bytes}]\n"
                                          "constraints: [\"model_bytes <= 200000\", \"train_seconds <= 2\"]\n" + SPACE))
    assert loaded.constraints.bounds == (Bound("model_bytes", "<=", 200000.0), Bound("train_seconds", "<=", 2.0))
    assert config_from_yaml(loaded.to_yaml()) == loaded


def test_a_single_objective_config_is_stored_as_before():
    stored = load_config().to_file_dict()
    assert stored["objective"] == {"metric": "val_accuracy", "direction": "maximize"}
    assert "constraints" not in stored


@pytest.mark.parametrize(("text", "message"), [
    ("objective: [{metric: val_accuracy}, {metric: model_bytes}]\nsampler: {name: cmaes}\n",
     "sampler.name: cmaes optimizes one objective, and this sweep has 2; use one of tpe, random, grid, gp, qmc, nsga2"),
    ("objective: [{metric: val_accuracy}, {metric: model_bytes}]\npruner: {name: hyperband}\n",
     "pruner.name: hyperband compares one objective"),
    ("objective: [{metric: val_accuracy}, {metric: val_accuracy}]\n", "objective[1].metric: 'val_accuracy' is listed "
                                                                      "twice"),
    ("objective: [{metric: val_accuracy}, {metric: bytes}]\n", "objective[1].metric: 'bytes' is not supported"),
    ("objective: [{metric: val_accuracy}, {metric: model_bytes, direction: maximize}]\n",
     "objective[1].direction: model_bytes is only ever minimized"),
    ("objective: [{metric: val_accuracy}, {metric: model_bytes, source: mlflow}]\n",
     "unknown key objective[1].source"),
    ("objective: []\n", "objective: an empty list"),
    ("objective: [val_accuracy]\n", "objective[0]: expected a mapping"),
    ("constraints: [\"model_bytes < 5\"]\n", "constraints[0]: 'model_bytes < 5' is not a bound"),
    ("constraints: [\"size <= 5\"]\n", "constraints: the built-in trainer reports no 'size'"),
    ("constraints: {function: nowhere.py:check}\n", "constraints.function: no such file"),
])
def test_a_bad_objective_list_or_constraint_is_refused_naming_it(tmp_path, text, message):
    with pytest.raises(SweepConfigError) as caught:
        load_config(config(tmp_path, text + SPACE))
    assert message in str(caught.value)


def test_a_function_trainers_objectives_need_directions(tmp_path):
    (tmp_path / "train.py").write_text("def fit(trial):\n    return 1.0, 2.0\n", encoding="utf-8")
    with pytest.raises(SweepConfigError, match=r"objective\[1\].direction: required for 'cost'"):
        load_config(config(tmp_path, "trainer: {function: train.py:fit}\n"
                                     "objective: [{metric: acc, direction: maximize}, {metric: cost}]\n"))


def test_the_shipped_two_objective_example_loads():
    loaded = load_config(Path(__file__).parents[3] / "configs" / "two_objectives.yaml")
    assert [o.metric for o in loaded.objectives] == ["val_accuracy", "model_bytes"]
    assert loaded.constraints.bounds == (Bound("train_seconds", "<=", 5.0),)
