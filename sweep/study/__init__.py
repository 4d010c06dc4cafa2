"""Every Optuna call of the project lives in this package; this facade is what the rest of sweep uses.

The study is the source of truth (which trials ran, with what settings and result); MLflow is the
view people browse, written by the tracking process (sweep/tracking/) off the critical path.

    storage.py          where studies live (journal file, RDB URL, Redis, a storage proxy), samplers, pruners
    remote.py           a journal in Redis, the storage proxy's client: opened with bounded timeouts
    proxy.py            `sweep storage-proxy`: Optuna's gRPC storage proxy, and the trial gate it serves
    attrs.py            SweepAttrs, TrialAttrs: the study's and trials' attributes, defaults in one place
    opening.py          open_sweep: an existing sweep (storage -> study row -> stored config -> study)
    starting.py         a new sweep's name and study, a resumed sweep's config, what the study records
    run.py              run_sweep (create or resume, trials, the end) and run_worker (`sweep worker`)
    loop.py             the trial loop of one process, and StopSignal
    jobs.py             workers (--jobs processes, Ray tasks): their progress read from the study
    census.py           counting trials for the shared budget; a finished trial as a record
    sharing.py          one study, many workers: the trial gate, dead workers, heartbeats
    ending.py           the end of a sweep: final best, status, plots and the published model
    reading.py          list_sweeps, sweep_trials: what `sweep best/ls/show` read (read-only)
    sync.py             `sweep sync`: rebuild what MLflow is missing from the study
    plots.py            Optuna's plots as PNGs
    progress.py         what a running sweep reports to its caller
    optuna_internals.py every touch of Optuna's private API
"""

from sweep.study.attrs import SweepAttrs, TrialAttrs
from sweep.study.census import Census, take_census
from sweep.study.loop import StopSignal
from sweep.study.opening import ExistingSweep, open_sweep
from sweep.study.plots import PLOT_MIN_TRIALS, StudyPlots, study_plots
from sweep.study.progress import (
    SweepInterrupted,
    SweepListener,
    SweepStart,
    SweepSummary,
    TrialUpdate,
    WorkersFailed,
)
from sweep.study.proxy import serve_storage
from sweep.study.reading import SweepRow, TrialRow, list_sweeps, sweep_trials
from sweep.study.run import run_sweep, run_worker
from sweep.study.sharing import TrialGate
from sweep.study.storage import HEARTBEAT_SECONDS, configure_optuna, open_storage

__all__ = [
    "HEARTBEAT_SECONDS",
    "PLOT_MIN_TRIALS",
    "Census",
    "ExistingSweep",
    "StopSignal",
    "StudyPlots",
    "SweepAttrs",
    "SweepInterrupted",
    "SweepListener",
    "SweepRow",
    "SweepStart",
    "SweepSummary",
    "TrialAttrs",
    "TrialGate",
    "TrialRow",
    "TrialUpdate",
    "WorkersFailed",
    "configure_optuna",
    "list_sweeps",
    "open_storage",
    "open_sweep",
    "run_sweep",
    "run_worker",
    "serve_storage",
    "study_plots",
    "sweep_trials",
    "take_census",
]
