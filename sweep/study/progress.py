"""What a running sweep tells its caller: start, each finished trial, the summary, an interruption."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from sweep.errors import SweepError
from sweep.recorder import TrackingReport
from sweep.records import BestTrial, Counts


@dataclass(frozen=True)
class SweepStart:
    name: str
    experiment: str
    parent_run_id: str
    storage: str  # redacted
    tracking_uri: str  # redacted
    target: int
    already_finished: int
    resumed: bool


@dataclass(frozen=True)
class TrialUpdate:
    number: int
    state: str
    value: float | None
    error: str | None
    counts: Counts
    target: int
    best: BestTrial | None
    elapsed: float


class SweepListener(Protocol):
    def sweep_started(self, start: SweepStart) -> None: ...

    def trial_finished(self, update: TrialUpdate) -> None: ...


@dataclass(frozen=True)
class SweepSummary:
    name: str
    experiment: str
    parent_run_id: str
    status: str  # finished | interrupted | timeout
    counts: Counts
    best: BestTrial | None
    elapsed: float
    trainer_seconds: float | None  # time inside the trainer (None when worker processes ran the trials)
    trials_run: int  # trials this invocation ran
    tracking: TrackingReport = field(default_factory=TrackingReport)
    storage: str = ""
    tracking_uri: str = ""


class SweepInterrupted(SweepError):
    """Ctrl-C or SIGTERM: every run ended KILLED; the message says how to resume."""

    exit_code = 130

    def __init__(self, summary: SweepSummary, storage_flag: str) -> None:
        super().__init__(f"interrupted with {summary.counts.finished} trials finished; "
                         f"resume with: sweep run --resume --name {summary.name}{storage_flag}")
        self.summary = summary
