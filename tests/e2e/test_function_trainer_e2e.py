"""A user's fit(trial) swept end to end: real `sweep run` subprocesses, a real journal and MLflow database."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from optuna.trial import TrialState

from tests.support import e2e

pytestmark = pytest.mark.slow

# an Optuna objective as its users write it: define-by-run, a conditional space, reports and pruning
OBJECTIVE = '''
import sys
import time

import optuna


def fit(trial):
    # mlflow: off (the default) keeps MLflow out of the trial's process: it is in the tracking process only
    assert "mlflow" not in sys.modules, "mlflow was imported in the trial's process"
    family = trial.suggest_categorical("family", ["quadratic", "linear"])
    if family == "quadratic":
        x = trial.suggest_float("x", -3.0, 3.0)
    else:
        x = trial.suggest_float("slope", 0.0, 1.0)
    score = 0.0
    for step in range(1, 6):
        score = (1.0 - (x - 1.0) ** 2 if family == "quadratic" else x) * step / 5
        trial.report(score, step)
        time.sleep(float(trial.params.get("pause", 0)))
        if trial.should_prune():
            raise optuna.TrialPruned()
    return {"score": score, "steps": 5}
'''

ACTIVE = '''
import mlflow
import mlflow.pyfunc


class Constant(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        return [1.0] * len(model_input)


def fit(trial):
    lr = trial.params["lr"]
    for step in range(3):
        mlflow.log_metric("own_loss", 1.0 / (1 + step + lr), step=step)
    mlflow.log_text(f"lr={lr}", "notes.txt")
    if trial.number % 2 == 0:
        mlflow.pyfunc.log_model(name="model", python_model=Constant(), pip_requirements=[])
    return lr
'''


def config(folder: Path, source: str, body: str) -> Path:
    (folder / "train.py").write_text(source, encoding="utf-8")
    return e2e.write_config(folder, body)


def test_an_optuna_objective_runs_unchanged_with_two_jobs_and_prunes(tmp_path: Path):
    config(tmp_path, OBJECTIVE, "trainer: {function: train.py:fit}\nobjective: {metric: score, direction: maximize}\n"
                                "pruner: {name: median, startup_trials: 2}\n")
    result = e2e.sweep(tmp_path, "run", "--config", "sweep.yaml", "--name", "fn", "--trials", "10", "--jobs", "2",
                       timeout=300)
    assert result.returncode == 0, result.stderr
    trials = e2e.finished(e2e.study(tmp_path, "fn").get_trials())
    assert len(trials) == 10
    assert {t.state for t in trials} <= {TrialState.COMPLETE, TrialState.PRUNED}
    parent, children = e2e.runs(tmp_path, experiment="sweep")
    assert [int(c.data.tags["sweep.trial"]) for c in children] == sorted(t.number for t in trials)
    for trial, child in zip(sorted(trials, key=lambda t: t.number), children, strict=True):
        # the conditional params, exactly as the sampler chose them, are the child run's params
        assert {k: v for k, v in child.data.params.items()} == {k: str(v) for k, v in trial.params.items()}
        assert child.info.status == ("FINISHED" if trial.state == TrialState.COMPLETE else "KILLED")
        curve = e2e.mlflow_client(tmp_path).get_metric_history(child.info.run_id, "score")
        assert [m.step for m in curve] == sorted(trial.intermediate_values)
    best = max((t for t in trials if t.state == TrialState.COMPLETE), key=lambda t: t.value)
    assert parent.data.tags["best.trial"] == str(best.number)
    assert parent.data.tags["trainer.function"].endswith("train.py:fit")
    assert "trainer.file_sha256" in parent.data.tags
    for name, value in best.params.items():
        assert parent.data.tags[f"best.{name}"] == str(value)


def test_mlflow_active_puts_the_users_own_logging_in_each_child_run(tmp_path: Path):
    config(tmp_path, ACTIVE, "trainer: {function: train.py:fit, mlflow: active}\n"
                             "objective: {direction: maximize}\npruner: {name: none}\n"
                             "space:\n  lr: {type: float, low: 0.1, high: 1.0}\n")
    result = e2e.sweep(tmp_path, "run", "--config", "sweep.yaml", "--name", "own", "--trials", "4", "--jobs", "2",
                       timeout=300)
    assert result.returncode == 0, result.stderr
    client = e2e.mlflow_client(tmp_path)
    parent, children = e2e.runs(tmp_path, experiment="sweep")  # one parent, and no stray top-level run
    assert len(children) == 4
    assert "own_loss" not in parent.data.metrics
    for child in children:
        assert child.info.status == "FINISHED"
        assert [m.step for m in client.get_metric_history(child.info.run_id, "own_loss")] == [0, 1, 2]
        assert "notes.txt" in {info.path for info in client.list_artifacts(child.info.run_id)}
        assert child.data.metrics["value"] == pytest.approx(float(child.data.params["lr"]))
        logged = int(child.data.tags["sweep.trial"]) % 2 == 0
        assert ("sweep.model_uri" in child.data.tags) == logged
        if logged:
            model_id = child.data.tags["sweep.model_uri"].removeprefix("models:/")
            assert client.get_logged_model(model_id).source_run_id == child.info.run_id


def test_kill_9_mid_trial_then_resume_fails_that_trial_and_finishes_the_rest(tmp_path: Path):
    config(tmp_path, OBJECTIVE, "trainer: {function: train.py:fit}\nobjective: {metric: score, direction: maximize}\n"
                                "pruner: {name: none}\nfixed: {pause: 0.4}\n")
    process = subprocess.Popen([*e2e.SWEEP, "run", "--config", "sweep.yaml", "--name", "killed", "--trials", "4"],
                               cwd=tmp_path, env=e2e.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, start_new_session=True)
    e2e.wait_for_trials(process, 1, timeout=180)
    time.sleep(0.6)  # into the second trial's steps
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    result = e2e.sweep(tmp_path, "run", "--resume", "--name", "killed", timeout=300)
    assert result.returncode == 0, result.stderr
    trials = e2e.finished(e2e.study(tmp_path, "killed").get_trials())
    assert len(trials) == 4
    assert any(t.state == TrialState.FAIL for t in trials)  # the one the kill cut short
    _, children = e2e.runs(tmp_path, experiment="sweep")
    assert "RUNNING" not in {c.info.status for c in children}
    assert {int(c.data.tags["sweep.trial"]) for c in children} >= {t.number for t in trials}


def test_a_fit_returning_the_wrong_thing_fails_its_trials_and_stops_early_with_the_reason(tmp_path: Path):
    config(tmp_path, "def fit(trial):\n    return 'done'\n", "trainer: {function: train.py:fit}\n"
                                                            "objective: {direction: maximize}\n")
    result = e2e.sweep(tmp_path, "run", "--config", "sweep.yaml", "--name", "wrong", "--trials", "20")
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1] == (
        "error: all 5 trials failed with: TypeError: fit returned str; return a number (the objective) or a "
        "mapping of metrics holding 'value'; stopping early")


def test_ctrl_c_twice_stops_a_fit_that_never_reports_and_ends_its_run_killed(tmp_path: Path):
    config(tmp_path, "import pathlib, time\n\ndef fit(trial):\n    pathlib.Path('started').touch()\n"
                     "    time.sleep(600)\n    return 1.0\n",
           "trainer: {function: train.py:fit}\nobjective: {direction: maximize}\npruner: {name: none}\n")
    process = e2e.start_sweep(tmp_path, "run", "--config", "sweep.yaml", "--name", "long", "--trials", "2")
    deadline = time.monotonic() + 120
    while not (tmp_path / "started").exists():
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    time.sleep(1.0)
    assert process.poll() is None  # the first asks the trial to stop at its next report: this one never reports
    code, _, err = e2e.interrupt(process, signal.SIGINT)
    assert code == 130, err
    assert "stopping: the running trial ends at its next report" in err and "Traceback" not in err
    trials = e2e.study(tmp_path, "long").get_trials()
    assert [t.state for t in trials] == [TrialState.FAIL]
    _, children = e2e.runs(tmp_path, experiment="sweep")
    assert [c.info.status for c in children] == ["KILLED"]


def test_sync_rebuilds_a_function_trainers_lost_children_with_their_define_by_run_params(tmp_path: Path):
    config(tmp_path, OBJECTIVE, "trainer: {function: train.py:fit}\nobjective: {metric: score, direction: maximize}\n"
                                "pruner: {name: none}\nfixed: {pause: 0}\n")
    assert e2e.sweep(tmp_path, "run", "--config", "sweep.yaml", "--name", "fs", "--trials", "3").returncode == 0
    client = e2e.mlflow_client(tmp_path)
    _, children = e2e.runs(tmp_path, experiment="sweep")
    client.delete_run(children[1].info.run_id)  # lost
    synced = e2e.sweep(tmp_path, "sync", "fs")
    assert synced.returncode == 0, synced.stderr
    assert "repaired 1 child run" in synced.stdout
    trials = {t.number: t for t in e2e.study(tmp_path, "fs").get_trials()}
    _, children = e2e.runs(tmp_path, experiment="sweep")
    rebuilt = next(c for c in children if c.data.tags["sweep.trial"] == "1")
    assert rebuilt.info.status == "FINISHED"
    # the sampler's conditional params (family, then x or slope) and the fixed ones
    assert rebuilt.data.params == {**{k: str(v) for k, v in trials[1].params.items()}, "pause": "0"}
    assert rebuilt.data.metrics["score"] == trials[1].value
