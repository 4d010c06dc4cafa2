"""`sweep` CLI errors through typer's CliRunner: one line on stderr, the right exit code, nothing written."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sweep.cli import app

BAD_CONFIGS = {  # id: (config text, what the error line must name)
    "yaml-syntax": ("trials: 10\nspace:\n\tlr: 1\n", "bad.yaml:3"),
    "unknown-key": ("trails: 10\nspace:\n  lr: {type: float, low: 0.1, high: 1}\n", "'trails'"),
    "low-not-below-high": ("space:\n  lr: {type: float, low: 1.0, high: 0.5}\n", "space.lr"),
    "unknown-trainer-setting": ("space:\n  dropout: {type: float, low: 0.1, high: 0.5}\n", "space.dropout"),
    "braces-in-a-flow-mapping": ("trainer: {command: python train.py {x}}\n",
                                 'quote a value that holds braces, e.g. {command: "python train.py {x}"}'),
    "misspelt-trainer-key": ("trainer: {funtion: train.py:fit}\n", "a command trainer takes command"),
}


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working folder, with no store chosen by the environment."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("SWEEP_STORAGE", raising=False)
    return tmp_path


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
    (("--seed", str(2**32)), "sampler.seed: must be a non-negative integer up to 4294967295"),
    (("--storage", "ftp://x/y"), "storage: unknown scheme 'ftp' in ftp://x/y"),
    (("--tracking-uri", "gopher://me:secret@x"), "tracking_uri: unknown scheme 'gopher' in gopher://me:***@x"),
], ids=["sampler", "trials", "pruner", "metric", "name", "timeout", "seed", "experiment", "seed-past-32-bits",
        "storage-scheme", "tracking-scheme"])
def test_run_with_bad_flag_exits_2_with_one_line_and_writes_nothing(workdir, args, key):
    result = invoke("run", *args)
    assert result.exit_code == 2
    assert key in error_line(result)
    assert_nothing_written(workdir)


@pytest.mark.slow  # the real run_sweep: it starts the tracking process before it reads the data
def test_run_with_missing_data_file_exits_1_with_one_line(workdir):
    result = invoke("run", "--data", "missing.csv", "--trials", "1")
    assert result.exit_code == 1
    assert "missing.csv: no such data file" in error_line(result)


@pytest.mark.slow  # the real run_sweep: it starts the tracking process before it reads the data
def test_run_with_missing_data_file_writes_nothing(workdir):
    result = invoke("run", "--data", "missing.csv", "--trials", "1")
    assert result.exit_code == 1
    assert_nothing_written(workdir)


@pytest.mark.slow  # the real run_sweep: it starts the tracking process before it reads the data
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


# -- inputs that would run for hours, allocate without limit or be read silently wrong ------------------------

LR = "space:\n  lr: {type: float, low: 0.1, high: 1}\n"
TOO_BIG = {  # id: (config text, what the error line must name)
    "huge-trials": ("trials: 100000000000000000000000000\n" + LR, "at most 1,000,000"),
    "huge-heartbeat": ("heartbeat: 100000000000000000000\n" + LR, "at most 3,600"),
    "huge-epochs-in-space": ("space:\n  epochs: {type: int, low: 1, high: 100000000000000000000}\n",
                             "between 1 and 100,000"),
    "huge-vocab-in-space": ("space:\n  vocab_size: {type: int, low: 10, high: 100000000000}\n",
                            "between 1 and 10,000,000"),
    "huge-epochs-fixed": ("fixed: {epochs: 100000000000000000000}\nspace:\n  lr: {type: float, low: 0.1, high: 1}\n",
                          "between 1 and 100,000"),
    "huge-vocab-fixed": ("fixed: {vocab_size: 100000000000}\nspace:\n  lr: {type: float, low: 0.1, high: 1}\n",
                         "between 1 and 10,000,000"),
    "duplicate-top-key": ("trials: 5\nspace:\n  lr: {type: float, low: 0.1, high: 1}\ntrials: 500\n",
                          "bad.yaml:4: key 'trials' appears twice"),
    "duplicate-space-key": ("space:\n  lr: {type: float, low: 0.1, high: 1}\n  lr: {type: float, low: 1, high: 2}\n",
                            "bad.yaml:3: key 'lr' appears twice"),
    "duplicate-nested-key": ("space:\n  lr: {type: float, low: 0.1, high: 1, low: 0.5}\n",
                             "bad.yaml:2: key 'low' appears twice"),
}


@pytest.mark.parametrize(("text", "expected"), TOO_BIG.values(), ids=TOO_BIG.keys())
def test_run_with_out_of_bounds_or_duplicate_setting_exits_2_naming_it_and_writes_nothing(workdir, text, expected):
    (workdir / "bad.yaml").write_text(text, encoding="utf-8")
    result = invoke("run", "--config", "bad.yaml")
    assert result.exit_code == 2
    line = error_line(result)
    assert expected in line and len(line) < 400, line
    assert_nothing_written(workdir, "bad.yaml")


def test_run_with_huge_trials_flag_exits_2_naming_the_bound(workdir):
    result = invoke("run", "--trials", "1" + "0" * 26)
    assert result.exit_code == 2
    assert "trials: must be at most 1,000,000" in error_line(result)
    assert_nothing_written(workdir)


def test_run_with_config_file_over_1_mib_exits_2_before_parsing_and_writes_nothing(workdir):
    (workdir / "big.yaml").write_text("trials: 5\nname: '" + "x" * (2 * 1024 * 1024) + "'\n", encoding="utf-8")
    result = invoke("run", "--config", "big.yaml")
    assert result.exit_code == 2
    assert "big.yaml: larger than 1024 KiB" in error_line(result)
    assert_nothing_written(workdir, "big.yaml")


@pytest.mark.parametrize("path", ["/dev/zero", "fifo", "."], ids=["device", "fifo", "folder"])
def test_run_with_config_that_is_not_a_regular_file_exits_2_and_writes_nothing(workdir, path):
    if path == "fifo":
        os.mkfifo(workdir / "fifo")
    result = invoke("run", "--config", path)
    assert result.exit_code == 2
    assert "not a regular file" in error_line(result)
    assert_nothing_written(workdir, *(["fifo"] if path == "fifo" else []))


@pytest.mark.parametrize(("content", "expected"), [
    ('{"text": "good", "label": 1}\n{"text": "ba\x00d", "label": 0}\n', "data.jsonl:2: a NUL"),
    ('{"text": "", "label": 1}\n{"text": "  ", "label": 0}\n{"text": "!!", "label": 0}\n', "no text holds a word"),
], ids=["nul-byte", "all-empty-texts"])
def test_run_with_unusable_data_file_exits_2_naming_file_and_line_and_writes_nothing(workdir, content, expected):
    (workdir / "data.jsonl").write_text(content, encoding="utf-8")
    result = invoke("run", "--data", "data.jsonl", "--trials", "1")
    assert result.exit_code == 2
    assert expected in error_line(result)
    assert_nothing_written(workdir, "data.jsonl")


@pytest.mark.parametrize(("source", "trainer", "message"), [
    (None, "{function: missing.py:fit}", "trainer.function: no such file"),
    ("def fit(trial)\n", "{function: train.py:fit}", "syntax error"),
    ("def fit(trial):\n    return 1\n\n\ndef helper():\n    pass\n", "{function: train.py:fitt}",
     "has no 'fitt'; it defines fit, helper"),
    ("class Model:\n    pass\n", "{function: train.py:Model}", "train.py:Model' is a class, not a function"),
    ("def fit(trial):\n    return 1\n", "{function: not_a_module_here:fit}", "no module named 'not_a_module_here'"),
    ("def fit(trial):\n    return 1\n", "{function: train.py:fit}\nobjective: {metric: f1}",
     "objective.direction: required"),
    ("def fit(trial):\n    return 1\n", "{function: train.py:fit, mlflow: sometimes}", "trainer.mlflow"),
])
def test_a_function_trainer_that_cannot_be_loaded_exits_2_in_one_line_and_writes_nothing(workdir: Path, source,
                                                                                       trainer, message):
    if source is not None:
        (workdir / "train.py").write_text(source, encoding="utf-8")
    (workdir / "sweep.yaml").write_text(f"trainer: {trainer}\n", encoding="utf-8")
    if "objective" not in trainer:
        (workdir / "sweep.yaml").write_text(f"trainer: {trainer}\nobjective: {{direction: maximize}}\n")
    result = invoke("run", "--config", "sweep.yaml")
    assert result.exit_code == 2
    assert message in error_line(result)
    assert sorted(p.name for p in workdir.iterdir()) == sorted(["sweep.yaml"] + (["train.py"] if source else []))


@pytest.mark.parametrize(("trainer", "key"), [
    ('{command: "python fit.py\\0 --lr {lr}"}', "trainer.command: holds a NUL byte"),
    ('{command: [python, "fit\\0.py"]}', "trainer.command: holds a NUL byte"),
    ('{command: "python fit.py", env: {MODE: "a\\0b"}}', "trainer.env.MODE: holds a NUL byte"),
], ids=["string", "list", "env"])
def test_a_nul_byte_in_a_command_or_its_environment_exits_2_and_writes_nothing(workdir, trainer, key):
    (workdir / "nul.yaml").write_text(f"trainer: {trainer}\nobjective: {{direction: maximize}}\n"
                                      "space:\n  lr: {type: float, low: 0.1, high: 1.0}\n", encoding="utf-8")
    result = invoke("run", "--config", "nul.yaml")
    assert result.exit_code == 2
    assert key in error_line(result)
    assert "secret" not in result.stderr
    assert_nothing_written(workdir, "nul.yaml")
