"""`sweep run --jobs N` or `--on ray`: workers run the trials; this process reports their progress from the study."""

from __future__ import annotations

import time
from dataclasses import dataclass

from sweep.config import SweepConfig
from sweep.engine.loop import WAIT_SECONDS, StopSignal, most_frequent
from sweep.engine.progress import SweepListener, TrialUpdate
from sweep.executors import Executor, Pool
from sweep.locations import StorageLocation, TrackingLocation
from sweep.states import LoopEnd
from sweep.study.stopping import rule_that_holds
from sweep.study.sweep_study import SweepStudy, TrialSpan
from sweep.tracking import Recorder
from sweep.tracking.hub import HubAddress
from sweep.tracking.operations import OpenHub


@dataclass(frozen=True)
class HeldWorkers:
    """A sweep's workers, started before its study and parent run exist and held until then: worker processes
    import what they need while this process creates the stores and waits for MLflow."""

    pool: Pool
    workers: int
    hub: HubAddress | None  # this sweep's tracking process, which the workers record through once it is open


def start_held(executor: Executor, name: str, storage: StorageLocation, tracking: TrackingLocation,
               target: int) -> HeldWorkers:
    """Start the executor's workers on sweep ``name``, held (the caller closes the pool however the start ends)."""
    # workers on this machine record through this sweep's tracking process: none imports MLflow of its own
    hub = HubAddress.new() if executor.on_this_machine else None
    pool = executor.start(name, storage=storage, tracking=tracking, target=target, hub=hub)
    return HeldWorkers(pool, executor.workers, hub)


def supervise(study: SweepStudy, config: SweepConfig, held: HeldWorkers, listener: SweepListener, stop: StopSignal,
              started: float, recorder: Recorder
              ) -> tuple[LoopEnd, int, list[str], str | None]:
    """Release the held workers (processes here, or Ray tasks) onto the study and run the trials until they end.

    Returns the status, the trials they ran, the workers' own one-line errors, and a note when the sweep
    was too short to gain from its workers. The status is
    FINISHED, INTERRUPTED (a stop was asked, or the workers were stopped from outside),
    FAILING (the workers stopped early: their trials all failed alike) or STOPPED: workers
    ended on errors (MLflow unreachable, say) before the sweep was done.
    """
    before = set(study.finished_numbers())
    pool = held.pool
    try:
        if held.hub is not None:
            recorder.call(OpenHub(held.hub))
        spawned = time.time()
        pool.release()
        reported = _watch(pool, study, config, listener, stop, started, before)
        pool.wait()
        failures = pool.failures()
    except BaseException:
        pool.stop()  # never leave a worker behind
        pool.wait()
        raise
    finally:
        pool.close()
    census = study.census()
    # the target as the study stores it now (`sweep set` may have changed it), or a stop rule that holds
    reached = census.finished.finished >= (census.target or config.trials) or rule_that_holds(census, config)
    done = bool(reached) and census.running == 0
    counts = census.finished
    if done and not stop.requested:
        status = LoopEnd.FINISHED
    elif not stop.requested and counts.failed and not counts.complete and not counts.pruned:
        status = LoopEnd.FAILING  # the workers stopped early: their trials all failed alike
    elif failures and not stop.requested:
        status = LoopEnd.STOPPED
    else:
        status = LoopEnd.INTERRUPTED
    ran = study.spans(reported - before)
    return status, len(ran), failures, too_short_note(ran, held.workers, spawned)


def too_short_note(trials: list[TrialSpan], jobs: int, spawned: float) -> str | None:
    """A note when starting the workers took longer than each worker's share of the trials: the sweep would
    have been faster with --jobs 1 (each worker imports MLflow and Optuna and opens the stores first)."""
    timed = [(t.started, t.completed) for t in trials if t.started is not None and t.completed is not None]
    if not timed:
        return None
    start_up = min(started for started, _ in timed) - spawned
    busy = sum(completed - started for started, completed in timed)
    if start_up <= busy / jobs:
        return None
    return (f"the workers took {start_up:.1f} s to start and the trials {busy:.1f} s in all: a sweep this short "
            f"is faster with --jobs 1")


def _watch(pool: Pool, study: SweepStudy, config: SweepConfig, listener: SweepListener, stop: StopSignal,
           started: float, before: set[int]) -> set[int]:
    """Report each trial the workers finish, until every worker has ended; returns the trials reported."""
    reported = set(before)
    tally = study.tally()  # reads every trial once; each look after, only what changed
    shown = tally.census().finished  # counted one trial per line: the counter never goes back
    stopping = False
    while True:
        alive = pool.alive()
        if stop.requested and not stopping:
            pool.stop()  # a SIGTERM to this process only: pass it on (Ctrl-C reached them already)
            stopping = True
        census = tally.look()
        ended = sorted((t for t in tally.ended if t.number not in reported), key=lambda t: t.number)
        retried = tally.retried
        for trial in ended:  # in trial-number order, whichever worker finished first
            reported.add(trial.number)
            if trial.interrupted:
                continue
            if trial.number not in retried:  # a failed attempt a retry replaced counts through its retry
                shown = shown.add(trial.state)
            listener.trial_finished(TrialUpdate(trial.number, trial.state, trial.value, trial.error, shown,
                                                census.target or config.trials, census.best,
                                                time.perf_counter() - started))
        if alive == 0:
            return reported
        pool.settle(WAIT_SECONDS)  # woken at once when a worker ends: the last one starts the sweep's end


def error_summary(study: SweepStudy) -> list[tuple[str, int]]:
    """The three most frequent errors of the study's failed trials, with their counts, most first."""
    return most_frequent(study.failed_errors())
