"""Trial starts the storage proxy decides (served.py), on a real proxy serving a journal file in this process."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

from sweep.config import SweepConfig
from sweep.locations import StorageLocation
from sweep.records import BestTrial, Counts
from sweep.study.attrs import TrialAttrs
from sweep.study.census import Census
from sweep.study.optuna_internals import BEAT_ATTR, proxy_server, storage_of, trial_id_of
from sweep.study.served import StartReply, StartRequest, decode_reply, encode_reply
from sweep.study.sharing import TrialGate
from sweep.study.storage import open_storage
from sweep.study.sweep_study import SweepStudy
from tests.support.e2e import free_port
from tests.unit.sweep.study.conftest import add_trial, new_sweep, served_journal, sweep_config
from tests.unit.sweep.study.test_sharing import dead_pid


@pytest.fixture
def proxy(journal: StorageLocation) -> Iterator[StorageLocation]:
    assert journal.journal_path is not None
    with served_journal(journal.journal_path) as location:
        yield location


def worker_of(location: StorageLocation, config: SweepConfig, name: str = "demo") -> tuple[SweepStudy, TrialGate]:
    """A worker's study and gate, as `sweep worker` opens them."""
    storage = open_storage(location)
    study = optuna.load_study(study_name=name, storage=storage, sampler=optuna.samplers.RandomSampler())
    return SweepStudy(study, config), TrialGate(location, storage, name)


def test_workers_started_by_the_proxy_at_once_get_distinct_trials_up_to_the_target_and_no_more(proxy):
    config = sweep_config(trials=9)
    new_sweep(proxy, config=config)
    started: list[tuple[int, str]] = []
    last: list[Any] = []  # each worker's last reply (asserted here: a thread's failed assert fails no test)

    def work(name: str) -> None:
        study, gate = worker_of(proxy, config)
        while (start := study.start_served(gate, worker=name, own_target=False, look_for_dead=False)) is not None \
                and start.trial is not None:
            started.append((start.trial.number, name))
        last.append(start)
        gate.close()

    threads = [threading.Thread(target=work, args=(f"host:{index}",)) for index in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(number for number, _ in started) == list(range(9))
    assert len(last) == 3 and all(start is not None and (start.census.counted, start.census.running) == (9, 9)
                                  for start in last)  # the proxy decided every start, and said why none more
    trials = optuna.load_study(study_name="demo", storage=open_storage(proxy)).trials
    assert {t.number: TrialAttrs.read(t).worker for t in trials} == dict(started)  # marked with who started it
    assert all(t.state == TrialState.RUNNING for t in trials)


def test_a_start_waits_while_a_worker_counting_under_the_sweeps_lease_holds_it(proxy):
    config = sweep_config(trials=4)
    new_sweep(proxy, config=config)
    study, gate = worker_of(proxy, config)
    holder = TrialGate(proxy, open_storage(proxy), "demo")  # a worker that takes the lease (QMC, an older sweep)
    started: list[Any] = []
    with holder:
        waiting = threading.Thread(target=lambda: started.append(
            study.start_served(gate, worker="host:1", own_target=False, look_for_dead=False)))
        waiting.start()
        waiting.join(timeout=0.5)
        assert waiting.is_alive() and not started  # held back while the lease is held
    waiting.join()
    holder.close()
    assert started and started[0].trial is not None  # started once the lease was released


def test_the_proxy_decides_with_the_workers_stop_rules_and_hands_back_the_census(proxy):
    config = sweep_config(trials=5, stop_target=0.9)
    study = new_sweep(proxy, config=config)
    add_trial(study, TrialState.COMPLETE, 0.5, metrics={"val_accuracy": 0.5})
    worker, gate = worker_of(proxy, config)
    start = worker.start_served(gate, worker="host:1", own_target=False, look_for_dead=False)
    assert start is not None and start.trial is not None and start.trial.number == 1
    storage_of(study).set_trial_state_values(trial_id_of(start.trial), TrialState.COMPLETE, [0.95])

    stopped = worker.start_served(gate, worker="host:1", own_target=False, look_for_dead=False)

    assert stopped is not None and stopped.trial is None  # stop.target reached: no trial starts
    assert stopped.census.best is not None and stopped.census.best.number == 1
    assert stopped.census.finished.complete == 2 and stopped.census.running == 0


def test_a_worker_with_its_own_target_is_started_past_the_studys(proxy):
    config = sweep_config(trials=3)
    study = new_sweep(proxy, config=config.replace(trials=1))  # the study's target: 1
    add_trial(study, TrialState.COMPLETE, 0.5)
    worker, gate = worker_of(proxy, config)
    assert worker.start_served(gate, worker="host:1", own_target=False, look_for_dead=False).trial is None
    own = worker.start_served(gate, worker="host:1", own_target=True, look_for_dead=False)
    assert own.trial is not None and own.trial.number == 1  # `sweep worker --trials 3`: its 3


def test_a_silent_trial_is_found_by_the_proxy_failed_by_the_worker_and_its_retry_started_first(proxy):
    config = sweep_config(trials=4)
    study = new_sweep(proxy, config=config)
    silent = add_trial(study, TrialState.RUNNING, worker="another-machine:1")
    storage_of(study).set_trial_system_attr(trial_id_of(silent), BEAT_ATTR, time.time() - 60)
    worker, gate = worker_of(proxy, config)

    first = worker.start_served(gate, worker="host:1", own_target=False, look_for_dead=True)

    assert [(record.number, record.state) for record in first.dead] == [(silent.number, "FAIL")]
    retry = worker.start_served(gate, worker="host:1", own_target=False, look_for_dead=False)
    assert retry.trial is not None
    frozen = storage_of(study).get_trial(trial_id_of(retry.trial))
    assert frozen.system_attrs.get("failed_trial") == silent.number  # the retry, before any new trial
    assert TrialAttrs.read(frozen).worker == "host:1" and frozen.state == TrialState.RUNNING
    assert retry.trial.suggest_float("lr", 0.1, 1.0) == silent.params["lr"]  # the failed attempt's settings


def test_a_trial_whose_worker_on_this_host_died_is_named_to_a_worker_of_this_host_only(proxy):
    config = sweep_config(trials=4)
    study = new_sweep(proxy, config=config)
    orphan = add_trial(study, TrialState.RUNNING, worker=f"{socket.gethostname()}:{dead_pid()}")
    worker, gate = worker_of(proxy, config)

    reply = gate.start(StartRequest("demo", "elsewhere:1", config.to_yaml(), grace=None, host="elsewhere"))
    assert reply is not None and reply.on_host == ()  # another host cannot tell whether that process lives
    start = worker.start_served(gate, worker="host:1", own_target=False, look_for_dead=True)

    assert [record.number for record in start.dead] == [orphan.number]
    assert storage_of(study).get_trial(trial_id_of(orphan)).state == TrialState.FAIL


def test_without_a_proxy_that_decides_starts_the_worker_is_told_to_take_the_gate(journal):
    config = sweep_config(trials=2)
    new_sweep(journal, config=config)
    study, gate = worker_of(journal, config)  # a journal file: its gate is a file lock
    assert study.start_served(gate, worker="host:1", own_target=False, look_for_dead=False) is None

    port = free_port()
    server = proxy_server(open_storage(journal), "127.0.0.1", port, 4)  # Optuna's own proxy: no sweep service
    server.start()
    try:
        study, gate = worker_of(StorageLocation.parse(f"grpc://127.0.0.1:{port}"), config)
        assert study.start_served(gate, worker="host:1", own_target=False, look_for_dead=False) is None
        gate.close()
    finally:
        server.stop(None).wait()


@pytest.mark.parametrize(("changes", "served"), [({}, True), ({"sampler": "qmc", "seed": 1}, False),
                                                 ({"repeats": "reuse"}, False)])
def test_only_sweeps_that_need_nothing_under_the_gate_have_their_starts_served(journal, changes, served):
    config = sweep_config(trials=2, **changes)
    new_sweep(journal, config=config)
    study, _gate = worker_of(journal, config)
    assert study.starts_can_be_served is served


def test_a_reply_reads_back_as_it_was_sent():
    census = Census(5, 2, 1, Counts(1, 1, 1, 1, 0, 0), BestTrial(3, "run-3", 0.75, {"lr": 0.1, "model": "a"},
                                                                  {"val_accuracy": 0.75}, None),
                    after_best=1, trial_seconds=2.5, wall_seconds=1.5, target=9, running_since=(1.0, 2.0),
                    covered_since=0.5)
    study = optuna.create_study()
    study.enqueue_trial({"lr": 0.3})
    trial = study.ask()
    trial.suggest_float("lr", 0.1, 1.0)
    trial.set_user_attr("sweep.worker", "host:1")
    reply = StartReply(census, study.trials[0], (4,), ((7, "host:99"),))
    assert decode_reply(encode_reply(reply)) == reply
    assert decode_reply(encode_reply(StartReply(Census(0, 0, 0, Counts(), None)))) == StartReply(
        Census(0, 0, 0, Counts(), None))
