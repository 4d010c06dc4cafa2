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
    reading.py          list_sweeps, read_sweep: what `sweep best/ls/show` read (read-only), from the cheapest source
    plain.py            a study's trials as plain values, without Optuna, and the one rule choosing a sweep
    journal_reading.py  a journal file folded without Optuna, through the summary kept beside it
    sql_reading.py      SQLite / PostgreSQL read with plain SQL against Optuna's tables
    plots.py            Optuna's plots as PNGs
    health.py           `sweep doctor`'s look at a storage
    journal_repair.py   a journal file's torn last line set aside, a broken inner line named
    optuna_internals.py every touch of Optuna's private API
    key_sharing.py      dicts of the same few keys with one table of keys among them (finished trials' dicts)

The names below are imported on first use: `sweep best/ls/show` read through reading.py without importing
Optuna, which the other modules need.
"""

from __future__ import annotations

from sweep.lazy import lazy_exports

_EXPORTS = {  # name -> the module defining it
    "HEARTBEAT_SECONDS": "sweep.study.storage",
    "PLOT_MIN_TRIALS": "sweep.study.plots",
    "PlainTrial": "sweep.study.plain",
    "Census": "sweep.study.census",
    "ExistingSweep": "sweep.study.opening",
    "StudyPlots": "sweep.study.plots",
    "SweepAttrs": "sweep.study.attrs",
    "SweepRead": "sweep.study.reading",
    "SweepRow": "sweep.study.reading",
    "SweepStudy": "sweep.study.sweep_study",
    "TrialAttrs": "sweep.study.attrs",
    "TrialGate": "sweep.study.sharing",
    "TrialRow": "sweep.study.reading",
    "configure_optuna": "sweep.study.storage",
    "list_sweeps": "sweep.study.reading",
    "open_storage": "sweep.study.storage",
    "open_sweep": "sweep.study.opening",
    "read_sweep": "sweep.study.reading",
    "serve_storage": "sweep.study.proxy",
    "study_plots": "sweep.study.plots",
    "sweep_trials": "sweep.study.reading",
    "take_census": "sweep.study.census",
}

__all__ = sorted(_EXPORTS)


__getattr__ = lazy_exports(__name__, _EXPORTS)
