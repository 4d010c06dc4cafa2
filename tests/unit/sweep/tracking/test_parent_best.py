"""ParentRun.agree_best on an MLflow store under tmp_path: `sweep sync` makes the parent's best agree with the study."""

from __future__ import annotations

import numpy as np
import pytest

from sweep.records import BestTrial, SweepIdentity, TrialRecord
from sweep.tracking.parent import MODEL_JSON_TRIAL, MODEL_MISSING
from sweep.tracking.tracker import SweepTracker, open_tracker
from sweep.trainers.sentiment import SentimentTrainer
from trainer import Model

BUILTIN = SentimentTrainer.model_publishing()
OLD_MODEL = Model(("good", "bad"), np.array([2.0, -2.0]), 0.0).to_json()
NEW_MODEL = Model(("good", "bad"), np.array([3.0, -3.0]), 0.5).to_json()


@pytest.fixture
def tracker(mlflow_uri: str) -> SweepTracker:
    made = open_tracker(SweepIdentity("unit", "unit", mlflow_uri))
    made.store.connect()
    made.parent.open(None, params={}, tags={}, config_yaml="trials: 1\n")
    return made


def child(tracker: SweepTracker, number: int, model_json: str | None) -> str:
    """A finished child run of trial ``number``, with model.json when given (none: rebuilt by sync)."""
    return tracker.children.finish(TrialRecord(number, "COMPLETE", {"lr": 0.1}, 0.8, {"val_accuracy": 0.8},
                                               model_json=model_json))


def best(number: int, run_id: str | None) -> BestTrial:
    return BestTrial(number, run_id, 0.9, {"lr": 0.1}, {"val_accuracy": 0.9}, None)


def parent_state(tracker: SweepTracker) -> tuple[dict[str, str], set[str]]:
    parent = str(tracker.parent.run_id)
    return (tracker.store.client.get_run(parent).data.tags,
            {info.path for info in tracker.store.client.list_artifacts(parent, "best")})


def show_old_best(tracker: SweepTracker) -> str:
    """The parent as an outage leaves it: trial 1's best, model.json and pyfunc model tags."""
    old = child(tracker, 1, OLD_MODEL)
    tracker.parent.record_best(BestTrial(1, old, 0.8, {"lr": 0.2}, {}, OLD_MODEL), "val_accuracy")
    tracker.store.client.set_tag(str(tracker.parent.run_id), "best.model_trial", "1")
    return old


def test_a_best_whose_model_was_never_logged_replaces_the_stale_one_and_says_how_to_get_it(tracker: SweepTracker):
    show_old_best(tracker)
    rebuilt = child(tracker, 6, None)
    agreement = tracker.parent.agree_best(best(6, rebuilt), "val_accuracy", BUILTIN)
    tags, files = parent_state(tracker)
    assert tags["best.trial"] == "6" and tags["best.run_id"] == rebuilt
    assert "best/model.json" not in files and MODEL_JSON_TRIAL not in tags  # no trial 1 model under trial 6's name
    assert "best.model_trial" not in tags and "best.model_uri" not in tags
    assert agreement.missing is not None and agreement.missing.startswith("trial 6's model.json")
    assert "sweep best --name unit --format yaml > best.yaml && train --config best.yaml" in agreement.missing
    assert tags[MODEL_MISSING] == agreement.missing and not agreement.model_json and agreement.repaired


def test_a_second_agreement_check_finds_nothing_once_the_parent_agrees(tracker: SweepTracker):
    show_old_best(tracker)
    rebuilt = child(tracker, 6, None)
    tracker.parent.agree_best(best(6, rebuilt), "val_accuracy", BUILTIN)
    again = tracker.parent.agree_best(best(6, rebuilt), "val_accuracy", BUILTIN)
    assert again.repaired == [] and again.missing is not None


def test_a_stale_run_id_under_the_right_trial_is_a_disagreement(tracker: SweepTracker):
    old = show_old_best(tracker)
    kept = child(tracker, 6, NEW_MODEL)
    tracker.parent.record_best(BestTrial(6, old, 0.9, {"lr": 0.1}, {}, None), "val_accuracy")  # trial 6, old run
    agreement = tracker.parent.agree_best(best(6, kept), "val_accuracy", BUILTIN)
    tags, _ = parent_state(tracker)
    assert tags["best.run_id"] == kept and agreement.repaired


def test_the_best_trials_model_json_is_copied_from_its_child_run_onto_the_parent(tracker: SweepTracker):
    show_old_best(tracker)
    kept = child(tracker, 6, NEW_MODEL)
    agreement = tracker.parent.agree_best(best(6, kept), "val_accuracy", BUILTIN)
    tags, files = parent_state(tracker)
    assert "best/model.json" in files and tags[MODEL_JSON_TRIAL] == "6"
    assert tracker.store.download_text(str(tracker.parent.run_id), "best/model.json") == NEW_MODEL
    assert agreement.model_json and agreement.missing is None and agreement.model_trial == 1  # pyfunc: republish
    assert tracker.parent.agree_best(best(6, kept), "val_accuracy", BUILTIN).repaired == []


def test_a_best_recorded_without_a_run_id_removes_the_older_bests_run_id(tracker: SweepTracker):
    show_old_best(tracker)
    tracker.parent.record_best(best(6, None), "val_accuracy")
    tags, _ = parent_state(tracker)
    assert tags["best.trial"] == "6" and "best.run_id" not in tags
