"""Ctrl-C while `sweep run` is still starting (its tracking process importing MLflow) stops it quietly."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.support import e2e

pytestmark = pytest.mark.slow

# after the tracking process is started: at once (its interpreter starting), then deeper into its imports
DELAYS_AFTER_SPAWN = [0.0, 0.1, 0.4, 0.8, 1.5]


def children(pid: int) -> list[int]:
    try:
        return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def tracking_process_started(pid: int) -> bool:
    """The sweep has spawned its tracking process (not only multiprocessing's resource tracker)."""
    for child in children(pid):
        try:
            command = Path(f"/proc/{child}/cmdline").read_bytes()
        except OSError:
            continue
        if b"spawn_main" in command:
            return True
    return False


@pytest.mark.parametrize("delay", DELAYS_AFTER_SPAWN)
def test_ctrl_c_during_start_up_exits_130_without_a_traceback(tmp_path: Path, delay: float):
    e2e.write_config(tmp_path, "trials: 2\npruner: {name: none}\n" + e2e.FAST_SPACE)
    # a terminal's Ctrl-C reaches the whole foreground process group: the sweep and its tracking process
    process = e2e.SweepProcess([*e2e.SWEEP, "run", "--config", "sweep.yaml", "--name", "early"], cwd=tmp_path,
                               env=e2e.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    deadline = time.monotonic() + 120
    while not tracking_process_started(process.pid):
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.002)
    seen = time.monotonic()
    time.sleep(delay)  # how far the tracking process got with its imports is what the test varies
    assert process.poll() is None, ("the sweep ended before the signal: the test was too slow to see its start",
                                    process.communicate())
    os.killpg(process.pid, signal.SIGINT)
    sent = time.monotonic() - seen
    out, err = process.communicate(timeout=300)
    assert process.returncode == 130, (f"signal sent {sent:.3f} s after the tracking process was seen", out, err)
    assert "Traceback" not in err, err
