"""Commands swept end to end: the examples as CI runs them, real `sweep run` subprocesses and stores."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from sweep.trainers.teardown import TOKEN_VARIABLE
from tests.support import e2e

pytestmark = pytest.mark.slow

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def trial_processes(folder: Path) -> list[int]:
    """Processes that carry a trial's token and work under ``folder``: a command of this test's sweep, or
    anything it started, still running (other tests' commands may run at the same time)."""
    found = []
    for entry in os.listdir("/proc"):
        try:
            environ = Path(f"/proc/{entry}/environ").read_bytes() if entry.isdigit() else b""
            state = Path(f"/proc/{entry}/stat").read_bytes().rsplit(b")", 1)[1].split()[0] if environ else b"Z"
            cwd = os.readlink(f"/proc/{entry}/cwd") if environ else ""
        except OSError:
            continue
        if f"{TOKEN_VARIABLE}=".encode() in environ and state != b"Z" and cwd.startswith(str(folder)):
            found.append(int(entry))
    return found


def test_the_script_example_prunes_into_killed_runs_with_curves_and_keeps_the_best_workdir(tmp_path: Path):
    result = e2e.sweep(tmp_path, "run", "--config", str(EXAMPLES / "script" / "sweep.yaml"), "--trials", "8",
                       "--name", "script", timeout=300)
    assert result.returncode == 0, result.stderr
    _, children = e2e.runs(tmp_path, "sweep")
    pruned = [run for run in children if run.data.tags["sweep.state"] == "pruned"]
    assert pruned, "no trial was pruned"
    client = e2e.mlflow_client(tmp_path)
    for run in pruned:
        assert run.info.status == "KILLED"
        steps = [point.step for point in client.get_metric_history(run.info.run_id, "val_loss")]
        assert steps and steps == sorted(steps) and max(steps) < 100  # its curve, up to where it was stopped
    complete = [run for run in children if run.data.tags["sweep.state"] == "complete"]
    assert all(len(client.get_metric_history(run.info.run_id, "val_loss")) >= 100 for run in complete)
    assert "command.stdout.txt" in e2e.artifact_names(tmp_path, complete[0].info.run_id, "")
    best = e2e.study(tmp_path, "script").best_trial.number
    kept = sorted(path.name for path in (tmp_path / "sweeps" / "script").iterdir())
    assert kept == [f"trial-{best}"] and (tmp_path / "sweeps" / "script" / kept[0] / "model.npz").is_file()
    assert trial_processes(tmp_path) == []


def test_an_awk_command_sweeps_with_two_jobs(tmp_path: Path):
    result = e2e.sweep(tmp_path, "run", "--config", str(EXAMPLES / "awk" / "sweep.yaml"), "--jobs", "2",
                       "--name", "awk", timeout=300)
    assert result.returncode == 0, result.stderr
    trials = e2e.finished(e2e.study(tmp_path, "awk").get_trials())
    assert len(trials) == 10 and all(t.state.name == "COMPLETE" for t in trials)
    for trial in trials:
        assert trial.value == pytest.approx((trial.params["x"] - 1) ** 2 + (trial.params["y"] + 2) ** 2, abs=1e-5)


def test_ctrl_c_stops_the_running_command_and_kill_9_leaves_no_command_behind(tmp_path: Path):
    pids = tmp_path / "pids"
    (tmp_path / "slow.sh").write_text(f"echo $$ >> {pids}\nsleep 30 &\necho $! >> {pids}\nwait\necho 'sweep: v=1'\n")
    e2e.write_config(tmp_path, "trainer: {command: 'sh slow.sh {x}', kill_grace: 1}\n"
                               "objective: {metric: v, direction: minimize}\ntrials: 3\n"
                               "space:\n  x: {type: float, low: 0, high: 1}\n")
    for signum in (signal.SIGINT, signal.SIGKILL):
        pids.unlink(missing_ok=True)
        args = ["run", "--config", "sweep.yaml", "--name", "cut"] + (["--resume"] if signum == signal.SIGKILL else [])
        process = e2e.start_sweep(tmp_path, *args)
        deadline = time.monotonic() + 60
        while not (pids.exists() and len(pids.read_text().split()) >= 2):
            assert time.monotonic() < deadline and process.poll() is None, process.communicate()
            time.sleep(0.05)
        assert trial_processes(tmp_path), "the probe must see the running command"
        process.send_signal(signum)
        process.communicate(timeout=60)
        assert process.returncode == (130 if signum == signal.SIGINT else -9)
        deadline = time.monotonic() + 5
        while trial_processes(tmp_path) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert trial_processes(tmp_path) == [], f"a command outlived {signal.Signals(signum).name}"
