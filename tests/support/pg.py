"""PostgreSQL and `mlflow server` for tests: a database per test, dropped after; a server on a free port.

Where no PostgreSQL answers, tests skip with the reason; CI sets SWEEP_REQUIRE_POSTGRES=1, so there
a missing server fails the tests instead of hiding them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import optuna
import pytest

from tests.support import e2e

ADMIN_URL = os.environ.get("SWEEP_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")


def _connect(url: str):
    import psycopg

    return psycopg.connect(url, autocommit=True, connect_timeout=3)


def require_postgres() -> None:
    try:
        with _connect(ADMIN_URL):
            pass
    except Exception as error:
        if os.environ.get("SWEEP_REQUIRE_POSTGRES"):
            raise
        pytest.skip(f"no PostgreSQL at {ADMIN_URL} ({type(error).__name__}); set SWEEP_TEST_POSTGRES")


@contextmanager
def database(password: str | None = None) -> Iterator[str]:
    """A fresh database; yields its SQLAlchemy URL (with ``password`` in it when given: trust auth ignores it)."""
    require_postgres()
    name = f"sweep_test_{uuid.uuid4().hex[:12]}"
    with _connect(ADMIN_URL) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    user = "postgres" if password is None else f"postgres:{password}"
    try:
        yield f"postgresql://{user}@127.0.0.1:5432/{name}"
    finally:
        with _connect(ADMIN_URL) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def sweep_started(url: str, name: str) -> bool:
    """Whether sweep ``name`` has started (its study links its parent run: a `sweep worker` can join it), read
    with plain SQL: no table is created, so no process creating the schema is raced (see trials())."""
    import psycopg

    query = ("SELECT 1 FROM study_user_attributes a JOIN studies s ON s.study_id = a.study_id "
             "WHERE s.study_name = %s AND a.key = 'sweep.parent_run_id'")
    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=10) as connection:
            return connection.execute(query, (name,)).fetchone() is not None
    except psycopg.errors.UndefinedTable:  # no schema yet
        return False


def trials(url: str, name: str) -> list[optuna.trial.FrozenTrial]:
    """A study's trials, through an engine closed before returning; none before the study exists.

    For polling: every optuna.load_study(storage=url) opens an engine whose pooled connections live
    until garbage collection, and a loop of those exhausts the server's max_connections, failing
    whichever test runs beside it.
    """
    from optuna.storages import RDBStorage

    try:  # skip_table_creation: a reader must not race the first worker creating the schema
        storage = RDBStorage(url, skip_table_creation=True)
    except Exception:  # no schema yet
        return []
    try:
        return optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False)
    except Exception:  # no study yet
        return []
    finally:
        storage.engine.dispose()


@contextmanager
def mlflow_server(backend_url: str, artifacts: Path, port: int | None = None) -> Iterator[str]:
    """A real `mlflow server` on loopback (backend store: PostgreSQL or a SQLite file), artifacts proxied
    to a folder. Give ``port`` to restart a stopped server where its clients expect it."""
    port = port or e2e.free_port()
    log = (artifacts.parent / f"mlflow-server-{port}.log").open("wb")
    command = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", backend_url,
               "--artifacts-destination", artifacts.as_uri(), "--serve-artifacts",
               "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    # the server's job runner (GenAI scoring) is no part of a sweep: off, as in team.mlflow_server; on, it starts
    # a job runner and seven huey consumers that each import mlflow (31 s of CPU in a start, against 8 s)
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300  # a loaded CI machine can take minutes to import mlflow
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2):
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"mlflow server did not start: see {log.name}") from None
                time.sleep(0.1)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
