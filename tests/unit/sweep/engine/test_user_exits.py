"""`sys.exit()`, `raise SystemExit(...)` and `raise KeyboardInterrupt` in the user's code end that trial as FAILED
with what was raised; the sweep goes on (argparse calls sys.exit on a bad command line). Through `sweep run`
in-process on a real journal and MLflow database; Ctrl-C from a terminal is tests/e2e (a real signal)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import e2e, inprocess

pytestmark = pytest.mark.slow  # whole sweeps on real stores (in-process)

FIT = '''
import sys


def fit(trial):
    x = trial.suggest_float("x", 0.0, 1.0)
    if trial.number == 1:
        {exit}
    return x
'''

ACTIVE_FIT = '''
import sys

import mlflow


def fit(trial):
    mlflow.log_metric("seen", 1.0)
    if trial.number == 1:
        sys.exit(4)
    return trial.params["lr"]
'''


def sweep_of(folder: Path, source: str, body: str = "trainer: {function: train.py:fit}\n") -> inprocess.Result:
    (folder / "train.py").write_text(source, encoding="utf-8")
    e2e.write_config(folder, "objective: {direction: maximize}\npruner: {name: none}\n" + body)
    return inprocess.sweep(folder, "run", "--config", "sweep.yaml", "--name", "exits", "--trials", "4")


@pytest.mark.parametrize(("exit", "error"), [
    ("sys.exit(3)", "SystemExit: 3 (sys.exit in the trainer)"),
    ("sys.exit()", "SystemExit (sys.exit in the trainer)"),
    ('raise SystemExit("bye")', "SystemExit: bye (sys.exit in the trainer)"),
    ("raise KeyboardInterrupt", "KeyboardInterrupt (raised by the trainer, not a signal)"),
])
@pytest.mark.usefixtures("mlflow_db")
def test_an_exit_in_fit_fails_its_trial_and_the_sweep_goes_on(tmp_path: Path, exit: str, error: str):
    result = sweep_of(tmp_path, FIT.format(exit=exit))
    assert result.returncode == 0, result.stderr
    assert f"error: {error}" in result.stdout  # the trial's progress line
    trials = {t.number: t for t in e2e.study(tmp_path, "exits").trials}
    assert len(trials) == 4
    assert [t.state.name for _, t in sorted(trials.items())] == ["COMPLETE", "FAIL", "COMPLETE", "COMPLETE"]
    assert trials[1].user_attrs["sweep.error"] == error
    _, children = e2e.runs(tmp_path, experiment="sweep")
    assert [c.info.status for c in children] == ["FINISHED", "FAILED", "FINISHED", "FINISHED"]
    assert children[1].data.tags["error"] == error


@pytest.mark.usefixtures("mlflow_db")
def test_an_exit_in_fit_under_mlflow_active_fails_that_trials_run_only(tmp_path: Path):
    result = sweep_of(tmp_path, ACTIVE_FIT, "trainer: {function: train.py:fit, mlflow: active}\n"
                                            "space:\n  lr: {type: float, low: 0.1, high: 1.0}\n")
    assert result.returncode == 0, result.stderr
    _, children = e2e.runs(tmp_path, experiment="sweep")
    assert [c.info.status for c in children] == ["FINISHED", "FAILED", "FINISHED", "FINISHED"]
    assert children[1].data.tags["error"] == "SystemExit: 4 (sys.exit in the trainer)"
    assert all(c.data.metrics["seen"] == 1.0 for c in children)


@pytest.mark.usefixtures("mlflow_db")
def test_argparse_at_a_modules_top_level_is_one_line_before_anything_is_written(tmp_path: Path):
    source = ("import argparse\n\nargparse.ArgumentParser().parse_args(['--nope'])\n\n\n"
              "def fit(trial):\n    return 1.0\n")
    result = sweep_of(tmp_path, source)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: trainer.function: importing {str(tmp_path / 'train.py')!r} called sys.exit(2) (at train.py:3); "
        'keep command-line parsing under `if __name__ == "__main__":`')
    assert not (tmp_path / "sweep.journal").exists()
