"""Trial starts the storage proxy decides (served.py), on a real proxy serving a journal file in this process."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import grpc
import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState

from sweep.config import SweepConfig
from sweep.locations import StorageLocation
from sweep.records import BestTrial, Counts, TrialRecord
from sweep.space import FloatRange, IntRange
from sweep.study.attrs import TrialAttrs
from sweep.study.census import Census
from sweep.study.optuna_internals import (
    BEAT_ATTR,
    PARAMS_CALL,
    HeldWrites,
    params_together,
    proxy_server,
    storage_of,
    trial_id_of,
)
from sweep.study.proxy import SERVICE, Leases, gate_handler
from sweep.study.served import (
    FinishRequest,
    StartReply,
    StartRequest,
    StartService,
    decode_finish_request,
    decode_reply,
    encode_finish_request,
    encode_reply,
)
from sweep.study.sharing import TrialGate
from sweep.study.storage import open_storage
from sweep.study.sweep_study import SweepStudy
from sweep.trial import TrialRun
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


def finished(trial: Any, value: float = 0.8) -> TrialRecord:
    """The record the loop tells for ``trial`` when it completes with ``value``."""
    return TrialRecord(trial.number, "COMPLETE", dict(trial.params), value, metrics={"val_accuracy": value},
                       run_id=f"run-{trial.number}")


def test_a_tell_goes_to_the_proxy_with_the_next_start_in_one_call_and_others_read_it_then(proxy, monkeypatch):
    config = sweep_config(trials=3)
    new_sweep(proxy, config=config)
    worker, gate = worker_of(proxy, config)
    calls: list[str] = []
    for name in ("set_trial_user_attr", "set_trial_state_values", "get_trial"):  # Optuna's own calls to the proxy
        remote = getattr(optuna.storages.GrpcStorageProxy, name)
        monkeypatch.setattr(optuna.storages.GrpcStorageProxy, name,
                            lambda self, *args, _name=name, _remote=remote: calls.append(_name) or _remote(self, *args))
    first = worker.start_served(gate, worker="host:1", own_target=False, look_for_dead=False).trial
    first.suggest_float("lr", 0.1, 1.0)

    worker.tell(first, finished(first), with_next_start=True)
    other = optuna.load_study(study_name="demo", storage=open_storage(proxy))  # another client of the proxy
    assert [t.state for t in other.get_trials()] == [TrialState.RUNNING]  # held back until the next start
    start = worker.start_served(gate, worker="host:1", own_target=False, look_for_dead=False)

    assert calls == []  # neither the tell's writes nor its read of the trial went on their own
    assert start.trial is not None and start.trial.number == 1
    assert start.census.finished.complete == 1 and start.census.running == 0  # decided with the trial finished
    told, running = other.get_trials()
    assert (told.state, told.values, TrialAttrs.read(told).run_id, TrialAttrs.read(told).metrics) == (
        TrialState.COMPLETE, [0.8], "run-0", {"val_accuracy": 0.8})
    assert running.state == TrialState.RUNNING and TrialAttrs.read(running).worker == "host:1"
    gate.close()


def test_a_tell_held_back_for_a_start_that_does_not_come_is_written_on_its_own(proxy):
    config = sweep_config(trials=1)
    new_sweep(proxy, config=config)
    worker, gate = worker_of(proxy, config)
    trial = worker.start_served(gate, worker="host:1", own_target=False, look_for_dead=False).trial
    worker.tell(trial, TrialRecord(trial.number, "FAIL", {}, error="boom"), with_next_start=True)

    worker.write_held_tell()
    worker.write_held_tell()  # nothing left to write

    (seen,) = optuna.load_study(study_name="demo", storage=open_storage(proxy)).get_trials()
    assert seen.state == TrialState.FAIL and TrialAttrs.read(seen).error == "boom"
    gate.close()


def test_a_trial_that_ended_meanwhile_is_not_told_again_and_no_trial_starts(proxy):
    config = sweep_config(trials=4)
    new_sweep(proxy, config=config)
    worker, gate = worker_of(proxy, config)
    trial = worker.start_served(gate, worker="host:1", own_target=False, look_for_dead=False).trial
    worker.tell(trial, finished(trial), with_next_start=True)
    storage_of(worker._study).set_trial_state_values(trial_id_of(trial), TrialState.FAIL)  # failed as stale

    with pytest.raises(optuna.exceptions.UpdateFinishedTrialError):  # as the tell's own write would have raised
        worker.start_served(gate, worker="host:1", own_target=False, look_for_dead=False)
    assert [t.state for t in optuna.load_study(study_name="demo", storage=open_storage(proxy)).get_trials()] == [
        TrialState.FAIL]
    gate.close()


class Without(grpc.GenericRpcHandler):
    """The sweep service of a `sweep storage-proxy` older than one of its calls."""

    def __init__(self, handler: grpc.GenericRpcHandler, method: str) -> None:
        self.handler, self.method = handler, method

    def service(self, details: Any) -> Any:
        return None if details.method == self.method else self.handler.service(details)


@contextmanager
def older_proxy(journal: StorageLocation, method: str) -> Iterator[StorageLocation]:
    """A storage proxy serving ``journal`` without the sweep service's ``method``: its grpc:// location."""
    port = free_port()
    storage = open_storage(journal)
    server = proxy_server(storage, "127.0.0.1", port, 8)
    leases = Leases()
    server.add_generic_rpc_handlers((Without(gate_handler(leases, StartService(storage, leases.held)), method),))
    server.start()
    try:
        yield StorageLocation.parse(f"grpc://127.0.0.1:{port}")
    finally:
        server.stop(None).wait()


def test_a_proxy_without_the_finishing_call_gets_the_tells_writes_one_by_one_and_still_starts(journal):
    config = sweep_config(trials=3)
    new_sweep(journal, config=config)
    with older_proxy(journal, f"/{SERVICE}/FinishAndStart") as location:
        worker, gate = worker_of(location, config)
        first = worker.start_served(gate, worker="host:1", own_target=False, look_for_dead=False).trial
        assert gate.takes_finish  # until the proxy says otherwise
        worker.tell(first, finished(first, 0.6), with_next_start=True)

        start = worker.start_served(gate, worker="host:1", own_target=False, look_for_dead=False)

        assert start is not None and start.trial is not None and start.trial.number == 1
        assert start.census.finished.complete == 1 and not gate.takes_finish and gate.reaches_proxy
        told = optuna.load_study(study_name="demo", storage=open_storage(location)).get_trials()[0]
        assert told.state == TrialState.COMPLETE and told.values == [0.6]
        gate.close()


def space_config(**changes: object) -> SweepConfig:
    return sweep_config(space={"lr": FloatRange(0.1, 1.0), "epochs": IntRange(1, 4)}, **changes)


def test_a_trials_search_space_reaches_the_proxy_in_one_call_before_the_trainer_starts(proxy, monkeypatch, tmp_path):
    config = space_config(trials=2)
    new_sweep(proxy, config=config)
    worker, gate = worker_of(proxy, config)
    one_by_one: list[str] = []
    remote = optuna.storages.GrpcStorageProxy.set_trial_param
    monkeypatch.setattr(optuna.storages.GrpcStorageProxy, "set_trial_param", lambda self, trial_id, name, *args:
                        one_by_one.append(name) or remote(self, trial_id, name, *args))
    trial = worker.start_served(gate, worker="host:1", own_target=False, look_for_dead=False).trial

    facing = worker.facing_trial(trial, TrialRun(), sweep="demo", metric="val_accuracy", space=config.space,
                                 fixed={}, run_id=lambda: None, workdirs=tmp_path)

    (seen,) = optuna.load_study(study_name="demo", storage=open_storage(proxy)).get_trials()  # another client
    assert one_by_one == [] and seen.state == TrialState.RUNNING
    assert seen.params == facing.params == trial.params
    assert facing.suggest_float("later", 0.0, 1.0) == storage_of(worker._study).get_trial(seen._trial_id).params[
        "later"] and one_by_one == ["later"]  # a define-by-run param, suggested inside fit: written when suggested
    gate.close()


def test_params_together_are_refused_as_optunas_own_call_refuses_them(proxy):
    study = new_sweep(proxy, config=space_config(trials=2))
    add_trial(study, TrialState.COMPLETE, 0.5)  # its "lr" is a float in [0.1, 1.0]
    trial = study.ask()
    with pytest.raises(ValueError), params_together(study, trial):
        trial.suggest_categorical("lr", ["a", "b"])  # another kind of range under the same name
    study.tell(trial, 1.0)
    with pytest.raises(optuna.exceptions.UpdateFinishedTrialError):
        storage_of(study).set_trial_params(trial_id_of(trial), [("x", 0.5, FloatDistribution(0.0, 1.0))])


def test_a_proxy_without_the_params_call_gets_them_one_by_one(journal, tmp_path):
    config = space_config(trials=2)
    new_sweep(journal, config=config)
    with older_proxy(journal, PARAMS_CALL) as location:
        worker, gate = worker_of(location, config)
        for _ in range(2):  # the second time without asking first
            trial = worker.start_served(gate, worker="host:1", own_target=False, look_for_dead=False).trial
            facing = worker.facing_trial(trial, TrialRun(), sweep="demo", metric="val_accuracy", space=config.space,
                                         fixed={}, run_id=lambda: None, workdirs=tmp_path)
            seen = optuna.load_study(study_name="demo", storage=open_storage(location)).get_trials()[-1]
            assert seen.params == facing.params
        gate.close()


def test_a_finish_request_reads_back_as_it_was_sent():
    request = FinishRequest(HeldWrites(7, {"sweep.metrics": {"acc": 0.5}, "sweep.run_id": "r"}, {"constraints": [0.1]},
                                       TrialState.PRUNED, [0.25]),
                            StartRequest("demo", "host:1", "trials: 3\n", True, 30.0, "host"))
    assert decode_finish_request(encode_finish_request(request)) == request
    unfinished = FinishRequest(HeldWrites(3), StartRequest("demo", "host:1", ""))
    assert decode_finish_request(encode_finish_request(unfinished)) == unfinished
