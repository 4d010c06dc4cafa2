"""--jobs worker processes: each one's stderr in its own anonymous file, a failed worker's own error line, nothing
left (the files have no name: they are gone once closed, or once every process holding one is killed)."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from sweep.locations import StorageLocation, TrackingLocation
from sweep.workers import WorkerPool, error_line, spawn_workers


def pool_of(*scripts: str) -> WorkerPool:
    """Workers that run ``scripts`` (stand-ins for `sweep worker`), stderr captured as spawn_workers does."""
    files = [tempfile.TemporaryFile() for _ in scripts]  # noqa: SIM115 - closed by WorkerPool.close()
    processes = [subprocess.Popen([sys.executable, "-c", script], stderr=file, stdout=subprocess.DEVNULL)
                 for script, file in zip(scripts, files)]
    return WorkerPool(processes, files)


def test_failures_give_each_distinct_error_line_of_a_worker_that_ended_on_an_error():
    unreachable = ("import sys; sys.stderr.write('warning: noise\\nerror: cannot reach the MLflow server\\n'); "
                   "sys.exit(1)")
    pool = pool_of(unreachable, unreachable, "import sys; sys.exit(0)", "import sys; sys.exit(130)",
                   "raise ValueError('a bug')")
    assert pool.wait() == [1, 1, 0, 130, 1]
    assert pool.failures() == ["cannot reach the MLflow server", "ValueError: a bug"]
    pool.close()
    assert all(file.closed for file in pool.stderr_files)


def test_a_worker_killed_without_a_word_is_named_by_its_signal():
    pool = pool_of("import os, signal; os.kill(os.getpid(), signal.SIGKILL)")
    pool.wait()
    assert pool.failures() == ["a worker was killed by SIGKILL"]
    pool.close()


def test_error_line_of_a_missing_or_empty_file_is_none(tmp_path: Path):
    assert error_line(tmp_path / "missing") is None
    (tmp_path / "empty").write_text("\n")
    assert error_line(tmp_path / "empty") is None


def held_pool(folder: Path, jobs: int) -> WorkerPool:
    """Real `sweep worker`s started held on sweep "nowhere" in ``folder``, whose stores do not exist."""
    return spawn_workers("nowhere", jobs, storage=StorageLocation.parse(str(folder / "sweep.journal")),
                         tracking=TrackingLocation.resolve(f"sqlite:///{folder / 'mlflow.db'}"), target=3)


@pytest.mark.slow  # real worker processes
def test_held_workers_let_go_unreleased_end_without_touching_a_store(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    pool = held_pool(tmp_path, 2)
    pool.close()  # as when the sweep's start fails: the workers end, without a trial
    assert [process.returncode for process in pool.processes] == [0, 0]
    assert sorted(path.name for path in tmp_path.iterdir()) == [], "no store, no sweep folder"


@pytest.mark.slow  # a real worker process
def test_a_released_worker_opens_the_sweep(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    pool = held_pool(tmp_path, 1)
    pool.release()
    assert pool.wait() != [0]
    [failure] = pool.failures()
    assert failure.startswith("no sweeps yet"), failure  # it looked for the sweep's storage: there is none
    pool.close()


def test_settle_returns_at_once_for_a_worker_that_ended_before_it_looked():
    """A worker can end between two looks of the sweep (here: before the first): that end wakes it too, once."""
    pool = pool_of("pass", "import time; time.sleep(600)")
    try:
        pool.processes[0].wait()
        pool.settle(600)  # a bound the test's own timeout cuts short
        assert pool.processes[1].poll() is None and pool.ended_seen == {pool.processes[0].pid}
    finally:
        pool.processes[1].kill()
        pool.wait()
        pool.close()


def test_settle_wakes_when_a_worker_ends():
    pool = pool_of("pass", "import time; time.sleep(600)")
    try:
        pool.settle(600)  # a bound the test's own timeout cuts short: it must wake when the first worker ends
        assert pool.processes[0].poll() == 0 and pool.processes[1].poll() is None
    finally:
        pool.processes[1].kill()
        pool.wait()
        pool.close()
