"""A fake clock and a fake tracker for driving the tracking server in-process, without MLflow."""

from __future__ import annotations

import queue
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sweep.records import BestAgreement, BestTrial, Counts, ModelPublishing, PublishedModel, SweepIdentity, TrialRecord
from sweep.states import RunStatus
from sweep.tracking.protocol import Request
from sweep.tracking.retry import RetryPolicy
from sweep.tracking.server import TrackingServer


class FakeClock:
    """Monotonic time that only moves when the code under test sleeps (or a test advances it)."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@dataclass
class FakeTracker:
    """Records every call as a short string; ``failures`` makes a call raise (by its first word)."""

    identity: SweepIdentity | None = None
    calls: list[str] = field(default_factory=list)
    failures: dict[str, Callable[[], Exception]] = field(default_factory=dict)
    owns: bool = True
    run_id: str | None = "parent"

    def __post_init__(self) -> None:
        self.store = self.parent = self.children = self.publisher = self

    def _record(self, call: str) -> None:
        self.calls.append(call)
        failure = self.failures.get(call.split()[0])
        if failure is not None:
            raise failure()

    # store
    def connect(self) -> str:
        self._record("connect")
        return "experiment-1"

    def cleanup(self) -> None:  # its scratch folder: not a call on the store
        self.cleaned_up = True

    # parent
    def open(self, parent_run_id: str | None, **_: Any) -> tuple[str, bool]:
        self._record(f"open {parent_run_id}")
        return "parent", parent_run_id is None

    def sync(self, parent_run_id: str | None, **_: Any) -> tuple[str, bool]:
        self._record(f"sync {parent_run_id}")
        return "parent", False

    def record_counts(self, counts: Counts) -> None:
        self._record(f"counts {counts.finished}")

    def record_best(self, best: BestTrial, _metric: str) -> None:
        self._record(f"best {best.number}")

    def ensure_best(self, best: BestTrial, _metric: str) -> None:
        self._record(f"ensure {best.number}")

    def agree_best(self, best: BestTrial, _metric: str, _publishing: ModelPublishing) -> BestAgreement:
        self._record(f"agree {best.number} {best.run_id}")
        return BestAgreement([f"best trial {best.number}"], None, True, best.number, True)

    def close(self, status: RunStatus, counts: Counts, tags: dict[str, str] | None = None) -> None:
        self._record(f"close {status} {counts.finished}" + "".join(f" {k}={v}" for k, v in (tags or {}).items()))

    def abandon(self) -> None:
        self._record("abandon")

    # children
    def start(self, number: int, _start_ms: int) -> str:
        self._record(f"start {number}")
        return f"run-{number}"

    def finish(self, record: TrialRecord) -> str:
        self._record(f"finish {record.number} {record.run_id}")
        return record.run_id or "new"

    def fail(self, run_id: str, _reason: str, status: RunStatus = RunStatus.FAILED) -> None:
        self._record(f"fail {run_id} {status}")

    # publisher
    def record_plots(self, images: dict[str, bytes], _skipped: dict[str, str]) -> list[str]:
        self._record("plots")
        return list(images)

    def publish_model(self, best: BestTrial | None, _register: str | None,
                      _publishing: ModelPublishing) -> PublishedModel:
        self._record("model")
        return PublishedModel("runs:/parent/model", best.number if best else None)


@dataclass
class Harness:
    """A server on a fake tracker and a fake clock, its replies in a list."""

    tracker: FakeTracker = field(default_factory=FakeTracker)
    clock: FakeClock = field(default_factory=FakeClock)
    budget: float = 30.0
    replies: list[Any] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.server = TrackingServer(self.open_tracker, self, clock=self.clock, poll_seconds=0.0,
                                     retry=RetryPolicy(self.budget, clock=self.clock, sleep=self.clock.sleep))
        self.server.tracker = self.tracker  # as after Connect

    def open_tracker(self, identity: SweepIdentity) -> FakeTracker:
        self.tracker.identity = identity
        return self.tracker

    def put(self, obj: Any, block: bool = True, timeout: float | None = None) -> None:
        self.replies.append(obj)

    def run(self, *requests: Request[Any], parent_alive: bool = True) -> None:
        """Queue all requests at once, then serve them until an END request or the loop's death."""
        source: queue.Queue[Request[Any]] = queue.Queue()
        for request in requests:
            source.put(request)
        self.server.loop(source, lambda: parent_alive)


def record(number: int, state: str = "COMPLETE") -> TrialRecord:
    return TrialRecord(number, state, {"lr": 0.1}, 0.5 if state == "COMPLETE" else None)  # type: ignore[arg-type]


def best(number: int) -> BestTrial:
    return BestTrial(number, f"run-{number}", 0.9, {"lr": 0.1}, {}, None)
