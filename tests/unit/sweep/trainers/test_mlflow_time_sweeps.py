"""A function trainer's time inside MLflow, from the trial to the summary: real sweeps driven in-process
(run_sweep, the tracking server on a thread) on a real journal and SQLite MLflow store; scikit-learn's
autologging with `mlflow: {autolog: {log_models: false}}` logs params and metrics but no model, and the study
keeps that setting for a resume. `--jobs` (the figure read back from the study) is checked in
test_function_sweeps.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from sweep.config import load_config
from sweep.engine import run_sweep
from sweep.engine.progress import SweepSummary
from sweep.study import configure_optuna
from sweep.study.attrs import SweepAttrs
from sweep.views import render_summary
from tests.support import e2e, inprocess

AUTOLOGGED = '''
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression


def fit(trial):
    x, y = load_iris(return_X_y=True)
    model = LogisticRegression(C=trial.params["C"], max_iter=200)
    model.fit(x, y)  # autolog: the estimator's params and training metrics go to the trial's child run
    return model.score(x, y)
'''
OWN_METRIC = '''
import mlflow


def fit(trial):
    mlflow.log_metric("own", trial.params["C"])
    return trial.params["C"]
'''
SWEPT = "objective: {direction: maximize}\npruner: {name: none}\nspace:\n  C: {type: float, low: 0.1, high: 10.0}\n"


def sweep(folder: Path, source: str, mlflow: str, trials: int) -> SweepSummary:
    (folder / "train.py").write_text(source, encoding="utf-8")
    e2e.write_config(folder, f"trainer: {{function: train.py:fit, mlflow: {mlflow}}}\n{SWEPT}")
    config = load_config(folder / "sweep.yaml", {"trials": trials, "name": "timed",
                                                 "tracking_uri": f"sqlite:///{folder / 'mlflow.db'}",
                                                 "storage": str(folder / "sweep.journal")})
    configure_optuna()
    return run_sweep(config, resume=False, listener=inprocess.RecordingListener(), parts=inprocess.in_process_parts())


@pytest.fixture
def folder(mlflow_uri: str, tmp_path: Path) -> Path:
    """tmp_path, the working folder (MLflow puts a SQLite store's artifacts in ./mlruns), with a new mlflow.db."""
    return tmp_path


@pytest.mark.slow  # scikit-learn imported and MLflow's autologging set up for it, in this process
def test_autolog_without_models_logs_params_and_metrics_and_the_summary_gives_its_time(folder: Path):
    pytest.importorskip("sklearn")
    summary = sweep(folder, AUTOLOGGED, "{autolog: {log_models: false}}", 2)
    client = e2e.mlflow_client(folder)
    parent, children = e2e.runs(folder, experiment="sweep")
    assert len(children) == 2
    for child in children:
        assert child.data.params["max_iter"] == "200"  # autologged: the estimator's own params
        assert "training_accuracy_score" in child.data.metrics
        assert "sweep.model_uri" not in child.data.tags  # no model logged
    models = client.search_logged_models(experiment_ids=[parent.info.experiment_id])
    assert models == []
    assert summary.mlflow_time is not None and summary.mlflow_time.trials == 2
    assert 0 < summary.mlflow_time.seconds <= summary.mlflow_time.trial_seconds
    assert not summary.models_autologged  # so the summary does not suggest log_models: false
    stored = SweepAttrs.read(e2e.study(folder, "timed")).stored_config  # what `sweep run --resume` runs
    assert stored.trainer.autolog == {"log_models": False}
    line = next(line for line in render_summary(summary).splitlines() if line.startswith("MLflow logging inside fit"))
    assert "trial time" in line and "log_models" not in line


def test_mlflow_active_counts_the_users_own_logging_call(folder: Path):
    summary = sweep(folder, OWN_METRIC, "active", 1)
    _, children = e2e.runs(folder, experiment="sweep")
    assert "own" in children[0].data.metrics
    assert summary.mlflow_time is not None
    assert 0 < summary.mlflow_time.seconds <= summary.mlflow_time.trial_seconds
    assert "MLflow logging inside fit: " in render_summary(summary)


def test_a_trainer_with_mlflow_off_has_no_mlflow_time(folder: Path):
    summary = sweep(folder, "def fit(trial):\n    return trial.params['C']\n", "off", 1)
    assert summary.mlflow_time is None
    assert "MLflow logging" not in render_summary(summary)
