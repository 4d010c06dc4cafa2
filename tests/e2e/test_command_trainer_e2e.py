"""A command trainer's sweep stopped by Ctrl-C or killed with -9 in a `sweep run` subprocess: no command outlives
it. The commands' other sweeps (the examples) run in-process: tests/unit/sweep/trainers/test_command_sweeps.py."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

import pytest

from tests.support import e2e
from tests.unit.sweep.trainers.test_command_sweeps import trial_processes

pytestmark = pytest.mark.slow

COMMAND_SECONDS = 600  # the command's own length: far beyond any wait below, so only a stop ends it sooner


def test_ctrl_c_stops_the_running_command_and_kill_9_leaves_no_command_behind(tmp_path: Path):
    pids = tmp_path / "pids"
    (tmp_path / "slow.sh").write_text(f"echo $$ >> {pids}\nsleep {COMMAND_SECONDS} &\necho $! >> {pids}\nwait\n"
                                      "echo 'sweep: v=1'\n")
    e2e.write_config(tmp_path, "trainer: {command: 'sh slow.sh {x}', kill_grace: 1}\n"
                               "objective: {metric: v, direction: minimize}\ntrials: 3\n"
                               "space:\n  x: {type: float, low: 0, high: 1}\n")
    try:
        for signum in (signal.SIGINT, signal.SIGKILL):
            pids.unlink(missing_ok=True)
            args = ["run", "--config", "sweep.yaml", "--name", "cut"] + (["--resume"] if signum == signal.SIGKILL
                                                                          else [])
            process = e2e.start_sweep(tmp_path, *args)
            deadline = time.monotonic() + 300
            while not (pids.exists() and len(pids.read_text().split()) >= 2):
                assert time.monotonic() < deadline and process.poll() is None, process.communicate()
                time.sleep(0.05)
            assert trial_processes(tmp_path), "the probe must see the running command"
            process.send_signal(signum)
            process.communicate(timeout=120)
            assert process.returncode == (130 if signum == signal.SIGINT else -9)
            deadline = time.monotonic() + 120  # polled: the watchdog ends a killed sweep's command in seconds
            while trial_processes(tmp_path) and time.monotonic() < deadline:
                time.sleep(0.1)
            assert trial_processes(tmp_path) == [], f"a command outlived {signal.Signals(signum).name}"
    finally:
        for pid in trial_processes(tmp_path):  # a failed run's commands do not sleep on for minutes
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
