"""The parent run on an MLflow store under tmp_path: a parent the study never linked is found by its token."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from sweep.records import Counts, SweepIdentity
from sweep.tracking.parent import TOKEN_TAG
from sweep.tracking.tracker import SweepTracker, open_tracker
from tests.support.stores import copy_mlflow_db

PARAMS = {"metric": "val_accuracy", "sampler": "tpe"}
CONFIG = "trials: 1\n"


@pytest.fixture(scope="module")
def uri(tmp_path_factory: pytest.TempPathFactory, mlflow_template: Path) -> str:
    """One store for the module; each test has its own experiment."""
    return f"sqlite:///{copy_mlflow_db(mlflow_template, tmp_path_factory.mktemp('parent'))}"


@pytest.fixture
def fresh(uri: str, request: pytest.FixtureRequest) -> Callable[[], SweepTracker]:
    """A new tracking process's view of the store, as the next `sweep run` (or sync) has it."""

    def make() -> SweepTracker:
        made = open_tracker(SweepIdentity("orphan", request.node.name, uri))
        made.store.connect()
        return made

    return make


def test_a_new_parent_carries_the_token(fresh: Callable[[], SweepTracker]):
    first = fresh()
    run_id, created = first.parent.open(None, params=PARAMS, tags={}, config_yaml=CONFIG, token="t-1")
    assert first.store.client.get_run(run_id).data.tags[TOKEN_TAG] == "t-1" and created


def test_the_next_run_adopts_the_parent_its_token_names_instead_of_making_another(
        fresh: Callable[[], SweepTracker]):
    killed = fresh()
    orphan, _ = killed.parent.open(None, params=PARAMS, tags={}, config_yaml=CONFIG, token="t-1")
    killed.parent.open(None, params=PARAMS, tags={}, config_yaml=CONFIG, token="t-2")
    following = fresh()
    adopted, created = following.parent.open(None, params=PARAMS, tags={"sweep.status": "running"},
                                             config_yaml=CONFIG, token="t-1")
    client = following.store.client
    assert adopted == orphan and not created
    assert client.get_run(adopted).info.status == "RUNNING" and client.get_run(adopted).data.params == PARAMS
    assert len(client.search_runs([following.store.experiment()])) == 2  # no third parent


def test_a_killed_parent_is_adopted_and_of_two_running_ones_the_other_ends_killed(
        fresh: Callable[[], SweepTracker]):
    killed = fresh()
    older, _ = killed.parent.open(None, params=PARAMS, tags={}, config_yaml=CONFIG, token="t-1")
    killed.store.client.set_terminated(older, status="KILLED")
    assert fresh().parent.open(None, params=PARAMS, tags={}, config_yaml=CONFIG, token="t-1") == (older, False)
    racing = fresh()
    client = racing.store.client
    newer = client.create_run(racing.store.experiment(), tags={"sweep.role": "parent", TOKEN_TAG: "t-1"}).info.run_id
    assert racing.parent.adopt("t-1") == newer  # RUNNING first, then the newest
    assert client.get_run(older).info.status == "KILLED"
    assert client.get_run(older).data.tags["sweep.replaced_by"] == newer


def test_sync_adopts_the_unlinked_parent_rather_than_creating_one(fresh: Callable[[], SweepTracker]):
    orphan, _ = fresh().parent.open(None, params=PARAMS, tags={}, config_yaml=CONFIG, token="t-1")
    syncing = fresh()
    run_id, created = syncing.parent.sync(None, params=PARAMS, tags={}, config_yaml=CONFIG, token="t-1")
    assert (run_id, created) == (orphan, False) and syncing.parent.status == "RUNNING"
    assert syncing.parent.end_if_needed("KILLED", Counts())
    assert syncing.store.client.get_run(orphan).info.status == "KILLED"
