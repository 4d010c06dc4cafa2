"""Child and parent runs on an MLflow store under tmp_path: what the runs table shows of a trial and of the best."""

from __future__ import annotations

import math

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


# MLflow's latest value of a metric is the point with the highest step, then timestamp, then value: the runs
# table shows and sorts on it, so it must be the trial's result, not its curve's last point

CURVE = {"val_loss": [(1, 0.9), (2, 0.5), (3, 0.31)]}


def test_a_result_below_the_curves_last_point_is_the_child_runs_latest_value(tracker: SweepTracker):
    done = TrialRecord(4, "COMPLETE", {"lr": 0.5}, 0.06, {"val_loss": 0.06}, CURVE, start_ms=1, end_ms=5000)
    client = tracker.store.client
    run_id = tracker.children.finish(done)
    assert client.get_run(run_id).data.metrics["val_loss"] == 0.06
    history = [(m.step, m.value) for m in client.get_metric_history(run_id, "val_loss")]
    assert sorted(history) == [(1, 0.9), (2, 0.5), (3, 0.06), (3, 0.31)]  # the curve, then the result


def test_a_result_equal_to_the_curves_last_point_is_that_point(tracker: SweepTracker):
    done = TrialRecord(5, "COMPLETE", {"lr": 0.5}, 0.31, {"val_loss": 0.31}, CURVE, start_ms=1, end_ms=5000)
    run_id = tracker.children.finish(done)
    history = [(m.step, m.value) for m in tracker.store.client.get_metric_history(run_id, "val_loss")]
    assert sorted(history) == [(1, 0.9), (2, 0.5), (3, 0.31)]


def own_curve(tracker: SweepTracker, run_id: str, end_ms: int) -> None:
    """What the trial's own code logs (mlflow: active, a command): a curve at later steps and times than the
    sweep's end timestamp of the trial."""
    for step, value in ((1, 0.9), (7, 0.5), (9, 0.31)):
        tracker.store.client.log_metric(run_id, "val_loss", value, timestamp=end_ms + 100 + step, step=step)


def test_a_result_after_the_trials_own_curve_is_the_child_runs_latest_value(tracker: SweepTracker):
    run_id = tracker.children.start(6, 1)
    own_curve(tracker, run_id, 5000)
    done = TrialRecord(6, "COMPLETE", {"lr": 0.5}, 0.06, {"val_loss": 0.06}, start_ms=1, end_ms=5000,
                       run_id=run_id, mlflow_active=True)
    tracker.children.finish(done)
    assert tracker.store.client.get_run(run_id).data.metrics["val_loss"] == 0.06


def test_a_run_left_running_and_reconciled_gets_the_result_as_its_latest_value(tracker: SweepTracker):
    run_id = tracker.children.start(7, 1)
    own_curve(tracker, run_id, 5000)
    done = TrialRecord(7, "COMPLETE", {"lr": 0.5}, 0.06, {"val_loss": 0.06}, start_ms=1, end_ms=5000)
    assert tracker.children.reconcile([done]).repaired == [7]
    run = tracker.store.client.get_run(run_id)
    assert (run.info.status, run.data.metrics["val_loss"]) == ("FINISHED", 0.06)


def test_a_param_the_trials_own_code_logged_otherwise_is_kept_and_the_sweeps_value_named(tracker: SweepTracker):
    run_id = tracker.children.start(8, 1)
    tracker.store.client.log_param(run_id, "lr", "999")  # mlflow: active code logging a setting of the same name
    done = TrialRecord(8, "COMPLETE", {"lr": 0.5, "l2": 0.1}, 0.6, {"val_accuracy": 0.6}, start_ms=1, end_ms=2,
                       run_id=run_id, mlflow_active=True)
    tracker.children.finish(done)
    run = tracker.store.client.get_run(run_id)
    assert run.data.params == {"lr": "999", "l2": "0.1"}
    assert run.data.tags["sweep.params_differ"] == "lr=0.5"


def test_a_run_left_running_with_a_param_logged_otherwise_is_reconciled_and_a_second_time_left_alone(
        tracker: SweepTracker):
    run_id = tracker.children.start(9, 1)
    tracker.store.client.log_param(run_id, "lr", "999")  # a sweep killed after its trial's code logged this
    failed = TrialRecord(9, "FAIL", {"lr": 0.5}, error="the sweep process died during this trial", start_ms=1,
                         end_ms=2)
    assert tracker.children.reconcile([failed]).repaired == [9]  # MLflow refused this every time before
    run = tracker.store.client.get_run(run_id)
    assert (run.info.status, run.data.tags["sweep.params_differ"]) == ("FAILED", "lr=0.5")
    assert tracker.children.reconcile([failed]).repaired == []


def test_what_mlflow_refuses_of_a_record_is_skipped_named_and_the_other_trials_repaired(tracker: SweepTracker):
    broken = TrialRecord(10, "COMPLETE", {"lr": 0.5}, 0.6, {"val_accuracy": 0.6, "": 1.0}, start_ms=1, end_ms=2)
    reconciled = tracker.children.reconcile([broken, record(11, "COMPLETE")])  # a study written before validation
    assert reconciled.repaired == [10, 11]
    assert list(reconciled.refused) == [10] and "metrics[1].name" in reconciled.refused[10]
    runs = {number: tracker.store.client.get_run(run_id) for number, run_id in reconciled.run_ids.items()}
    assert runs[10].info.status == "FINISHED" and runs[10].data.tags["sweep.refused"] == reconciled.refused[10]
    assert runs[11].info.status == "FINISHED" and runs[11].data.metrics["val_accuracy"] == 0.6
    assert tracker.store.client.get_run(tracker.parent.id()).info.status == "RUNNING"  # the parent is untouched
    assert tracker.children.reconcile([broken, record(11, "COMPLETE")]).repaired == []


def test_a_run_without_a_result_never_outranks_a_complete_one_in_the_runs_table(tracker: SweepTracker):
    # a pruned trial whose curve reached a loss below every complete trial's result, and a failed one
    pruned = TrialRecord(0, "PRUNED", {"lr": 0.5}, metrics={}, curves={"val_loss": [(0, 0.9), (1, 0.01)]},
                         start_ms=1, end_ms=10)
    failed = TrialRecord(1, "FAIL", {"lr": 0.4}, metrics={}, curves={"val_loss": [(0, 0.02)]}, error="boom",
                         start_ms=1, end_ms=10)
    complete = [TrialRecord(n, "COMPLETE", {"lr": 0.1 * n}, 0.1 * n, {"val_loss": 0.1 * n},
                            curves={"val_loss": [(0, 0.5), (1, 0.1 * n)]}, start_ms=1, end_ms=10) for n in (2, 3)]
    runs = {record.number: tracker.children.finish(record) for record in (pruned, failed, *complete)}
    client = tracker.store.client
    for order in ("ASC", "DESC"):  # as the UI asks for the table sorted on the objective, either direction
        table = client.search_runs([tracker.store.experiment()], filter_string="tags.`sweep.trial` != ''",
                                   order_by=[f"metrics.`val_loss` {order}"])
        numbers = [int(run.data.tags["sweep.trial"]) for run in table]
        assert numbers[:2] == ([2, 3] if order == "ASC" else [3, 2]) and set(numbers[2:]) == {0, 1}
    history = [point.value for point in client.get_metric_history(runs[0], "val_loss")]
    assert history[:2] == [0.9, 0.01] and math.isnan(history[-1])  # the curve keeps what the trial reached
