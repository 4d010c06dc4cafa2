"""An unchanged Optuna objective that uses the whole trial (isinstance, user attributes, the study, distributions,
its start time, the artifact store) swept by `sweep run` in-process on a real journal and MLflow database, and with
`--jobs 2` (the objective then runs in real `sweep worker` processes)."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from tests.support import e2e, inprocess

pytestmark = pytest.mark.slow  # whole sweeps on real stores (in-process)

# as optuna-examples write it: nothing here knows about sweep
OBJECTIVE = '''
import datetime
import os

import optuna
from optuna.artifacts import FileSystemArtifactStore, upload_artifact

os.makedirs("artifacts", exist_ok=True)
STORE = FileSystemArtifactStore(os.path.abspath("artifacts"))


def objective(trial):
    assert isinstance(trial, optuna.trial.Trial)
    x = trial.suggest_float("x", -10.0, 10.0)
    kind = trial.suggest_categorical("kind", ["a", "b"])
    assert set(trial.distributions) == {"x", "kind"}
    assert isinstance(trial.distributions["x"], optuna.distributions.FloatDistribution)
    assert isinstance(trial.datetime_start, datetime.datetime)
    trial.set_user_attr("kind_seen", kind)
    assert trial.user_attrs == {"kind_seen": kind}
    completed = [t for t in trial.study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if completed:  # the real study: what the trials before this one left
        trial.set_user_attr("best_before", trial.study.best_value)
        assert trial.study.direction == optuna.study.StudyDirection.MINIMIZE
    with open(f"note-{trial.number}.txt", "w") as note:
        note.write(f"x={x}")
    artifact_id = upload_artifact(study_or_trial=trial, file_path=f"note-{trial.number}.txt", artifact_store=STORE)
    trial.set_user_attr("artifact_id", artifact_id)
    return (x - 2.0) ** 2
'''


@pytest.mark.parametrize("jobs", ["1", "2"])
@pytest.mark.usefixtures("mlflow_db")
def test_an_objective_using_the_whole_optuna_trial_runs_unchanged(tmp_path: Path, jobs: str):
    (tmp_path / "objective.py").write_text(OBJECTIVE, encoding="utf-8")
    e2e.write_config(tmp_path, "trainer: {function: objective.py:objective}\nobjective: {direction: minimize}\n"
                               "pruner: {name: none}\n")
    result = inprocess.sweep(tmp_path, "run", "--config", "sweep.yaml", "--name", "whole", "--trials", "4",
                             "--jobs", jobs)
    assert result.returncode == 0, result.stdout + result.stderr
    study = e2e.study(tmp_path, "whole")
    trials = sorted(study.trials, key=lambda t: t.number)
    assert [t.state for t in trials] == [optuna.trial.TrialState.COMPLETE] * 4
    for trial in trials:
        assert trial.user_attrs["kind_seen"] == trial.params["kind"]
        assert optuna.artifacts.get_all_artifact_meta(trial, storage=study._storage)[0].artifact_id == \
            trial.user_attrs["artifact_id"]
        assert (tmp_path / "artifacts" / trial.user_attrs["artifact_id"]).read_text() == f"x={trial.params['x']}"
    assert "best_before" in trials[-1].user_attrs
    _, children = e2e.runs(tmp_path, experiment="sweep")
    for trial, child in zip(trials, children):
        assert child.data.tags["user.kind_seen"] == trial.params["kind"]
        assert child.data.tags["user.artifact_id"] == trial.user_attrs["artifact_id"]
        assert not any(key.startswith("user.sweep.") for key in child.data.tags)
