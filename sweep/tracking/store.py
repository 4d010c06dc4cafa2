"""The MLflow tracking store of one sweep: the client (after fail-fast checks), its experiment, artifact writes.

Imports mlflow: only the tracking process and the CLI's one-off MLflow commands import this module.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

from sweep.errors import TrackingError, first_line
from sweep.locations import TrackingLocation
from sweep.records import SweepIdentity
from sweep.tracking.artifact_probe import is_local, probe_artifact_store
from sweep.tracking.metric_rows import MetricRows
from sweep.tracking.sqlite_file import half_created_error, prepare_sqlite, sqlite_path
from sweep.urls import redact_url

MAX_TAG_CHARS = 5000  # MLflow caps tag values at 8,000 characters; an error message needs far fewer
FOLD_SECONDS = 60  # a fold of a large write-ahead log into a database on a slow disk


def resolved_tracking_uri(tracking_uri: str | None) -> str:
    """The URI MLflow will use: the one given, else MLFLOW_TRACKING_URI, else MLflow's default."""
    return tracking_uri or mlflow.get_tracking_uri()


class TrackingStore:
    """One sweep's MLflow client, experiment, scratch folder and cache of run id -> artifact URI."""

    def __init__(self, identity: SweepIdentity) -> None:
        self.identity = identity
        self.uri = resolved_tracking_uri(identity.tracking_uri)
        location = TrackingLocation.resolve(self.uri)
        if location.scheme == "sqlite":
            # a relative file made absolute: MLflow keeps one store per URI text for the whole process, so a
            # second sweep in another folder of one process would otherwise reach the first one's file
            self.uri = location.absolute_uri()
        # fail fast, in one line: the client opens its store at once, with minutes of retries
        check_server(self.uri)
        prepare_sqlite(self.uri)
        try:
            self.client = MlflowClient(self.uri)  # opens the store: migrates an older database
        except Exception as error:
            half_made = half_created_error(self.uri, error)
            if half_made is None:
                raise
            raise half_made from None
        # artifact repositories (mlflow-artifacts:/ URIs of a proxying server) find the server through
        # the process-wide URI; the tracking process tracks one store only, so setting it is safe
        mlflow.set_tracking_uri(self.uri)
        self.experiment_id: str | None = None
        # a new child run's metrics, written as rows on a SQLite store (MLflow's log_batch elsewhere)
        self.metric_rows = MetricRows(self.uri) if location.scheme == "sqlite" else None
        # known from create_run: client.log_artifact would look the run up again for every file
        self.artifact_uris: dict[str, str] = {}
        # one scratch folder for the files it logs, removed at cleanup() or when the store is collected
        self._scratch_dir = tempfile.TemporaryDirectory(prefix="sweep-tracking-")
        self.scratch = Path(self._scratch_dir.name)

    def connect(self) -> str:
        """Reach the store and find or create the experiment: fails fast, before any trial runs."""
        try:
            self.experiment_id = self._find_or_create_experiment()
            location = self.client.get_experiment(self.experiment_id).artifact_location
        except MlflowException as error:
            raise self.error(error) from error
        if not is_local(location):  # a bucket this host cannot write would fail every trial's model.json
            probe_artifact_store(location)
        return self.experiment_id

    def experiment(self) -> str:
        if self.experiment_id is None:
            raise RuntimeError("connect() must run first")
        return self.experiment_id

    def error(self, error: BaseException) -> TrackingError:
        """An MLflow failure as one line naming the store (password hidden)."""
        return store_error(self.uri, error)

    def repository(self, run_id: str) -> Any:
        """The run's artifact repository, from the cached artifact URI when there is one."""
        artifact_uri = self.artifact_uris.get(run_id) or self.client.get_run(run_id).info.artifact_uri
        self.artifact_uris[run_id] = artifact_uri
        return get_artifact_repository(artifact_uri)

    def log_text(self, run_id: str, text: str, file_name: str, artifact_path: str | None) -> None:
        """Write text as an artifact straight through the run's artifact repository (no run look-up)."""
        local = self.scratch / file_name
        local.write_text(text, encoding="utf-8")
        self.repository(run_id).log_artifact(str(local), artifact_path)

    def log_artifact(self, run_id: str, path: str) -> None:
        """A trainer's file or folder (trial.log_artifact); one removed since it was given is skipped, not
        retried: the rest of the trial's record matters more."""
        source = Path(path)
        if source.is_dir():
            self.repository(run_id).log_artifacts(str(source), source.name)
        elif source.is_file():
            self.repository(run_id).log_artifact(str(source), None)

    def download_text(self, run_id: str, path: str) -> str:
        local = self.client.download_artifacts(run_id, path, str(self.scratch))
        return Path(local).read_text(encoding="utf-8")

    def artifact_paths(self, run_id: str, folder: str | None = None) -> set[str]:
        """The paths (from the run's artifact root) of the files and folders directly in ``folder``."""
        return {info.path for info in self.repository(run_id).list_artifacts(folder)}

    def delete_artifact(self, run_id: str, path: str) -> None:
        self.repository(run_id).delete_artifacts(path)

    def cleanup(self) -> None:
        self._scratch_dir.cleanup()
        if self.metric_rows is not None:
            self.metric_rows.close()

    def _find_or_create_experiment(self) -> str:
        experiment = self.client.get_experiment_by_name(self.identity.experiment)
        if experiment is not None:
            if experiment.lifecycle_stage != "active":
                raise TrackingError(
                    f"MLflow experiment {self.identity.experiment!r} is deleted; restore it or choose "
                    f"another --experiment")
            return experiment.experiment_id
        try:
            # the kind tag opens the MLflow UI on model training (runs, charts) instead of GenAI traces
            return self.client.create_experiment(self.identity.experiment,
                                                 tags={"mlflow.experimentKind": "custom_model_development"})
        except MlflowException:
            # another worker created it between our look-up and our create
            experiment = self.client.get_experiment_by_name(self.identity.experiment)
            if experiment is None:
                raise
            return experiment.experiment_id


def store_error(uri: str, error: BaseException) -> TrackingError:
    """An MLflow failure as one line naming the store at ``uri`` (password hidden).

    A server with basic auth answers 401 to a wrong or missing password and 403 to a user without the
    permission: MLflow's message for either is a long response dump, so those are said plainly.
    """
    text = str(error)
    if "error code 401" in text or "Unauthorized" in text.split("\n")[0]:
        user = os.environ.get("MLFLOW_TRACKING_USERNAME")
        who = f"user {user!r} and the password given" if user else "no user name or password given"
        return TrackingError(f"MLflow at {redact_url(uri)} refused the sign-in (HTTP 401, {who}); "
                             f"check MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD")
    if "error code 403" in text:
        user = os.environ.get("MLFLOW_TRACKING_USERNAME", "this user")
        return TrackingError(f"MLflow at {redact_url(uri)}: {user} lacks the permission (HTTP 403); ask the "
                             f"server's admin for EDIT on the experiment (or default_permission = EDIT)")
    return TrackingError(f"MLflow at {redact_url(uri)}: {first_line(error)}")


def check_server(uri: str, timeout: float = 10.0) -> None:
    """An http(s) tracking server answers /health, or the sweep stops here in one line.

    MLflow's own client retries a refused connection with backoff for minutes before it gives up.
    """
    if not uri.startswith(("http://", "https://")):
        return
    import urllib.error
    import urllib.request

    request = server_request(uri, "/health")
    try:
        with urllib.request.urlopen(request, timeout=timeout):
            return
    except urllib.error.HTTPError as error:
        if error.code < 500:
            return  # it answers: an auth proxy or an older server without /health
        raise TrackingError(f"MLflow tracking server {redact_url(uri)} answered HTTP {error.code}") from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise TrackingError(f"cannot reach the MLflow tracking server at {redact_url(uri)} ({reason}); "
                            f"start it or check --tracking-uri") from None


def server_request(uri: str, path: str) -> Any:
    """A GET of ``path`` on the tracking server at ``uri``, with basic auth as MLflow's client sends it
    (user:password in the URI, else MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD)."""
    import base64
    import urllib.parse
    import urllib.request

    parts = urllib.parse.urlsplit(uri)
    netloc = (parts.hostname or "") + (f":{parts.port}" if parts.port else "")
    request = urllib.request.Request(urllib.parse.urlunsplit(
        (parts.scheme, netloc, parts.path.rstrip("/") + path, "", "")))
    if parts.username is not None:
        user, password = urllib.parse.unquote(parts.username), urllib.parse.unquote(parts.password or "")
    else:
        user, password = os.environ.get("MLFLOW_TRACKING_USERNAME"), os.environ.get("MLFLOW_TRACKING_PASSWORD")
    if user is not None:
        token = f"{user}:{password or ''}"
        request.add_header("Authorization", "Basic " + base64.b64encode(token.encode()).decode())
    return request


def param_text(value: object) -> str:
    """A value as MLflow param or tag text: floats by repr, so they read back exactly."""
    return repr(value) if isinstance(value, float) else str(value)


def close_databases() -> None:
    """Close this process's connections to MLflow's SQL stores, as the interpreter's exit would: SQLite then folds
    its write-ahead log into the database and removes the -wal and -shm files. Left behind, a user who deletes
    mlflow.db to start over gets them replayed into the next sweep's new database ("malformed")."""
    for engine in sql_engines():
        engine.dispose()


def fold_write_ahead_log(uri: str) -> None:
    """For a SQLite store whose write-ahead log is still there: connect and close once, from a new process, so that
    SQLite folds the log into the database and removes the -wal and -shm files (as it does when a database's last
    connection closes). For a background publisher once the tracking process it was copied from has exited without
    closing its connections: the copy itself cannot (SQLite counts the connections it inherited from the original,
    which it never closes, as open), and a process of its own sees the database as it is."""
    path = sqlite_path(uri)
    if path is None or not path.with_name(path.name + "-wal").exists():
        return
    fold = "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute('PRAGMA schema_version'); c.close()"
    with contextlib.suppress(OSError, subprocess.SubprocessError):  # left in place, the next opening folds it
        subprocess.run([sys.executable, "-I", "-S", "-c", fold, str(path)], stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=FOLD_SECONDS, check=False)


def reconnect_after_fork() -> None:
    """In a forked copy of a tracking process: new connections for MLflow's SQL stores, leaving those the copy
    shares with the original alone (SQLAlchemy's way for a fork: the original's are not closed from here)."""
    for engine in sql_engines():
        engine.dispose(close=False)


def sql_engines() -> list[Any]:
    """MLflow's SQLAlchemy engines of this process: one per database URI, kept on the store class."""
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    return list(getattr(SqlAlchemyStore, "_engine_map", {}).values())
