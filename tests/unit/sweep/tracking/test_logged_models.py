"""A function trainer's best model on an MLflow store under tmp_path: the parent points at the model its best
trial logged itself (autolog, log_model), registers that one, and stays quiet when the trial logged none."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pandas as pd
import pytest

from sweep.records import TRIAL_LOGGED_MODEL, BestTrial, SweepIdentity, TrialRecord
from sweep.tracking.publishing import global_tracking_uri
from sweep.tracking.tracker import SweepTracker, open_tracker


class Doubler(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):  # no type hints: MLflow would read a signature from them
        return model_input["x"] * 2


@pytest.fixture
def tracker(tmp_path: Path) -> SweepTracker:
    made = open_tracker(SweepIdentity("fn", "fn", f"sqlite:///{tmp_path / 'mlflow.db'}"))
    made.store.connect()
    made.parent.open(None, params={}, tags={}, config_yaml="trials: 1\n")
    return made


def trial_run(tracker: SweepTracker, number: int, *, with_model: bool) -> str:
    """A finished child run whose trial's own code ran with it active (mlflow: active), logging a model or not."""
    run_id = tracker.children.start(number, 0)
    if with_model:
        with global_tracking_uri(tracker.store.uri), mlflow.start_run(run_id=run_id):
            mlflow.pyfunc.log_model(name="model", python_model=Doubler(), pip_requirements=[])
            mlflow.end_run(status="RUNNING")  # the tracking process ends it with the trial's status
    return tracker.children.finish(TrialRecord(number, "COMPLETE", {"x": 1.5, "depth": 3}, 0.9, {"score": 0.9},
                                               run_id=run_id, mlflow_active=True))


def best(number: int, run_id: str | None) -> BestTrial:
    return BestTrial(number, run_id, 0.9, {"x": 1.5, "depth": 3}, {"score": 0.9}, None)


def parent_tags(tracker: SweepTracker) -> dict[str, str]:
    return tracker.store.client.get_run(tracker.parent.id()).data.tags


def test_the_parent_points_at_the_model_the_best_trial_logged_and_logs_no_pyfunc_of_its_own(tracker):
    run_id = trial_run(tracker, 4, with_model=True)
    model_id = tracker.store.client.get_run(run_id).data.tags["sweep.model_uri"].removeprefix("models:/")
    published = tracker.publisher.publish_model(best(4, run_id), None, TRIAL_LOGGED_MODEL)
    assert (published.uri, published.trial, published.warning) == (f"models:/{model_id}", 4, None)
    tags = parent_tags(tracker)
    assert (tags["best.model_uri"], tags["best.model_id"], tags["best.model_trial"]) == (
        f"models:/{model_id}", model_id, "4")
    logged = tracker.store.client.search_logged_models([tracker.store.experiment()])
    assert [model.model_id for model in logged] == [model_id]  # no `fn-best` pyfunc model
    with global_tracking_uri(tracker.store.uri):
        loaded = mlflow.pyfunc.load_model(published.uri)
    assert list(loaded.predict(pd.DataFrame({"x": [1.0, 2.5]}))) == [2.0, 5.0]


def test_register_registers_the_trials_own_model(tracker):
    run_id = trial_run(tracker, 0, with_model=True)
    published = tracker.publisher.publish_model(best(0, run_id), "fn-model", TRIAL_LOGGED_MODEL)
    assert published.registered == "fn-model/1" and published.warning is None
    version = tracker.store.client.get_model_version("fn-model", "1")
    assert version.source == parent_tags(tracker)["best.model_uri"] and version.run_id == run_id
    assert parent_tags(tracker)["best.registered_model"] == "fn-model/1"


def test_a_best_trial_that_logged_no_model_publishes_nothing_and_warns_nothing(tracker):
    older = trial_run(tracker, 0, with_model=True)
    tracker.publisher.publish_model(best(0, older), "fn-model", TRIAL_LOGGED_MODEL)
    newer = trial_run(tracker, 1, with_model=False)
    published = tracker.publisher.publish_model(best(1, newer), None, TRIAL_LOGGED_MODEL)
    assert published.uri is None and published.warning is None
    tags = parent_tags(tracker)
    assert not {"best.model_uri", "best.model_id", "best.model_trial", "best.registered_model"} & set(tags)


def test_registering_when_the_best_trial_logged_no_model_says_why_in_one_line(tracker):
    run_id = trial_run(tracker, 2, with_model=False)
    published = tracker.publisher.publish_model(best(2, run_id), "fn-model", TRIAL_LOGGED_MODEL)
    assert published.registered is None
    assert published.warning == "the best trial 2 logged no MLflow model, so nothing was registered as 'fn-model'"


def test_ensure_best_records_a_function_trials_best_without_looking_for_model_json(tracker):
    run_id = trial_run(tracker, 3, with_model=False)
    tracker.parent.ensure_best(best(3, run_id), "score")
    tags = parent_tags(tracker)
    assert (tags["best.trial"], tags["best.run_id"], tags["best.x"], tags["best.depth"]) == ("3", run_id, "1.5", "3")
    assert tracker.store.artifact_paths(tracker.parent.id(), "best") == set()


def test_sync_agreement_drops_model_tags_of_an_older_best_and_says_whether_the_best_logged_one(tracker):
    older = trial_run(tracker, 0, with_model=True)
    tracker.publisher.publish_model(best(0, older), None, TRIAL_LOGGED_MODEL)
    newer = trial_run(tracker, 1, with_model=True)
    agreement = tracker.parent.agree_best(best(1, newer), "score", TRIAL_LOGGED_MODEL)
    assert agreement.logged_model and agreement.model_trial is None and agreement.missing is None
    assert "model tags of trial 0 removed" in agreement.repaired
    assert "best.model_id" not in parent_tags(tracker)
    again = tracker.parent.agree_best(best(1, newer), "score", TRIAL_LOGGED_MODEL)
    assert again.repaired == [] and again.logged_model
