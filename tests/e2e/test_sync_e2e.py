"""A tracking server that goes away mid-sweep: the study keeps every result, and `sweep sync` rebuilds MLflow once
the server is back. A real `mlflow server`, stopped and restarted, and a real `sweep run` process; the commands run
once the server is back are driven in-process (tests/support/inprocess.py). Sync without a server:
tests/unit/sweep/engine/test_sync_repairs.py."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest
from mlflow import MlflowClient

from tests.support import e2e, inprocess, pg
from tests.support.stores import copy_mlflow_db

pytestmark = pytest.mark.slow


def test_tracking_server_outage_loses_no_result_and_sync_repairs(tmp_path: Path, mlflow_template: Path):
    backend = f"sqlite:///{copy_mlflow_db(mlflow_template, tmp_path, 'server.db')}"  # the server migrates nothing
    artifacts = tmp_path / "artifacts"
    port = e2e.free_port()
    # with sampler seed 0 the best of these 7 trials is the last one (trial 6): it runs while the server is down
    e2e.write_config(tmp_path, "trials: 7\npruner: {name: none}\n" + e2e.SLOW_SPACE)
    env = {**e2e.env(), "SWEEP_TRACKING_RETRY_SECONDS": "1"}
    sweep: subprocess.Popen[str] | None = None
    try:
        with pg.mlflow_server(backend, artifacts, port) as url:
            sweep = e2e.SweepProcess([*e2e.SWEEP, "run", "--config", "sweep.yaml", "--name", "outage",
                                      "--tracking-uri", url], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, start_new_session=True)
            e2e.wait_for_trials(sweep, 2, timeout=300)  # a loaded machine: importing mlflow alone takes a while
            # the sweep and its tracking process stand still while the server stops, however long that takes on
            # a loaded machine: no trial after the one running now can start before the outage
            os.killpg(sweep.pid, signal.SIGSTOP)
    finally:
        if sweep is not None:
            os.killpg(sweep.pid, signal.SIGCONT)
    # the server is gone from here on; the sweep must still finish every trial
    out, err = sweep.communicate(timeout=300)
    assert sweep.returncode == 0, err
    assert "MLflow is behind" in out and "sweep sync outage" in out
    trials = e2e.study(tmp_path, "outage").trials
    assert len(e2e.finished(trials)) == 7
    best = max((t for t in trials if t.state.name == "COMPLETE"),
               key=lambda t: (t.value, -t.user_attrs["sweep.metrics"]["val_loss"], -t.number))
    # the situation under test: the best trial's child run was never created, the parent shows an older best
    assert "sweep.run_id" not in best.user_attrs, f"trial {best.number} is best but ran before the outage"

    with pg.mlflow_server(backend, artifacts, port) as url:
        synced = inprocess.sweep(tmp_path, "sync", "outage", "--tracking-uri", url)
        assert synced.returncode == 0, synced.stderr
        assert "repaired" in synced.stdout
        client = MlflowClient(url)
        found = client.get_experiment_by_name("sentiment")
        runs = client.search_runs([found.experiment_id], max_results=100)
        parents = [r for r in runs if r.data.tags.get("sweep.role") == "parent"]
        children = [r for r in runs if r.data.tags.get("sweep.role") != "parent"]
        assert len(parents) == 1
        assert sorted(int(c.data.tags["sweep.trial"]) for c in children) == list(range(7))
        assert not [r for r in runs if r.info.status == "RUNNING"]
        parent = parents[0]
        child = {int(c.data.tags["sweep.trial"]): c.info.run_id for c in children}[best.number]
        assert parent.data.tags["best.trial"] == str(best.number)
        assert parent.data.tags["best.run_id"] == child
        assert_parent_model_is_the_best_trials(client, parent.info.run_id, child, best.number, synced.stdout)
        assert "plots" in {info.path for info in client.list_artifacts(parent.info.run_id)}
        shown = inprocess.sweep(tmp_path, "best", "--name", "outage", "--format", "json")
        assert json.loads(shown.stdout)["run_id"] == child  # the study follows the rebuilt run
        again = inprocess.sweep(tmp_path, "sync", "outage", "--tracking-uri", url)
        assert "nothing to repair" in again.stdout, again.stdout

        # a parent that disagrees again (here: another trial's run id) is found and put right
        stale = next(c.info.run_id for c in children if c.info.run_id != child)
        client.set_tag(parent.info.run_id, "best.run_id", stale)
        third = inprocess.sweep(tmp_path, "sync", "outage", "--tracking-uri", url)
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
