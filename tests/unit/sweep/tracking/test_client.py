"""The Recorder on a transport that serves each request as it is put (a fake tracker, no MLflow): a request the
engine builds is called or sent as it is, and the Recorder keeps only the experiment and the started runs."""

from __future__ import annotations

import queue
from typing import Any

import pytest

from sweep.errors import TrackingError
from sweep.records import SweepIdentity
from sweep.tracking.client import Recorder
from sweep.tracking.operations import Connect, FinishTrial, OpenParent, Reconcile, StartTrial
from sweep.tracking.protocol import REPLY_SECONDS, STARTUP_SECONDS, Reply, Request
from tests.unit.sweep.tracking.fakes import Harness, record


class InlineTransport:
    """Serves every request the moment it is put, on a Harness server; hands its replies back in order."""

    def __init__(self) -> None:
        self.harness = Harness()
        self.harness.server.tracker = None  # as a new server: Connect makes it

    def start(self) -> None:
        pass

    def put(self, request: Request[Any]) -> None:
        self.harness.server.dispatch(request)

    def get(self, timeout: float) -> Reply:
        if not self.harness.replies:
            raise queue.Empty
        return self.harness.replies.pop(0)

    def alive(self) -> bool:
        return True

    def join(self, timeout: float) -> None:
        pass

    def kill(self) -> None:
        pass

    def closed(self) -> None:
        self.closed_calls = getattr(self, "closed_calls", 0) + 1


@pytest.fixture
def transport() -> InlineTransport:
    return InlineTransport()


def test_connect_answers_and_keeps_the_experiment_for_the_trials(transport: InlineTransport):
    recorder = Recorder(transport)
    assert recorder.connect(SweepIdentity("s", "exp", None)) == "experiment-1" == recorder.experiment_id


def test_a_call_returns_its_answer_and_keeps_a_start_answered_meanwhile(transport: InlineTransport):
    recorder = Recorder(transport)
    recorder.connect(SweepIdentity("s", "exp", None))
    recorder.send(StartTrial(4, 0))
    assert recorder.call(OpenParent(None, {}, {}, "trials: 1\n")) == ("parent", True)
    assert recorder.run_id(4, timeout=0.0) == "run-4"  # read while waiting for the call's answer


def test_a_finished_trials_run_id_is_forgotten(transport: InlineTransport):
    recorder = Recorder(transport)
    recorder.connect(SweepIdentity("s", "exp", None))
    recorder.send(StartTrial(0, 0))
    assert recorder.run_id(0) == "run-0"
    recorder.send(FinishTrial(record(0)))
    assert recorder.run_id(0, timeout=0.0) is None
    assert transport.harness.tracker.calls[-1] == "finish 0 run-0"


def test_a_failed_call_raises_its_one_line(transport: InlineTransport):
    recorder = Recorder(transport)
    recorder.connect(SweepIdentity("s", "exp", None))
    transport.harness.tracker.failures["open"] = lambda: RuntimeError("the store is read-only\ndetails")
    with pytest.raises(TrackingError, match=r"^the store is read-only$"):
        recorder.call(OpenParent(None, {}, {}, "trials: 1\n"))


def test_each_call_says_how_long_its_answer_may_take():
    assert Connect(SweepIdentity("s", "exp", None)).reply_seconds() == STARTUP_SECONDS  # mlflow still importing
    assert OpenParent(None, {}, {}, "").reply_seconds() == REPLY_SECONDS
    assert Reconcile([record(n) for n in range(10)]).reply_seconds() > Reconcile([]).reply_seconds() == REPLY_SECONDS
