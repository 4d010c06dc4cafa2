"""What the bench smoke tests share: a bench script run with --quick as a user runs it, and its figures checked."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[3] / "bench"


def quick_output(script: str, folder: Path) -> str:
    """stdout of `python bench/<script> --quick` in ``folder`` (no store chosen from outside, no telemetry)."""
    env = {key: value for key, value in os.environ.items() if key not in ("MLFLOW_TRACKING_URI", "SWEEP_STORAGE")}
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    done = subprocess.run([sys.executable, str(BENCH / script), "--quick"], capture_output=True, text=True,
                          timeout=600, cwd=folder, env=env, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def assert_figures(output: str, figures: list[str]) -> None:
    """Each pattern of ``figures`` matches a line of ``output``: every figure is printed (their values are not
    checked: they are measurements)."""
    for line in figures:
        assert re.search(line, output, flags=re.MULTILINE), f"missing {line!r} in:\n{output}"
