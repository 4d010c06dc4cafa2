"""`run_name:` driven in-process (tests/support/inprocess.py) on a real journal and MLflow database: child runs
are named by the template, with ` (pruned)` kept for pruned trials, also when `sweep sync` rebuilds a missing run."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import e2e, inprocess

pytestmark = pytest.mark.slow  # whole sweeps, in-process, on real stores

FIT = '''
import optuna


def fit(trial):
    if trial.params["epochs"] == 5:
        raise optuna.TrialPruned()
    return trial.params["lr"] * trial.params["epochs"]
'''
NAMED = ("trainer: {function: train.py:fit}\nobjective: {direction: maximize}\npruner: {name: none}\ntrials: 2\n"
         "fixed: {seed: 7}\nspace:\n  lr: {type: float, low: 0.1, high: 1.0, log: true}\n"
         "  epochs: {type: int, low: 1, high: 50}\nstart_with: [{lr: 0.1234, epochs: 3}, {lr: 0.9, epochs: 5}]\n"
         'run_name: "{trial}-lr{lr:.2g}-ep{epochs}-s{seed}"\n')


@pytest.mark.usefixtures("mlflow_db")
def test_run_name_names_the_child_runs_and_keeps_the_pruned_mark(tmp_path: Path):
    (tmp_path / "train.py").write_text(FIT, encoding="utf-8")
    e2e.write_config(tmp_path, NAMED)
    result = inprocess.sweep(tmp_path, "run", "--config", "sweep.yaml", "--name", "named")
    assert result.returncode == 0, result.stderr
    _, children = e2e.runs(tmp_path, experiment="sweep")
    assert [c.info.run_name for c in children] == ["0-lr0.12-ep3-s7", "1-lr0.9-ep5-s7 (pruned)"]

    client = e2e.mlflow_client(tmp_path)
    client.delete_run(children[1].info.run_id)  # lost: `sweep sync` rebuilds it from the study, named alike
    result = inprocess.sweep(tmp_path, "sync", "named")
    assert result.returncode == 0, result.stderr
    _, children = e2e.runs(tmp_path, experiment="sweep")
    assert [c.info.run_name for c in children] == ["0-lr0.12-ep3-s7", "1-lr0.9-ep5-s7 (pruned)"]
