"""How often a trial loop looks for dead workers' trials: once at its start, then at most every DEAD_CHECK_SECONDS,
not once per trial (each look reads the study's running trials from the storage)."""

from __future__ import annotations

import time
from pathlib import Path

import optuna
import pytest

from bench.coordination import NullListener, NullRecorder, SleepTrainer  # the bench's loop: no MLflow, no wait
from sweep.engine import loop as loop_module
from sweep.engine.loop import StopSignal, TrialLoop
from sweep.locations import StorageLocation
from sweep.study.sharing import TrialGate
from sweep.study.starting import create_study
from sweep.study.storage import configure_optuna, make_pruner, make_sampler, open_storage
from sweep.study.sweep_study import SweepStudy
from tests.unit.sweep.study.conftest import sweep_config

TRIALS = 12


def dead_checks(journal: StorageLocation, workdirs: Path, monkeypatch: pytest.MonkeyPatch) -> int:
    configure_optuna()
    config = sweep_config(trials=TRIALS, pruner="none", sampler="random")
    storage = open_storage(journal)
    create_study(storage, config, "demo")
    study = SweepStudy(optuna.load_study(study_name="demo", storage=storage, sampler=make_sampler(config),
                                         pruner=make_pruner(config)), config)
    looks: list[float] = []
    real = SweepStudy.fail_dead_trials
    monkeypatch.setattr(SweepStudy, "fail_dead_trials", lambda self, tally: looks.append(time.monotonic())
                        or real(self, tally))
    gate = TrialGate(journal, storage, "demo")
    try:
        loop = TrialLoop(study, config, SleepTrainer(0.0), NullRecorder(), NullListener(),  # type: ignore[arg-type]
                         time.perf_counter(),
                         StopSignal(), gate, workdirs)
        loop.run()
    finally:
        gate.close()
    assert loop.trials_run == TRIALS
    return len(looks)


def test_a_loop_of_short_trials_looks_for_dead_workers_once_not_per_trial(journal, tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(loop_module, "DEAD_CHECK_SECONDS", 3600.0)  # no second look however loaded the machine
    assert dead_checks(journal, tmp_path / "workdirs", monkeypatch) == 1


def test_with_no_pause_between_checks_a_loop_looks_before_every_trial(journal, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(loop_module, "DEAD_CHECK_SECONDS", 0.0)
    assert dead_checks(journal, tmp_path / "workdirs", monkeypatch) >= TRIALS
