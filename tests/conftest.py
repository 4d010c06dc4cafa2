"""Shared test setup: no telemetry (there is no outside network), every store under tmp_path, typer
commands built once per test session, and the test stores. MLflow: one migration per session, a copy of it
for each test (see support/stores.py). The team stack, started once per test session and only when a test
asks for it: a moto S3 endpoint and an `mlflow server` with basic auth whose clients write artifacts to S3
directly (it costs seconds to start), stopped at the end. The proxied mode's tests start their own server:
they stop it, or run it elsewhere.

    unit/      the packages' tests, mirroring them; the engine driven in-process (support/engine.py)
    e2e/       real processes, signals, servers; marked by kind: faults, team, ray, browser, bench
    support/   what both share: stores, subprocess helpers, PostgreSQL, Redis, the team stack, hosts, Ray
"""

import os
import signal
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from sweep.locations import StorageLocation
from tests.support import team
from tests.support.stores import copy_mlflow_db, migrated_mlflow_db

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")


@pytest.fixture(scope="session", autouse=True)
def ctrl_c_as_from_a_terminal():
    """The suite's commands get Ctrl-C as a terminal gives it, whatever started the suite: a CI runner or a
    script's background job starts it with SIGINT ignored, every process started from here inherits that, and
    a `sweep` started so keeps ignoring Ctrl-C until it installs its own handler (the start-up signal tests
    then see exit 0, the UI stop test a hang). Handlers are not inherited across exec; the default is."""
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        yield
        return
    signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.fixture(autouse=True)
def mlflow_tracking_uri_as_it_was():
    """MLflow's process-wide tracking URI (and MLFLOW_TRACKING_URI) after each test as before it: a test that
    opens a tracker directly (TrackingStore sets the URI, as the tracking process does for its lifetime) must
    not leave the next in-process sweep of this test process its store. A test that checks the product puts
    it back asserts that within itself."""
    before = os.environ.get("MLFLOW_TRACKING_URI")
    yield
    mlflow = sys.modules.get("mlflow")
    if mlflow is not None and os.environ.get("MLFLOW_TRACKING_URI") != before:
        mlflow.set_tracking_uri(before)  # None unsets it, as MLflow documents


@pytest.fixture(scope="session", autouse=True)
def typer_commands_built_once():
    """typer's CliRunner turns the Typer app into a click command on every invoke, which costs tens of
    milliseconds: the property tests invoke the CLIs hundreds of times. The apps do not change during
    a session, so each is converted once. Without that hook (another typer version) nothing changes."""
    import typer.testing

    convert = getattr(typer.testing, "_get_command", None)
    if convert is None:
        yield
        return
    built: dict[int, tuple[object, object]] = {}

    def built_once(app):
        if id(app) not in built:
            built[id(app)] = (app, convert(app))  # the app is kept too, so its id cannot be reused
        return built[id(app)][1]

    typer.testing._get_command = built_once
    yield
    typer.testing._get_command = convert


# The modules whose tests take longest, longest first: under pytest-xdist a long test started last keeps the
# run going after the other workers have finished, so these start first, then the other slow tests, then the
# fast ones, which fill the workers' gaps at the end.
LONGEST_MODULES = ("test_overhead_smoke", "test_team_readme_e2e", "test_sync_e2e", "test_team_hosts_e2e",
                   "test_sklearn_example_e2e", "test_faults", "test_storage_plane_e2e", "test_parallel_e2e",
                   "test_ray_e2e")


@pytest.hookimpl(trylast=True)  # after -m and -k have deselected: the runs are of the tests that will run
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    def start_rank(item: pytest.Item) -> tuple[int, int]:
        module = item.path.stem
        longest = LONGEST_MODULES.index(module) if module in LONGEST_MODULES else len(LONGEST_MODULES)
        return (0 if item.get_closest_marker("slow") else 1, longest)

    items.sort(key=start_rank)  # stable: within a rank, the collected order
    workers = int(getattr(config, "workerinput", {}).get("workercount", 1))  # pytest-xdist's -n, on its workers
    if workers > 1:
        items[:] = dealt(items, workers)


# Slow modules whose tests share a fixture that costs seconds to start: dealt to one worker, it starts once.
DEALT_TOGETHER = {"test_ray_e2e": "cluster", "test_team_s3_e2e": "team_stack", "test_credentials_cli": "team_stack",
                  "test_ui_e2e": "ui", "test_run_sweeps": "twenty", "test_enqueue": "refusing"}


def dealt(items: list[pytest.Item], workers: int) -> list[pytest.Item]:
    """``items`` (sorted) laid out for the runs pytest-xdist hands its workers first: its `load` and `worksteal`
    schedulers give each worker a run of consecutive tests of the collection (len // workers to the first, an
    even share of the rest to each next), so sorted as they are every slow test would queue on the first
    worker while the others ran the fast ones, and a long test stolen from its queue late would end the run.
    The slow tests are dealt like cards (those of DEALT_TOGETHER as one card), so each run starts with its share
    of them, longest first; the fast tests then fill each run in their order, so what another worker steals
    from a queue's end is fast tests and a module's fast tests mostly stay on one worker."""
    sizes, left = [], len(items)
    for remaining in range(workers, 0, -1):
        sizes.append(left // remaining)
        left -= sizes[-1]
    cards: dict[str, list[pytest.Item]] = {}
    fast = []
    for item in items:
        if item.get_closest_marker("slow"):
            cards.setdefault(DEALT_TOGETHER.get(item.path.stem, item.nodeid), []).append(item)
        else:
            fast.append(item)
    runs: list[list[pytest.Item]] = [[] for _ in sizes]
    for turn, card in enumerate(cards.values()):
        runs[turn % workers].extend(card)
    if any(len(run) > size for run, size in zip(runs, sizes)):
        return items  # more slow tests than a run holds: as sorted
    for run, size in zip(runs, sizes):
        taken = size - len(run)
        run.extend(fast[:taken])
        del fast[:taken]
    return [item for run in runs for item in run]


@pytest.fixture
def journal(tmp_path: Path) -> StorageLocation:
    """A journal file storage of this test's own (not created yet)."""
    return StorageLocation.parse(str(tmp_path / "sweep.journal"))


@pytest.fixture(scope="session")
def mlflow_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty, migrated MLflow database: copy it, never write to it."""
    return migrated_mlflow_db(tmp_path_factory.mktemp("mlflow-template"))


@pytest.fixture(scope="session")
def shipped(tmp_path_factory: pytest.TempPathFactory, mlflow_template: Path) -> tuple[Path, str]:
    """One 10-trial sweep registered as `sentiment-best`, for the tests that only read it (support/shipped.py):
    (its folder, its `sweep run` output)."""
    from tests.support.shipped import make_shipped

    folder = tmp_path_factory.mktemp("shipped")
    return folder, make_shipped(folder, mlflow_template)


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
    from tests.support.pg import database, require_postgres

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
