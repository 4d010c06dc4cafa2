"""The application: run a sweep, join one as a worker, sync one, and say how it goes.

It takes its collaborators (sweep/engine/parts.py): where tracking requests are served (the tracking
process, or a thread of this process), how the trainer is made, and where trial loops run; `sweep` uses the
defaults of sweep/engine/composition.py, and tests drive the same engine in-process with other parts.

    parts.py        Parts: the engine's collaborators and their defaults
    composition.py  the composition root: a config's trainer; the default parts
    run.py          run_sweep (create or resume, trials, the end) and run_worker (`sweep worker`)
    loop.py         the trial loop of one process, and StopSignal
    jobs.py         workers (--jobs processes, Ray tasks): their progress read from the study
    ending.py       the end of a sweep: final best, status, plots and the published model
    sync.py         `sweep sync`: rebuild what MLflow is missing from the study
    enqueue.py      `sweep enqueue`: a trial with given params queued into a sweep, running or stopped
    progress.py     what a running sweep reports to its caller (the listener, the summary)
"""

from __future__ import annotations

from sweep.lazy import lazy_exports

# name -> the module defining it: imported on first use, so that `sweep best` importing the progress
# records does not pay for the trainers, executors and tracking transport
_EXPORTS = {
    "Enqueued": "sweep.engine.enqueue",
    "Parts": "sweep.engine.parts",
    "StopSignal": "sweep.engine.loop",
    "SweepInterrupted": "sweep.engine.progress",
    "SweepListener": "sweep.engine.progress",
    "SweepStart": "sweep.engine.progress",
    "SweepSummary": "sweep.engine.progress",
    "SyncResult": "sweep.engine.sync",
    "TrialUpdate": "sweep.engine.progress",
    "WorkersFailed": "sweep.engine.progress",
    "enqueue_trial": "sweep.engine.enqueue",
    "run_sweep": "sweep.engine.run",
    "run_worker": "sweep.engine.run",
    "sync_sweep": "sweep.engine.sync",
}

__all__ = sorted(_EXPORTS)


__getattr__ = lazy_exports(__name__, _EXPORTS)
