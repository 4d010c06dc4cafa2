"""A new user's first hour, with `sweep` driven in-process (tests/support/inprocess.py): an exhausted grid run
by two worker processes, then resumed; a sweep whose trials all fail alike. A closed stdout stays a subprocess
test (tests/e2e/test_first_hour_e2e.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.support import e2e, inprocess

pytestmark = pytest.mark.slow  # whole sweeps, in-process, on real stores

GRID_SPACE = """
space:
  epochs: {type: int, low: 5, high: 6}
  vocab_size: {type: categorical, choices: [50, 100]}
"""


@pytest.mark.usefixtures("mlflow_db")
def test_an_exhausted_grid_ends_the_sweep_cleanly_and_a_resume_says_it_is_complete(tmp_path: Path):
    config = e2e.write_config(tmp_path, GRID_SPACE)
    result = inprocess.sweep(tmp_path, "run", "--config", str(config), "--sampler", "grid", "--trials", "10",
                             "--name", "grid", "--jobs", "2")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "the grid has 4 points: all tried" in result.stdout
    counters = [int(found) for found in re.findall(r"\[\s*(\d+)/4\]", result.stdout)]
    assert counters == [1, 2, 3, 4]  # one line per trial, the counter never goes back
    assert result.stdout.index("plots:") > result.stdout.index("[4/4]")
    listed = inprocess.sweep(tmp_path, "ls").stdout.splitlines()[1].split()
    assert listed[:4] == ["grid", "finished", "4/4", "0"]
    again = inprocess.sweep(tmp_path, "run", "--resume", "--name", "grid", "--trials", "10")
    assert again.returncode == 0, again.stderr
    assert "sweep grid complete: 4 trials" in again.stdout and "the grid has 4 points: all tried" in again.stdout
    assert inprocess.sweep(tmp_path, "ls").stdout.splitlines()[1].split()[:3] == ["grid", "finished", "4/4"]


@pytest.mark.usefixtures("mlflow_db")
def test_trials_all_failing_alike_stop_the_sweep_early(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("SWEEP_STORAGE", raising=False)  # the sweep's journal is the folder's default
    (tmp_path / "train.py").write_text("def fit(trial):\n    import somepackage  # not installed\n")
    config = e2e.write_config(tmp_path, "trainer: {function: train.py:fit}\n"
                                        "objective: {metric: score, direction: maximize}\n" + e2e.FAST_SPACE)
    result = inprocess.sweep(tmp_path, "run", "--config", str(config), "--trials", "12", "--name", "broken")
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1] == ("error: all 5 trials failed with: ModuleNotFoundError: No module "
                                               "named 'somepackage'; stopping early")
    listed = inprocess.sweep(tmp_path, "ls").stdout.splitlines()[1].split()
    assert listed[:4] == ["broken", "failed", "5/12", "5"]
