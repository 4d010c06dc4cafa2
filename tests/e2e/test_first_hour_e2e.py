"""A new user's first hour, end to end: an exhausted grid, a closed pipe, a sweep whose trials all fail alike."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sweep.cli import app
from tests.support import e2e

pytestmark = pytest.mark.slow

GRID_SPACE = """
space:
  epochs: {type: int, low: 5, high: 6}
  vocab_size: {type: categorical, choices: [50, 100]}
"""


def test_an_exhausted_grid_ends_the_sweep_cleanly_and_a_resume_says_it_is_complete(tmp_path: Path):
    config = e2e.write_config(tmp_path, GRID_SPACE)
    result = e2e.sweep(tmp_path, "run", "--config", str(config), "--sampler", "grid", "--trials", "10",
                       "--name", "grid", "--jobs", "2", timeout=400)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "the grid has 4 points: all tried" in result.stdout
    counters = [int(found) for found in re.findall(r"\[\s*(\d+)/4\]", result.stdout)]
    assert counters == [1, 2, 3, 4]  # one line per trial, the counter never goes back
    assert result.stdout.index("writing plots and the best model") > result.stdout.index("[4/4]")
    listed = e2e.sweep(tmp_path, "ls").stdout.splitlines()[1].split()
    assert listed[:4] == ["grid", "finished", "4/4", "0"]
    again = e2e.sweep(tmp_path, "run", "--resume", "--name", "grid", "--trials", "10")
    assert again.returncode == 0, again.stderr
    assert "sweep grid complete: 4 trials" in again.stdout and "the grid has 4 points: all tried" in again.stdout
    assert e2e.sweep(tmp_path, "ls").stdout.splitlines()[1].split()[:3] == ["grid", "finished", "4/4"]


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
    listed = e2e.sweep(tmp_path, "ls").stdout.splitlines()[1].split()
    assert listed[:4] == ["piped", "finished", "4/4", "0"]  # cmaes trials complete: its package is installed


def test_trials_all_failing_alike_stop_the_sweep_early(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("SWEEP_STORAGE", raising=False)

    (tmp_path / "train.py").write_text("def fit(trial):\n    import somepackage  # not installed\n")
    config = e2e.write_config(tmp_path, "trainer: {function: train.py:fit}\n"
                                        "objective: {metric: score, direction: maximize}\n" + e2e.FAST_SPACE)
    result = CliRunner().invoke(app, ["run", "--config", str(config), "--trials", "12", "--name", "broken"])
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1] == ("error: all 5 trials failed with: ModuleNotFoundError: No module "
                                               "named 'somepackage'; stopping early")
    listed = CliRunner().invoke(app, ["ls"]).stdout.splitlines()[1].split()
    assert listed[:4] == ["broken", "failed", "5/12", "5"]
