"""One 10-trial sweep registered as `sentiment-best` (the `shipped` fixture of tests/conftest.py), read by the
plots-and-model tests in-process (tests/unit/sweep/test_plots_and_model.py) and in fresh interpreters
(tests/e2e/test_plots_and_model_e2e.py): how it is made, the texts they predict, its winning model.json."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support import e2e, inprocess
from tests.support.stores import copy_mlflow_db
from trainer import Model

TEXTS = ["a warm and wonderful film, beautifully acted", "dull, slow and far too long", "it was fine"]


def make_shipped(folder: Path, mlflow_template: Path) -> str:
    """The sweep in ``folder``, made in-process; returns its `sweep run` output."""
    copy_mlflow_db(mlflow_template, folder)
    e2e.write_config(folder, "trials: 10\npruner: {name: none}\n" + e2e.FAST_SPACE)
    result = inprocess.sweep(folder, "run", "--config", "sweep.yaml", "--name", "shipped",
                             "--register", "sentiment-best")
    assert result.returncode == 0, result.stderr
    return result.stdout


def best_model(folder: Path) -> Model:
    """The winning trial's model.json, read the way `train predict` reads it."""
    best = json.loads(inprocess.sweep(folder, "best", "--format", "json").stdout)
    return Model.from_json(e2e.artifact_bytes(folder, best["run_id"], "model.json").decode())
