"""A new user's first hour, end to end: `sweep run | head -2` closes the sweep's stdout while it runs, which only
a real process shows. The rest of the first hour runs in-process: tests/unit/sweep/test_first_hour_runs.py."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.support import e2e, inprocess

pytestmark = pytest.mark.slow


@pytest.mark.usefixtures("mlflow_db")
def test_a_closed_stdout_does_not_stop_the_sweep(tmp_path: Path):
    config = e2e.write_config(tmp_path, e2e.FAST_SPACE)
    process = e2e.start_sweep(tmp_path, "run", "--config", str(config), "--sampler", "cmaes", "--trials", "4",
                              "--name", "piped")
    assert process.stdout is not None and process.stderr is not None
    first = [process.stdout.readline() for _ in range(2)]  # what `| head -2` reads, then it exits
    process.stdout.close()
    try:
        code = process.wait(timeout=400)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    errors = process.stderr.read()
    assert first[0].startswith("starting sweep piped")
    assert code == 0, errors
    assert "Traceback" not in errors
    listed = inprocess.sweep(tmp_path, "ls").stdout.splitlines()[1].split()
    assert listed[:4] == ["piped", "finished", "4/4", "0"]  # cmaes trials complete: its package is installed
