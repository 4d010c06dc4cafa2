"""An Optuna objective as its users write it (define-by-run, a conditional space, reports and pruning), as the
source of a `train.py`: the function trainer's in-process sweeps (tests/unit/sweep/trainers/test_function_sweeps.py)
and its kill tests (tests/e2e/test_function_trainer_e2e.py) differ only in what a trial does after each report."""

from __future__ import annotations

_DEFINE_BY_RUN = '''
import sys
import time
from pathlib import Path

import optuna


def fit(trial):
    # mlflow: off (the default) keeps MLflow out of the trial's process: it is in the tracking process only
    assert "mlflow" not in sys.modules, "mlflow was imported in the trial's process"
    family = trial.suggest_categorical("family", ["quadratic", "linear"])
    if family == "quadratic":
        x = trial.suggest_float("x", -3.0, 3.0)
    else:
        x = trial.suggest_float("slope", 0.0, 1.0)
    score = 0.0
    for step in range(1, 6):
        score = (1.0 - (x - 1.0) ** 2 if family == "quadratic" else x) * step / 5
        trial.report(score, step)
AFTER_EACH_REPORT
        if trial.should_prune():
            raise optuna.TrialPruned()
    return {"score": score, "steps": 5}
'''


def define_by_run(after_each_report: str) -> str:
    """The objective's source, ``after_each_report`` (lines indented inside the step loop) run after each report."""
    return _DEFINE_BY_RUN.replace("AFTER_EACH_REPORT\n", after_each_report)
