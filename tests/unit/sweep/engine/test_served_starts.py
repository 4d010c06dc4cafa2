"""Trial loops behind the storage proxy: the proxy decides their starts (served.py), never the gate, except for
a sweep that must sample under the gate; either way exactly the target runs."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import optuna
import pytest

from bench.coordination import NullListener, NullRecorder, SleepTrainer  # the bench's loop: no MLflow, no wait
from sweep.config import SweepConfig
from sweep.engine.loop import StopSignal, TrialLoop
from sweep.locations import StorageLocation
from sweep.study.sharing import TrialGate
from sweep.study.starting import create_study
from sweep.study.storage import configure_optuna, make_pruner, make_sampler, open_storage
from sweep.study.sweep_study import SweepStudy
from tests.unit.sweep.study.conftest import served_journal, sweep_config

TRIALS = 10
LOOPS = 2


def run_loops(location: StorageLocation, config: SweepConfig, workdirs: Path) -> list[TrialLoop]:
    """LOOPS trial loops at once, each as a `sweep worker` process opens its own (threads here)."""
    configure_optuna()
    create_study(open_storage(location), config, "demo")
    loops: list[TrialLoop] = []
    gates: list[TrialGate] = []
    for _ in range(LOOPS):
        storage = open_storage(location)
        study = SweepStudy(optuna.load_study(study_name="demo", storage=storage, sampler=make_sampler(config),
                                             pruner=make_pruner(config)), config)
        gates.append(TrialGate(location, storage, "demo"))
        loops.append(TrialLoop(study, config, SleepTrainer(0.0), NullRecorder(), NullListener(),  # type: ignore[arg-type]
                               time.perf_counter(), StopSignal(), gates[-1], workdirs))
    threads = [threading.Thread(target=loop.run) for loop in loops]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for gate in gates:
        gate.close()
    return loops


@pytest.mark.parametrize(("changes", "served"), [({"sampler": "random"}, True), ({"sampler": "qmc", "seed": 3}, False)])
def test_loops_behind_the_proxy_run_exactly_the_target_through_the_proxys_starts_or_the_gate(
        journal: StorageLocation, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, changes, served):
    acquired: list[float] = []
    real = TrialGate._acquire
    monkeypatch.setattr(TrialGate, "_acquire", lambda self, waiting: acquired.append(time.monotonic())
                        or real(self, waiting))
    full_reads: list[float] = []  # a loop's own tally reads every trial of the study
    tally = SweepStudy.tally
    monkeypatch.setattr(SweepStudy, "tally", lambda self: full_reads.append(time.monotonic()) or tally(self))
    config = sweep_config(trials=TRIALS, pruner="none", **changes)
    assert journal.journal_path is not None
    with served_journal(journal.journal_path) as proxy:
        loops = run_loops(proxy, config, tmp_path / "workdirs")
        trials = optuna.load_study(study_name="demo", storage=open_storage(proxy)).trials

    assert sum(loop.trials_run for loop in loops) == TRIALS
    assert [t.state.name for t in trials] == ["COMPLETE"] * TRIALS
    assert all(loop.served is served for loop in loops)
    assert bool(acquired) is not served  # served: the gate was never taken
    assert len(full_reads) == (0 if served else LOOPS)  # served: no loop read the whole study at its start
    assert all(loop.census.counted == TRIALS and loop.census.running == 0 for loop in loops)
