"""Every trial a new proposal with several processes on one study: `--jobs 2` and two `sweep worker`s (the
Ray executor's case is in test_ray_e2e.py) never run one setting twice. Every sampler against processes sharing
and resuming a study is tests/unit/sweep/study/test_seeding.py and tests/unit/sweep/engine/test_distinct_trials.py;
here each executor runs the samplers whose parallel case differs most: TPE (constant liar over running trials),
QMC (its counter in the study, taken under the trial gate) and random."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.support import e2e, inprocess

OBJECTIVE = '''
import os
import time
from pathlib import Path


def fit(trial):
    meeting = Path(trial.params["meeting"])
    mine = meeting / str(os.getpid())
    if meeting.is_dir() and not mine.exists():  # each process's first trial waits for the other's: both run trials
        mine.touch()
        deadline = time.monotonic() + 240
        while len(list(meeting.iterdir())) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    time.sleep(0.2)  # long enough that the other process asks while this trial runs
    return (trial.params["x"] - 1.0) ** 2 + (trial.params["y"] + 2.0) ** 2
'''
TRIALS = 12


def write_sweep(folder: Path, sampler: str) -> None:
    (folder / "objective.py").write_text(OBJECTIVE, encoding="utf-8")
    e2e.write_config(folder, "trainer: {function: objective.py:fit}\nobjective: {direction: minimize}\n"
                             f"trials: {TRIALS}\npruner: {{name: none}}\nsampler: {{name: {sampler}, seed: 0}}\n"
                             f"fixed: {{meeting: {folder / 'meeting'}}}\n"
                             "space:\n  x: {type: float, low: -5.0, high: 5.0}\n"
                             "  y: {type: float, low: -5.0, high: 5.0}\n")


def assert_distinct(folder: Path, name: str, sampler: str) -> None:
    trials = e2e.study(folder, name).trials
    assert len(trials) == TRIALS and all(t.state.name == "COMPLETE" for t in trials), [t.state for t in trials]
    found = [tuple(sorted(t.params.items())) for t in trials]
    assert len(set(found)) == TRIALS, f"{sampler}: settings proposed twice: {found}"
    assert len({t.user_attrs["sweep.worker"] for t in trials}) >= 2, "more than one process ran trials"


@pytest.mark.parametrize("sampler", ["tpe", "qmc"])
@pytest.mark.usefixtures("mlflow_db")
def test_two_jobs_never_run_one_setting_twice(tmp_path: Path, sampler: str):
    write_sweep(tmp_path, sampler)
    (tmp_path / "meeting").mkdir()
    done = inprocess.sweep(tmp_path, "run", "--config", "sweep.yaml", "--name", "pair", "--jobs", "2")
    assert done.returncode == 0, done.stderr
    assert_distinct(tmp_path, "pair", sampler)


@pytest.mark.parametrize("sampler", ["random"])
@pytest.mark.usefixtures("mlflow_db")
def test_two_sweep_workers_never_run_one_setting_twice(tmp_path: Path, sampler: str):
    write_sweep(tmp_path, sampler)
    started = inprocess.sweep(tmp_path, "run", "--config", "sweep.yaml", "--name", "joined", "--trials", "1")
    assert started.returncode == 0, started.stderr
    (tmp_path / "meeting").mkdir()  # from here each worker's first trial waits for the other's
    workers = [subprocess.Popen([*e2e.SWEEP, "worker", "joined", "--trials", str(TRIALS), "--quiet"], cwd=tmp_path,
                                env=e2e.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for _ in range(2)]
    outputs = [worker.communicate(timeout=300) for worker in workers]
    assert all(worker.returncode == 0 for worker in workers), outputs
    assert_distinct(tmp_path, "joined", sampler)
