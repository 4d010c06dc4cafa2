"""A full disk under the journal: `sweep` stops in one line and a resume goes on to the exact count. The failed run
is a real process, gone before the resume, as between two commands. Torn and broken journals:
tests/unit/sweep/study/test_journal_runs.py."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.support import e2e, inprocess

pytestmark = pytest.mark.slow

TINY_SPACE = """
space:
  lr: {type: float, low: 0.1, high: 3.0, log: true}
  epochs: {type: int, low: 1, high: 3}
  vocab_size: {type: int, low: 50, high: 100}
"""


def _mount_tmpfs(folder: Path, size: str) -> None:
    """A tiny file system of its own; skipped (except in CI) where this user may not mount one."""
    folder.mkdir()
    reason = "mounting a tmpfs needs root" if os.geteuid() != 0 else ""
    if not reason:
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                                 capture_output=True, text=True)
        reason = "" if mounted.returncode == 0 else f"mount -t tmpfs failed: {mounted.stderr.strip()}"
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"the disk-full test must run in CI: {reason}")
        pytest.skip(reason)


@pytest.mark.usefixtures("mlflow_db")
def test_disk_full_stops_in_one_line_and_resumes_to_the_exact_count(tmp_path: Path):
    disk = tmp_path / "disk"
    _mount_tmpfs(disk, "16k")  # the journal fills it after a few trials; MLflow stays on tmp_path
    try:
        e2e.write_config(tmp_path, TINY_SPACE)
        journal = disk / "sweep.journal"
        full = e2e.sweep(tmp_path, "run", "--config", "sweep.yaml", "--trials", "500", "--name", "c",
                         "--storage", str(journal))
        assert full.returncode == 1, full.stderr
        assert full.stderr.count("\n") == 1 and "No space left on device" in full.stderr, full.stderr
        assert "sweep run --resume" in full.stderr

        subprocess.run(["mount", "-o", "remount,size=4m", str(disk)], check=True)  # space is freed
        # in-process: the resume's own output and exit are all it checks, no signal or closed stream
        resumed = inprocess.sweep(tmp_path, "run", "--resume", "--name", "c", "--trials", "9",
                                  "--storage", str(journal))

        assert resumed.returncode == 0, resumed.stderr
        e2e.assert_all_finished(tmp_path, "c", 9, journal)
    finally:
        if subprocess.run(["umount", str(disk)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "--lazy", str(disk)], capture_output=True)  # still busy: detach it anyway
