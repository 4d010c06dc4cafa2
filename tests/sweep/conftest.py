"""Shared test stores. MLflow: one migration per session, a copy of it for each test (see stores.py). The team
stack, started once per test session and only when a test asks for it: a moto S3 endpoint and an `mlflow
server` with basic auth whose clients write artifacts to S3 directly (it costs seconds to start), stopped at
the end. The proxied mode's tests start their own server: they stop it, or run it elsewhere."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from sweep.locations import StorageLocation
from tests.sweep import team
from tests.sweep.stores import copy_mlflow_db, migrated_mlflow_db


@pytest.fixture
def journal(tmp_path: Path) -> StorageLocation:
    """A journal file storage of this test's own (not created yet)."""
    return StorageLocation.parse(str(tmp_path / "sweep.journal"))


@pytest.fixture(scope="session")
def mlflow_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty, migrated MLflow database: copy it, never write to it."""
    return migrated_mlflow_db(tmp_path_factory.mktemp("mlflow-template"))


@pytest.fixture
def mlflow_db(tmp_path: Path, mlflow_template: Path) -> Path:
    """tmp_path/mlflow.db, new and empty: as a first `sweep run` in tmp_path creates it. For tests whose
    subject is not that creation (the tests of creating one, or of a kill during it, start without)."""
    return copy_mlflow_db(mlflow_template, tmp_path)


@pytest.fixture
def mlflow_uri(mlflow_db: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A new, empty MLflow store of this test's own: tmp_path/mlflow.db. The test runs in tmp_path: MLflow
    puts a sqlite store's artifacts in ./mlruns of the working folder, which must not be the checkout."""
    monkeypatch.chdir(mlflow_db.parent)
    return f"sqlite:///{mlflow_db}"


@pytest.fixture(scope="session")
def team_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[team.Stack]:
    from tests.sweep.pg import database, require_postgres

    require_postgres()
    folder = tmp_path_factory.mktemp("team-stack")
    with ExitStack() as stack:
        s3 = stack.enter_context(team.s3_server(folder))
        servers = {}
        for mode in ("direct",):
            backend = stack.enter_context(database())
            servers[mode] = stack.enter_context(team.mlflow_server(folder / mode, backend, mode, s3, auth=True))
            team.create_user(servers[mode].url, team.MEMBER, team.MEMBER_PASSWORD)
        yield team.Stack(s3, servers)
