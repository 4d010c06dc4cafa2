"""What a running sweep tells its caller: start, each finished trial, the summary, an interruption."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from sweep.errors import Interrupted, SweepError
from sweep.records import BestTrial, Counts, MlflowTime, TrackingReport
from sweep.states import LoopEnd, StopRule, TrialState


@dataclass(frozen=True)
class SweepStart:
    name: str
    experiment: str
    parent_run_id: str | None  # None: a new sweep's trials start before MLflow has made its parent run
    storage: str  # redacted
    tracking_uri: str  # redacted
    target: int
    already_finished: int
    resumed: bool


@dataclass(frozen=True)
class TrialUpdate:
    number: int
    state: TrialState
    value: float | None
    error: str | None
    counts: Counts
    target: int
    best: BestTrial | None
    elapsed: float
    same_as: int | None = None  # reused the result of this earlier trial of identical settings (repeats: reuse)


class SweepListener(Protocol):
    def sweep_opening(self, name: str, target: int, resumed: bool) -> None:
        """The sweep's name is known and its trainer is ready; its stores are being opened (MLflow's import
        takes seconds): said at once, so the command answers before it."""

    def sweep_started(self, start: SweepStart) -> None: ...

    def trial_finished(self, update: TrialUpdate) -> None: ...

    def finishing(self) -> None:
        """The last trial has ended; the plots and the best model are being written to the parent run."""

    def waiting_for_publisher(self, pid: int) -> None:
        """The sweep's last end is still being written to MLflow by its background publisher (``pid``; 0 when not
        yet known), which this invocation waits for before it opens the parent run."""

    def stopping(self) -> None:
        """The first Ctrl-C or SIGTERM arrived; the running trial stops at its next report. Called from the
        signal handler: it must not use buffered output, which the interrupted code may be writing."""


@dataclass(frozen=True)
class SweepSummary:
    name: str
    experiment: str
    parent_run_id: str
    status: LoopEnd
    counts: Counts
    best: BestTrial | None
    elapsed: float
    trainer_seconds: float | None  # time inside the trainer (None when worker processes ran the trials)
    trials_run: int  # trials this invocation ran
    tracking: TrackingReport = field(default_factory=TrackingReport)
    storage: str = ""
    tracking_uri: str = ""
    note: str | None = None  # one line about how the sweep ended (an exhausted grid, nothing left to run)
    front_size: int | None = None  # a sweep of several objectives: the trials on its Pareto front
    stopped_by: StopRule | None = None  # the config's rule that ended it before its target
    # the trials this invocation ran (here or in its workers): their code's time inside MLflow (mlflow: active,
    # autolog), and whether autologging logged a model in each (the costly part: log_models: false skips it)
    mlflow_time: MlflowTime | None = None
    models_autologged: bool = False
    publisher: int | None = None  # the pid of the background publisher writing the end to MLflow (publish_later)


class SweepInterrupted(Interrupted):
    """Ctrl-C or SIGTERM: every run ended KILLED; the message says how to resume."""

    def __init__(self, summary: SweepSummary, storage_flag: str) -> None:
        super().__init__(f"interrupted with {summary.counts.finished} trials finished; "
                         f"resume with: sweep run --resume --name {summary.name}{storage_flag}")
        self.summary = summary


class WorkersFailed(SweepError):
    """`--jobs`: the worker processes ended on errors before the sweep was done (not an interruption).

    The message gives the workers' own one-line errors and how to continue once they are fixed; the
    sweep's runs ended as on an interruption, so it can be resumed.
    """

    def __init__(self, summary: SweepSummary, failures: list[str], storage_flag: str) -> None:
        super().__init__(f"the worker processes stopped: {'; '.join(failures)}; once that is fixed, continue "
                         f"the sweep with: sweep run --resume --name {summary.name}{storage_flag}")
        self.summary = summary
        self.failures = failures
