"""RetryPolicy: backoff doubling from RETRY_FIRST_SECONDS within the budget, then one try each while down."""

from __future__ import annotations

import pytest

from sweep.tracking.retry import RETRY_ENV, RETRY_FIRST_SECONDS, RetryPolicy, retry_seconds
from tests.unit.sweep.tracking.fakes import FakeClock


class Flaky:
    def __init__(self, failures: int) -> None:
        self.failures, self.tries = failures, 0

    def __call__(self) -> str:
        self.tries += 1
        if self.tries <= self.failures:
            raise ConnectionError("store unreachable")
        return "written"


def policy(clock: FakeClock, budget: float = 30.0) -> RetryPolicy:
    return RetryPolicy(budget, clock=clock, sleep=clock.sleep)


def test_a_failing_write_is_retried_with_doubling_pauses_until_the_budget_is_spent():
    clock = FakeClock()
    retry, call = policy(clock), Flaky(failures=100)
    with pytest.raises(ConnectionError):
        retry.run(call)
    assert clock.sleeps == [0.5, 1.0, 2.0, 4.0, 8.0]  # the next pause (16 s) would end past 30 s
    assert clock.sleeps[0] == RETRY_FIRST_SECONDS and call.tries == 6
    assert retry.store_down


def test_a_write_that_succeeds_on_a_retry_returns_its_result_and_the_store_stays_up():
    clock = FakeClock()
    retry = policy(clock)
    assert retry.run(Flaky(failures=2)) == "written"
    assert clock.sleeps == [0.5, 1.0] and not retry.store_down


def test_while_the_store_is_down_each_write_tries_once_until_one_succeeds():
    clock = FakeClock()
    retry = policy(clock)
    with pytest.raises(ConnectionError):
        retry.run(Flaky(failures=100))
    clock.sleeps.clear()
    second = Flaky(failures=100)
    with pytest.raises(ConnectionError):
        retry.run(second)
    assert second.tries == 1 and clock.sleeps == []
    assert retry.run(Flaky(failures=0)) == "written" and not retry.store_down
    third = Flaky(failures=1)
    assert retry.run(third) == "written" and third.tries == 2  # up again: retries are back


def test_the_budget_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv(RETRY_ENV, raising=False)
    assert retry_seconds() == 30.0
    monkeypatch.setenv(RETRY_ENV, "1")
    assert RetryPolicy.from_environment().budget_seconds == 1.0


class Broken:
    def __init__(self, message: str) -> None:
        self.message, self.tries = message, 0

    def __call__(self) -> str:
        self.tries += 1
        raise RuntimeError(self.message)


@pytest.mark.parametrize("message", ["(sqlite3.DatabaseError) file is not a database",
                                     "(sqlite3.OperationalError) no such table: runs",
                                     "(sqlite3.OperationalError) duplicate column name: step"])
def test_a_store_that_is_broken_rather_than_down_is_tried_once(message: str):
    clock = FakeClock()
    retry, call = policy(clock), Broken(message)
    with pytest.raises(RuntimeError):
        retry.run(call)
    assert call.tries == 1 and clock.now == 0.0
