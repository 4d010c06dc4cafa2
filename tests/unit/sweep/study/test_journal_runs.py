"""The journal file after a crash, with `sweep` driven in-process (tests/support/inprocess.py) on a real journal and
a real MLflow SQLite store: `sweep` never makes a torn or broken journal worse, and a resume goes on from it. A full
disk stays a subprocess test (tests/e2e/test_journal_e2e.py): the failed run's process must be gone before the
resume, as it is between two commands."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support import e2e, inprocess

pytestmark = pytest.mark.slow  # whole sweeps, in-process, on real stores

TINY_SPACE = """
space:
  lr: {type: float, low: 0.1, high: 3.0, log: true}
  epochs: {type: int, low: 1, high: 3}
  vocab_size: {type: int, low: 50, high: 100}
"""


def sweep_of(folder: Path, trials: int) -> Path:
    e2e.write_config(folder, TINY_SPACE)
    done = inprocess.sweep(folder, "run", "--config", "sweep.yaml", "--trials", str(trials), "--name", "c")
    assert done.returncode == 0, done.stderr
    return folder / "sweep.journal"


@pytest.mark.usefixtures("mlflow_db")
@pytest.mark.parametrize("damage", ["truncated", "garbage-line"])
def test_torn_last_line_then_resume_sets_it_aside_and_reaches_the_target(tmp_path: Path, damage: str):
    journal = sweep_of(tmp_path, 3)
    if damage == "truncated":
        os.truncate(journal, journal.stat().st_size - 20)
    else:
        with open(journal, "ab") as file:
            file.write(b"garbage\n")
    listed = inprocess.sweep(tmp_path, "ls")
    assert listed.returncode == 0 and "3/3" in listed.stdout, listed.stderr

    resumed = inprocess.sweep(tmp_path, "run", "--resume", "--name", "c", "--trials", "5")

    assert resumed.returncode == 0, resumed.stderr
    assert [line for line in resumed.stderr.splitlines() if line.strip()] == [
        line for line in resumed.stderr.splitlines() if line.startswith("warning: ") and "set aside in" in line]
    assert len(list(tmp_path.glob("sweep.journal.torn-*"))) == 1
    listed = inprocess.sweep(tmp_path, "ls")
    assert listed.returncode == 0 and "5/5" in listed.stdout, listed.stderr
    e2e.assert_all_finished(tmp_path, "c", 5)


@pytest.mark.usefixtures("mlflow_db")
def test_broken_line_inside_the_journal_is_named_and_nothing_is_written(tmp_path: Path):
    journal = sweep_of(tmp_path, 2)
    lines = journal.read_bytes().splitlines(keepends=True)
    journal.write_bytes(b"".join(lines[:4]) + b"{not json\n" + b"".join(lines[4:]))
    before = journal.read_bytes()

    for args in (["run", "--resume", "--name", "c", "--trials", "4"], ["ls"], ["best"], ["show"]):
        result = inprocess.sweep(tmp_path, *args)
        assert result.returncode == 1, (args, result.stderr)
        assert result.stderr.count("\n") == 1 and "line 5 (byte" in result.stderr and "head -n 4" in result.stderr, \
            result.stderr
    assert journal.read_bytes() == before
