"""`sweep best` for any trainer: the best model named or said absent, and --format yaml re-running the winner
(sweep run --config reads it for any trainer, train --config for the built-in one)."""

from __future__ import annotations

import pytest
import yaml
from typer.testing import CliRunner

from sweep.config import load_config
from sweep.errors import SweepConfigError
from sweep.queries import NO_MODEL, Best, render_best
from sweep.study import SweepRow, TrialRow
from sweep.train_cli import app as train_app
from tests.unit.sweep.test_views import row
from trainer import Model

FUNCTION = {"experiment": "sweep", "trainer": {"function": "/somewhere/train.py:fit", "mlflow": "autolog"},
            "objective": {"metric": "score", "direction": "maximize"}, "fixed": {"seed": 0}}
BUILTIN = {"experiment": "sentiment", "trainer": "sentiment",
           "objective": {"metric": "val_accuracy", "direction": "maximize"}, "fixed": {"seed": 0},
           "data": {"source": "bundled", "text_column": "text", "label_column": "label"}}


def winner(config: dict, sweep: SweepRow | None = None) -> Best:
    trial = TrialRow(3, "COMPLETE", 0.9, {"x": 0.25, "depth": 2}, {"score": 0.9}, "run-3", None)
    return Best(sweep or row(), trial, {**config["fixed"], **trial.params}, config)


def test_a_function_trainers_best_names_the_model_its_trial_logged():
    result = winner(FUNCTION, row(model_uri="models:/m-1", model_trial=3))
    assert result.model_uri == result.pyfunc_model_uri == "models:/m-1"
    assert "models:/m-1  (mlflow.pyfunc.load_model, sweep predict --file)" in render_best(result, "text")


def test_a_function_trainers_best_without_a_model_says_so():
    result = winner(FUNCTION, row(model_uri="models:/m-older", model_trial=1))  # an older best's model
    assert result.model_uri is None and result.as_dict()["model_uri"] is None
    assert NO_MODEL in render_best(result, "text")


def test_yaml_is_a_sweep_config_fixing_every_param_of_the_winner(tmp_path):
    (tmp_path / "train.py").write_text("def fit(trial):\n    return 0.0\n", encoding="utf-8")
    config = {**FUNCTION, "trainer": {"function": f"{tmp_path / 'train.py'}:fit", "mlflow": "autolog"}}
    text = render_best(winner(config), "yaml")
    assert "sweep run --config best.yaml" in text.splitlines()[1]
    document = yaml.safe_load(text)
    assert document["fixed"] == {"seed": 0, "x": 0.25, "depth": 2} and document["trials"] == 1
    assert "space" not in document
    (tmp_path / "best.yaml").write_text(text, encoding="utf-8")
    loaded = load_config(tmp_path / "best.yaml")
    assert (loaded.space, loaded.trials, loaded.fixed["x"], loaded.metric) == ({}, 1, 0.25, "score")
    assert loaded.trainer.function == f"{tmp_path / 'train.py'}:fit" and loaded.trainer.mlflow == "autolog"


def test_the_builtin_trainers_yaml_runs_with_sweep_run_and_trains_with_train(tmp_path):
    best = Best(row(), TrialRow(0, "COMPLETE", 0.8, {"lr": 0.5, "epochs": 4}, {"val_accuracy": 0.8}, "run-0", None),
                {"seed": 0, "lr": 0.5, "epochs": 4}, BUILTIN)
    (tmp_path / "best.yaml").write_text(render_best(best, "yaml"), encoding="utf-8")
    loaded = load_config(tmp_path / "best.yaml")
    assert (loaded.space, loaded.trials, loaded.fixed, loaded.data) == ({}, 1, {"seed": 0, "lr": 0.5, "epochs": 4},
                                                                        "bundled")
    out = tmp_path / "model.json"
    trained = CliRunner().invoke(train_app, ["--config", str(tmp_path / "best.yaml"), "--out", str(out)])
    assert trained.exit_code == 0, trained.output
    assert Model.load(out).metadata["config"]["lr"] == 0.5 and Model.load(out).metadata["config"]["epochs"] == 4


def test_train_refuses_a_sweep_config_that_tunes_in_one_line(tmp_path):
    (tmp_path / "sweep.yaml").write_text("space:\n  lr: {type: float, low: 0.1, high: 1}\n", encoding="utf-8")
    result = CliRunner().invoke(train_app, ["--config", str(tmp_path / "sweep.yaml")])
    assert result.exit_code == 2 and "tunes lr" in result.stderr and len(result.stderr.splitlines()) == 1


def test_the_builtin_trainer_without_space_needs_trials_1(tmp_path):
    (tmp_path / "c.yaml").write_text("trials: 1\nfixed: {lr: 0.5}\n", encoding="utf-8")
    assert load_config(tmp_path / "c.yaml").space == {}
    with pytest.raises(SweepConfigError, match="set trials: 1"):
        load_config(tmp_path / "c.yaml", {"trials": 5})
