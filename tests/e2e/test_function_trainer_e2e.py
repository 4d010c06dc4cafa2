"""A user's fit(trial) in a `sweep run` subprocess that is killed or interrupted, on a real journal and MLflow
database; the resumes and syncs, which no signal reaches, in-process. The function trainer's other sweeps run
in-process: tests/unit/sweep/trainers/test_function_sweeps.py."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from optuna.trial import TrialState

from tests.support import e2e, inprocess
from tests.support.objectives import define_by_run

pytestmark = pytest.mark.slow

# an Optuna objective as its users write it (define-by-run, a conditional space, reports and pruning), whose
# second trial, two reports in, says so in ./in-trial-1 and then waits there until the sweep is killed
OBJECTIVE = define_by_run('        while trial.number == 1 and step == 2:  # mid-trial, until the kill\n'
                          '            Path("in-trial-1").touch()\n'
                          '            time.sleep(0.05)\n')


def config(folder: Path, source: str, body: str) -> Path:
    (folder / "train.py").write_text(source, encoding="utf-8")
    return e2e.write_config(folder, body)


def wait_for_file(process: subprocess.Popen[str], path: Path, timeout: float = 300) -> None:
    """Until ``path`` exists (the trainer wrote it), while ``process`` runs."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert process.poll() is None, f"the sweep ended: {process.communicate()}"
        assert time.monotonic() < deadline, f"no {path.name} in {timeout:.0f} s"
        time.sleep(0.05)


@pytest.mark.usefixtures("mlflow_db")  # a new, empty MLflow store: its creation is no subject here
def test_kill_9_mid_trial_then_resume_fails_that_trial_and_finishes_the_rest(tmp_path: Path):
    config(tmp_path, OBJECTIVE, "trainer: {function: train.py:fit}\nobjective: {metric: score, direction: maximize}\n"
                                "pruner: {name: none}\n")
    process = e2e.SweepProcess([*e2e.SWEEP, "run", "--config", "sweep.yaml", "--name", "killed", "--trials", "4"],
                               cwd=tmp_path, env=e2e.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, start_new_session=True)
    try:
        e2e.wait_for_trials(process, 1, timeout=300)
        wait_for_file(process, tmp_path / "in-trial-1")  # into the second trial's steps
    finally:
        os.killpg(process.pid, signal.SIGKILL)  # the sweep, its tracking process, all of its group
        process.wait(timeout=30)
    result = inprocess.sweep(tmp_path, "run", "--resume", "--name", "killed")  # no kill reaches it: in-process
    assert result.returncode == 0, result.stderr
    trials = e2e.finished(e2e.study(tmp_path, "killed").get_trials())
    assert len(trials) == 4
    assert any(t.state == TrialState.FAIL for t in trials)  # the one the kill cut short
    _, children = e2e.runs(tmp_path, experiment="sweep")
    assert "RUNNING" not in {c.info.status for c in children}
    assert {int(c.data.tags["sweep.trial"]) for c in children} >= {t.number for t in trials}


# a fit that never reports: after the first Ctrl-C it answers ./ping with ./pong, so the test sees it still running
NEVER_REPORTS = '''
import time
from pathlib import Path


def fit(trial):
    Path("started").touch()
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if Path("ping").exists():
            Path("pong").touch()
        time.sleep(0.05)
    return 1.0
'''


@pytest.mark.usefixtures("mlflow_db")  # a new, empty MLflow store: its creation is no subject here
def test_ctrl_c_twice_stops_a_fit_that_never_reports_and_ends_its_run_killed(tmp_path: Path):
    config(tmp_path, NEVER_REPORTS,
           "trainer: {function: train.py:fit}\nobjective: {direction: maximize}\npruner: {name: none}\n")
    process = e2e.start_sweep(tmp_path, "run", "--config", "sweep.yaml", "--name", "long", "--trials", "2")
    try:
        wait_for_file(process, tmp_path / "started")
        process.send_signal(signal.SIGINT)
        (tmp_path / "ping").touch()  # after the signal: the fit answers only if the signal left it running
        wait_for_file(process, tmp_path / "pong")
        assert process.poll() is None  # the first asks the trial to stop at its next report: this one never reports
        code, _, err = e2e.interrupt(process, signal.SIGINT)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert code == 130, err
    assert "stopping: the running trial ends at its next report" in err and "Traceback" not in err
    trials = e2e.study(tmp_path, "long").get_trials()
    assert [t.state for t in trials] == [TrialState.FAIL]
    _, children = e2e.runs(tmp_path, experiment="sweep")
    assert [c.info.status for c in children] == ["KILLED"]


OWN_PARAM = '''
import os
import signal

import mlflow


def fit(trial):
    x = trial.suggest_float("x", 0.0, 1.0)
    mlflow.log_param("x", 999)  # the script's own value for a setting the sweep logs too
    if trial.number == 1 and not os.path.exists("killed-once"):
        open("killed-once", "w").close()
        os.kill(os.getpid(), signal.SIGKILL)  # the whole sweep process: its trial's run is left behind
    return x
'''


@pytest.mark.usefixtures("mlflow_db")  # a new, empty MLflow store: its creation is no subject here
def test_a_param_the_fit_logged_otherwise_does_not_block_the_resume_or_sync_after_a_kill(tmp_path: Path):
    config(tmp_path, OWN_PARAM, "trainer: {function: train.py:fit, mlflow: active}\n"
                                "objective: {direction: maximize}\npruner: {name: none}\n")
    killed = e2e.sweep(tmp_path, "run", "--config", "sweep.yaml", "--name", "own", "--trials", "3")
    assert killed.returncode == -signal.SIGKILL
    resumed = inprocess.sweep(tmp_path, "run", "--resume", "--name", "own")  # no kill reaches it: in-process
    assert resumed.returncode == 0, resumed.stderr  # MLflow refused the reconcile of trial 1's run, every time
    parent, children = e2e.runs(tmp_path, experiment="sweep")
    assert parent.info.status == "FINISHED"
    assert [c.info.status for c in children] == ["FINISHED", "FAILED", "FINISHED"]
    assert all(c.data.params["x"] == "999" for c in children)
    assert children[1].data.tags["sweep.params_differ"].startswith("x=0.")
    synced = inprocess.sweep(tmp_path, "sync", "own")
    assert synced.returncode == 0 and "nothing to repair" in synced.stdout, synced.stdout + synced.stderr
