"""Trials failing the same way read as one error, whatever run id, trial folder or number each message holds: the
summary groups them and the early stop counts them together (sweep.engine.loop.error_kind)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sweep.engine.loop import FAIL_FAST_TRIALS, error_kind, most_frequent
from tests.support import e2e, inprocess


def test_messages_that_differ_in_ids_trial_folders_and_numbers_are_one_kind():
    assert error_kind("Run 0123456789abcdef0123456789abcdef is already active") == \
        error_kind("Run fedcba9876543210fedcba9876543210 is already active")
    assert error_kind("No such file: '/a/dc8c7177-e7cf-4958-9b5b-8f93cc6fd39b'") == \
        error_kind("No such file: '/a/b7259114-06da-490a-ba3b-b56b58a692b5'")
    assert error_kind("python /w/sweeps/s/trial-3/trian.py: not found") == \
        error_kind("python /w/sweeps/s/trial-14/trian.py: not found")
    assert error_kind("diverged at step 12 (loss 1.5e+30)") == error_kind("diverged at step 7 (loss 2.25e+31)")
    assert error_kind("KeyError: 'lr'") != error_kind("KeyError: 'l2'")


def test_the_summary_counts_a_kind_once_shown_by_its_first_message():
    errors = {"Run 0123456789abcdef0123456789abcdef is already active": 1,
              "KeyError: 'lr'": 1,
              "Run fedcba9876543210fedcba9876543210 is already active": 2}
    assert most_frequent(errors) == [("Run 0123456789abcdef0123456789abcdef is already active", 3),
                                     ("KeyError: 'lr'", 1)]


@pytest.mark.slow
@pytest.mark.usefixtures("mlflow_db")
def test_trials_failing_alike_with_different_numbers_stop_the_sweep_early(tmp_path: Path):
    (tmp_path / "train.py").write_text("def fit(trial):\n    x = trial.suggest_float('x', 0.0, 1.0)\n"
                                       "    raise ValueError(f'x={x} is out of range in {trial.workdir}')\n",
                                       encoding="utf-8")
    e2e.write_config(tmp_path, "trainer: {function: train.py:fit}\nobjective: {direction: maximize}\n"
                               "pruner: {name: none}\n")
    result = inprocess.sweep(tmp_path, "run", "--config", "sweep.yaml", "--name", "alike", "--trials", "20")
    assert result.returncode == 1
    assert f"error: all {FAIL_FAST_TRIALS} trials failed with: ValueError: x=0." in result.stderr
    assert result.stderr.rstrip().endswith("; stopping early"), result.stderr
    assert len(e2e.study(tmp_path, "alike").trials) == FAIL_FAST_TRIALS
