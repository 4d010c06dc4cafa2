"""The storage proxy (Optuna's gRPC proxy) with its trial gate, and a journal in Redis, on real servers."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest

from sweep.errors import StorageError
from sweep.locations import StorageLocation
from sweep.study.optuna_internals import proxy_server
from sweep.study.proxy import Leases, serve_storage
from sweep.study.sharing import TrialGate
from sweep.study.storage import open_storage
from tests.support import redis_db
from tests.support.e2e import free_port
from tests.unit.sweep.study.conftest import new_sweep, served_journal
from tests.unit.sweep.study.test_sharing import ROUNDS, count_in_turns


@pytest.fixture
def proxy(journal: StorageLocation) -> Iterator[StorageLocation]:
    """A storage proxy with its gate in this process, serving a journal file; its grpc:// location."""
    assert journal.journal_path is not None
    with served_journal(journal.journal_path) as location:
        yield location


def test_a_lease_is_held_by_one_owner_until_released():
    leases = Leases()
    assert leases.acquire("demo", "a")
    assert not leases.acquire("demo", "b", wait=0.01)
    assert leases.acquire("other", "b", wait=0.01)  # one lease per sweep
    assert not leases.release("demo", "b")
    assert leases.release("demo", "a")
    assert leases.acquire("demo", "b", wait=0.01)


def test_a_dead_holders_lease_runs_out_and_a_waiter_gets_it():
    leases = Leases()
    assert leases.acquire("demo", "dead", lease=0.05)
    assert leases.acquire("demo", "waiting", wait=5)  # woken when the lease runs out, not after the wait
    assert not leases.release("demo", "dead")


def test_a_waiter_is_woken_by_the_release():
    leases = Leases()
    leases.acquire("demo", "a")
    threading.Timer(0.05, leases.release, ("demo", "a")).start()
    started = time.monotonic()
    assert leases.acquire("demo", "b", wait=5)
    assert time.monotonic() - started < 5


def test_a_sweep_through_the_proxy_reads_and_writes_the_served_storage(proxy, journal):
    study = new_sweep(proxy, "served")
    study.enqueue_trial({"lr": 0.3})
    trial = study.ask()
    trial.suggest_float("lr", 0.1, 1.0)
    study.tell(trial, 0.5)
    stored = optuna.load_study(study_name="served", storage=open_storage(journal))
    assert [(t.params, t.value) for t in stored.trials] == [({"lr": 0.3}, 0.5)]


def test_two_workers_behind_the_proxy_gate_lose_no_update(proxy, tmp_path: Path):
    storage = open_storage(proxy)
    count_in_turns([TrialGate(proxy, storage, "demo") for _ in range(2)], tmp_path / "counter")
    assert (tmp_path / "counter").read_text() == str(2 * ROUNDS)


def test_two_workers_behind_the_redis_gate_lose_no_update(tmp_path: Path):
    with redis_db.journal() as url:
        location = StorageLocation.parse(url)
        storage = open_storage(location)
        count_in_turns([TrialGate(location, storage, "demo") for _ in range(2)], tmp_path / "counter")
        assert (tmp_path / "counter").read_text() == str(2 * ROUNDS)


def test_a_journal_in_redis_keeps_the_studies_under_its_prefix():
    import redis

    with redis_db.journal() as url:
        new_sweep(StorageLocation.parse(url), "kept")
        prefix = url.rsplit("prefix=", 1)[1]
        assert redis.Redis.from_url(redis_db.SERVER_URL).exists(f"{prefix}:log_number")
        assert [s.study_name for s in open_storage(StorageLocation.parse(url)).get_all_studies()] == ["kept"]


def test_a_proxy_without_the_gate_is_named_when_a_worker_needs_it(journal):
    port = free_port()
    server = proxy_server(open_storage(journal), "127.0.0.1", port, 4)  # Optuna's proxy alone
    server.start()
    try:
        location = StorageLocation.parse(f"grpc://127.0.0.1:{port}")
        gate = TrialGate(location, open_storage(location), "demo")
        with pytest.raises(StorageError, match=r"serves no trial gate.*sweep storage-proxy"):
            gate.__enter__()
        gate.close()
    finally:
        server.stop(None).wait()


@pytest.mark.parametrize("url", ["grpc://127.0.0.1:{port}", "redis://:s3cret@127.0.0.1:{port}/0"])
def test_an_unreachable_endpoint_is_one_line_without_the_password(url: str):
    location = StorageLocation.parse(url.format(port=free_port()))
    with pytest.raises(StorageError, match="cannot reach") as caught:
        open_storage(location)
    assert "\n" not in str(caught.value) and "s3cret" not in str(caught.value)


def _silent_trial_of_another_machine_is_failed_and_retried(location: StorageLocation) -> None:
    from optuna.trial import TrialState

    from sweep.study.optuna_internals import BEAT_ATTR, storage_of, storage_uses_heartbeat, trial_id_of
    from sweep.study.sharing import fail_dead_trials
    from tests.unit.sweep.study.conftest import add_trial

    study = new_sweep(location)
    assert storage_uses_heartbeat(storage_of(study))
    silent = add_trial(study, TrialState.RUNNING, worker="another-machine:1")
    beating = add_trial(study, TrialState.RUNNING, worker="another-machine:2")
    storage_of(study).set_trial_system_attr(trial_id_of(silent), BEAT_ATTR, time.time() - 60)  # 6 intervals ago
    assert BEAT_ATTR not in study.get_trials()[beating.number].system_attrs  # its start, a moment ago, is its beat

    records = fail_dead_trials(study)

    assert [(r.number, r.state) for r in records] == [(silent.number, "FAIL")]
    states = [t.state for t in study.get_trials()]
    assert states == [TrialState.FAIL, TrialState.RUNNING, TrialState.WAITING]  # retried once


def test_a_trial_silent_for_three_heartbeats_on_redis_is_failed_and_retried():
    with redis_db.journal() as url:
        _silent_trial_of_another_machine_is_failed_and_retried(StorageLocation.parse(url))


def test_a_trial_silent_for_three_heartbeats_through_the_proxy_is_failed_and_retried(proxy):
    _silent_trial_of_another_machine_is_failed_and_retried(proxy)


def test_the_batched_redis_reader_reads_what_optunas_own_reads(monkeypatch: pytest.MonkeyPatch):
    from optuna.storages.journal import JournalRedisBackend

    from sweep.study import optuna_internals

    with redis_db.journal() as url:
        location = StorageLocation.parse(url)
        optunas = JournalRedisBackend(location.redis_url, prefix=location.redis_prefix)
        optunas.append_logs([{"entry": number} for number in range(7)])
        monkeypatch.setattr(optuna_internals, "REDIS_READ_BATCH", 3)  # entries 2-6 take two batches
        batched = optuna_internals.JournalRedisBatched(location.redis_url, prefix=location.redis_prefix)
        assert list(batched.read_logs(2)) == list(optunas.read_logs(2)) == [{"entry": n} for n in range(2, 7)]


def test_a_port_in_use_is_one_line_and_nothing_is_served(journal):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(StorageError, match=f"cannot listen on 127.0.0.1:{port}: .*choose another --port"):
            serve_storage(journal, host="127.0.0.1", port=port, on_ready=lambda url: pytest.fail(url))


def test_a_trials_first_attribute_beat_comes_an_interval_after_its_start_and_then_every_interval(proxy):
    from optuna.trial import TrialState

    from sweep.study.optuna_internals import BEAT_ATTR, storage_of, trial_id_of
    from sweep.study.sharing import heartbeat
    from tests.unit.sweep.study.conftest import add_trial

    study = optuna.load_study(study_name=new_sweep(proxy).study_name, storage=open_storage(proxy, heartbeat=1))
    started = add_trial(study, TrialState.RUNNING)
    entered = time.time()
    beats: list[float] = []
    with heartbeat(optuna.Trial(study, trial_id_of(started))):
        deadline = time.monotonic() + 60
        while len(beats) < 2 and time.monotonic() < deadline:
            beat = storage_of(study).get_trial(trial_id_of(started)).system_attrs.get(BEAT_ATTR)
            if beat is not None and beat not in beats:
                beats.append(beat)
            time.sleep(0.02)
    assert len(beats) == 2
    assert beats[0] >= entered + 1 and beats[1] >= beats[0] + 1  # none at once: the start is the first beat
