"""The SQLite file of a local MLflow store: checked in one line before MLflow opens it, created whole or not at all.

MLflow creates a new SQLite database by migrating it in place, in dozens of steps: a process killed
meanwhile leaves a file that no later run can open. Here a new database is migrated in a draft file
beside it and linked into place only once complete, so the store's file is either absent or whole.

Imports mlflow only to create a database: the checks use the standard library's sqlite3.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sweep.errors import TrackingError
from sweep.processes import process_alive

DRAFT_MARK = ".creating-"  # a draft of mlflow.db is .mlflow.db.creating-<pid of the process migrating it>
SQLITE_SIDE_FILES = ("", "-wal", "-shm", "-journal")  # the database and the files SQLite keeps beside it
# what a migration rerun on a half-made schema says: no later run gets past it
HALF_MADE_SIGNS = ("already exists", "duplicate column", "_alembic_tmp")


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` tracking URI; None for other stores and in-memory databases."""
    if not uri.startswith("sqlite:///"):
        return None
    path = uri.removeprefix("sqlite:///").split("?", 1)[0]
    return None if path in ("", ":memory:") else Path(path)


def prepare_sqlite(uri: str) -> None:
    """A SQLite store is ready for MLflow, or the sweep stops here in one line.

    MLflow itself retries opening its engine with backoff for about two minutes, whatever the cause,
    and migrates a new database in place. A missing database is created whole (see create_whole);
    an existing one must open read/write and be a database whose creation was not cut short.
    """
    path = sqlite_path(uri)
    if path is None:
        return
    remove_stale_drafts(path)
    if not path.exists():
        check_folder(path)
        create_whole(path)
    check_database(path)


def check_existing_sqlite(uri: str) -> None:
    """A SQLite store that a command only reads exists and opens, or the command stops here in one line:
    MLflow would create an empty database, or retry opening an unreadable one for minutes."""
    path = sqlite_path(uri)
    if path is None:
        return
    if not path.exists():
        raise TrackingError(f"there is no MLflow database {path}; run in the sweep's folder or pass --tracking-uri")
    check_database(path)


def check_folder(path: Path) -> None:
    """The folder of a database still to be created exists and is writable (nothing is created to find out)."""
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        problem = "its folder does not exist"
    elif not os.access(folder, os.W_OK | os.X_OK):
        problem = "its folder is not writable"
    else:
        return
    raise TrackingError(f"cannot open the MLflow database {path} ({problem}); check --tracking-uri, and that "
                        f"its folder exists and is writable")


def check_database(path: Path) -> None:
    """An existing database opens (read/write where the file allows it) and is not half-created."""
    try:
        # mode=rw never creates the file: a file that vanished since must not come back empty
        connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=rw", uri=True)
        try:
            connection.execute("PRAGMA schema_version").fetchone()  # reads the header: garbage fails here
            half_made = connection.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name LIKE '\\_alembic\\_tmp\\_%' ESCAPE '\\'"
            ).fetchone() is not None
            empty = not holds_runs(connection)
        finally:
            connection.close()
    except sqlite3.Error as error:
        if getattr(error, "sqlite_errorname", "") == "SQLITE_NOTADB":
            raise TrackingError(f"the MLflow database {path} is not a database ({error}); move it away, or "
                                f"pass another --tracking-uri") from None
        raise TrackingError(f"cannot open the MLflow database {path} ({error}); check --tracking-uri, and that "
                            f"its folder exists and is writable") from None
    if half_made and empty:
        raise half_created(path)


def holds_runs(connection: sqlite3.Connection) -> bool:
    try:
        return connection.execute("SELECT 1 FROM runs LIMIT 1").fetchone() is not None
    except sqlite3.Error:  # no runs table: the migration never got that far
        return False


def half_created(path: Path) -> TrackingError:
    return TrackingError(f"the MLflow database {path} was left half-created by a killed first run and holds no "
                         f"runs; remove it (rm {path}) and run again")


def half_created_error(uri: str, error: BaseException) -> TrackingError | None:
    """The one-line way out when MLflow failed migrating a half-created SQLite database that holds no runs,
    else None (the error is something else)."""
    path = sqlite_path(uri)
    if path is None or not any(sign in str(error) for sign in HALF_MADE_SIGNS):
        return None
    try:
        connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            if holds_runs(connection):
                return None
        finally:
            connection.close()
    except sqlite3.Error:
        return None
    return half_created(path)


def create_whole(path: Path) -> None:
    """Create the MLflow database at ``path`` so that a crash cannot leave it half-made.

    MLflow migrates a draft beside it, with the artifact root MLflow would give a new database; the
    draft is then made self-contained (no write-ahead log) and hard-linked into place. A link never
    replaces a file: when another process created the database first, its database is used. The first
    migration of an MLflow version is kept as a template: later drafts are copies of it (copied_template).
    """
    draft = path.with_name(f".{path.name}{DRAFT_MARK}{os.getpid()}")
    template = schema_template()
    try:
        if template is None or not copied_template(template, draft):
            from mlflow.store.tracking import DEFAULT_LOCAL_FILE_AND_ARTIFACT_PATH
            from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

            with unsynced(draft):
                store = SqlAlchemyStore(f"sqlite:///{draft}", DEFAULT_LOCAL_FILE_AND_ARTIFACT_PATH)
                store.engine.dispose()  # closes its connections: SQLite checkpoints the write-ahead log
            connection = sqlite3.connect(f"{draft.resolve().as_uri()}?mode=rw", uri=True)
            try:
                # leaves every page in the main file, or fails: linking the file alone loses nothing
                connection.execute("PRAGMA journal_mode=DELETE").fetchone()
            finally:
                connection.close()
            if template is not None:
                keep_template(draft, template)
        with open(draft, "rb") as whole:  # durable once, before it takes the store's name
            os.fsync(whole.fileno())
        # FileExistsError: another sweep created it meanwhile, and theirs is as whole as ours
        with contextlib.suppress(FileExistsError):
            os.link(draft, path)
    finally:
        remove_draft(draft)


def schema_template() -> Path | None:
    """Where this user keeps a new database as this MLflow version migrates it (`~/.cache/sweep`, or
    `$XDG_CACHE_HOME/sweep`); None when there is no home to keep it in."""
    import mlflow

    base = os.environ.get("XDG_CACHE_HOME") or (str(Path.home() / ".cache") if Path.home() != Path("/") else "")
    return Path(base) / "sweep" / f"mlflow-{mlflow.__version__}.db" if base else None


def copied_template(template: Path, draft: Path) -> bool:
    """``draft`` made from the kept template, as MLflow would migrate it here; False (and no draft) when there is
    no template, or it is not one: the draft is then migrated as MLflow does.

    Migrating costs seconds of CPU; copying the result costs nothing. The one thing that differs from folder to
    folder is where the Default experiment keeps its artifacts, which MLflow puts under ./mlruns of the process
    creating the database: set here the same way."""
    from mlflow.store.tracking import DEFAULT_LOCAL_FILE_AND_ARTIFACT_PATH
    from mlflow.utils.uri import append_to_uri_path, resolve_uri_if_local

    try:
        shutil.copyfile(template, draft)
        connection = sqlite3.connect(f"{draft.resolve().as_uri()}?mode=rw", uri=True)
        try:
            with connection:
                version = connection.execute("SELECT version_num FROM alembic_version").fetchall()
                updated = connection.execute(
                    "UPDATE experiments SET artifact_location = ? WHERE experiment_id = 0",
                    (append_to_uri_path(resolve_uri_if_local(DEFAULT_LOCAL_FILE_AND_ARTIFACT_PATH), "0"),)).rowcount
        finally:
            connection.close()
        if len(version) == 1 and updated == 1:
            return True
    except (OSError, sqlite3.Error):
        pass
    remove_draft(draft)
    return False


def remove_draft(draft: Path) -> None:
    """A draft database and the files SQLite keeps beside it."""
    for suffix in SQLITE_SIDE_FILES:
        Path(f"{draft}{suffix}").unlink(missing_ok=True)


def keep_template(draft: Path, template: Path) -> None:
    """A copy of a newly migrated ``draft`` as the template, whole or not at all; best effort (a read-only home
    only costs the next database its migration)."""
    with contextlib.suppress(OSError):
        template.parent.mkdir(parents=True, exist_ok=True)
        copy = template.with_name(f".{template.name}.{os.getpid()}")
        shutil.copyfile(draft, copy)
        copy.replace(template)


@contextlib.contextmanager
def unsynced(draft: Path) -> Iterator[None]:
    """SQLite connections to ``draft`` opened in the block commit without waiting for the disk (synchronous=OFF).

    MLflow migrates a new database in dozens of commits, each waiting for the disk twice: on a busy disk that is
    most of a new sweep's start. A draft a crash cuts short is never used (it is linked into place only whole), so
    its commits need not be durable; the whole file is made durable once, before the link."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    target = str(draft.resolve())

    def on_connect(connection: Any, _record: Any) -> None:
        if not isinstance(connection, sqlite3.Connection):
            return
        files = [row[2] for row in connection.execute("PRAGMA database_list").fetchall()]
        if target in files:
            connection.execute("PRAGMA synchronous=OFF")

    event.listen(Engine, "connect", on_connect)
    try:
        yield
    finally:
        event.remove(Engine, "connect", on_connect)


def remove_stale_drafts(path: Path) -> None:
    """Remove the drafts (and their SQLite side files) that processes killed mid-creation left beside ``path``."""
    folder = path.parent if str(path.parent) else Path(".")
    prefix = f".{path.name}{DRAFT_MARK}"
    try:
        names = [entry.name for entry in os.scandir(folder) if entry.name.startswith(prefix)]
    except OSError:
        return  # a missing or unreadable folder is reported by the checks that follow
    for name in names:
        pid = name.removeprefix(prefix)
        for suffix in SQLITE_SIDE_FILES[1:]:
            pid = pid.removesuffix(suffix)
        if pid.isdigit() and not process_alive(int(pid)):
            with contextlib.suppress(OSError):  # a read-only folder: the draft is harmless, only untidy
                (folder / name).unlink(missing_ok=True)

