"""Helpers for end-to-end tests: run `sweep`/`train` as real subprocesses on stores under a tmp folder."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported where used: the fast tests that import this module need neither
    import optuna
    from mlflow import MlflowClient
    from mlflow.entities import Run

SWEEP = [sys.executable, "-m", "sweep.cli"]
TRAIN = [sys.executable, "-m", "sweep.train_cli"]

FAST_SPACE = """
space:
  lr: {type: float, low: 0.1, high: 3.0, log: true}
  epochs: {type: int, low: 5, high: 40}
  vocab_size: {type: int, low: 50, high: 2000, log: true}
"""
SLOW_SPACE = """
space:
  lr: {type: float, low: 0.2, high: 2.0, log: true}
  epochs: {type: int, low: 1500, high: 2500}
  vocab_size: {type: int, low: 500, high: 1500}
"""
SLOWER_SPACE = """
space:
  lr: {type: float, low: 0.2, high: 2.0, log: true}
  epochs: {type: int, low: 9000, high: 10000}
  vocab_size: {type: int, low: 500, high: 1500}
"""


def env() -> dict[str, str]:
    """The test's environment, with stores left to their defaults: the subprocess's working folder."""
    from sweep.processes import JOB_ENVIRONMENT

    values = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    for name in ("MLFLOW_TRACKING_URI", *JOB_ENVIRONMENT):  # a CI job's variables: `sweep run` as in a terminal
        values.pop(name, None)
    return values


def write_config(folder: Path, body: str, name: str = "sweep.yaml") -> Path:
    path = folder / name
    path.write_text(body, encoding="utf-8")
    return path


def run(args: list[str], folder: Path, *, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """A command to its end; after `sweep run`, its background publisher's end too (what the test reads next)."""
    done = subprocess.run(args, cwd=folder, env=env(), capture_output=True, text=True, timeout=timeout)
    if is_sweep_run(args):
        wait_for_publishers()
    return done


def is_sweep_run(args: object) -> bool:
    """Whether a command's arguments are `sweep run ...` (the one command that leaves a background publisher)."""
    return isinstance(args, list) and args[:len(SWEEP) + 1] == [*SWEEP, "run"]


def wait_for_publishers(temporary: Path | None = None) -> None:
    """Until no background publisher of this machine writes a sweep's end (sweep/publisher_lock.py): the plots,
    the model and the parent run's status a test reads after `sweep run` returns. ``temporary``: the TMPDIR the
    sweep ran with, where its publisher keeps its lock (default: this process's)."""
    import tempfile

    from sweep.publisher_lock import wait_until_free

    for lock in (temporary or Path(tempfile.gettempdir())).glob("sweep-publishing-*.lock"):
        wait_until_free(lock)


def sweep(folder: Path, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return run([*SWEEP, *args], folder, timeout=timeout)


class SweepProcess(subprocess.Popen):  # type: ignore[type-arg]
    """A `sweep` process; waited for (wait(), communicate()), a `sweep run` is waited for with its background
    publisher's end: what a test reads next is the end written, as a script would have it with --wait."""

    def wait(self, timeout: float | None = None) -> int:
        code = super().wait(timeout)
        if is_sweep_run(self.args):
            wait_for_publishers()
        return code


def start_sweep(folder: Path, *args: str) -> subprocess.Popen[str]:
    return SweepProcess([*SWEEP, *args], cwd=folder, env=env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def wait_for_trials(process: subprocess.Popen[str], count: int, timeout: float = 120) -> list[str]:
    """Read the plain progress lines until ``count`` trials have finished."""
    assert process.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if sum(1 for seen in lines if seen.startswith("trial ")) >= count:
            return lines
    raise AssertionError(f"sweep did not finish {count} trials: {''.join(lines)}")


def interrupt(process: subprocess.Popen[str], signum: int) -> tuple[int, str, str]:
    process.send_signal(signum)
    out, err = process.communicate(timeout=120)
    return process.returncode, out, err


def mlflow_client(folder: Path) -> MlflowClient:
    from mlflow import MlflowClient

    return MlflowClient(f"sqlite:///{folder / 'mlflow.db'}")


def runs(folder: Path, experiment: str = "sentiment") -> tuple[Run, list[Run]]:
    """(the one parent run, its child runs sorted by trial number)."""
    client = mlflow_client(folder)
    found = client.get_experiment_by_name(experiment)
    assert found is not None, "no MLflow experiment"
    every = client.search_runs([found.experiment_id], max_results=5000)
    parents = [r for r in every if r.data.tags.get("sweep.role") == "parent"]
    assert len(parents) == 1, f"expected one parent run, found {len(parents)}"
    children = [r for r in every if r is not parents[0]]
    return parents[0], sorted(children, key=lambda r: int(r.data.tags["sweep.trial"]))


def study(folder: Path, name: str, journal: Path | None = None) -> optuna.Study:
    """Study ``name`` of ``folder``'s sweep.journal (or of ``journal``)."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    storage = JournalStorage(JournalFileBackend(str(journal or folder / "sweep.journal")))
    return optuna.load_study(study_name=name, storage=storage)


def assert_all_finished(folder: Path, name: str, count: int, journal: Path | None = None) -> None:
    """Sweep ``name`` holds ``count`` finished trials, each with its child run, and no run is left RUNNING."""
    trials = study(folder, name, journal).trials
    assert len(trials) == count and all(t.state.is_finished() for t in trials), [t.state.name for t in trials]
    parent, children = runs(folder)
    assert sorted(int(c.data.tags["sweep.trial"]) for c in children) == list(range(count))
    assert not [r for r in [parent, *children] if r.info.status == "RUNNING"]


def finished(trials: list[optuna.trial.FrozenTrial]) -> list[optuna.trial.FrozenTrial]:
    return [t for t in trials if t.state.is_finished()]


def artifact_bytes(folder: Path, run_id: str, path: str) -> bytes:
    local = mlflow_client(folder).download_artifacts(run_id, path, str(folder / f"dl-{run_id}"))
    return Path(local).read_bytes()


def artifact_names(folder: Path, run_id: str, path: str) -> list[str]:
    """The file names directly under ``path`` in a run's artifacts."""
    return sorted(Path(info.path).name for info in mlflow_client(folder).list_artifacts(run_id, path))


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's header; fails unless ``data`` starts like a PNG file."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", "not a PNG file"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def python_in(folder: Path, code: str, *, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter in ``folder`` (whose mlflow.db is the default store there)."""
    return run([sys.executable, "-c", code], folder, timeout=timeout)


SIGINT = signal.SIGINT
SIGTERM = signal.SIGTERM
SIGKILL = signal.SIGKILL
