"""Import hygiene: the read-only commands start without MLflow; the trainer imports no sweep, MLflow or Optuna.

Each check runs in a fresh interpreter: this test session has imported everything already.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path


def run_python(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    env.pop("MLFLOW_TRACKING_URI", None)
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=60)


def assert_ok(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, result.stderr


def test_cli_queries_and_study_modules_import_without_mlflow_or_sqlalchemy(tmp_path):
    assert_ok(run_python("""
        import sys
        from sweep import cli, queries, report
        import sweep.study
        loaded = sorted(m for m in sys.modules if m == "mlflow" or m.startswith("mlflow."))
        assert not loaded, loaded
        assert "sqlalchemy" not in sys.modules, "SQLAlchemy imported: every command pays for it, journal or not"
    """, tmp_path))


def test_sweep_help_and_best_do_not_import_mlflow(tmp_path):
    assert_ok(run_python("""
        import sys
        from sweep.cli import app
        for args in (["--help"], ["best"], ["best", "--format", "json"]):
            try:
                app(args, prog_name="sweep")
            except SystemExit:
                pass
        assert "mlflow" not in sys.modules, "mlflow was imported"
    """, tmp_path))


def test_importing_every_trainer_module_imports_neither_the_sweep_nor_mlflow_nor_optuna(tmp_path):
    assert_ok(run_python("""
        import importlib, pkgutil, sys
        import trainer
        names = [info.name for info in pkgutil.walk_packages(trainer.__path__, "trainer.")]
        assert len(names) >= 6, names
        for name in names:
            importlib.import_module(name)
        loaded = sorted(m for m in ("sweep", "mlflow", "optuna") if m in sys.modules)
        assert not loaded, loaded
    """, tmp_path))
