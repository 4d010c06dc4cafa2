"""Opening storages: the journal file (the default), SQLite, PostgreSQL; bad schemes and missing files."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.storages import JournalStorage, RDBStorage

from sweep.errors import NotFoundError, StorageError
from sweep.locations import StorageLocation
from sweep.study.optuna_internals import storage_uses_heartbeat
from sweep.study.storage import open_storage
from tests.support import pg


def test_a_journal_path_opens_a_journal_storage_and_creates_its_folder(tmp_path: Path):
    location = StorageLocation.parse(str(tmp_path / "runs" / "team.journal"))
    storage = open_storage(location)
    assert isinstance(storage, JournalStorage)
    optuna.create_study(study_name="s", storage=storage)
    assert (tmp_path / "runs" / "team.journal").stat().st_size > 0


def test_the_default_storage_is_the_journal_file_in_the_working_folder(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    optuna.create_study(study_name="s", storage=open_storage(StorageLocation.parse(None)))
    assert (tmp_path / "sweep.journal").exists()


def test_a_missing_journal_is_not_found_without_create_and_is_not_made(tmp_path: Path):
    location = StorageLocation.parse(str(tmp_path / "none.journal"))
    with pytest.raises(NotFoundError, match="no sweeps yet"):
        open_storage(location, create=False)
    assert not (tmp_path / "none.journal").exists()


def test_sqlite_opens_an_rdb_storage_with_the_heartbeat(tmp_path: Path):
    storage = open_storage(StorageLocation.parse(f"sqlite:///{tmp_path / 'optuna.db'}"), heartbeat=7)
    assert isinstance(storage, RDBStorage)
    assert storage_uses_heartbeat(storage) and storage.get_heartbeat_interval() == 7


def test_an_unknown_scheme_is_a_storage_error_naming_it():
    with pytest.raises(StorageError, match="unknown scheme 'mongodb'"):
        open_storage(StorageLocation.parse("mongodb://localhost:27017/0"))


def test_an_unreachable_database_is_one_line_without_the_password():
    location = StorageLocation.parse("postgresql://alice:s3cret@127.0.0.1:1/optuna")  # nothing listens on port 1
    with pytest.raises(StorageError) as caught:
        open_storage(location)
    message = str(caught.value)
    assert "s3cret" not in message and "\n" not in message and "cannot open Optuna storage" in message


def test_postgres_opens_an_rdb_storage():
    with pg.database() as url:
        storage = open_storage(StorageLocation.parse(url))
        assert isinstance(storage, RDBStorage)
        optuna.create_study(study_name="s", storage=storage)
        assert [s.study_name for s in storage.get_all_studies()] == ["s"]
        storage.engine.dispose()


def test_a_plain_path_is_parsed_at_the_boundary(tmp_path: Path):
    storage = open_storage(str(tmp_path / "plain.journal"))
    assert isinstance(storage, JournalStorage)


@pytest.mark.slow  # twelve interpreters
def test_processes_opening_a_new_postgresql_database_at_once_all_get_it(tmp_path: Path):
    """The first opener of a new database creates Optuna's tables; openers racing it (two workers, a worker and
    `sweep doctor`) lose a CREATE to it and must see the tables on a second look, never fail."""
    opener = ("import sys, time\n"
              "from pathlib import Path\n"
              "from sweep.study.storage import open_storage\n"
              "Path(sys.argv[2] + '.ready').touch()\n"  # imported: only the opening is left
              "while not Path(sys.argv[3]).exists():\n"  # start together, as workers launched at once do
              "    time.sleep(0.001)\n"
              "open_storage(sys.argv[1]).engine.dispose()\n")
    go = tmp_path / "go"
    with contextlib.ExitStack() as databases:  # three new databases, four openers racing on each
        urls = [databases.enter_context(pg.database()) for _ in range(3)]
        processes = [subprocess.Popen([sys.executable, "-c", opener, url, str(tmp_path / f"{n}-{i}"), str(go)],
                                      stderr=subprocess.PIPE, text=True)
                     for n, url in enumerate(urls) for i in range(4)]
        try:
            deadline = time.monotonic() + 120
            while len(list(tmp_path.glob("*.ready"))) < len(processes):  # every opener has imported sweep and Optuna
                assert time.monotonic() < deadline and all(p.poll() is None for p in processes), \
                    [p.communicate()[1] for p in processes if p.poll() is not None]
                time.sleep(0.01)
        finally:
            go.touch()
        errors = [process.communicate(timeout=120)[1] for process in processes]
        assert all(process.returncode == 0 for process in processes), errors


def test_a_database_refusing_connections_for_too_many_clients_says_so_and_what_to_do():
    import psycopg

    with pg.database() as url:
        role = "sweep_test_no_connections"
        with psycopg.connect(pg.ADMIN_URL, autocommit=True) as admin:
            admin.execute(f"DROP ROLE IF EXISTS {role}")
            admin.execute(f"CREATE ROLE {role} LOGIN CONNECTION LIMIT 0")  # refused as at max_connections
        try:
            with pytest.raises(StorageError) as caught:
                open_storage(url.replace("postgres@", f"{role}@"))
        finally:
            with psycopg.connect(pg.ADMIN_URL, autocommit=True) as admin:
                admin.execute(f"DROP ROLE IF EXISTS {role}")
    message = str(caught.value)
    assert "\n" not in message and "refused a connection: too many connections for role" in message
    assert "sweep storage-proxy" in message and "exceeding max length" not in message


def failed_commit(said: str) -> optuna.exceptions.StorageInternalError:
    """Optuna's error for a commit the database refused, as it raises it: from the database driver's error."""
    try:
        try:
            raise RuntimeError(said)
        except RuntimeError as cause:
            raise optuna.exceptions.StorageInternalError("An exception is raised during the commit.") from cause
    except optuna.exceptions.StorageInternalError as error:
        return error


def test_optunas_failed_commit_gives_way_to_what_the_database_said():
    from sweep.study.storage import opening_failure

    assert opening_failure(failed_commit("FATAL:  sorry, too many clients already")).startswith(
        "the database refused a connection: sorry, too many clients already;")
    assert opening_failure(failed_commit("value too long for type character varying(512)")) == \
        "value too long for type character varying(512)"
