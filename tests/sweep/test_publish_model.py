"""SweepTracker.publish_model on an MLflow store under tmp_path: the pyfunc model, and failures as warnings."""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pytest
from mlflow.exceptions import MlflowException

from sweep.recorder import TrackingReport
from sweep.records import BestTrial, Counts, SweepIdentity
from sweep.study import SweepSummary
from sweep.tracking import SweepTracker
from sweep.views import render_summary
from trainer import Model

MODEL_JSON = Model(("good", "bad"), np.array([2.0, -2.0]), 0.0).to_json()


@pytest.fixture
def tracker(tmp_path: Path) -> SweepTracker:
    made = SweepTracker(SweepIdentity("unit", "unit", f"sqlite:///{tmp_path / 'mlflow.db'}"))
    made.open_parent(None, params={}, tags={}, config_yaml="trials: 1\n")
    return made


def best(number: int = 0) -> BestTrial:
    return BestTrial(number, None, 0.8, {"lr": 0.5}, {"val_accuracy": 0.8}, MODEL_JSON)


def test_publish_model_logs_a_pyfunc_model_and_leaves_the_tracking_uri_as_it_was(tracker: SweepTracker):
    before = (mlflow.is_tracking_uri_set(), mlflow.get_tracking_uri())
    published = tracker.publish_model(best(), None)
    assert published.uri == f"runs:/{tracker.parent_run_id}/model" and published.trial == 0
    assert published.registered is None and published.warning is None
    assert (mlflow.is_tracking_uri_set(), mlflow.get_tracking_uri()) == before
    tags = tracker.client.get_run(tracker.parent_run_id).data.tags
    assert tags["best.model_trial"] == "0" and tags["best.model_id"].startswith("m-")


def test_publishing_the_same_best_again_logs_no_second_model(tracker: SweepTracker):
    tracker.publish_model(best(), None)
    first = tracker.client.get_run(tracker.parent_run_id).data.tags["best.model_id"]
    tracker.publish_model(best(), None)
    assert tracker.client.get_run(tracker.parent_run_id).data.tags["best.model_id"] == first


def test_a_registry_failure_is_a_one_line_warning_in_the_summary(tracker: SweepTracker,
                                                                 monkeypatch: pytest.MonkeyPatch):
    def refuse(_model_id: str, _name: str) -> str:
        raise MlflowException("the model registry is down\nstack trace follows")

    monkeypatch.setattr(tracker, "_register", refuse)
    published = tracker.publish_model(best(), "sentiment-best")
    assert published.uri is not None and published.registered is None
    assert published.warning == "the best model was not registered as 'sentiment-best': the model registry is down"
    summary = SweepSummary("unit", "unit", str(tracker.parent_run_id), "finished", Counts(1), best(), 1.0, 0.5, 1,
                           TrackingReport(model=published))
    assert f"warning: {published.warning}" in render_summary(summary).splitlines()


def test_without_a_completed_trial_only_a_requested_registration_warns(tracker: SweepTracker):
    assert tracker.publish_model(None, None).warning is None
    assert "no completed trial" in (tracker.publish_model(None, "sentiment-best").warning or "")
