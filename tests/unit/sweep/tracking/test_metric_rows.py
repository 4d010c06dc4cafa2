"""A new child run's metrics written as rows: the same rows MLflow's own log_batch writes, on a real SQLite store,
or nothing written and MLflow's log_batch left to judge the batch."""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mlflow.entities import Metric

from sweep.records import TrialRecord
from sweep.tracking.children import final_and_curves, no_result_marks
from sweep.tracking.metric_rows import LARGEST_DOUBLE, MetricRows
from sweep.tracking.tracker import SweepTracker


def rows(database: Path, table: str, run_id: str) -> list[tuple]:
    with sqlite3.connect(database) as connection:
        return sorted(connection.execute(f"SELECT key, value, timestamp, step, is_nan FROM {table} "
                                         "WHERE run_uuid = ?", (run_id,)).fetchall())


def database_of(tracker: SweepTracker) -> Path:
    return Path(tracker.store.uri.removeprefix("sqlite:///"))


def both_ways(tracker: SweepTracker, metrics: list[Metric]) -> tuple[str, str]:
    """One new run written by MLflow's log_batch, one by MetricRows (which must take the batch)."""
    client = tracker.store.client
    by_mlflow, by_rows = tracker.children.start(1, 1), tracker.children.start(2, 1)
    client.log_batch(by_mlflow, metrics=metrics)
    assert tracker.store.metric_rows is not None and tracker.store.metric_rows.write(by_rows, metrics)
    return by_mlflow, by_rows


def assert_same_rows(tracker: SweepTracker, by_mlflow: str, by_rows: str) -> None:
    database = database_of(tracker)
    for table in ("metrics", "latest_metrics"):
        assert rows(database, table, by_rows) == rows(database, table, by_mlflow), table
    client = tracker.store.client
    shown = [repr(sorted(client.get_run(run_id).data.metrics.items())) for run_id in (by_rows, by_mlflow)]
    assert shown[0] == shown[1]  # reprs: a NaN equals no NaN


CURVES = {"val_loss": [(1, 0.9), (2, 0.5), (3, 0.31)], "val_accuracy": [(1, 0.5), (2, 0.7), (3, 0.8)],
          "train_loss": [(1, 1.0), (2, 0.4), (3, 0.2)]}


def test_a_trials_curves_and_results_are_the_rows_mlflow_writes(tracker: SweepTracker):
    # a result equal to its curve's last point (val_accuracy), one that differs (val_loss), one without a curve
    metrics = final_and_curves({"val_accuracy": 0.8, "val_loss": 0.06, "test_accuracy": 0.75}, CURVES, 3, 5000)
    assert_same_rows(tracker, *both_ways(tracker, metrics))


def test_a_pruned_trials_nan_marks_are_the_rows_mlflow_writes(tracker: SweepTracker):
    pruned = TrialRecord(3, "PRUNED", {"lr": 0.5}, None, {}, CURVES, start_ms=1, end_ms=4000)
    metrics = final_and_curves({}, CURVES, 3, 4000) + no_result_marks(pruned, {})
    by_mlflow, by_rows = both_ways(tracker, metrics)
    assert_same_rows(tracker, by_mlflow, by_rows)
    assert math.isnan(tracker.store.client.get_run(by_rows).data.metrics["val_loss"])


def test_infinities_signed_zeros_repeats_and_ties_are_the_rows_mlflow_writes(tracker: SweepTracker):
    metrics = [Metric("a", math.inf, 5, 1), Metric("b", -math.inf, 5, 1), Metric("c", -0.0, 5, 1),
               Metric("c", 0.0, 5, 1), Metric("d", 1.0, 5, 2), Metric("d", 1.0, 5, 2), Metric("d", 2.0, 5, 2),
               Metric("d", 3.0, 4, 2), Metric("e", 1.0, 7, -3), Metric("e", 0.5, 9, -3)]
    assert_same_rows(tracker, *both_ways(tracker, metrics))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.builds(Metric, st.sampled_from(["loss", "acc", "val/loss"]),
                          st.one_of(st.floats(-1e300, 1e300), st.sampled_from([0.0, 1.0, -1.0, math.inf, -math.inf])),
                          st.integers(0, 3), st.integers(-2, 3)), max_size=30))
def test_any_plain_batch_is_the_rows_mlflow_writes(tracker: SweepTracker, metrics: list[Metric]):
    assert_same_rows(tracker, *both_ways(tracker, metrics))


@pytest.mark.parametrize("metrics", [
    [Metric("a//b", 1.0, 1, 1)],  # names MLflow judges itself (it may refuse them)
    [Metric("../x", 1.0, 1, 1)],
    [Metric("naïve", 1.0, 1, 1)],
    [Metric("a", True, 1, 1)],  # a bool is not a metric value to MLflow
    [Metric("a", 1.0, 1, 1.5)],
    [Metric("a", math.nan, 1, 1), Metric("a", math.nan, 1, 1)],  # two points MLflow would store as one row
    [Metric("a", math.inf, 1, 1), Metric("a", LARGEST_DOUBLE, 1, 1)],
], ids=["double-slash", "dot-dot", "non-ascii", "bool", "float-step", "nan-twice", "inf-and-largest"])
def test_a_batch_mlflow_must_judge_is_not_written(tracker: SweepTracker, metrics: list[Metric]):
    run_id = tracker.children.start(1, 1)
    assert tracker.store.metric_rows is not None and not tracker.store.metric_rows.write(run_id, metrics)
    assert rows(database_of(tracker), "metrics", run_id) == []


def test_a_run_that_holds_metrics_is_left_to_mlflow(tracker: SweepTracker):
    run_id = tracker.children.start(1, 1)
    tracker.store.client.log_batch(run_id, metrics=[Metric("own", 1.0, 1, 0)])
    assert tracker.store.metric_rows is not None
    assert not tracker.store.metric_rows.write(run_id, [Metric("val_loss", 0.5, 2, 1)])
    assert rows(database_of(tracker), "metrics", run_id) == [("own", 1.0, 1, 0, 0)]


def test_tables_with_other_columns_are_never_written(tracker: SweepTracker):
    with sqlite3.connect(database_of(tracker)) as connection:
        connection.execute("ALTER TABLE metrics ADD COLUMN shard INTEGER")
    run_id = tracker.children.start(1, 1)
    writer = MetricRows(tracker.store.uri)
    assert not writer.write(run_id, [Metric("val_loss", 0.5, 2, 1)])
    writer.close()
    assert rows(database_of(tracker), "metrics", run_id) == []


def test_a_finished_trials_run_shows_its_metrics_whichever_way_they_went(tracker: SweepTracker,
                                                                       monkeypatch: pytest.MonkeyPatch):
    """The child run of a trial: rows for a run only the sweep wrote to, MLflow's log_batch for one the trial's
    own code logged to (`mlflow: active`); both show the result as the latest value and the whole curve."""
    client = tracker.store.client
    points_through_mlflow: list[int] = []
    log_batch = client.log_batch
    monkeypatch.setattr(client, "log_batch", lambda run_id, metrics=(), **rest: (
        points_through_mlflow.append(len(metrics)), log_batch(run_id, metrics=metrics, **rest))[1])
    for number, active in ((5, False), (6, True)):
        done = TrialRecord(number, "COMPLETE", {"lr": 0.5}, 0.06, {"val_loss": 0.06}, CURVES, start_ms=1,
                           end_ms=5000, mlflow_active=active)
        points_through_mlflow.clear()
        run = client.get_run(tracker.children.finish(done))
        assert (max(points_through_mlflow) > 0) == active  # points through log_batch only for `mlflow: active`
        assert run.data.metrics["val_loss"] == 0.06
        assert [m.value for m in client.get_metric_history(run.info.run_id, "val_loss")] == [0.9, 0.5, 0.31, 0.06]
        assert run.info.status == "FINISHED" and run.data.params == {"lr": "0.5"}
