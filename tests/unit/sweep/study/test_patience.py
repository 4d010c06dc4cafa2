"""Storage calls wait a bounded time for a server that went away (sweep/study/patience.py): what counts as a lost
connection, how long a call tries, what it says, and that nested calls share one budget. The outage itself, on real
servers, is tests/unit/sweep/engine/test_storage_outage.py."""

from __future__ import annotations

import pickle

import pytest

from sweep.errors import StorageUnavailableError
from sweep.study.patience import Patience, PatientStorage, describe_loss, lost_connection
from tests.unit.sweep.tracking.fakes import FakeClock


def failing(times: int, error: Exception):
    calls = {"n": 0}

    def call() -> str:
        calls["n"] += 1
        if calls["n"] <= times:
            raise error
        return "written"
    return call, calls


def patience(budget: float = 10.0) -> tuple[Patience, FakeClock]:
    clock = FakeClock()
    return Patience("redis://host/0", budget, clock=clock, sleep=clock.sleep), clock


def test_a_lost_connection_is_tried_again_with_growing_pauses_until_it_answers():
    waiting, clock = patience()
    call, calls = failing(3, ConnectionRefusedError("refused"))
    assert waiting.call(call) == "written"
    assert calls["n"] == 4 and clock.sleeps == [0.2, 0.4, 0.8]


def test_a_storage_away_past_the_budget_is_one_line_naming_it():
    waiting, _ = patience(budget=3.0)
    call, _ = failing(100, ConnectionResetError(104, "Connection reset by peer"))
    with pytest.raises(StorageUnavailableError) as raised:
        waiting.call(call)
    assert str(raised.value) == ("the Optuna storage redis://host/0 stopped answering ([Errno 104] Connection reset "
                                 "by peer); tried for 3 s (SWEEP_STORAGE_RETRY_SECONDS sets how long)")
    assert str(raised.value.resumable("sweep run --resume --name a")).endswith(
        "; when it answers again, continue with: sweep run --resume --name a")


def test_an_answer_that_is_an_error_is_raised_at_once():
    waiting, clock = patience()
    call, calls = failing(1, KeyError("no such study"))
    with pytest.raises(KeyError):
        waiting.call(call)
    assert calls["n"] == 1 and clock.sleeps == []


def test_a_call_inside_a_call_shares_the_outer_budget():
    waiting, clock = patience(budget=1.0)
    inner, inner_calls = failing(100, ConnectionError("down"))
    with pytest.raises(StorageUnavailableError):
        waiting.call(lambda: waiting.call(inner))
    assert sum(clock.sleeps) <= 1.0  # not the inner budget, then the outer one again
    assert inner_calls["n"] == len(clock.sleeps) + 1


def test_the_client_libraries_lost_connections_count_and_their_wrapped_forms_too():
    import redis.exceptions
    import sqlalchemy.exc
    from optuna.exceptions import StorageInternalError

    assert lost_connection(redis.exceptions.ConnectionError("Error 111 connecting"))
    assert lost_connection(redis.exceptions.TimeoutError("Timeout reading"))
    driver = OSError("server closed the connection unexpectedly")
    operational = sqlalchemy.exc.OperationalError("SELECT 1", {}, driver)
    wrapped = StorageInternalError("An exception is raised during the commit.")
    wrapped.__cause__ = operational
    assert lost_connection(wrapped)
    assert describe_loss(wrapped) == "server closed the connection unexpectedly"
    assert not lost_connection(sqlalchemy.exc.IntegrityError("INSERT", {}, OSError("duplicate key")))
    refused = sqlalchemy.exc.OperationalError("connect", {}, OSError("connection failed: Connection refused"))
    assert lost_connection(refused)
    assert not lost_connection(sqlalchemy.exc.OperationalError("connect", {}, OSError(
        'FATAL:  database "gone" does not exist')))  # an answer: never waited for
    assert not lost_connection(sqlalchemy.exc.OperationalError("connect", {}, OSError(
        'FATAL:  password authentication failed for user "sweep"')))
    assert not lost_connection(ValueError("bad value"))


class Storage:
    def __init__(self) -> None:
        self.beats = 0

    def get_trial(self, trial_id: int) -> int:
        raise ConnectionError("down")

    def record_heartbeat(self, trial_id: int) -> None:
        self.beats += 1
        raise ConnectionError("down")

    def helper(self) -> str:
        return "not a storage call"


class PatientFake(PatientStorage, Storage):
    def __init__(self, waiting: Patience) -> None:
        self.patience = waiting
        super().__init__()


def test_a_patient_storage_waits_in_its_storage_calls_only_and_drops_a_heartbeat_that_cannot_be_written():
    waiting, _ = patience(budget=1.0)
    storage = PatientFake(waiting)
    with pytest.raises(StorageUnavailableError):
        storage.get_trial(0)
    assert storage.record_heartbeat(0) is None and storage.beats > 1  # tried, then dropped: no traceback
    assert storage.helper() == "not a storage call"


def test_a_patience_travels_with_its_storage_when_pickled():
    waiting = Patience("redis://host/0", 7.0)
    copy = pickle.loads(pickle.dumps(waiting))
    assert (copy.storage_name, copy.budget_seconds) == ("redis://host/0", 7.0)
