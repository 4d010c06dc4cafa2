"""MLflow SQLite stores for tests: a new database is migrated once per session (see conftest.py), and each
test that needs a new store of its own gets a copy (a migration costs as much as importing mlflow; a
copy, nothing)."""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path


def migrated_mlflow_db(folder: Path) -> Path:
    """An empty MLflow database in ``folder``, made by the product's own create_whole as `sweep run` makes one."""
    from sweep.tracking.sqlite_file import create_whole

    previous = os.getcwd()
    os.chdir(folder)  # MLflow places the Default experiment's artifacts under the working folder
    try:
        create_whole(folder / "mlflow.db")
    finally:
        os.chdir(previous)
    return folder / "mlflow.db"


def copy_mlflow_db(template: Path, folder: Path, name: str = "mlflow.db") -> Path:
    """``folder``/``name`` as `sweep run` in ``folder`` would have created it (the Default experiment's
    artifacts under ``folder``/mlruns)."""
    path = folder / name
    shutil.copyfile(template, path)
    connection = sqlite3.connect(path)
    try:
        with connection:
            connection.execute("UPDATE experiments SET artifact_location = replace(artifact_location, ?, ?) "
                               "WHERE experiment_id = 0", (str(template.parent), str(folder)))
    finally:
        connection.close()
    return path
