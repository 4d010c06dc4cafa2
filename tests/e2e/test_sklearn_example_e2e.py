"""examples/sklearn end to end with real stores: autologged children, the parent's best model, predict, register,
and the winner re-run from `sweep best --format yaml`.

The two `sweep run`s are subprocesses: `mlflow: autolog` switches MLflow's autologging on in the sweep's own
process, for as long as that process lives. The commands that only read the sweep run in-process."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.support import e2e, inprocess

ROOT = Path(__file__).resolve().parents[2]
pytest.importorskip("sklearn")


@pytest.mark.slow
@pytest.mark.usefixtures("mlflow_db")
def test_the_sklearn_example_sweeps_autologs_publishes_predicts_registers_and_reruns(tmp_path):
    shutil.copytree(ROOT / "examples" / "sklearn", tmp_path / "examples" / "sklearn")
    config = (ROOT / "configs" / "sklearn.yaml").read_text(encoding="utf-8")
    # small forests: the test is about the records, not the model
    config = config.replace("{type: int, low: 10, high: 60, step: 10}", "{type: int, low: 5, high: 15, step: 5}")
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "sklearn.yaml").write_text(config, encoding="utf-8")

    ran = e2e.sweep(tmp_path, "run", "--config", "configs/sklearn.yaml", "--trials", "2", "--name", "skl",
                    "--register", "breast-cancer", timeout=600)
    assert ran.returncode == 0, ran.stderr
    # sweep's own warnings (scikit-learn's FutureWarnings from autolog's metric calls are not ours)
    assert not [line for line in (ran.stdout + ran.stderr).splitlines() if line.startswith("warning:")]

    client = e2e.mlflow_client(tmp_path)
    parent, children = e2e.runs(tmp_path, "sklearn")
    assert len(children) == 2  # two: a best to pick; each trial more costs a model log (MLflow's pip inference)
    for child in children:  # scikit-learn's autolog wrote into each trial's own run
        assert {"n_estimators", "learning_rate", "max_depth", "loss"} <= set(child.data.params)
        assert {"training_accuracy_score", "val_accuracy"} <= set(child.data.metrics)
        assert child.data.tags["sweep.model_uri"].startswith("models:/m-")
    tags = parent.data.tags
    best_child = next(c for c in children if c.data.tags["sweep.trial"] == tags["best.trial"])
    assert tags["best.model_uri"] == best_child.data.tags["sweep.model_uri"]
    assert tags["best.model_id"] == tags["best.model_uri"].removeprefix("models:/")
    assert tags["best.model_trial"] == tags["best.trial"] and tags["best.registered_model"] == "breast-cancer/1"
    assert {"best.n_estimators", "best.learning_rate", "best.max_depth", "best.seed"} <= set(tags)  # max_depth: fit's
    assert not [m for m in client.search_logged_models([parent.info.experiment_id]) if m.name.endswith("-best")]
    assert "plots" in {a.path for a in client.list_artifacts(parent.info.run_id)}

    shown = json.loads(inprocess.sweep(tmp_path, "best", "--format", "json").stdout)
    assert shown["model_uri"] == tags["best.model_uri"] and shown["registered_model"] == "models:/breast-cancer/1"

    predicted = inprocess.sweep(tmp_path, "predict", "--file", "examples/sklearn/rows.csv")
    assert predicted.returncode == 0, predicted.stderr
    assert predicted.stdout.splitlines()[0] == "prediction" and len(predicted.stdout.splitlines()) == 6

    rerun = inprocess.sweep(tmp_path, "best", "--format", "yaml")
    (tmp_path / "best.yaml").write_text(rerun.stdout, encoding="utf-8")
    again = e2e.sweep(tmp_path, "run", "--config", "best.yaml", "--name", "again", timeout=600)
    assert again.returncode == 0, again.stderr
    first_value = json.loads(inprocess.sweep(tmp_path, "best", "--name", "again", "--format", "json").stdout)
    assert first_value["params"] == shown["params"] and first_value["metrics"] == shown["metrics"]
