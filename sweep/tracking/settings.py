"""The process-wide settings MLflow tracking needs (environment and SQLite pragmas), applied by an explicit call.

Nothing here runs at import: the tracking process calls configure_process() first thing, before it imports
mlflow (which reads some of these variables at import); the CLI's one-off MLflow calls scope them with
process_settings().
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

ENVIRONMENT: dict[str, tuple[str, bool]] = {  # variable -> (value, whether it overrides the user's own)
    "MLFLOW_DISABLE_TELEMETRY": ("true", False),
    # MLflow prints "View run ... at: <tracking URI>" on stdout when a run ends: the URI may carry a password,
    # and the sweep's own output says where the runs are
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": ("true", True),
    # the tracking process retries a failed write itself (sweep/tracking/retry.py), with a bound; MLflow's
    # own HTTP retries would wait minutes on a dead server before giving up
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": ("0", False),
    "MLFLOW_HTTP_REQUEST_TIMEOUT": ("10", False),
    # a server proxying S3 artifacts offers clients presigned S3 URLs for downloads: a host that reaches
    # only the tracking server (the point of proxying) would then fail to read any artifact; a sweep's
    # artifacts are kilobytes, so streaming them through the server costs nothing
    "MLFLOW_ENABLE_PROXY_MULTIPART_DOWNLOAD": ("false", False),
    # progress bars for downloads of a few kilobytes would only clutter the sweep's output
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": ("false", False),
}


def fast_sqlite(dbapi_connection: Any, _record: Any) -> None:
    """WAL + synchronous=NORMAL on SQLite connections only: a commit no longer waits for two fsyncs.

    A child run is three commits; in the default rollback-journal mode the fsyncs are most of their
    cost. WAL also lets `mlflow ui` read while a sweep writes. NORMAL can lose the last commits on
    power loss (never on a crash of the process); the Optuna study stays the source of truth and
    `sweep sync` rebuilds what MLflow lacks.
    """
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()


def configure_process() -> None:
    """Set the MLflow environment and make every new SQLite connection fast, for the rest of the process."""
    for name, (value, override) in ENVIRONMENT.items():
        if override:
            os.environ[name] = value
        else:
            os.environ.setdefault(name, value)
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    if not event.contains(Engine, "connect", fast_sqlite):
        event.listen(Engine, "connect", fast_sqlite)


@contextmanager
def process_settings() -> Iterator[None]:
    """configure_process() for the duration of a block, then the environment and listeners as they were."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    saved = {name: os.environ.get(name) for name in ENVIRONMENT}
    listening = event.contains(Engine, "connect", fast_sqlite)
    configure_process()
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        if not listening:
            event.remove(Engine, "connect", fast_sqlite)
