"""`sweep sync` driven in-process (tests/support/inprocess.py) on a real journal and a real MLflow SQLite store:
child runs lost or left running, and a whole MLflow database lost, are rebuilt from the study, and a second sync
changes nothing. A tracking server that goes away mid-sweep is a real server: tests/e2e/test_sync_e2e.py."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.support import e2e, inprocess

pytestmark = pytest.mark.slow  # whole sweeps, in-process, on real stores


@pytest.mark.usefixtures("mlflow_db")
def test_sync_rebuilds_missing_and_stray_child_runs_idempotently(tmp_path: Path):
    e2e.write_config(tmp_path, "trials: 5\npruner: {name: none}\n" + e2e.FAST_SPACE)
    assert inprocess.sweep(tmp_path, "run", "--config", "sweep.yaml", "--name", "s5").returncode == 0
    client = e2e.mlflow_client(tmp_path)
    _, children = e2e.runs(tmp_path)
    client.delete_run(children[2].info.run_id)  # lost
    client.update_run(children[3].info.run_id, status="RUNNING")  # left running

    first = inprocess.sweep(tmp_path, "sync", "s5")
    assert first.returncode == 0, first.stderr
    assert "repaired 2 child runs (trials 2, 3)" in first.stdout
    _, children = e2e.runs(tmp_path)
    assert [int(c.data.tags["sweep.trial"]) for c in children] == list(range(5))
    assert all(c.info.status == "FINISHED" for c in children)
    rebuilt = children[2]
    assert rebuilt.data.params["lr"] and rebuilt.data.metrics["val_accuracy"] > 0

    second = inprocess.sweep(tmp_path, "sync", "s5")
    assert second.returncode == 0 and "nothing to repair" in second.stdout


@pytest.mark.usefixtures("mlflow_db")
def test_sync_after_the_mlflow_database_is_lost_relinks_the_study_and_predict_works(tmp_path: Path):
    e2e.write_config(tmp_path, "trials: 4\npruner: {name: none}\n" + e2e.FAST_SPACE)
    assert inprocess.sweep(tmp_path, "run", "--config", "sweep.yaml", "--name", "lost-db").returncode == 0
    for path in tmp_path.iterdir():
        if "mlflow.db" in path.name:
            path.unlink()
    for folder in ("mlruns", "mlartifacts"):
        if (tmp_path / folder).exists():
            shutil.rmtree(tmp_path / folder)

    synced = inprocess.sweep(tmp_path, "sync", "lost-db")
    assert synced.returncode == 0, synced.stderr
    assert "not found" not in synced.stdout + synced.stderr
    parent, children = e2e.runs(tmp_path)
    best = inprocess.sweep(tmp_path, "best", "--name", "lost-db", "--format", "json")
    shown = json.loads(best.stdout)
    by_trial = {int(child.data.tags["sweep.trial"]): child.info.run_id for child in children}
    assert shown["run_id"] == by_trial[shown["trial"]]  # the study follows the rebuilt runs
    assert parent.data.tags["best.run_id"] == by_trial[shown["trial"]]
    again = inprocess.sweep(tmp_path, "sync", "lost-db")
    assert "not found" not in again.stdout + again.stderr and "nothing to repair" in again.stdout, again.stdout
    predicted = inprocess.sweep(tmp_path, "predict", "--name", "lost-db", "a warm and funny film")
    # the rebuilt runs have no model.json (it lived in the trials' processes): say so in one line
    assert predicted.returncode == 1 and len(predicted.stderr.strip().splitlines()) == 1, predicted.stderr
    assert "model" in predicted.stderr and "Traceback" not in predicted.stderr
