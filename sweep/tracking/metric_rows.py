"""A new child run's metrics written as rows, many to a statement.

MLflow's SQL store logs a batch's metrics one ORM object at a time and then compares every point with its key's
latest one in Python: for a trial whose curves hold hundreds of points that costs more than a short trial's
training. A child run that the sweep created and that nothing else wrote to (no `mlflow: active`, no command:
the loop knows) holds no metric when its trial ends, so the rows MLflow would write can go in directly: every
point to the table of points, each key's latest point to the table of latest points, one INSERT of many rows
each, in one transaction.

Only for a SQLite store whose two tables have exactly the columns written here, and only for a batch MLflow
would take as it is (plain names, numbers, integer steps and timestamps, no two points stored as one row):
anything else is left to MLflow's log_batch, which judges it as before. tests/unit/sweep/tracking/
test_metric_rows.py compares the rows with the ones MLflow's log_batch writes for every kind of batch a trial
sends.
"""

from __future__ import annotations

import math
import numbers
import posixpath
import re
import threading
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from mlflow.entities import Metric

PLAIN_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\- /]{0,249}")  # a subset of what MLflow accepts
COLUMNS = frozenset({"key", "value", "timestamp", "step", "is_nan", "run_uuid"})
LARGEST_DOUBLE = 1.7976931348623157e308  # MLflow stores an infinity as the largest finite double of its sign

Row = dict[str, Any]


def stored_value(value: float) -> tuple[float, bool]:
    """(value, is_nan) as MLflow's SQL store keeps a metric's value: NaN as 0, infinities as the largest doubles."""
    if math.isnan(value):
        return 0.0, True
    if math.isinf(value):
        return (LARGEST_DOUBLE if value > 0 else -LARGEST_DOUBLE), False
    return float(value), False


def plain_name(key: object) -> bool:
    """A metric name MLflow takes without a second look."""
    return isinstance(key, str) and PLAIN_NAME.fullmatch(key) is not None and posixpath.normpath(key) == key


def plain(metric: Metric, names: dict[str, bool] | None = None) -> bool:
    """A point MLflow takes without a second look: a plain name, a number, integer step and timestamp, no model
    or dataset. ``names``: the names judged so far (a curve repeats a few names hundreds of times)."""
    value, step, timestamp, key = metric.value, metric.step, metric.timestamp, metric.key
    known = names.get(key) if names is not None and isinstance(key, str) else None
    named = plain_name(key) if known is None else known
    if known is None and names is not None and isinstance(key, str):
        names[key] = named
    return (named
            and isinstance(value, numbers.Real) and not isinstance(value, bool)
            and isinstance(step, int) and not isinstance(step, bool)
            and isinstance(timestamp, int) and not isinstance(timestamp, bool) and timestamp >= 0
            and metric.model_id is None and metric.dataset_name is None and metric.dataset_digest is None)


def rows_of(run_id: str, metrics: Sequence[Metric]) -> tuple[list[Row], list[Row]] | None:
    """The rows of the points and of each key's latest point, as MLflow's log_batch writes them to a run without
    metrics; None when MLflow must judge the batch (a point not plain, or two that differ but would be one row).

    MLflow drops a point equal to an earlier one, and a key's latest point is the greatest (step, timestamp,
    stored value), the first of equals."""
    points: dict[tuple[Any, ...], Metric] = {}
    latest: dict[str, Row] = {}
    names: dict[str, bool] = {}
    for metric in metrics:
        if not plain(metric, names):
            return None
        value, is_nan = stored_value(metric.value)
        identity = (metric.key, metric.timestamp, metric.step, value, is_nan)
        earlier = points.get(identity)
        if earlier is not None:
            if earlier == metric and not math.isnan(metric.value):
                continue  # the same point twice: MLflow keeps it once
            return None  # NaN, or an infinity and the largest double: MLflow's own duplicate handling decides
        points[identity] = metric
        row = {"key": metric.key, "value": value, "timestamp": metric.timestamp, "step": metric.step,
               "is_nan": is_nan, "run_uuid": run_id}
        current = latest.get(metric.key)
        if current is None or (row["step"], row["timestamp"], value) > (current["step"], current["timestamp"],
                                                                        current["value"]):
            latest[metric.key] = row
    rows = [{"key": key, "value": value, "timestamp": timestamp, "step": step, "is_nan": is_nan, "run_uuid": run_id}
            for key, timestamp, step, value, is_nan in points]
    return rows, list(latest.values())


class MetricRows:
    """Writes a new run's metrics straight into one SQLite MLflow store (``uri``: ``sqlite:///...``)."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self._lock = threading.Lock()  # the hub's sessions write from threads of their own
        self._tables: tuple[sa.Engine, sa.Table, sa.Table] | None = None  # None: not usable (or not looked at)
        self._looked = False  # the first write looks at the tables

    def write(self, run_id: str, metrics: Sequence[Metric]) -> bool:
        """Write ``metrics`` to a run that holds none; False (nothing written) when the batch, the tables or the
        run are not what this writer handles: MLflow's log_batch is the caller's to use then."""
        rows = rows_of(run_id, metrics)
        tables = self._open() if rows is not None else None
        if rows is None or tables is None:
            return False
        if not rows[0]:
            return True
        engine, points, latest = tables
        with engine.begin() as connection:
            held = connection.execute(sa.select(latest.c.key).where(latest.c.run_uuid == run_id).limit(1)).first()
            if held is not None:
                return False  # the run has metrics of its own: only MLflow knows how the two merge
            connection.execute(sa.insert(points), rows[0])
            connection.execute(sa.insert(latest), rows[1])
        return True

    def close(self) -> None:
        if self._tables is not None:
            self._tables[0].dispose()

    def forget_inherited_connections(self) -> None:
        """In a forked copy of the process: new connections from here on, those shared with the original left open
        for it (SQLAlchemy's way for a fork, as store.reconnect_after_fork does for MLflow's engines)."""
        if self._tables is not None:
            self._tables[0].dispose(close=False)

    def _open(self) -> tuple[sa.Engine, sa.Table, sa.Table] | None:
        with self._lock:
            if not self._looked:
                self._looked = True
                engine = sa.create_engine(self.uri)
                tables = sa.MetaData()
                try:
                    points = sa.Table("metrics", tables, autoload_with=engine)
                    latest = sa.Table("latest_metrics", tables, autoload_with=engine)
                except sa.exc.SQLAlchemyError:
                    points = latest = None
                if (points is not None and latest is not None and {c.name for c in points.columns} == COLUMNS
                        and {c.name for c in latest.columns} == COLUMNS):
                    self._tables = (engine, points, latest)  # type: ignore[assignment]
                else:
                    engine.dispose()
            return self._tables
