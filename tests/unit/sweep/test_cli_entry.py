"""`sweep` and `train` as installed (their main()): a bad flag, value or command is one `error:` line with exit 2,
as every other error of theirs; help and the version stay as they were. Each runs `python -m`: no sweep starts."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
import typer.main
from hypothesis import given, settings
from hypothesis import strategies as st


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


# -- flag values coerced without pydantic: exactly as typer's own coercion -------------------------------------------

def every_param() -> list[tuple[str, Any, Any]]:
    """(command, parameter, context) of every parameter `sweep` and its commands parse, as they parse them."""
    import typer

    from sweep import cli

    group = typer.main.get_command(cli.app)
    found = []
    for name, command in [("sweep", group), *group.commands.items()]:
        context = typer.Context(command)
        found += [(name, param, context) for param in command.get_params(context)]
    return found


def outcome(coerce: Any, value: Any, param: Any, context: Any) -> tuple[Any, ...]:
    try:
        result = coerce(value, param=param, ctx=context)
    except typer.BadParameter as error:
        return "refused", error.format_message()
    if isinstance(result, float) and math.isnan(result):  # "nan" is a float both take, and NaN equals nothing
        return "taken", float, "nan"
    return "taken", type(result), result


FLAG_VALUES = st.none() | st.booleans() | st.integers(-10**20, 10**20) | st.text(max_size=6) | st.sampled_from(
    ["0", "1", "007", "+3", "-1", "1_000", " 5", "5 ", "5.0", "1e3", "\u0661\u0662", "\u00b2", "9" * 19, "text"])


@settings(max_examples=60, deadline=None)
@given(value=FLAG_VALUES)
def test_a_flag_value_is_coerced_as_typers_own_coercion_coerces_it(value):
    for _, param, context in every_param():
        quick = param.get_runtime_param()  # sweep's: plain values without pydantic
        full = type(param).get_runtime_param(param)  # typer's own, through pydantic
        assert quick is not full
        assert outcome(quick.coerce, value, param, context) == outcome(full.coerce, value, param, context), param.name


def test_the_read_commands_parse_their_flags_without_importing_pydantic(tmp_path: Path):
    code = """
import sys
from sweep.cli import app
for command in (["best", "--format", "json", "--name", "x"], ["ls"], ["show", "x", "--top", "3"], ["--version"]):
    try:
        app([*command, "--storage", "nothing.journal"], prog_name="sweep")
    except SystemExit:
        pass
assert "pydantic" not in sys.modules, "pydantic imported"
"""
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"})
    assert done.returncode == 0, done.stderr
