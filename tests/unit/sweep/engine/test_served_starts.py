"""Trial loops behind the storage proxy: the proxy decides their starts (served.py), never the gate, except for
a sweep that must sample under the gate; either way exactly the target runs."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import optuna
import pytest

from bench.coordination import NullListener, NullRecorder, SleepTrainer  # the bench's loop: no MLflow, no wait
from sweep.config import SweepConfig
from sweep.engine.loop import StopSignal, TrialLoop
from sweep.locations import StorageLocation
from sweep.states import LoopEnd
from sweep.study.proxy import ProxyGate
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


def test_behind_the_proxy_every_tell_goes_with_the_loops_next_start(journal: StorageLocation, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch):
    finishes: list[int] = []
    real = ProxyGate.finish_and_start
    monkeypatch.setattr(ProxyGate, "finish_and_start", lambda self, request: finishes.append(
        request.finish.trial_id) or real(self, request))
    alone: list[int] = []  # a tell's state written on its own, by Optuna's client
    remote = optuna.storages.GrpcStorageProxy.set_trial_state_values
    monkeypatch.setattr(optuna.storages.GrpcStorageProxy, "set_trial_state_values",
                        lambda self, trial_id, *args: alone.append(trial_id) or remote(self, trial_id, *args))
    config = sweep_config(trials=TRIALS, pruner="none", sampler="random")
    assert journal.journal_path is not None
    with served_journal(journal.journal_path) as proxy:
        run_loops(proxy, config, tmp_path / "workdirs")
        trials = optuna.load_study(study_name="demo", storage=open_storage(proxy)).trials

    assert [t.state.name for t in trials] == ["COMPLETE"] * TRIALS
    assert all(t.values == [t.user_attrs["sweep.metrics"]["val_accuracy"]] for t in trials)
    # each loop asks once more after its last trial (and is told none starts): every tell went with a start
    assert sorted(finishes) == sorted(t._trial_id for t in trials) and alone == []


class StoppingTrainer(SleepTrainer):
    """A trainer whose trial asks the loop to stop (as a Ctrl-C during it would), then ends as usual."""

    def __init__(self, stop: StopSignal) -> None:
        super().__init__(0.0)
        self.stop = stop

    def run(self, trial: Any) -> Any:
        self.stop.requested = True
        return super().run(trial)


def test_a_loop_that_stops_after_a_trial_writes_its_held_tell_before_it_returns(journal: StorageLocation,
                                                                                tmp_path: Path):
    configure_optuna()
    config = sweep_config(trials=TRIALS, pruner="none", sampler="random")
    assert journal.journal_path is not None
    with served_journal(journal.journal_path) as proxy:
        create_study(open_storage(proxy), config, "demo")
        storage = open_storage(proxy)
        study = SweepStudy(optuna.load_study(study_name="demo", storage=storage, sampler=make_sampler(config)), config)
        gate = TrialGate(proxy, storage, "demo")
        stop = StopSignal()
        loop = TrialLoop(study, config, StoppingTrainer(stop), NullRecorder(), NullListener(),  # type: ignore[arg-type]
                         time.perf_counter(), stop, gate, tmp_path / "workdirs")
        assert loop.run() is LoopEnd.INTERRUPTED
        gate.close()
        (trial,) = optuna.load_study(study_name="demo", storage=open_storage(proxy)).trials

    assert loop.trials_run == 1 and trial.state.name == "COMPLETE" and trial.user_attrs["sweep.metrics"]
