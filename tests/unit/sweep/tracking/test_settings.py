"""Process-wide MLflow settings: applied only when asked, scoped for the CLI, SQLite pragmas on SQLite only."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine

from sweep.tracking.settings import ENVIRONMENT, configure_process, fast_sqlite, process_settings


def test_process_settings_puts_back_the_environment_and_the_listeners(monkeypatch: pytest.MonkeyPatch):
    for name in ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "99")
    listening = event.contains(Engine, "connect", fast_sqlite)
    with process_settings():
        assert os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] == "true"
        assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "0"
        assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "99"  # the user's own value wins
        assert event.contains(Engine, "connect", fast_sqlite)
    assert "MLFLOW_HTTP_REQUEST_MAX_RETRIES" not in os.environ
    assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "99"
    assert event.contains(Engine, "connect", fast_sqlite) == listening


def test_configure_process_registers_the_listener_once(monkeypatch: pytest.MonkeyPatch):
    for name in ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
    assert not event.contains(Engine, "connect", fast_sqlite)
    configure_process()
    configure_process()
    event.remove(Engine, "connect", fast_sqlite)
    assert not event.contains(Engine, "connect", fast_sqlite)  # a second registration would still be there


def test_the_listener_turns_on_wal_for_sqlite_and_leaves_other_connections_alone(tmp_path: Path):
    connection = sqlite3.connect(tmp_path / "mlflow.db")
    fast_sqlite(connection, None)
    assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert connection.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    connection.close()

    class OtherDriver:
        def cursor(self) -> None:
            raise AssertionError("a non-SQLite connection was given SQLite pragmas")

    fast_sqlite(OtherDriver(), None)
