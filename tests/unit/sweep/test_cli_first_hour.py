"""A new user's first hour with the CLI: help that reads right, --version, samplers refused before anything
is written, the data column flags, resuming a finished sweep (CliRunner, no subprocess)."""

from __future__ import annotations

import importlib.util
import json
import os
from importlib.metadata import version
from pathlib import Path

import pytest
from optuna.trial import TrialState
from typer.testing import CliRunner

from sweep.cli import app
from sweep.locations import StorageLocation
from sweep.train_cli import app as train_app
from tests.unit.sweep.study.conftest import add_trial, new_sweep, sweep_config


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("SWEEP_STORAGE", raising=False)
    return tmp_path


def invoke(*args: str):
    return CliRunner().invoke(app, list(args), prog_name="sweep")


def test_run_help_shows_flags_as_flags_and_the_defaults(workdir):
    text = " ".join(invoke("run", "--help").stdout.split())  # help wraps at the terminal's width
    assert "<bool>" not in text
    assert "--resume " in text and "--jobs" in text
    assert "[default: the config's, else 50]" in text  # --trials
    assert "[default: tpe]" in text  # --sampler
    assert "pip install 'sweep[gp]'" in text
    assert "--text-column" in text and "--label-column" in text


def test_train_help_shows_the_defaults_of_lr_and_epochs(workdir):
    text = " ".join(CliRunner().invoke(train_app, ["--help"]).stdout.split())
    assert "[default: 0.5]" in text and "[default: 300]" in text
    assert "--mlflow " in text and "<bool>" not in text


@pytest.mark.parametrize(("command", "usage"), [
    (["worker", "--help"], "Usage: sweep worker [OPTIONS] NAME\n"),
    (["show", "--help"], "Usage: sweep show [OPTIONS] [NAME]\n"),
    (["predict", "--help"], "Usage: sweep predict [OPTIONS] [TEXT]...\n"),
])
def test_usage_lines_name_arguments_plainly(workdir, command, usage):
    text = invoke(*command).stdout
    assert text.startswith(usage), text.splitlines()[0]
    assert "{" not in text.splitlines()[0]


def test_train_predict_usage_names_its_arguments_plainly(workdir):
    text = CliRunner().invoke(train_app, ["predict", "--help"], prog_name="train").stdout
    assert text.startswith("Usage: train predict [OPTIONS] MODEL TEXT...\n")


@pytest.mark.parametrize("which", ["sweep", "train"])
def test_version_prints_the_installed_version(workdir, which):
    result = CliRunner().invoke(app if which == "sweep" else train_app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == version("sweep")


@pytest.mark.skipif(importlib.util.find_spec("torch") is not None, reason="torch is installed here")
def test_gp_sampler_without_torch_exits_2_with_the_pip_line_and_writes_nothing(workdir):
    result = invoke("run", "--sampler", "gp", "--trials", "3")
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and "pip install 'sweep[gp]'" in lines[0] and "torch" in lines[0]
    assert os.listdir(workdir) == []


def test_cmaes_sampler_is_accepted(workdir):
    from sweep.config import check_sampler_packages

    check_sampler_packages("cmaes")  # a dependency of the project: installed with it


def test_run_reads_other_column_names_with_the_column_flags(workdir):
    rows = [{"review": "good", "sentiment": 1}, {"review": "bad", "sentiment": 0},
            {"review": "meh", "sentiment": "neutral"}]
    (workdir / "reviews.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    result = invoke("run", "--data", "reviews.jsonl", "--text-column", "review", "--label-column", "sentiment")
    assert result.exit_code == 2
    # the flags reached the loader: the columns were found, the third label is what it refuses
    assert "unknown label 'neutral'" in result.stderr and "binary" in result.stderr
    assert sorted(os.listdir(workdir)) == ["reviews.jsonl"]


def test_resume_without_an_unfinished_sweep_says_how_to_extend_one(workdir):
    new_sweep(StorageLocation.parse(str(workdir / "sweep.journal")), "done", status="finished")
    result = invoke("run", "--resume")
    assert result.exit_code == 1
    assert "no unfinished sweep" in result.stderr
    assert "--trials" in result.stderr and "--name" in result.stderr


def test_resume_of_a_complete_sweep_says_so_and_runs_nothing(workdir):
    location = StorageLocation.parse(str(workdir / "sweep.journal"))
    study = new_sweep(location, "done", config=sweep_config(trials=2), status="finished")
    for value in (0.5, 0.6):
        add_trial(study, TrialState.COMPLETE, value)
    result = invoke("run", "--resume", "--trials", "2")
    assert result.exit_code == 0, result.stderr
    assert "sweep done complete: 2 trials" in result.stdout
    assert "give --trials above 2 to extend it" in result.stdout
    assert len(study.get_trials()) == 2
    assert not (workdir / "mlflow.db").exists()  # MLflow was not even reached


def test_gitignore_and_recorded_doc_list_the_journal_side_files():
    root = Path(__file__).resolve().parents[3]
    for text in ((root / ".gitignore").read_text(), (root / "docs" / "recorded.md").read_text()):
        for pattern in ("*.journal.lock", "*.journal.gate", "*.journal.torn-*"):
            assert pattern in text
