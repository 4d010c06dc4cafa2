"""Disk and permission errors on the embedded stores, with `sweep run` driven in-process: one clear line, exit 1,
nothing half-written.

/proc refuses new files even to root, so these cases fail for real wherever the tests run.
"""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend

from tests.support import inprocess


def test_unwritable_mlflow_database_fails_in_one_line_and_leaves_no_store(tmp_path: Path):
    result = inprocess.sweep(tmp_path, "run", "--trials", "2", "--tracking-uri", "sqlite:////proc/sweep-test/mlflow.db")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: cannot open the MLflow database")
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == [], "no journal, no mlflow.db, no mlruns"


def test_unwritable_optuna_journal_fails_in_one_line(tmp_path: Path):
    result = inprocess.sweep(tmp_path, "run", "--trials", "2", "--storage", "/proc/sweep-test.journal")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: cannot open Optuna storage")
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "mlruns").exists()


@pytest.mark.parametrize(("record", "why"), [
    ('{"op_code": 42}', "unknown op_code 42"),
    ("[1, 2]", "a JSON list, not an object"),
    ('{"op_code": 5}', "op_code 5 without 'trial_id'"),
    ('{"x": 1}', "no op_code"),
], ids=["unknown-op", "list", "missing-key", "no-op"])
def test_a_journal_record_optuna_cannot_apply_is_one_line_naming_it(tmp_path: Path, record: str, why: str):
    """Valid JSON that is no journal record (a hand edit, another tool's file) was Optuna's "Should not
    reach." or "'trial_id'"; it is located like a line that is not JSON at all."""
    journal = tmp_path / "sweep.journal"
    study = optuna.create_study(study_name="s", storage=JournalStorage(JournalFileBackend(str(journal))))
    study.enqueue_trial({"x": 1.0})
    lines = journal.read_text().splitlines(keepends=True)
    journal.write_text(lines[0] + record + "\n" + "".join(lines[1:]))
    before = journal.read_bytes()
    result = inprocess.sweep(tmp_path, "ls")
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"error: {journal}: line 2 is a record Optuna cannot apply ({why}); nothing was written. To keep the 1 "
        f"lines before it: copy the file, cut the copy from line 2 on (head -n 1 sweep.journal > repaired.journal), "
        f"then use --storage repaired.journal"]
    assert journal.read_bytes() == before
