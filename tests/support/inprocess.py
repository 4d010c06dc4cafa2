"""`sweep` driven in this process: the CLI as typer's CliRunner invokes it, the engine with in-process parts.

`sweep(folder, "run", ...)` is the in-process twin of `e2e.sweep(folder, "run", ...)`: the same arguments,
the same exit code, stdout and stderr, but no interpreter to start and no tracking process: the tracking
server runs on a thread (ThreadTransport), so MLflow is imported once per test process, not once per
command. What it cannot stand in for stays a subprocess (tests/e2e/): signals and kills sent to a sweep,
process trees, a closed stdout, real servers. `--jobs` and `--on ray` still start real worker processes.

`run_sweep(...)` drives the engine itself, for tests that want its summary and listener calls.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sweep.engine import composition
from sweep.engine.composition import make_trainer
from sweep.engine.parts import Parts
from sweep.executors import open_executor
from sweep.processes import JOB_ENVIRONMENT
from sweep.tracking.transport import ThreadTransport

# as e2e.env(): the stores are the folder's defaults, and `sweep run` behaves as in a terminal, not a CI job
_DROPPED_ENVIRONMENT = ("MLFLOW_TRACKING_URI", *JOB_ENVIRONMENT)


def in_process_parts() -> Parts:
    """The default parts with the tracking server on a thread of this process."""
    return Parts(transport=ThreadTransport, trainer=make_trainer, executor=open_executor)


@contextlib.contextmanager
def in_process_engine() -> Iterator[None]:
    """While inside, every engine call that is given no parts (the CLI's) uses in_process_parts()."""
    default = composition.default_parts
    composition.default_parts = in_process_parts
    try:
        yield
    finally:
        composition.default_parts = default


@contextlib.contextmanager
def working_in(folder: Path, environment: dict[str, str] | None = None) -> Iterator[None]:
    """The process's working folder and environment as a subprocess started in ``folder`` would have them."""
    before_folder = os.getcwd()
    saved = {name: os.environ.get(name) for name in (*_DROPPED_ENVIRONMENT, *(environment or {}))}
    os.chdir(folder)
    for name in _DROPPED_ENVIRONMENT:
        os.environ.pop(name, None)
    os.environ.update(environment or {})
    try:
        yield
    finally:
        os.chdir(before_folder)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@dataclass
class Result:
    """What a finished command left: as subprocess.CompletedProcess names it."""

    args: list[str]
    returncode: int
    stdout: str
    stderr: str
    exception: BaseException | None = field(default=None, repr=False)


def sweep(folder: Path, *args: str, environment: dict[str, str] | None = None) -> Result:
    """`sweep ARGS` run in ``folder``, in this process (see the module docstring)."""
    from typer.testing import CliRunner

    from sweep import cli

    runner = CliRunner()
    stderr = io.StringIO()
    argv = sys.argv
    with working_in(folder, environment), in_process_engine():
        handler = cli.show_warnings(stderr)
        sys.argv = ["sweep", *args]  # what the parent run records as the command line
        try:
            outcome = runner.invoke(cli.app, list(args), prog_name="sweep", catch_exceptions=True)
        finally:
            sys.argv = argv
            logging.getLogger("sweep").removeHandler(handler)
    release_mlflow_stores()
    if outcome.exception is not None and not isinstance(outcome.exception, SystemExit):
        raise outcome.exception  # a bug: a traceback in a subprocess, so a failure here
    return Result(["sweep", *args], outcome.exit_code, outcome.stdout, outcome.stderr + stderr.getvalue(),
                  outcome.exception)


def release_mlflow_stores() -> None:
    """Close and forget the SQLite engines MLflow keeps per database URI for the whole process, as the end of a
    `sweep` process does: a test that then deletes or replaces an mlflow.db must not have the next command
    read the old file through a pooled connection, and hundreds of commands must not pile up open files.
    (MLflow's engine map is private: this is the harness's business, never the product's.)"""
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    with SqlAlchemyStore._engine_map_lock:
        for uri in [uri for uri in SqlAlchemyStore._engine_map if uri.startswith("sqlite")]:
            SqlAlchemyStore._engine_map.pop(uri).dispose()


class RecordingListener:
    """A SweepListener that keeps what the engine told it."""

    def __init__(self) -> None:
        self.opening: list[tuple[str, int, bool]] = []
        self.started: list[Any] = []
        self.updates: list[Any] = []
        self.finishing_calls = 0
        self.stopping_calls = 0
        self.publishers_waited_for: list[int] = []

    def sweep_opening(self, name: str, target: int, resumed: bool) -> None:
        self.opening.append((name, target, resumed))

    def sweep_started(self, start: Any) -> None:
        self.started.append(start)

    def trial_finished(self, update: Any) -> None:
        self.updates.append(update)

    def finishing(self) -> None:
        self.finishing_calls += 1

    def waiting_for_publisher(self, pid: int) -> None:
        self.publishers_waited_for.append(pid)

    def stopping(self) -> None:
        self.stopping_calls += 1
