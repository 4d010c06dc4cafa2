"""StopSignal with real signals sent to this process: at once before defer(), a request after it, and never lost
when a library swallows the KeyboardInterrupt it raised."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator

import pytest

from sweep.engine.loop import StopSignal

pytestmark = pytest.mark.skipif(os.name != "posix", reason="signals sent with os.kill")


@pytest.fixture
def stop() -> Iterator[StopSignal]:
    requests: list[int] = []
    handler = StopSignal(lambda: requests.append(1))
    handler.requests = requests  # type: ignore[attr-defined]  # what on_request saw, for the assertions
    handler.install()
    yield handler
    handler.restore()


def ctrl_c() -> None:
    signal.raise_signal(signal.SIGINT)


def swallowed_ctrl_c() -> None:
    """What Cython's module initialisation does to a KeyboardInterrupt raised inside it: clears it."""
    with contextlib.suppress(KeyboardInterrupt):
        ctrl_c()


def test_before_defer_a_signal_raises_at_once(stop: StopSignal):
    with pytest.raises(KeyboardInterrupt):
        ctrl_c()


def test_a_ctrl_c_a_library_swallowed_before_defer_stops_the_start_at_defer(stop: StopSignal):
    swallowed_ctrl_c()
    with pytest.raises(KeyboardInterrupt):
        stop.defer()


def test_without_a_signal_defer_returns_and_a_signal_after_it_only_asks_for_a_stop(stop: StopSignal):
    stop.defer()
    ctrl_c()
    ctrl_c()  # outside the trainer a second one asks again: the loop ends its write first
    assert stop.requested and stop.requests == [1]  # type: ignore[attr-defined]


def test_a_second_signal_inside_the_trainer_raises_there(stop: StopSignal):
    stop.defer()
    stop.in_trainer = True
    ctrl_c()
    with pytest.raises(KeyboardInterrupt):
        ctrl_c()


def test_sigterm_is_handled_as_ctrl_c(stop: StopSignal):
    with pytest.raises(KeyboardInterrupt):
        signal.raise_signal(signal.SIGTERM)
    assert stop.requested


def test_restore_puts_back_the_handlers_there_before():
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    handler = StopSignal()
    handler.install()
    assert signal.getsignal(signal.SIGINT) != before[0]
    handler.restore()
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before
