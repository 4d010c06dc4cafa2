"""One table of exit codes (sweep/errors.py): `sweep` and `train` give the same problem the same code."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

import sweep.engine
from sweep import cli, train_cli
from sweep.errors import (
    AllTrialsFailedError,
    Interrupted,
    NotFoundError,
    StorageError,
    SweepConfigError,
    SweepError,
    TrackingError,
    exit_code,
    first_line,
)
from sweep.ui import UiError
from tests.unit.sweep.test_bad_input_properties import sweep_stops_after_loading_data
from trainer.errors import (
    ConfigError,
    ConfigFileNotFoundError,
    DataError,
    DataFileNotFoundError,
    DivergenceError,
    ModelFileError,
    ModelFileNotFoundError,
)

DOCUMENTED = [  # docs/cli.md "Exit codes": 1 named thing missing / store unreachable / failed; 2 bad input
    (SweepConfigError("trials: must be >= 1"), 2),
    (ConfigError("lr must be > 0"), 2),
    (DataError("bad.csv:3: unknown label"), 2),
    (ModelFileError("model.json: not a sweep model file"), 2),
    (NotFoundError("no sweep named 'x'"), 1),
    (ConfigFileNotFoundError("best.yaml: no such config file"), 1),
    (DataFileNotFoundError("a.csv: no such data file"), 1),
    (ModelFileNotFoundError("model.json: no such model file"), 1),
    (StorageError("cannot open Optuna storage"), 1),
    (TrackingError("MLflow at http://x: refused"), 1),
    (UiError("cannot listen on 127.0.0.1:5000"), 1),
    (AllTrialsFailedError("all 3 trials failed"), 1),
    (DivergenceError(epoch=2, lr=1e6), 1),
    (Interrupted("interrupted"), 130),
    (KeyboardInterrupt(), 130),
]


@pytest.mark.parametrize(("error", "code"), DOCUMENTED, ids=[type(error).__name__ for error, _ in DOCUMENTED])
def test_each_error_gets_its_documented_exit_code(error, code):
    assert exit_code(error) == code


def test_a_sweep_interrupted_exits_130_like_ctrl_c():
    assert issubclass(sweep.engine.SweepInterrupted, Interrupted)


@pytest.mark.parametrize("error", [RuntimeError("bug"), ValueError("bug"), FileNotFoundError("x"), SystemExit(3)])
def test_an_error_nobody_raised_on_purpose_has_no_exit_code_and_shows_its_traceback(error):
    assert exit_code(error) is None


def test_a_new_sweep_error_gets_the_code_of_its_nearest_listed_base():
    class Unlisted(SweepError):
        pass

    class UnlistedConfigProblem(SweepConfigError):
        pass

    assert (exit_code(Unlisted()), exit_code(UnlistedConfigProblem())) == (1, 2)


def test_first_line_keeps_the_first_line_and_hides_passwords():
    error = StorageError("cannot open postgresql://alice:s3cret@db/optuna\n  detail: more\n")
    assert first_line(error) == "cannot open postgresql://alice:***@db/optuna"


def test_first_line_of_an_empty_message_is_the_class_name():
    assert first_line(TrackingError("  \n")) == "TrackingError"


@pytest.mark.parametrize(("content", "code"), [("text,label\ngood,1\nmeh,maybe\n", 2), (None, 1)],
                         ids=["bad-data-file", "missing-data-file"])
def test_the_same_data_problem_gets_the_same_exit_code_and_line_from_sweep_run_and_train(
        tmp_path, monkeypatch, content, code):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("SWEEP_STORAGE", raising=False)
    if content is not None:
        (tmp_path / "data.csv").write_text(content, encoding="utf-8")
    with sweep_stops_after_loading_data():
        swept = CliRunner().invoke(cli.app, ["run", "--data", "data.csv", "--trials", "1"])
    trained = CliRunner().invoke(train_cli.app, ["--data", "data.csv", "--epochs", "1"])
    assert (swept.exit_code, trained.exit_code) == (code, code), (swept.output, trained.output)
    assert swept.stderr == trained.stderr
    assert swept.stderr.startswith("error: data.csv")
    assert sorted(path.name for path in tmp_path.iterdir()) == (["data.csv"] if content else [])
