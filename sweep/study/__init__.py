"""Every Optuna call of the project lives in this package: storages, samplers and pruners, creating,
resuming and sharing a sweep's study, the trial loop, the read-only views, and the study's plots.

The study is the source of truth (which trials ran, with what settings and result); MLflow is the
view people browse, written by the tracking process (sweep/recorder.py) off the critical path.

    storage.py   where studies live (journal file, RDB URL), samplers, pruners
    run.py       run_sweep (create or resume, then the trial loop), run_worker, --jobs workers
    sharing.py   one study, many workers: the trial budget under a lock, dead workers, heartbeats
    reading.py   list_sweeps, sweep_trials: what `sweep best/ls/show` read
    plots.py     the plots and the best model published at the end of a sweep
    progress.py  what a running sweep reports to its caller
"""

from sweep.study.plots import PLOT_MIN_TRIALS, StudyPlots, study_plots
from sweep.study.progress import SweepInterrupted, SweepListener, SweepStart, SweepSummary, TrialUpdate
from sweep.study.reading import SweepRow, TrialRow, list_sweeps, sweep_trials
from sweep.study.run import StopSignal, run_sweep, run_worker
from sweep.study.sharing import Census, TrialGate, take_census
from sweep.study.storage import ATTR, HEARTBEAT_SECONDS, JOURNAL_FILE, default_storage, open_storage, storage_label

__all__ = [
    "ATTR",
    "HEARTBEAT_SECONDS",
    "JOURNAL_FILE",
    "PLOT_MIN_TRIALS",
    "Census",
    "StopSignal",
    "StudyPlots",
    "SweepInterrupted",
    "SweepListener",
    "SweepRow",
    "SweepStart",
    "SweepSummary",
    "TrialGate",
    "TrialRow",
    "TrialUpdate",
    "default_storage",
    "list_sweeps",
    "open_storage",
    "run_sweep",
    "run_worker",
    "storage_label",
    "study_plots",
    "sweep_trials",
    "take_census",
]
