"""Disk and permission errors on the embedded stores, with `sweep run` driven in-process: one clear line, exit 1,
nothing half-written.

/proc refuses new files even to root, so these cases fail for real wherever the tests run.
"""

from __future__ import annotations

from pathlib import Path

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
