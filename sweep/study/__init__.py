"""The Optuna adapter: every Optuna call of the project lives in this package, and nothing else.

The study is the source of truth (which trials ran, with what settings and result); MLflow is the view
people browse, written by the tracking layer (sweep/tracking/). The application that runs sweeps on top of
both is sweep/engine/: it imports nothing from Optuna, and reaches a sweep's study through SweepStudy.

    storage.py          where studies live (journal file, RDB URL, Redis, a storage proxy), samplers, pruners
    remote.py           a journal in Redis, the storage proxy's client: opened with bounded timeouts
    proxy.py            `sweep storage-proxy`: Optuna's gRPC storage proxy, and the trial gate it serves
    attrs.py            SweepAttrs, TrialAttrs: the study's and trials' attributes, defaults in one place
    opening.py          open_sweep: an existing sweep (storage -> study row -> stored config -> study)
    sweep_study.py      SweepStudy: one sweep's study as the engine uses it (ask, tell, census, records, attrs)
    starting.py         a new sweep's name and study, a resumed sweep's config, what the study records
    changing.py         `sweep set`: a sweep's trial target changed, running or not
    warm_start.py       an earlier sweep's finished trials handed to a new sweep's sampler (warm_start:)
    census.py           counting trials for the shared budget; a finished trial as a record
    sharing.py          one study, many workers: the trial gate, dead workers, heartbeats
    seeding.py          which sampler sequence each trial draws from: no two processes replay one
    repeats.py          trials with identical settings: reused (repeats: reuse), marked, counted
    queue.py            trials queued with fixed params: start_with's, `sweep enqueue`'s
    reading.py          list_sweeps, sweep_trials: what `sweep best/ls/show` read (read-only)
    plots.py            Optuna's plots as PNGs
    health.py           `sweep doctor`'s look at a storage
    journal_repair.py   a journal file's torn last line set aside, a broken inner line named
    optuna_internals.py every touch of Optuna's private API
"""

from sweep.study.attrs import SweepAttrs, TrialAttrs
from sweep.study.census import Census, take_census
from sweep.study.opening import ExistingSweep, open_sweep
from sweep.study.plots import PLOT_MIN_TRIALS, StudyPlots, study_plots
from sweep.study.proxy import serve_storage
from sweep.study.reading import SweepRow, TrialRow, list_sweeps, sweep_trials
from sweep.study.sharing import TrialGate
from sweep.study.storage import HEARTBEAT_SECONDS, configure_optuna, open_storage
from sweep.study.sweep_study import SweepStudy

__all__ = [
    "HEARTBEAT_SECONDS",
    "PLOT_MIN_TRIALS",
    "Census",
    "ExistingSweep",
    "StudyPlots",
    "SweepAttrs",
    "SweepRow",
    "SweepStudy",
    "TrialAttrs",
    "TrialGate",
    "TrialRow",
    "configure_optuna",
    "list_sweeps",
    "open_storage",
    "open_sweep",
    "serve_storage",
    "study_plots",
    "sweep_trials",
    "take_census",
]
