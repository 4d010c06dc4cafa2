"""`sweep run --jobs N` or `--on ray`: workers run the trials; this process reports their progress from the study."""

from __future__ import annotations

import time

import optuna
from optuna.trial import TrialState

from sweep import states
from sweep.config import SweepConfig
from sweep.engine.loop import WAIT_SECONDS, StopSignal, most_frequent
from sweep.engine.progress import SweepListener, TrialUpdate
from sweep.executors import Executor, Pool
from sweep.locations import StorageLocation, TrackingLocation
from sweep.states import LoopEnd
from sweep.study.attrs import TrialAttrs
from sweep.study.census import Tally, finished_state, take_census


def supervise(study: optuna.Study, config: SweepConfig, executor: Executor, storage: StorageLocation,
              tracking: TrackingLocation, listener: SweepListener, stop: StopSignal, started: float
              ) -> tuple[LoopEnd, int, list[str], str | None]:
    """Run the trials in the executor's workers (processes here, or Ray tasks) until they end.

    Returns the status, the trials they ran, the workers' own one-line errors, and a note when the sweep
    was too short to gain from its workers. The status is
    FINISHED, INTERRUPTED (a stop was asked, or the workers were stopped from outside),
    FAILING (the workers stopped early: their trials all failed alike) or STOPPED: workers
    ended on errors (MLflow unreachable, say) before the sweep was done.
    """
    before = {t.number for t in study.get_trials(deepcopy=False) if t.state.is_finished()}
    spawned = time.time()
    pool = executor.start(study.study_name, storage=storage, tracking=tracking, target=config.trials)
    try:
        reported = _watch(pool, study, config, listener, stop, started, before)
        pool.wait()
        failures = pool.failures()
    except BaseException:
        pool.stop()  # never leave a worker behind
        pool.wait()
        raise
    finally:
        pool.close()
    census = take_census(study, config)
    done = census.finished.finished >= config.trials and census.running == 0
    counts = census.finished
    if done and not stop.requested:
        status = LoopEnd.FINISHED
    elif not stop.requested and counts.failed and not counts.complete and not counts.pruned:
        status = LoopEnd.FAILING  # the workers stopped early: their trials all failed alike
    elif failures and not stop.requested:
        status = LoopEnd.STOPPED
    else:
        status = LoopEnd.INTERRUPTED
    ran = [t for t in study.get_trials(deepcopy=False) if t.number in reported - before]
    return status, len(ran), failures, too_short_note(ran, executor.workers, spawned)


def too_short_note(trials: list[optuna.trial.FrozenTrial], jobs: int, spawned: float) -> str | None:
    """A note when starting the workers took longer than each worker's share of the trials: the sweep would
    have been faster with --jobs 1 (each worker imports MLflow and Optuna and opens the stores first)."""
    timed = [t for t in trials if t.datetime_start is not None and t.datetime_complete is not None]
    if not timed:
        return None
    start_up = min(t.datetime_start.timestamp() for t in timed) - spawned  # type: ignore[union-attr]
    busy = sum((t.datetime_complete - t.datetime_start).total_seconds() for t in timed)  # type: ignore[operator]
    if start_up <= busy / jobs:
        return None
    return (f"the workers took {start_up:.1f} s to start and the trials {busy:.1f} s in all: a sweep this short "
            f"is faster with --jobs 1")


def _watch(pool: Pool, study: optuna.Study, config: SweepConfig, listener: SweepListener, stop: StopSignal,
           started: float, before: set[int]) -> set[int]:
    """Report each trial the workers finish, until every worker has ended; returns the trials reported."""
    reported = set(before)
    tally = Tally(study, config)  # reads every trial once; each look after, only what changed
    shown = tally.census().finished  # counted one trial per line: the counter never goes back
    stopping = False
    while True:
        alive = pool.alive()
        if stop.requested and not stopping:
            pool.stop()  # a SIGTERM to this process only: pass it on (Ctrl-C reached them already)
            stopping = True
        census = tally.look()
        ended = sorted((t for t in tally.ended if t.number not in reported), key=lambda t: t.number)
        for trial in ended:  # in trial-number order, whichever worker finished first
            reported.add(trial.number)
            attrs = TrialAttrs.read(trial)
            if attrs.interrupted:
                continue
            state = finished_state(trial)
            shown = shown.add(state)
            listener.trial_finished(TrialUpdate(
                trial.number, state, trial.value if state is states.TrialState.COMPLETE else None, attrs.error,
                shown, config.trials, census.best, time.perf_counter() - started))
        if alive == 0:
            return reported
        time.sleep(WAIT_SECONDS)


def error_summary(study: optuna.Study) -> list[tuple[str, int]]:
    """The three most frequent errors of the study's failed trials, with their counts, most first."""
    errors: dict[str, int] = {}
    for trial in study.get_trials(deepcopy=False, states=(TrialState.FAIL,)):
        message = str(TrialAttrs.read(trial).error or "unknown error")
        errors[message] = errors.get(message, 0) + 1
    return most_frequent(errors)
