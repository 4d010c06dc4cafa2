"""Sharing a study: the trial gate excludes other workers, dead workers' trials are failed and retried once."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from sweep.locations import StorageLocation
from sweep.study.attrs import TrialAttrs
from sweep.study.census import Tally
from sweep.study.sharing import DEAD_SWEEP, DEAD_WORKER, TrialGate, fail_dead_trials, fail_orphaned_trials, worker_id
from sweep.study.storage import open_storage
from tests.support import pg, redis_db
from tests.unit.sweep.study.conftest import add_trial, new_sweep, served_journal, sweep_config

ROUNDS = 40


def dead_pid() -> int:
    """The pid of a process of this machine that has ended (and was reaped)."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def file_is_locked(path: Path) -> bool:
    with open(path, "a+b") as other:
        try:
            fcntl.flock(other.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(other.fileno(), fcntl.LOCK_UN)
        return False


def count_in_turns(gates: list[TrialGate], counter: Path) -> None:
    """A thread per gate adds one to a file ROUNDS times, reading and writing apart, inside its gate."""
    counter.write_text("0")

    def work(gate: TrialGate) -> None:
        try:
            for _ in range(ROUNDS):
                with gate:
                    value = int(counter.read_text())
                    os.sched_yield()  # invite the other thread in between: only the gate keeps it out
                    counter.write_text(str(value + 1))
        finally:
            gate.close()

    threads = [threading.Thread(target=work, args=(gate,)) for gate in gates]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def test_the_journal_gate_is_a_file_lock_other_workers_wait_for(journal):
    storage = open_storage(journal)
    gate = TrialGate(journal, storage, "demo")
    lock_file = Path(f"{journal.journal_path}.gate")
    with gate:
        assert file_is_locked(lock_file)
    assert not file_is_locked(lock_file)
    gate.close()


def test_two_workers_behind_the_journal_gate_lose_no_update(journal, tmp_path: Path):
    storage = open_storage(journal)
    count_in_turns([TrialGate(journal, storage, "demo") for _ in range(2)], tmp_path / "counter")
    assert (tmp_path / "counter").read_text() == str(2 * ROUNDS)


def test_the_sqlite_gate_locks_a_file_beside_the_database(tmp_path: Path):
    location = StorageLocation.parse(f"sqlite:///{tmp_path / 'optuna.db'}")
    gate = TrialGate(location, open_storage(location), "demo")
    with gate:
        assert file_is_locked(tmp_path / "optuna.db.gate")
    gate.close()


def test_the_postgres_gate_is_an_advisory_lock_other_sessions_cannot_take():
    from sqlalchemy import text

    with pg.database() as url:
        location = StorageLocation.parse(url)
        storage = open_storage(location)
        other = open_storage(location)
        key = int.from_bytes(hashlib.sha256(b"demo").digest()[:8], "big", signed=True)
        gate = TrialGate(location, storage, "demo")

        def other_session_gets_it() -> bool:
            with other.engine.connect() as connection:
                taken = connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": key}).scalar()
                if taken:
                    connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
                return bool(taken)

        try:
            with gate:
                assert not other_session_gets_it()
            assert other_session_gets_it()
        finally:
            gate.close()
            storage.engine.dispose()
            other.engine.dispose()


def test_two_workers_behind_the_postgres_gate_lose_no_update(tmp_path: Path):
    with pg.database() as url:
        location = StorageLocation.parse(url)
        storages = [open_storage(location) for _ in range(2)]  # one engine per worker, as on two machines
        try:
            count_in_turns([TrialGate(location, storage, "demo") for storage in storages], tmp_path / "counter")
        finally:
            for storage in storages:
                storage.engine.dispose()
        assert (tmp_path / "counter").read_text() == str(2 * ROUNDS)


@contextlib.contextmanager
def gate_location(kind: str, tmp_path: Path) -> Iterator[StorageLocation]:
    """Where a sweep's gate of ``kind`` lives: a journal file, a journal in Redis, the storage proxy, PostgreSQL."""
    if kind == "redis":
        with redis_db.journal() as url:
            yield StorageLocation.parse(url)
    elif kind == "proxy":
        with served_journal(tmp_path / "sweep.journal") as location:
            yield location
    elif kind == "postgres":
        with pg.database() as url:
            yield StorageLocation.parse(url)
    else:
        yield StorageLocation.parse(str(tmp_path / "sweep.journal"))


@pytest.mark.parametrize("kind", ["journal", "redis", "proxy", "postgres"])
def test_a_worker_finding_the_gate_held_does_its_waiting_work_and_a_worker_alone_never(kind: str, tmp_path: Path):
    with gate_location(kind, tmp_path) as location:
        storages = [open_storage(location) for _ in range(2)]
        holder, waiter = (TrialGate(location, storage, "demo") for storage in storages)
        events: list[str] = []
        try:
            with waiter.held(while_waiting=lambda: events.append("waiting")):
                events.append("held alone")
            assert events == ["held alone"]
            events.clear()

            def wait_then_hold() -> None:
                with waiter.held(while_waiting=lambda: events.append("waiting")):
                    events.append("held")

            thread = threading.Thread(target=wait_then_hold)
            with holder:
                thread.start()
                deadline = time.monotonic() + 60
                while not events and thread.is_alive() and time.monotonic() < deadline:
                    time.sleep(0.005)
                assert events and set(events) == {"waiting"}  # it waits: the holder has the gate
            thread.join(60)
            assert not thread.is_alive() and events[-1] == "held" and set(events[:-1]) == {"waiting"}
        finally:
            for gate in (holder, waiter):
                gate.close()
            for storage in storages:
                if hasattr(storage, "engine"):
                    storage.engine.dispose()


def test_a_running_trial_of_a_dead_worker_fails_and_is_retried_once(journal):
    study = new_sweep(journal)
    orphan = add_trial(study, TrialState.RUNNING, worker=f"{socket.gethostname()}:{dead_pid()}")
    records = fail_dead_trials(study)
    assert [(r.number, r.state, r.error, r.run_id) for r in records] == [(orphan.number, "FAIL", DEAD_WORKER,
                                                                          f"run-{orphan.number}")]
    trials = study.get_trials(deepcopy=False)
    assert trials[orphan.number].state == TrialState.FAIL
    assert TrialAttrs.read(trials[orphan.number]).error == DEAD_WORKER
    retries = [t for t in trials if t.state == TrialState.WAITING]
    assert len(retries) == 1 and retries[0].system_attrs.get("retry_history") == [orphan.number]
    assert fail_dead_trials(study) == []  # once only: nothing is left to fail


def test_a_loops_tally_names_the_running_trials_a_dead_worker_left_and_a_finished_one_is_skipped(journal):
    study = new_sweep(journal)
    orphan = add_trial(study, TrialState.RUNNING, worker=f"{socket.gethostname()}:{dead_pid()}")
    finished_since = add_trial(study, TrialState.RUNNING, worker=f"{socket.gethostname()}:{dead_pid()}")
    tally = Tally(study, sweep_config())
    study.tell(finished_since.number, 0.5)  # it ended after the tally's look: its snapshot still says RUNNING
    records = fail_dead_trials(study, tally.running)
    assert [r.number for r in records] == [orphan.number]
    assert study.get_trials(deepcopy=False)[finished_since.number].state == TrialState.COMPLETE
    assert tally.look().waiting == 1  # the orphan's retry


def test_trials_of_live_workers_and_of_other_machines_are_left_running(journal):
    study = new_sweep(journal)
    add_trial(study, TrialState.RUNNING, worker=worker_id())  # this process: alive
    add_trial(study, TrialState.RUNNING, worker=f"{socket.gethostname()}:{os.getppid()}")  # alive
    add_trial(study, TrialState.RUNNING, worker="another-machine:1")  # not ours to judge
    assert fail_dead_trials(study) == []
    assert [t.state for t in study.get_trials()] == [TrialState.RUNNING] * 3


def test_on_resume_trials_left_running_by_a_dead_sweep_fail_but_live_ones_stay(journal):
    study = new_sweep(journal)
    live_worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])  # a `sweep worker`
    try:
        add_trial(study, TrialState.RUNNING)  # no worker recorded: an older sweep, killed
        add_trial(study, TrialState.RUNNING, worker=f"{socket.gethostname()}:{dead_pid()}")
        add_trial(study, TrialState.RUNNING, worker=f"{socket.gethostname()}:{live_worker.pid}")
        fail_orphaned_trials(study)
    finally:
        live_worker.kill()
        live_worker.wait()
    trials = study.get_trials()
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.FAIL, TrialState.RUNNING]
    assert TrialAttrs.read(trials[0]).error == DEAD_SWEEP


def test_on_resume_a_trial_this_process_left_running_in_an_earlier_sweep_fails(journal):
    """The engine driven in-process: a fit that raised SystemExit left its trial RUNNING under this very process;
    the resume runs none yet, so that trial is an orphan, as if the process had died (else the resume waits
    for it forever)."""
    study = new_sweep(journal)
    add_trial(study, TrialState.RUNNING, worker=worker_id())
    fail_orphaned_trials(study)
    assert [t.state for t in study.get_trials()] == [TrialState.FAIL]


def test_a_gate_on_another_database_locks_nothing(monkeypatch: pytest.MonkeyPatch):
    location = StorageLocation.parse("mysql://user@127.0.0.1/optuna")
    gate = TrialGate(location, optuna.storages.InMemoryStorage(), "demo")
    with gate:
        pass  # no lock to take: nothing raised, nothing held
    gate.close()
