"""The tracking server on a thread of this process: two sweeps in two folders of one process each keep their own
runs, and once a sweep returns its thread has ended and MLflow's process-wide tracking URI is as it was."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from tests.support import e2e, inprocess
from tests.support.stores import copy_mlflow_db

pytestmark = pytest.mark.slow  # whole sweeps, in-process, on real stores

FIT = "def fit(trial):\n    return (trial.params['x'] - 1.0) ** 2\n"


def a_sweep_in(folder: Path, mlflow_template: Path) -> None:
    folder.mkdir()
    copy_mlflow_db(mlflow_template, folder)
    (folder / "train.py").write_text(FIT, encoding="utf-8")
    e2e.write_config(folder, "trainer: {function: train.py:fit}\nobjective: {direction: minimize}\ntrials: 3\n"
                             "space:\n  x: {type: float, low: -2.0, high: 2.0}\n")
    done = inprocess.sweep(folder, "run", "--config", "sweep.yaml", "--name", folder.name)  # default stores
    assert done.returncode == 0, done.stderr
    # sync opens the URI the sweep stored, the relative sqlite:///mlflow.db: this folder's, not the first one's
    synced = inprocess.sweep(folder, "sync", folder.name)
    assert synced.returncode == 0 and "nothing to repair" in synced.stdout, synced.stdout + synced.stderr


def test_two_sweeps_of_one_process_in_two_folders_each_write_their_own_store(tmp_path, mlflow_template):
    import mlflow

    assert not mlflow.is_tracking_uri_set()
    for name in ("first", "second"):
        a_sweep_in(tmp_path / name, mlflow_template)
        assert not mlflow.is_tracking_uri_set(), "the sweep left MLflow's tracking URI set for the process"
        assert not [t for t in threading.enumerate() if t.name == "sweep-tracking"], "its tracking thread runs on"
    for name in ("first", "second"):
        parent, children = e2e.runs(tmp_path / name, experiment="sweep")
        assert parent.info.run_name == name and len(children) == 3
