"""The examples/ folder run through `sweep run` in-process (tests/support/inprocess.py) on real stores.

examples/optuna_objective/: an unchanged Optuna objective with a conditional space and per-epoch pruning,
recorded the same in the study and in MLflow. examples/sklearn asks for MLflow autolog in the sweep's process,
so its sweeps stay subprocesses (tests/e2e/test_sklearn_example_e2e.py).
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from optuna.trial import TrialState

from tests.support import inprocess
from tests.support.e2e import finished, mlflow_client, runs, study

pytestmark = pytest.mark.slow  # whole sweeps, in-process, on real stores

REPO = Path(__file__).resolve().parents[3]
CONFIG = REPO / "configs" / "optuna_objective.yaml"
TRIALS = 6  # the pruner starts after 3 complete trials (startup_trials: 3); TPE seed 0 prunes some of the rest
FAMILY_PARAMS = {"linear": {"linear_loss", "linear_alpha"}, "mlp": {"mlp_units", "mlp_lr"}}
STATUS = {TrialState.COMPLETE: "FINISHED", TrialState.PRUNED: "KILLED"}
EPOCHS = 10  # examples/optuna_objective/objective.py's EPOCHS


@pytest.mark.usefixtures("mlflow_db")
def test_optuna_objective_runs_unchanged_with_conditional_params_and_pruning(tmp_path: Path):
    done = inprocess.sweep(tmp_path, "run", "--config", str(CONFIG), "--trials", str(TRIALS), "--name", "objective")
    assert done.returncode == 0, done.stderr

    trials = finished(study(tmp_path, "objective").get_trials())
    assert len(trials) == TRIALS
    states = [trial.state for trial in trials]
    assert TrialState.PRUNED in states, states
    assert TrialState.COMPLETE in states, states
    assert set(states) <= set(STATUS), states

    parent, children = runs(tmp_path, "optuna-objective")
    assert len(children) == len(trials)
    counts = {"complete": states.count(TrialState.COMPLETE), "pruned": states.count(TrialState.PRUNED), "failed": 0}
    for name, count in counts.items():
        assert parent.data.tags[f"sweep.trials_{name}"] == str(count)
        assert parent.data.metrics[f"trials_{name}"] == count

    client = mlflow_client(tmp_path)
    for trial, child in zip(trials, children, strict=True):
        assert child.data.tags["sweep.trial"] == str(trial.number)
        assert child.info.status == STATUS[trial.state]
        # the family and exactly that family's own params, as the objective suggested them
        family = trial.params["model"]
        assert set(trial.params) == {"model"} | FAMILY_PARAMS[family]
        assert child.data.params == {name: str(value) for name, value in trial.params.items()}
        curve = client.get_metric_history(child.info.run_id, "val_accuracy")
        assert [point.step for point in curve if not math.isnan(point.value)] == sorted(trial.intermediate_values)
        if trial.state == TrialState.PRUNED:  # no result: its latest value is NaN, after every complete run
            assert math.isnan(child.data.metrics["val_accuracy"])
        if trial.state == TrialState.COMPLETE:
            assert len(curve) == EPOCHS
            assert child.data.metrics["val_accuracy"] == pytest.approx(trial.value)

    best = max((t for t in trials if t.state == TrialState.COMPLETE), key=lambda t: t.value)
    assert parent.data.tags["best.trial"] == str(best.number)
    assert parent.data.tags["best.model"] == best.params["model"]
