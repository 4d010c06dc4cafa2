"""End to end: a real `sweep` subprocess stopped by a signal or killed inside a trial, then resumed, on a real
journal storage and a real MLflow SQLite store. The trial a signal lands in is held by a barrier (a function
trainer that waits for a file the test writes), so the signal reaches it inside that trial on any machine.
The resumes, which no signal reaches, run in-process, as do a finished sweep's records and the commands that read
them: tests/unit/sweep/engine/test_run_sweeps.py.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from tests.support import e2e, inprocess

pytestmark = pytest.mark.slow

HELD_TRIAL = 1  # trial 0 finishes; the signal lands in trial 1, which waits for the test
BARRIER_FIT = f'''
import time
from pathlib import Path

HERE = Path(__file__).parent


def fit(trial):
    x = trial.suggest_float("x", -2.0, 2.0)
    if trial.number == {HELD_TRIAL}:
        (HERE / "started").write_text(str(trial.number), encoding="utf-8")
        while not (HERE / "release").exists():
            trial.checkpoint()  # where a stop request ends the trial, as report() would
            time.sleep(0.05)
    return {{"score": -(x * x)}}
'''
READY_SECONDS = 240  # start-up, then trial 0, on a machine whose cores are busy with other tests


def barrier_sweep(folder: Path, trials: int) -> None:
    """A function-trainer sweep of ``trials`` trials whose trial HELD_TRIAL waits until ``release`` exists."""
    (folder / "train.py").write_text(BARRIER_FIT, encoding="utf-8")
    e2e.write_config(folder, f"trials: {trials}\npruner: {{name: none}}\ntrainer: {{function: train.py:fit}}\n"
                             "objective: {metric: score, direction: maximize}\n")


def wait_until_held(process: subprocess.Popen[str], folder: Path) -> None:
    """Return once the sweep is inside the held trial; fail with its output if it ends or never gets there."""
    deadline = time.monotonic() + READY_SECONDS
    while not (folder / "started").exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            out, err = process.communicate(timeout=60)
            raise AssertionError(f"the sweep never reached trial {HELD_TRIAL} (exit {process.returncode}):\n{out}{err}")
        time.sleep(0.05)


@pytest.mark.usefixtures("mlflow_db")
@pytest.mark.parametrize("signum", [e2e.SIGINT, e2e.SIGTERM])
def test_interrupted_sweep_resumes_to_exactly_n_trials(tmp_path: Path, signum: int):
    barrier_sweep(tmp_path, trials=4)
    process = e2e.start_sweep(tmp_path, "run", "--config", "sweep.yaml", "--name", "stopped")
    wait_until_held(process, tmp_path)  # inside the second trial: it is the one interrupted
    code, out, err = e2e.interrupt(process, signum)
    assert code == 130, err
    assert "resume with: sweep run --resume --name stopped" in err
    assert "2 trials (1 complete, 0 pruned, 0 failed, 1 interrupted)" in out + err  # a stop is no failure
    parent, children = e2e.runs(tmp_path, "sweep")
    assert parent.info.status == "KILLED"
    assert all(c.info.status != "RUNNING" for c in children)
    assert any(c.info.status == "KILLED" for c in children), "the interrupted trial's run ends KILLED"

    (tmp_path / "release").touch()  # no trial of the resumed sweep waits
    resumed = inprocess.sweep(tmp_path, "run", "--resume")  # no signal reaches the resume: in-process
    assert resumed.returncode == 0, resumed.stderr
    trials = e2e.study(tmp_path, "stopped").trials
    assert len(e2e.finished(trials)) == 4 and len(trials) == 4
    parent, children = e2e.runs(tmp_path, "sweep")
    assert parent.info.status == "FINISHED"
    assert sorted(int(c.data.tags["sweep.trial"]) for c in children) == list(range(4))
    assert all(c.info.status in ("FINISHED", "KILLED") for c in children)


@pytest.mark.usefixtures("mlflow_db")
def test_hard_killed_sweep_resumes_and_fails_the_stale_trial(tmp_path: Path):
    barrier_sweep(tmp_path, trials=3)
    process = e2e.start_sweep(tmp_path, "run", "--config", "sweep.yaml", "--name", "killed")
    wait_until_held(process, tmp_path)  # inside the second trial: it is the one killed
    code, _, err = e2e.interrupt(process, e2e.SIGKILL)  # err: until the last process holding it (the
    assert code == -9  # resource tracker, which outlives the sweep and cleans up after it) has ended
    assert "leaked semaphore" not in err, err  # a warning after the shell's prompt, about a cleanup that worked
    (tmp_path / "release").touch()  # no trial of the resumed sweep waits
    resumed = inprocess.sweep(tmp_path, "run", "--resume", "--name", "killed")  # no signal reaches it: in-process
    assert resumed.returncode == 0, resumed.stderr
    trials = e2e.study(tmp_path, "killed").trials
    assert len(e2e.finished(trials)) == 3 and len(trials) == 3
    stale = [t for t in trials if t.state.name == "FAIL"]
    assert len(stale) == 1 and "died" in stale[0].user_attrs["sweep.error"]
    parent, children = e2e.runs(tmp_path, "sweep")
    assert parent.info.status == "FINISHED"
    assert len(children) == 3 and not any(c.info.status == "RUNNING" for c in children)
    stale_run = next(c for c in children if int(c.data.tags["sweep.trial"]) == stale[0].number)
    assert stale_run.info.status == "FAILED"
