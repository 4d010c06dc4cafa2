"""Child and parent runs on an MLflow store under tmp_path: what the runs table shows of a trial and of the best."""

from __future__ import annotations

import numpy as np

from sweep.records import BestTrial, TrialRecord, TrialState
from sweep.tracking.tracker import SweepTracker
from trainer import Model

MODEL_JSON = Model(("good", "bad"), np.array([2.0, -2.0]), 0.0).to_json()


def record(number: int, state: TrialState) -> TrialRecord:
    return TrialRecord(number, state, {"lr": 0.5}, metrics={"val_accuracy": 0.6}, start_ms=1, end_ms=2)


def test_a_pruned_childs_run_name_says_pruned_and_its_status_stays_killed(tracker: SweepTracker):
    pruned = tracker.store.client.get_run(tracker.children.finish(record(12, "PRUNED")))
    assert (pruned.info.run_name, pruned.info.status) == ("trial-12 (pruned)", "KILLED")
    complete = tracker.store.client.get_run(tracker.children.finish(record(13, "COMPLETE")))
    assert (complete.info.run_name, complete.info.status) == ("trial-13", "FINISHED")


def test_a_child_left_running_and_reconciled_as_pruned_is_named_pruned(tracker: SweepTracker):
    run_id = tracker.children.start(3, 1)
    assert tracker.children.reconcile([record(3, "PRUNED")]).repaired == [3]
    assert tracker.store.client.get_run(run_id).info.run_name == "trial-3 (pruned)"


def test_the_parent_carries_the_objective_once_as_best_metric(tracker: SweepTracker):
    tracker.parent.record_best(BestTrial(2, None, 0.8, {"lr": 0.5}, {"val_accuracy": 0.8, "val_loss": 0.4},
                                         MODEL_JSON), "val_accuracy")
    metrics = tracker.store.client.get_run(tracker.parent.id()).data.metrics
    assert metrics == {"best_val_accuracy": 0.8, "best.val_loss": 0.4}
