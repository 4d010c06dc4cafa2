"""Reading a small text artifact back from the tracking store (`sweep predict` takes the best model.json).

The common case needs no mlflow (seconds to import): a local SQLite tracking store whose runs keep
their artifacts in local folders (the sweep's defaults, `sqlite:///mlflow.db` and `./mlruns`). The
run's artifact location is read from MLflow's `runs` table and the file from disk; anything else
(a server, a cloud store, a schema this query does not fit, a missing file) goes through MLflow.
"""

from __future__ import annotations

import sqlite3
import tempfile
import urllib.parse
from pathlib import Path

from sweep.errors import NotFoundError, TrackingError
from sweep.tracking.settings import process_settings
from sweep.urls import redact_url


class ArtifactMissingError(NotFoundError):
    """The run is there, the artifact is not (a run rebuilt by `sweep sync` has no model file)."""


def artifact_missing(artifact_uri: str, tracking_uri: str) -> bool:
    """Whether a runs:/<run id>/<path> artifact is absent from a run the store holds."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    run_id, _, path = artifact_uri.removeprefix("runs:/").partition("/")
    if not artifact_uri.startswith("runs:/") or not path:
        return False
    try:
        listed = MlflowClient(tracking_uri).list_artifacts(run_id, str(Path(path).parent) if "/" in path else None)
    except (MlflowException, OSError):
        return False  # the run itself is unreachable: not this case
    return path not in {info.path for info in listed}


def read_artifact_text(artifact_uri: str, tracking_uri: str | None) -> str:
    """One small text artifact (e.g. runs:/<run id>/model.json) from the tracking store, as a string."""
    with process_settings():  # MLflow reads some of them at import: import it inside
        import mlflow.artifacts
        from mlflow.exceptions import MlflowException

        from sweep.errors import first_line
        from sweep.tracking.sqlite_file import check_existing_sqlite
        from sweep.tracking.store import check_server, resolved_tracking_uri

        uri = resolved_tracking_uri(tracking_uri)
        check_server(uri)
        check_existing_sqlite(uri)
        try:
            with tempfile.TemporaryDirectory(prefix="sweep-download-") as scratch:
                local = mlflow.artifacts.download_artifacts(artifact_uri, dst_path=scratch, tracking_uri=uri)
                return Path(local).read_text(encoding="utf-8")
        except (MlflowException, OSError) as error:
            if artifact_missing(artifact_uri, uri):
                raise ArtifactMissingError(f"{artifact_uri} is not in MLflow at {redact_url(uri)}") from None
            raise TrackingError(f"cannot read {artifact_uri} from MLflow at {redact_url(uri)} "
                                f"({first_line(error)}); run in the sweep's folder or pass --tracking-uri") from None


def read_local_artifact_text(run_id: str, path: str, tracking_uri: str) -> str | None:
    """Artifact ``path`` of run ``run_id`` read from disk, when the tracking store is a local SQLite file
    and the run's artifacts are local files; None when it is not that simple (ask MLflow)."""
    database = sqlite_path(tracking_uri)
    if database is None or not database.is_file():
        return None
    try:
        with sqlite3.connect(f"{database.resolve().as_uri()}?mode=ro", uri=True) as connection:
            row = connection.execute("SELECT artifact_uri, lifecycle_stage FROM runs WHERE run_uuid = ?",
                                     (run_id,)).fetchone()
    except sqlite3.Error:
        return None
    if row is None or row[1] != "active":
        return None  # MLflow says what is wrong with the run
    folder = local_folder(str(row[0]))
    if folder is None:
        return None
    try:
        return (folder / path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def sqlite_path(tracking_uri: str) -> Path | None:
    """sqlite:///mlflow.db -> mlflow.db, sqlite:////abs/mlflow.db -> /abs/mlflow.db; None for any other store."""
    prefix = "sqlite:///"
    if not tracking_uri.startswith(prefix) or "?" in tracking_uri or tracking_uri == prefix + ":memory:":
        return None
    return Path(tracking_uri[len(prefix):])


def local_folder(artifact_uri: str) -> Path | None:
    """An artifact location on this machine: an absolute path or a file: URI; None for any other scheme."""
    if artifact_uri.startswith("/"):
        return Path(artifact_uri)
    parsed = urllib.parse.urlparse(artifact_uri)
    if parsed.scheme == "file" and parsed.netloc in ("", "localhost"):
        return Path(urllib.parse.unquote(parsed.path))
    return None
