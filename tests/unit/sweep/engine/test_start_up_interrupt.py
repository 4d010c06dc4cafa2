"""A Ctrl-C during a sweep's start-up that a library swallowed (Cython's module initialisation clears the
KeyboardInterrupt raised inside it: numpy.random's import does) still stops the sweep before its study exists.
Driven in-process on real stores; the subprocess form is tests/e2e/test_startup_signals_e2e.py."""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

import pytest

from sweep.config import SweepConfig, load_config
from sweep.engine import run_sweep
from sweep.engine.composition import make_trainer
from sweep.engine.parts import Parts
from sweep.locations import TrackingLocation
from sweep.trainers.base import Trainer
from tests.support import e2e, inprocess

pytestmark = [pytest.mark.slow,  # a sweep's start on real stores, in-process
              pytest.mark.skipif(os.name != "posix", reason="signals sent with os.kill")]


def trainer_after_a_swallowed_ctrl_c(config: SweepConfig, tracking: TrackingLocation) -> Trainer:
    with contextlib.suppress(KeyboardInterrupt):  # as Cython does
        signal.raise_signal(signal.SIGINT)  # as a terminal's Ctrl-C while the trainer's imports run
    return make_trainer(config, tracking)


@pytest.mark.usefixtures("mlflow_db")
def test_a_swallowed_ctrl_c_during_start_up_stops_the_sweep_before_its_study_exists(tmp_path: Path):
    e2e.write_config(tmp_path, "trials: 2\npruner: {name: none}\n" + e2e.FAST_SPACE)
    config = load_config(tmp_path / "sweep.yaml", {"tracking_uri": f"sqlite:///{tmp_path / 'mlflow.db'}",
                                                   "storage": str(tmp_path / "sweep.journal"), "name": "early"})
    parts = inprocess.in_process_parts()
    parts = Parts(transport=parts.transport, trainer=trainer_after_a_swallowed_ctrl_c, executor=parts.executor)
    before = signal.getsignal(signal.SIGINT)
    with inprocess.working_in(tmp_path), pytest.raises(KeyboardInterrupt):
        run_sweep(config, resume=False, listener=inprocess.RecordingListener(), parts=parts)
    assert signal.getsignal(signal.SIGINT) is before
    assert not (tmp_path / "sweep.journal").exists(), "nothing half-written: no study, no empty journal"
    client = e2e.mlflow_client(tmp_path)
    experiment = client.get_experiment_by_name("sentiment")
    assert experiment is None or not client.search_runs([experiment.experiment_id]), "no parent run"
