"""`sweep doctor`'s view of MLflow: the tracking server (version, credentials), the artifact store, a sweep's versions.

Each check answers one line for the user or raises TrackingError (one line: what is wrong, the fix).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sweep.errors import NotFoundError
from sweep.tracking.settings import process_settings
from sweep.urls import redact_url


@contextmanager
def mlflow_client(uri: str) -> Iterator[Any]:
    """An MlflowClient on ``uri`` after the fail-fast checks a sweep makes, with the sweep's MLflow settings."""
    with process_settings():  # MLflow reads some of them at import: import it inside
        import mlflow
        from mlflow import MlflowClient

        from sweep.tracking.sqlite_file import check_existing_sqlite
        from sweep.tracking.store import check_server

        check_server(uri)
        check_existing_sqlite(uri)
        previous = mlflow.get_tracking_uri() if "MLFLOW_TRACKING_URI" in os.environ else None
        # proxied artifact repositories (mlflow-artifacts:/) find the server through the process-wide URI
        mlflow.set_tracking_uri(uri)
        try:
            yield MlflowClient(uri)
        finally:
            mlflow.set_tracking_uri(previous)


def local_store_missing(uri: str) -> bool:
    """A SQLite tracking store not made yet: `sweep run` makes it (and its artifact folder beside it)."""
    from sweep.tracking.sqlite_file import sqlite_path

    path = sqlite_path(uri)
    return path is not None and not path.exists()


def check_tracking(uri: str) -> str:
    """The tracking store answers an authenticated request: "<uri>: MLflow <version>, signed in as <user>".

    A SQLite store not made yet is only checked for a writable folder: opening it with MLflow would
    leave an empty database behind, and the doctor creates nothing.
    """
    from sweep.tracking.sqlite_file import check_folder, sqlite_path
    from sweep.tracking.store import store_error

    path = sqlite_path(uri)
    if path is not None and not path.exists():
        check_folder(path)
        return f"{redact_url(uri)}: no runs yet (`sweep run` creates it)"

    with mlflow_client(uri) as client:
        try:
            client.search_experiments(max_results=1)
        except Exception as error:
            raise store_error(uri, error) from None
    if not uri.startswith(("http://", "https://")):
        return f"{redact_url(uri)}: local store, readable"
    version = server_version(uri)
    user = os.environ.get("MLFLOW_TRACKING_USERNAME")
    return f"{redact_url(uri)}: MLflow {version}" + (f", signed in as {user}" if user else ", no sign-in")


def server_version(uri: str) -> str:
    """The server's MLflow version (its /version endpoint), "unknown" when it does not say."""
    import urllib.request

    from sweep.tracking.store import server_request

    try:
        with urllib.request.urlopen(server_request(uri, "/version"), timeout=10) as response:
            return response.read(100).decode("utf-8", "replace").strip() or "unknown"
    except OSError:
        return "unknown"


def check_artifact_store(uri: str, experiment: str | None) -> str:
    """Write, read and delete a probe object where the experiment's runs keep their artifacts."""
    from sweep.tracking.artifact_probe import describe_endpoint, probe_artifact_store
    from sweep.tracking.store import store_error

    with mlflow_client(uri) as client:
        try:
            found = client.get_experiment_by_name(experiment) if experiment else None
            found = found or client.get_experiment("0")  # the default experiment: a new one's root is beside it
        except Exception as error:
            raise store_error(uri, error) from None
        location = found.artifact_location
        done = probe_artifact_store(location)
    return f"{redact_url(location)}{describe_endpoint(location)}: {done}"


def sweep_versions(uri: str, parent_run_id: str) -> dict[str, str]:
    """The package versions the sweep's parent run was started with (its ``version.*`` tags)."""
    from sweep.tracking.store import store_error

    with mlflow_client(uri) as client:
        try:
            run = client.get_run(parent_run_id)
        except Exception as error:
            if "RESOURCE_DOES_NOT_EXIST" in str(error):
                raise NotFoundError(f"the sweep's parent run {parent_run_id} is not in MLflow at "
                                    f"{redact_url(uri)}; `sweep sync` rebuilds it") from None
            raise store_error(uri, error) from None
    return {key.removeprefix("version."): value for key, value in run.data.tags.items()
            if key.startswith("version.")}

