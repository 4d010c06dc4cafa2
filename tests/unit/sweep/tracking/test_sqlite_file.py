"""The SQLite file of a local MLflow store: one-line failures before MLflow opens it, and no half-made files."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from sweep.errors import TrackingError
from sweep.tracking.sqlite_file import (
    DRAFT_MARK,
    check_database,
    check_existing_sqlite,
    half_created_error,
    prepare_sqlite,
    remove_stale_drafts,
    sqlite_path,
)


def database(path: Path, *statements: str) -> Path:
    connection = sqlite3.connect(path)
    for statement in statements:
        connection.execute(statement)
    connection.commit()
    connection.close()
    return path


def dead_pid() -> int:
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    return pid


def test_only_sqlite_file_uris_have_a_path():
    assert sqlite_path("sqlite:///mlflow.db") == Path("mlflow.db")
    assert sqlite_path("sqlite:////abs/m.db?mode=ro") == Path("/abs/m.db")
    assert sqlite_path("sqlite:///:memory:") is None
    assert sqlite_path("http://localhost:5000") is None


def test_a_missing_folder_fails_in_one_line_and_creates_nothing(tmp_path: Path):
    with pytest.raises(TrackingError, match="folder does not exist") as caught:
        prepare_sqlite(f"sqlite:///{tmp_path / 'nowhere' / 'mlflow.db'}")
    assert "\n" not in str(caught.value)
    assert list(tmp_path.iterdir()) == []


def test_garbage_in_place_of_the_database_is_not_a_database(tmp_path: Path):
    path = tmp_path / "mlflow.db"
    path.write_bytes(b"these bytes are not a database\n" * 200)
    with pytest.raises(TrackingError, match="not a database") as caught:
        prepare_sqlite(f"sqlite:///{path}")
    assert "\n" not in str(caught.value) and str(path) in str(caught.value)


def test_a_database_left_mid_migration_says_how_to_get_out(tmp_path: Path):
    path = database(tmp_path / "mlflow.db", "CREATE TABLE _alembic_tmp_experiments (experiment_id INTEGER)")
    with pytest.raises(TrackingError, match="half-created by a killed first run and holds no runs") as caught:
        check_database(path)
    assert f"rm {path}" in str(caught.value)


def test_a_mid_migration_table_beside_runs_is_left_to_mlflow(tmp_path: Path):
    path = database(tmp_path / "mlflow.db", "CREATE TABLE _alembic_tmp_experiments (experiment_id INTEGER)",
                    "CREATE TABLE runs (run_uuid TEXT)", "INSERT INTO runs VALUES ('r1')")
    check_database(path)  # holds runs: no advice to remove it


def test_a_migration_error_on_an_empty_database_is_named_half_created(tmp_path: Path):
    path = database(tmp_path / "mlflow.db", "CREATE TABLE runs (run_uuid TEXT)")
    uri = f"sqlite:///{path}"
    error = half_created_error(uri, RuntimeError("(sqlite3.OperationalError) duplicate column name: step"))
    assert error is not None and "half-created" in str(error)
    assert half_created_error(uri, RuntimeError("database is locked")) is None
    database(path, "INSERT INTO runs VALUES ('r1')")
    assert half_created_error(uri, RuntimeError("table experiments already exists")) is None


def test_drafts_of_dead_processes_are_removed_and_live_ones_kept(tmp_path: Path):
    path = tmp_path / "mlflow.db"
    dead, live = dead_pid(), os.getpid()
    stale = [tmp_path / f".mlflow.db{DRAFT_MARK}{dead}{suffix}" for suffix in ("", "-wal", "-shm")]
    mine = tmp_path / f".mlflow.db{DRAFT_MARK}{live}"
    for file in [*stale, mine]:
        file.write_bytes(b"x")
    remove_stale_drafts(path)
    assert sorted(tmp_path.iterdir()) == [mine]


def test_a_store_read_from_is_never_created(tmp_path: Path):
    path = tmp_path / "mlflow.db"
    with pytest.raises(TrackingError, match="there is no MLflow database"):
        check_existing_sqlite(f"sqlite:///{path}")
    assert not path.exists()


def schema(path: Path) -> list[tuple[str, str]]:
    connection = sqlite3.connect(path)
    try:
        return sorted(connection.execute("SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL").fetchall())
    finally:
        connection.close()


def default_experiment(path: Path) -> tuple[str, str]:
    connection = sqlite3.connect(path)
    try:
        return connection.execute("SELECT name, artifact_location FROM experiments WHERE experiment_id = 0").fetchone()
    finally:
        connection.close()


@pytest.mark.slow  # MLflow migrates a database: seconds
def test_a_new_database_is_a_copy_of_the_first_migration_made_as_migrating_it_here_would(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from mlflow import MlflowClient

    from sweep.tracking.sqlite_file import create_whole, schema_template

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    for name in ("first", "second"):
        (tmp_path / name).mkdir()
    monkeypatch.chdir(tmp_path / "first")
    create_whole(tmp_path / "first" / "mlflow.db")  # migrated: kept as the template
    template = schema_template()
    assert template is not None and template.is_file()
    marked = sqlite3.connect(template)
    marked.execute("PRAGMA user_version = 7")  # a mark no migration makes: the second database is its copy
    marked.close()
    monkeypatch.chdir(tmp_path / "second")
    create_whole(tmp_path / "second" / "mlflow.db")
    assert schema(tmp_path / "second" / "mlflow.db") == schema(tmp_path / "first" / "mlflow.db")
    second = tmp_path / "second" / "mlflow.db"
    assert default_experiment(second) == ("Default", str(tmp_path / "second" / "mlruns" / "0"))
    copied = sqlite3.connect(second)
    assert copied.execute("PRAGMA user_version").fetchone() == (7,)
    copied.close()
    client = MlflowClient(f"sqlite:///{tmp_path / 'second' / 'mlflow.db'}")  # opens without migrating, and works
    run = client.create_run(client.create_experiment("e"))
    client.log_metric(run.info.run_id, "m", 1.0)
    assert client.get_run(run.info.run_id).data.metrics == {"m": 1.0}
    assert not [path.name for path in (tmp_path / "second").iterdir() if DRAFT_MARK in path.name]


@pytest.mark.slow  # MLflow migrates a database: seconds
def test_a_template_that_is_no_database_is_replaced_by_a_migration(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from sweep.tracking.sqlite_file import create_whole, schema_template

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    template = schema_template()
    assert template is not None
    template.parent.mkdir(parents=True)
    template.write_bytes(b"not a database at all")
    create_whole(tmp_path / "mlflow.db")
    assert default_experiment(tmp_path / "mlflow.db") == ("Default", str(tmp_path / "mlruns" / "0"))
    assert default_experiment(template)[0] == "Default"  # the migration is kept in its place
