"""Broken MLflow databases met by `sweep run`, driven in-process (tests/support/inprocess.py): a half-migrated or a
garbage database stops the sweep at once, in one line that names the way out, and writes nothing to the study.
Kills at awkward moments stay subprocess tests: tests/e2e/test_recovery_e2e.py."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from tests.support import inprocess

pytestmark = pytest.mark.slow  # whole sweeps, in-process, on real stores


def test_a_half_migrated_mlflow_database_is_named_with_the_way_out(tmp_path: Path):
    connection = sqlite3.connect(tmp_path / "mlflow.db")  # what a kill mid-migration left with older versions
    connection.execute("CREATE TABLE _alembic_tmp_experiments (experiment_id INTEGER)")
    connection.close()
    result = inprocess.sweep(tmp_path, "run", "--trials", "1", "--name", "half")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "mlflow.db" in lines[0] and "half" in lines[0].lower(), result.stderr
    assert "Traceback" not in result.stderr


def test_garbage_in_place_of_the_mlflow_database_fails_at_once_in_one_line(tmp_path: Path):
    (tmp_path / "mlflow.db").write_bytes(b"these bytes are not a database\n" * 200)
    started = time.monotonic()
    result = inprocess.sweep(tmp_path, "run", "--trials", "1", "--name", "garbage",
                             environment={"SWEEP_TRACKING_RETRY_SECONDS": "300"})  # an outage would wait; this must not
    assert time.monotonic() - started < 90, "the sweep waited for a garbage database as for an outage"
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "not a database" in lines[0], result.stderr
    listed = inprocess.sweep(tmp_path, "ls")
    assert "garbage" not in listed.stdout  # nothing written to the study either


@pytest.mark.usefixtures("mlflow_db")
def test_a_resume_leaves_the_trial_a_live_worker_still_runs_and_its_run_alone(tmp_path: Path):
    import socket
    import subprocess

    from tests.support import e2e

    (tmp_path / "train.py").write_text("def fit(trial):\n    return trial.suggest_float('x', 0, 1)\n",
                                       encoding="utf-8")
    e2e.write_config(tmp_path, "trainer: {function: train.py:fit}\nobjective: {direction: maximize}\n")
    assert inprocess.sweep(tmp_path, "run", "--config", "sweep.yaml", "--name", "live", "--trials", "2").returncode == 0
    parent, _ = e2e.runs(tmp_path, experiment="sweep")
    worker = subprocess.Popen(["sleep", "600"])  # a `sweep worker` of this host, alive, in the middle of a trial
    try:
        study = e2e.study(tmp_path, "live")
        running = study.ask()
        client = e2e.mlflow_client(tmp_path)
        run = client.create_run(parent.info.experiment_id, run_name=f"trial-{running.number}",
                                tags={"mlflow.parentRunId": parent.info.run_id, "sweep.name": "live",
                                      "sweep.trial": str(running.number)})
        running.set_user_attr("sweep.worker", f"{socket.gethostname()}:{worker.pid}")
        running.set_user_attr("sweep.run_id", run.info.run_id)
        # the resume starts nothing past the target (the live trial counts) and ends at its timeout
        resumed = inprocess.sweep(tmp_path, "run", "--resume", "--name", "live", "--trials", "3", "--timeout", "1")
        assert resumed.returncode == 0, resumed.stderr
        assert e2e.study(tmp_path, "live").trials[running.number].state.name == "RUNNING"
        assert client.get_run(run.info.run_id).info.status == "RUNNING"  # still the worker's to end
    finally:
        worker.kill()
        worker.wait()
