"""Shared test setup: no telemetry (there is no outside network), every store under tmp_path, and typer
commands built once per test session."""

import os
import signal

import pytest

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
LONGEST_MODULES = ("test_overhead_smoke", "test_team_readme_e2e", "test_sync_e2e", "test_faults",
                   "test_storage_plane_e2e", "test_team_hosts_e2e", "test_parallel_e2e", "test_ray_e2e")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def start_rank(item: pytest.Item) -> tuple[int, int]:
        module = item.path.stem
        longest = LONGEST_MODULES.index(module) if module in LONGEST_MODULES else len(LONGEST_MODULES)
        return (0 if item.get_closest_marker("slow") else 1, longest)

    items.sort(key=start_rank)  # stable: within a rank, the collected order
