"""--jobs worker processes: each one's stderr in its own anonymous file, a failed worker's own error line, nothing
left (the files have no name: they are gone once closed, or once every process holding one is killed)."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from sweep.workers import WorkerPool, error_line


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
