"""`sweep` CLI errors through typer's CliRunner: one line on stderr, the right exit code, nothing written."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sweep.cli import app

BAD_CONFIGS = {  # id: (config text, what the error line must name)
    "yaml-syntax": ("trials: 10\nspace:\n\tlr: 1\n", "bad.yaml:3"),
    "unknown-key": ("trails: 10\nspace:\n  lr: {type: float, low: 0.1, high: 1}\n", "'trails'"),
    "low-not-below-high": ("space:\n  lr: {type: float, low: 1.0, high: 0.5}\n", "space.lr"),
    "unknown-trainer-setting": ("space:\n  dropout: {type: float, low: 0.1, high: 0.5}\n", "space.dropout"),
}


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working folder; `sweep run` replaces the SIGTERM handler, so it is put back afterwards."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    handler = signal.getsignal(signal.SIGTERM)
    yield tmp_path
    signal.signal(signal.SIGTERM, handler)


def invoke(*args: str):
    return CliRunner().invoke(app, list(args))


def error_line(result) -> str:
    """The one stderr line of a failed command; stdout stays empty and there is no traceback."""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, f"expected one stderr line, got {result.stderr!r}"
    assert lines[0].startswith("error: "), lines[0]
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    return lines[0]


def assert_nothing_written(folder: Path, *expected: str) -> None:
    assert sorted(os.listdir(folder)) == sorted(expected)
    for store in ("sweep.journal", "mlflow.db", "mlruns", "mlartifacts"):
        assert not (folder / store).exists(), f"{store} was written"


@pytest.mark.parametrize(("text", "key"), BAD_CONFIGS.values(), ids=BAD_CONFIGS.keys())
def test_run_with_bad_config_exits_2_with_one_line_naming_the_key_and_writes_nothing(workdir, text, key):
    (workdir / "bad.yaml").write_text(text, encoding="utf-8")
    result = invoke("run", "--config", "bad.yaml")
    assert result.exit_code == 2
    assert key in error_line(result)
    assert_nothing_written(workdir, "bad.yaml")


def test_run_with_missing_config_file_exits_2_and_writes_nothing(workdir):
    result = invoke("run", "--config", "nothere.yaml")
    assert result.exit_code == 2
    assert "nothere.yaml: no such config file" in error_line(result)
    assert_nothing_written(workdir)


@pytest.mark.parametrize(("args", "key"), [
    (("--sampler", "nope"), "sampler.name"), (("--trials", "0"), "trials"), (("--pruner", "nope"), "pruner.name"),
    (("--metric", "accuracy"), "objective.metric"), (("--name", "../x"), "name"), (("--timeout", "-5"), "timeout"),
    (("--seed", "-1"), "sampler.seed"), (("--experiment", "a b"), "experiment"),
], ids=["sampler", "trials", "pruner", "metric", "name", "timeout", "seed", "experiment"])
def test_run_with_bad_flag_exits_2_with_one_line_and_writes_nothing(workdir, args, key):
    result = invoke("run", *args)
    assert result.exit_code == 2
    assert key in error_line(result)
    assert_nothing_written(workdir)


def test_run_with_missing_data_file_exits_1_with_one_line(workdir):
    result = invoke("run", "--data", "missing.csv", "--trials", "1")
    assert result.exit_code == 1
    assert "missing.csv: no such data file" in error_line(result)


def test_run_with_missing_data_file_writes_nothing(workdir):
    result = invoke("run", "--data", "missing.csv", "--trials", "1")
    assert result.exit_code == 1
    assert_nothing_written(workdir)


def test_run_with_data_file_in_unknown_format_exits_2_and_writes_nothing(workdir):
    (workdir / "notes.txt").write_text("text,label\ngood,1\n", encoding="utf-8")
    result = invoke("run", "--data", "notes.txt", "--trials", "1")
    assert result.exit_code == 2
    assert "notes.txt" in error_line(result)
    assert_nothing_written(workdir, "notes.txt")


def test_best_in_an_empty_folder_exits_1_saying_no_sweeps_yet(workdir):
    result = invoke("best")
    assert result.exit_code == 1
    assert error_line(result).startswith("error: no sweeps yet")
    assert_nothing_written(workdir)


def test_best_with_unknown_format_exits_2_naming_the_flag(workdir):
    result = invoke("best", "--format", "xml")
    assert result.exit_code == 2
    line = error_line(result)
    assert "--format" in line and "text, json, yaml" in line
    assert_nothing_written(workdir)


def test_help_lists_the_commands(workdir):
    result = invoke("--help")
    assert result.exit_code == 0
    first_words = {line.strip("│ ").split(" ", 1)[0] for line in result.stdout.splitlines() if line.strip("│ ")}
    assert {"run", "best", "ls", "show"} <= first_words
    assert_nothing_written(workdir)
