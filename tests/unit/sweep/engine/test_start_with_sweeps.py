"""`start_with:` driven in-process (tests/support/inprocess.py) on a real journal and MLflow database: the config's
param sets are the first trials, in order, with child runs to match, and a resume never queues them again."""

from __future__ import annotations

from pathlib import Path

import pytest
from optuna.trial import TrialState

from tests.support import e2e, inprocess

pytestmark = pytest.mark.slow  # whole sweeps, in-process, on real stores

FIT = "def fit(trial):\n    return trial.params['lr'] * trial.params['epochs']\n"
STEERED = ("trainer: {function: train.py:fit}\nobjective: {direction: maximize}\npruner: {name: none}\ntrials: 4\n"
           "fixed: {seed: 7}\nspace:\n  lr: {type: float, low: 0.1, high: 1.0, log: true}\n"
           "  epochs: {type: int, low: 1, high: 50}\n"
           "start_with:\n  - {lr: 0.123, epochs: 42}\n  - {lr: 0.9, epochs: 3, seed: 7}\n  - {epochs: 17}\n")


@pytest.mark.usefixtures("mlflow_db")
def test_start_with_sets_get_the_first_trial_numbers_and_their_runs(tmp_path: Path):
    (tmp_path / "train.py").write_text(FIT, encoding="utf-8")
    e2e.write_config(tmp_path, STEERED)
    result = inprocess.sweep(tmp_path, "run", "--config", "sweep.yaml", "--name", "steered")
    assert result.returncode == 0, result.stderr
    trials = e2e.study(tmp_path, "steered").get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 4
    assert trials[0].params == {"lr": 0.123, "epochs": 42}
    assert trials[1].params == {"lr": 0.9, "epochs": 3}
    assert trials[2].params["epochs"] == 17 and 0.1 <= trials[2].params["lr"] <= 1.0  # lr left out: sampled
    _, children = e2e.runs(tmp_path, experiment="sweep")
    assert [c.data.params for c in children[:2]] == [{"lr": "0.123", "epochs": "42", "seed": "7"},
                                                      {"lr": "0.9", "epochs": "3", "seed": "7"}]

    result = inprocess.sweep(tmp_path, "run", "--resume", "--name", "steered", "--trials", "5")
    assert result.returncode == 0, result.stderr
    trials = e2e.study(tmp_path, "steered").get_trials()
    assert len(trials) == 5 and trials[4].params != trials[0].params  # sampled: the sets are not queued again
    assert "fixed_params" not in trials[4].system_attrs
