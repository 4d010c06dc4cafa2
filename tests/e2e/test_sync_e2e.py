"""`sweep sync` and a tracking server that goes away: the study keeps every result, sync rebuilds MLflow."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from mlflow import MlflowClient

from tests.support import e2e, pg
from tests.support.stores import copy_mlflow_db

pytestmark = pytest.mark.slow


@pytest.mark.usefixtures("mlflow_db")
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


def test_tracking_server_outage_loses_no_result_and_sync_repairs(tmp_path: Path, mlflow_template: Path):
    backend = f"sqlite:///{copy_mlflow_db(mlflow_template, tmp_path, 'server.db')}"  # the server migrates nothing
    artifacts = tmp_path / "artifacts"
    port = e2e.free_port()
    # with sampler seed 0 the best of these 8 trials is a late one (trial 6): it runs while the server is down
    e2e.write_config(tmp_path, "trials: 8\npruner: {name: none}\n" + e2e.SLOW_SPACE)
    env = {**e2e.env(), "SWEEP_TRACKING_RETRY_SECONDS": "1"}
    with pg.mlflow_server(backend, artifacts, port) as url:
        sweep = subprocess.Popen([*e2e.SWEEP, "run", "--config", "sweep.yaml", "--name", "outage",
                                  "--tracking-uri", url], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
        e2e.wait_for_trials(sweep, 2, timeout=300)  # a loaded machine: importing mlflow alone takes a while
    # the server is gone from here on; the sweep must still finish every trial
    out, err = sweep.communicate(timeout=300)
    assert sweep.returncode == 0, err
    assert "MLflow is behind" in out and "sweep sync outage" in out
    trials = e2e.study(tmp_path, "outage").trials
    assert len(e2e.finished(trials)) == 8
    best = max((t for t in trials if t.state.name == "COMPLETE"),
               key=lambda t: (t.value, -t.user_attrs["sweep.metrics"]["val_loss"], -t.number))
    # the situation under test: the best trial's child run was never created, the parent shows an older best
    assert "sweep.run_id" not in best.user_attrs, f"trial {best.number} is best but ran before the outage"

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
        parent = parents[0]
        child = {int(c.data.tags["sweep.trial"]): c.info.run_id for c in children}[best.number]
        assert parent.data.tags["best.trial"] == str(best.number)
        assert parent.data.tags["best.run_id"] == child
        assert_parent_model_is_the_best_trials(client, parent.info.run_id, child, best.number, synced.stdout)
        assert "plots" in {info.path for info in client.list_artifacts(parent.info.run_id)}
        shown = e2e.run([*e2e.SWEEP, "best", "--name", "outage", "--format", "json"], tmp_path)
        assert json.loads(shown.stdout)["run_id"] == child  # the study follows the rebuilt run
        again = e2e.run([*e2e.SWEEP, "sync", "outage", "--tracking-uri", url], tmp_path)
        assert "nothing to repair" in again.stdout, again.stdout

        # a parent that disagrees again (here: another trial's run id) is found and put right
        stale = next(c.info.run_id for c in children if c.info.run_id != child)
        client.set_tag(parent.info.run_id, "best.run_id", stale)
        third = e2e.run([*e2e.SWEEP, "sync", "outage", "--tracking-uri", url], tmp_path)
        assert "nothing to repair" not in third.stdout and "disagreed" in third.stdout, third.stdout
        assert client.get_run(parent.info.run_id).data.tags["best.run_id"] == child


def assert_parent_model_is_the_best_trials(client: MlflowClient, parent: str, child: str, number: int,
                                           sync_output: str) -> None:
    """best/model.json and the pyfunc model on the parent are the best trial's, or absent and explained."""
    tags = client.get_run(parent).data.tags
    on_parent = {info.path for info in client.list_artifacts(parent, "best")}
    if "model.json" in {info.path for info in client.list_artifacts(child)}:
        folder = Path(client.download_artifacts(parent, "best/model.json"))
        assert folder.read_bytes() == Path(client.download_artifacts(child, "model.json")).read_bytes()
        assert tags.get("best.model_trial") == str(number) and "best.model_missing" not in tags
    else:
        assert "best/model.json" not in on_parent  # never another trial's model under the best's name
        assert tags.get("best.model_trial") in (None, str(number))
        assert "train --config best.yaml" in tags["best.model_missing"]
        assert f"cannot rebuild: trial {number}'s model.json" in sync_output, sync_output
