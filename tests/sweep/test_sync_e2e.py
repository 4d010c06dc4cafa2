"""`sweep sync` and a tracking server that goes away: the study keeps every result, sync rebuilds MLflow."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from mlflow import MlflowClient

from tests.sweep import e2e, pg

pytestmark = pytest.mark.slow


def test_sync_rebuilds_missing_and_stray_child_runs_idempotently(tmp_path: Path):
    e2e.write_config(tmp_path, "trials: 5\npruner: {name: none}\n" + e2e.FAST_SPACE)
    assert e2e.sweep(tmp_path, "run", "--config", "sweep.yaml", "--name", "s5").returncode == 0
    client = e2e.mlflow_client(tmp_path)
    _, children = e2e.runs(tmp_path)
    client.delete_run(children[2].info.run_id)  # lost
    client.update_run(children[3].info.run_id, status="RUNNING")  # left running

    first = e2e.sweep(tmp_path, "sync", "s5")
    assert first.returncode == 0, first.stderr
    assert "repaired 2 child runs (trials 2, 3)" in first.stdout
    _, children = e2e.runs(tmp_path)
    assert [int(c.data.tags["sweep.trial"]) for c in children] == list(range(5))
    assert all(c.info.status == "FINISHED" for c in children)
    rebuilt = children[2]
    assert rebuilt.data.params["lr"] and rebuilt.data.metrics["val_accuracy"] > 0

    second = e2e.sweep(tmp_path, "sync", "s5")
    assert second.returncode == 0 and "nothing to repair" in second.stdout


def test_tracking_server_outage_loses_no_result_and_sync_repairs(tmp_path: Path):
    backend = f"sqlite:///{tmp_path / 'server.db'}"
    artifacts = tmp_path / "artifacts"
    port = pg.free_port()
    e2e.write_config(tmp_path, "trials: 8\npruner: {name: none}\n" + e2e.SLOW_SPACE)
    env = {**e2e.env(), "SWEEP_TRACKING_RETRY_SECONDS": "1"}
    with pg.mlflow_server(backend, artifacts, port) as url:
        sweep = subprocess.Popen([*e2e.SWEEP, "run", "--config", "sweep.yaml", "--name", "outage",
                                  "--tracking-uri", url], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
        e2e.wait_for_trials(sweep, 2)
    # the server is gone from here on; the sweep must still finish every trial
    out, err = sweep.communicate(timeout=300)
    assert sweep.returncode == 0, err
    assert "MLflow is behind" in out and "sweep sync outage" in out
    trials = e2e.study(tmp_path, "outage").trials
    assert len(e2e.finished(trials)) == 8

    with pg.mlflow_server(backend, artifacts, port) as url:
        synced = e2e.run([*e2e.SWEEP, "sync", "outage", "--tracking-uri", url], tmp_path)
        assert synced.returncode == 0, synced.stderr
        assert "repaired" in synced.stdout
        client = MlflowClient(url)
        found = client.get_experiment_by_name("sentiment")
        runs = client.search_runs([found.experiment_id], max_results=100)
        parents = [r for r in runs if r.data.tags.get("sweep.role") == "parent"]
        children = [r for r in runs if r.data.tags.get("sweep.role") != "parent"]
        assert len(parents) == 1
        assert sorted(int(c.data.tags["sweep.trial"]) for c in children) == list(range(8))
        assert not [r for r in runs if r.info.status == "RUNNING"]
        best = max((t for t in trials if t.state.name == "COMPLETE"),
                   key=lambda t: (t.value, -t.user_attrs["sweep.metrics"]["val_loss"], -t.number))
        assert parents[0].data.tags["best.trial"] == str(best.number)
        again = e2e.run([*e2e.SWEEP, "sync", "outage", "--tracking-uri", url], tmp_path)
        assert "nothing to repair" in again.stdout


