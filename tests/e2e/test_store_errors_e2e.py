"""Disk and permission errors on the embedded stores: one clear line, exit 1, nothing half-written.

/proc refuses new files even to root, so these cases fail for real wherever the tests run.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import e2e

pytestmark = pytest.mark.slow


def test_unwritable_mlflow_database_fails_in_one_line_and_leaves_no_store(tmp_path: Path):
    result = e2e.sweep(tmp_path, "run", "--trials", "2", "--tracking-uri", "sqlite:////proc/sweep-test/mlflow.db",
                       timeout=60)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: cannot open the MLflow database")
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == [], "no journal, no mlflow.db, no mlruns"


def test_unwritable_optuna_journal_fails_in_one_line(tmp_path: Path):
    result = e2e.sweep(tmp_path, "run", "--trials", "2", "--storage", "/proc/sweep-test.journal", timeout=60)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: cannot open Optuna storage")
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "mlruns").exists()
