"""The tracking layer's shared fixture: a tracker on a new MLflow store of the test's own."""

from __future__ import annotations

from pathlib import Path

import pytest

from sweep.records import SweepIdentity
from sweep.tracking.tracker import SweepTracker, open_tracker


@pytest.fixture
def tracker(mlflow_uri: str) -> SweepTracker:
    """A SweepTracker whose parent run is open, as the tracking process holds it during a sweep."""
    made = open_tracker(SweepIdentity("unit", "unit", mlflow_uri))
    made.parent.open(None, params={}, tags={}, config_yaml="trials: 1\n")
    return made


@pytest.fixture(autouse=True)
def in_tmp_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every tracking test runs in its tmp_path: MLflow puts a sqlite store's artifacts in ./mlruns of the
    working folder, which must not be the checkout."""
    monkeypatch.chdir(tmp_path)
