"""The states a sweep and its trials go through, and the one mapping from them to MLflow run statuses.

Every state is a str-valued enum: a member equals its text ("FAIL" == TrialState.FAIL), prints as it, and is
written as it, so what the study and MLflow hold stays the text older sweeps wrote and read back.

    TrialState   a trial, as Optuna names it: COMPLETE, PRUNED, FAIL (finished), RUNNING, WAITING (a retry)
    SweepStatus  the sweep in its study (attribute sweep.status; `sweep ls`, `--resume` and sync read it)
    LoopEnd      how one invocation's trials ended (the summary's status)
    StopRule     the config's rule that ended a sweep before its trial target (stop:, budget:)
    RunStatus    an MLflow run's status
    sweep_end    the one mapping: how an invocation ended -> the sweep's status and its parent run's status
    run_status   the one mapping for a trial: its state -> its child run's status
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sweep.records import Counts


class TextEnum(str, Enum):
    """An enum whose members are their text wherever a str goes: printed, formatted, compared, hashed."""

    __str__ = str.__str__
    __format__ = str.__format__


class TrialState(TextEnum):
    COMPLETE = "COMPLETE"
    PRUNED = "PRUNED"
    FAIL = "FAIL"
    RUNNING = "RUNNING"
    WAITING = "WAITING"  # a retry queued by the heartbeat, run before any new trial

    @property
    def finished(self) -> bool:
        return self in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


class SweepStatus(TextEnum):
    STARTING = "starting"  # the study records the sweep; no parent run linked yet
    RUNNING = "running"
    FINISHED = "finished"  # the target was met
    INTERRUPTED = "interrupted"  # stopped before its target: resumable
    TIMEOUT = "timeout"  # its --timeout passed before its target: resumable
    FAILED = "failed"  # every trial failed: not a finished sweep to build on


class LoopEnd(TextEnum):
    FINISHED = "finished"  # the target was met
    INTERRUPTED = "interrupted"  # Ctrl-C or SIGTERM, or the workers were stopped from outside
    TIMEOUT = "timeout"  # the sweep's timeout passed
    FAILING = "failing"  # the first trials all failed with one error: the next ones would too
    STOPPED = "stopped"  # --jobs workers ended on errors before the target was met
    COMPLETE = "complete"  # resumed with nothing left to run


class StopRule(TextEnum):
    """A rule of the config that ends a sweep before its trial target: the sweep is then "finished" (it did what
    it was asked), and the study, the parent run (tag sweep.stopped_by) and the summary name the rule."""

    PATIENCE = "patience"  # stop.patience finished trials after the best found nothing better
    TARGET = "target"  # the best reached stop.target
    SECONDS = "budget.seconds"  # the sweep's trials ran for budget.seconds of wall time
    TRIAL_SECONDS = "budget.trial_seconds"  # the sweep's trials' durations add up to budget.trial_seconds


class RunStatus(TextEnum):
    RUNNING = "RUNNING"
    FINISHED = "FINISHED"
    KILLED = "KILLED"  # interrupted, or a pruned trial
    FAILED = "FAILED"


@dataclass(frozen=True)
class SweepEnd:
    status: SweepStatus  # what the study says of the sweep now
    run_status: RunStatus  # how its parent run ends


_TRIAL_RUN_STATUS = {TrialState.COMPLETE: RunStatus.FINISHED, TrialState.PRUNED: RunStatus.KILLED,
                     TrialState.FAIL: RunStatus.FAILED}


def run_status(state: TrialState, *, interrupted: bool = False) -> RunStatus:
    """A finished trial's child run status: a pruned trial's run is KILLED, and so is one the sweep was
    interrupted during (its trial FAIL: it is run again on resume)."""
    return RunStatus.KILLED if interrupted else _TRIAL_RUN_STATUS[TrialState(state)]


def sweep_end(end: LoopEnd, counts: Counts) -> SweepEnd:
    """How an invocation that ended with ``end`` leaves the sweep (``counts``: its trials then).

    A stop (or --jobs workers that ended on errors) leaves it resumable and its parent KILLED. A timeout
    leaves it resumable too, but its parent ends as that of a sweep that ran to its end: the invocation did
    what it was asked. A sweep whose every trial failed is "failed" and its parent FAILED; one with a result
    (or only pruned trials) is "finished" and its parent FINISHED.
    """
    end = LoopEnd(end)
    nothing_worked = counts.complete == 0 and counts.failed > 0
    ran_to_its_end = RunStatus.FAILED if nothing_worked else RunStatus.FINISHED
    if end in (LoopEnd.INTERRUPTED, LoopEnd.STOPPED):
        return SweepEnd(SweepStatus.INTERRUPTED, RunStatus.KILLED)
    if end is LoopEnd.TIMEOUT:
        return SweepEnd(SweepStatus.TIMEOUT, ran_to_its_end)
    if end is LoopEnd.FAILING or nothing_worked:
        return SweepEnd(SweepStatus.FAILED, ran_to_its_end)
    return SweepEnd(SweepStatus.FINISHED, ran_to_its_end)


def end_of(status: str) -> LoopEnd | None:
    """The invocation end a stored sweep status stands for (`sweep sync` ends a parent run as it says);
    None for a sweep still running, or of unknown state: its parent is left as it is."""
    return {SweepStatus.FINISHED: LoopEnd.FINISHED, SweepStatus.FAILED: LoopEnd.FAILING,
            SweepStatus.INTERRUPTED: LoopEnd.INTERRUPTED, SweepStatus.TIMEOUT: LoopEnd.TIMEOUT,
            SweepStatus.STARTING: LoopEnd.INTERRUPTED}.get(status)
