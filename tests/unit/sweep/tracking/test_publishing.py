"""Publisher.publish_model on an MLflow store under tmp_path: the pyfunc model, and failures as warnings."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pytest
from mlflow.exceptions import MlflowException

from sweep.engine import SweepSummary
from sweep.records import BestTrial, Counts, PublishedModel, TrackingReport
from sweep.tracking.publishing import Publisher, copied_sources, global_tracking_uri
from sweep.tracking.tracker import SweepTracker
from sweep.trainers.sentiment import SentimentTrainer, pyfunc_recipe
from sweep.views import render_summary
from tests.support import e2e, inprocess
from tests.support.stores import copy_mlflow_db
from trainer import Model

BUILTIN = SentimentTrainer.model_publishing()
RECIPE = pyfunc_recipe()
MODEL_JSON = Model(("good", "bad"), np.array([2.0, -2.0]), 0.0).to_json()


def best(number: int = 0) -> BestTrial:
    return BestTrial(number, None, 0.8, {"lr": 0.5}, {"val_accuracy": 0.8}, MODEL_JSON)


def test_publish_model_logs_a_pyfunc_model_and_leaves_the_tracking_uri_as_it_was(tracker: SweepTracker):
    before = (mlflow.is_tracking_uri_set(), mlflow.get_tracking_uri())
    published = tracker.publisher.publish_model(best(), None, BUILTIN)
    assert published.uri == f"runs:/{tracker.parent.run_id}/unit-best" and published.trial == 0
    assert published.registered is None and published.warning is None
    assert (mlflow.is_tracking_uri_set(), mlflow.get_tracking_uri()) == before
    tags = tracker.store.client.get_run(tracker.parent.run_id).data.tags
    assert tags["best.model_trial"] == "0" and tags["best.model_id"].startswith("m-")


def test_publishing_the_same_best_again_logs_no_second_model(tracker: SweepTracker):
    tracker.publisher.publish_model(best(), None, BUILTIN)
    first = tracker.store.client.get_run(tracker.parent.run_id).data.tags["best.model_id"]
    tracker.publisher.publish_model(best(), None, BUILTIN)
    assert tracker.store.client.get_run(tracker.parent.run_id).data.tags["best.model_id"] == first


def test_the_model_is_named_after_the_sweep_and_loads_from_its_uri(tracker: SweepTracker):
    published = tracker.publisher.publish_model(best(), None, BUILTIN)
    assert published.uri is not None
    model_id = tracker.store.client.get_run(tracker.parent.run_id).data.tags["best.model_id"]
    assert tracker.store.client.get_logged_model(model_id).name == "unit-best"
    with global_tracking_uri(tracker.store.uri):
        assert mlflow.models.get_model_info(published.uri).model_id == model_id


def test_a_model_logged_by_another_process_meanwhile_is_not_logged_again(tracker: SweepTracker,
                                                                       monkeypatch: pytest.MonkeyPatch):
    other = tracker.publisher.log_pyfunc(MODEL_JSON, 0, RECIPE)  # the other process's model, its tags not yet read
    model_json = tracker.publisher._model_json

    def then_the_other_tags_it(best_trial: BestTrial, tags: dict[str, str]) -> str:
        tracker.store.client.set_tag(tracker.parent.id(), "best.model_id", other)
        tracker.store.client.set_tag(tracker.parent.id(), "best.model_trial", "0")
        return model_json(best_trial, tags)

    monkeypatch.setattr(tracker.publisher, "_model_json", then_the_other_tags_it)
    monkeypatch.setattr(tracker.publisher, "log_pyfunc", lambda *_: pytest.fail("logged a second model"))
    assert tracker.publisher.publish_model(best(), None, BUILTIN).trial == 0


def test_a_worker_that_does_not_own_the_parent_logs_no_model(tracker: SweepTracker,
                                                            monkeypatch: pytest.MonkeyPatch):
    tracker.parent.attach(tracker.parent.id())
    monkeypatch.setattr(tracker.publisher, "log_pyfunc", lambda *_: pytest.fail("a worker logged a model"))
    assert tracker.publisher.publish_model(best(), None, BUILTIN) == PublishedModel()
    assert "best.model_id" not in tracker.store.client.get_run(tracker.parent.id()).data.tags


def test_a_registry_failure_is_a_one_line_warning_in_the_summary(tracker: SweepTracker,
                                                                 monkeypatch: pytest.MonkeyPatch):
    def refuse(_model_id: str, _name: str, _source_run: str | None = None) -> str:
        raise MlflowException("the model registry is down\nstack trace follows")

    monkeypatch.setattr(tracker.publisher, "register", refuse)
    published = tracker.publisher.publish_model(best(), "sentiment-best", BUILTIN)
    assert published.uri is not None and published.registered is None
    assert published.warning == "the best model was not registered as 'sentiment-best': the model registry is down"
    summary = SweepSummary("unit", "unit", str(tracker.parent.run_id), "finished", Counts(1), best(), 1.0, 0.5, 1,
                           TrackingReport(model=published))
    assert f"warning: {published.warning}" in render_summary(summary).splitlines()


def test_without_a_completed_trial_only_a_requested_registration_warns(tracker: SweepTracker):
    assert tracker.publisher.publish_model(None, None, BUILTIN).warning is None
    assert "no completed trial" in (tracker.publisher.publish_model(None, "sentiment-best", BUILTIN).warning or "")


def test_a_recipes_sources_are_copied_under_their_paths_and_given_by_top_level_folder(tmp_path):
    (tmp_path / "a.py").write_text("A = 1\n", encoding="utf-8")
    (tmp_path / "b.py").write_text("B = 2\n", encoding="utf-8")
    folder = tmp_path / "code"
    paths = copied_sources({"pkg/a.py": str(tmp_path / "a.py"), "pkg/sub/b.py": str(tmp_path / "b.py"),
                            "single.py": str(tmp_path / "a.py")}, folder)
    assert paths == [str(folder / "pkg"), str(folder / "single.py")]
    assert (folder / "pkg" / "sub" / "b.py").read_text(encoding="utf-8") == "B = 2\n"


WARM_UP = """
from types import SimpleNamespace
from mlflow.utils import requirements_utils
from sweep.tracking.publishing import Publisher

assert requirements_utils._PACKAGES_TO_MODULES is None  # a fresh process: the map is built on first use
publisher = Publisher(SimpleNamespace(store=None))
publisher.warm_up()
publisher.warming.join()
print("built" if requirements_utils._PACKAGES_TO_MODULES else "not built")
"""


@pytest.mark.slow  # a process or a sweep of its own
def test_a_warm_up_builds_what_logging_the_model_needs_before_the_end():
    """MLflow's package map (every installed package's metadata read) is built while the trials run, in a process
    of its own: this one may have built it already."""
    done = subprocess.run([sys.executable, "-c", WARM_UP], capture_output=True, text=True, check=False,
                          env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"})
    assert done.stdout.strip() == "built", done.stderr


@pytest.mark.slow  # a process or a sweep of its own
def test_the_built_in_trainers_sweep_warms_up_its_model_logging(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                  mlflow_template: Path):
    warmed: list[str] = []
    monkeypatch.setattr(Publisher, "warm_up", lambda publisher: warmed.append(publisher.store.identity.name))
    copy_mlflow_db(mlflow_template, tmp_path)
    e2e.write_config(tmp_path, "trials: 2\npruner: {name: none}\n" + e2e.FAST_SPACE)
    result = inprocess.sweep(tmp_path, "run", "--config", "sweep.yaml", "--name", "warm")
    assert result.returncode == 0, result.stderr
    assert warmed == ["warm"]
