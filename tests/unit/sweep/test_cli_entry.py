"""`sweep` and `train` as installed (their main()): a bad flag, value or command is one `error:` line with exit 2,
as every other error of theirs; help and the version stay as they were. Each runs `python -m`: no sweep starts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def command(tmp_path: Path, module: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    return subprocess.run([sys.executable, "-m", module, *args], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize(("args", "line"), [
    (["run", "--jobs", "0"], "error: Invalid value for '--jobs': Input should be greater than or equal to 1 "
                             "(see `sweep run --help`)"),
    (["run", "--workers", "0"], "error: Invalid value for '--workers': Input should be greater than or equal to 1 "
                                "(see `sweep run --help`)"),
    (["show", "--top", "zero"], "error: Invalid value for '--top': Input should be a valid integer, unable to parse "
                                "string as an integer (see `sweep show --help`)"),
    (["nosuch"], "error: No such command 'nosuch'. (see `sweep --help`)"),
], ids=["jobs", "workers", "top", "command"])
def test_a_bad_flag_or_command_is_one_error_line_with_exit_2(tmp_path: Path, args: list[str], line: str):
    result = command(tmp_path, "sweep.cli", *args)
    assert (result.returncode, result.stderr, result.stdout) == (2, line + "\n", "")
    assert os.listdir(tmp_path) == []


def test_trains_bad_value_is_one_error_line_too(tmp_path: Path):
    result = command(tmp_path, "sweep.train_cli", "--lr", "fast")
    assert result.returncode == 2
    assert result.stderr.splitlines() == ["error: Invalid value for '--lr': Input should be a valid number, unable "
                                          "to parse string as a number (see `train --help`)"]


def test_help_version_and_a_bare_sweep_stay_as_they_were(tmp_path: Path):
    helped = command(tmp_path, "sweep.cli", "run", "--help")
    assert helped.returncode == 0 and helped.stdout.startswith("Usage: sweep run [OPTIONS]")
    assert command(tmp_path, "sweep.cli", "--version").returncode == 0
    bare = command(tmp_path, "sweep.cli")
    assert bare.returncode == 2 and bare.stderr.startswith("Usage: sweep [OPTIONS] COMMAND [ARGS]...")
