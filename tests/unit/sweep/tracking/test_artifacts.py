"""read_local_artifact_text: a run's artifact straight from a local SQLite store's folders, else None (ask MLflow)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sweep.records import SweepIdentity, TrialRecord
from sweep.tracking.artifacts import local_folder, read_local_artifact_text, sqlite_path
from sweep.tracking.tracker import open_tracker


def test_a_local_runs_model_json_is_read_from_its_artifact_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                  mlflow_uri: str):
    monkeypatch.chdir(tmp_path)  # the sweep's defaults: ./mlflow.db (mlflow_uri's), artifacts under ./mlruns
    tracker = open_tracker(SweepIdentity("unit", "unit", "sqlite:///mlflow.db"))
    tracker.parent.open(None, params={}, tags={}, config_yaml="trials: 1\n")
    run_id = tracker.children.finish(TrialRecord(0, "COMPLETE", {"lr": 0.5}, model_json='{"a": 1}'))
    assert read_local_artifact_text(run_id, "model.json", "sqlite:///mlflow.db") == '{"a": 1}'
    assert read_local_artifact_text(run_id, "absent.json", "sqlite:///mlflow.db") is None
    assert read_local_artifact_text("no-such-run", "model.json", "sqlite:///mlflow.db") is None
    assert read_local_artifact_text(run_id, "model.json", "sqlite:///elsewhere.db") is None
    assert not (tmp_path / "elsewhere.db").exists()


def test_a_file_that_is_no_mlflow_database_gives_none(tmp_path: Path):
    (tmp_path / "other.db").write_text("not a database", encoding="utf-8")
    assert read_local_artifact_text("r", "model.json", f"sqlite:///{tmp_path / 'other.db'}") is None


@pytest.mark.parametrize(("uri", "path"), [("sqlite:///mlflow.db", Path("mlflow.db")),
                                           ("sqlite:////tmp/x/mlflow.db", Path("/tmp/x/mlflow.db")),
                                           ("postgresql://db/mlflow", None), ("http://mlflow:5000", None),
                                           ("sqlite:///:memory:", None), ("sqlite:///a.db?mode=ro", None)])
def test_only_a_sqlite_file_is_read_directly(uri: str, path: Path | None):
    assert sqlite_path(uri) == path


@pytest.mark.parametrize(("uri", "folder"), [("/data/mlruns/1/r/artifacts", Path("/data/mlruns/1/r/artifacts")),
                                             ("file:///data/ml%20runs/1", Path("/data/ml runs/1")),
                                             ("mlflow-artifacts:/1/r/artifacts", None), ("s3://bucket/1", None)])
def test_only_a_local_artifact_location_is_read_directly(uri: str, folder: Path | None):
    assert local_folder(uri) == folder
