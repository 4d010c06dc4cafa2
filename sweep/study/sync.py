"""`sweep sync`: rebuild what MLflow is missing from the study, the source of truth. Idempotent.

A tracking server that was down, restarted empty, or lost writes leaves child runs missing, runs
left RUNNING, or a parent whose best is stale. The study has every trial's settings, state, metrics
and run link, so sync recreates missing child runs (params, final metrics, status; no curves and no
model file: those lived only in the trial's process), ends stray runs with the trial's status, puts
the right best on the parent and ends the parent as the sweep's state says. A second sync changes
nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import optuna

from sweep.config import config_from_yaml
from sweep.recorder import Recorder
from sweep.records import SweepIdentity
from sweep.study.reading import _find_study
from sweep.study.run import _parent_params, _resumed_tracking_uri
from sweep.study.sharing import _record_of, take_census
from sweep.study.storage import ATTR, open_storage, storage_label


@dataclass(frozen=True)
class SyncResult:
    name: str
    parent_run_id: str
    parent_created: bool  # MLflow had lost the parent: a new one now stands for the sweep
    repaired: list[int]  # trials whose child run was created or whose status was corrected
    parent_ended: bool
    best_trial: int | None
    problems: list[str]  # writes that failed even now (the store is still down?)


def sync_sweep(name: str | None, *, storage_url: str | None, tracking_uri: str | None) -> SyncResult:
    storage = open_storage(storage_url, create=False)
    row = _find_study(storage, name, resume=False)
    attrs = row.user_attrs
    config = config_from_yaml(attrs[f"{ATTR}config"]).replace(name=row.study_name)
    study = optuna.load_study(study_name=row.study_name, storage=storage)
    uri = _resumed_tracking_uri(tracking_uri, attrs)
    state = attrs.get(f"{ATTR}status", "running")
    census = take_census(study, config)
    status = {"finished": "FINISHED" if census.finished.complete else "FAILED", "interrupted": "KILLED"}.get(state)
    recorder = Recorder()
    try:
        recorder.connect(SweepIdentity(row.study_name, config.experiment, uri))
        parent_run_id, created = recorder.sync_parent(
            attrs.get(f"{ATTR}parent_run_id"), status=status, params=_parent_params(config),
            tags={"sweep.status": state, "sweep.target": str(attrs.get(f"{ATTR}target", config.trials)),
                  "sweep.storage": storage_label(storage_url), "sweep.rebuilt_by": "sweep sync"},
            config_yaml=config.to_yaml())
        if created:
            study.set_user_attr(f"{ATTR}parent_run_id", parent_run_id)
        finished = [t for t in study.get_trials(deepcopy=False) if t.state.is_finished()]
        repaired = recorder.reconcile([_record_of(trial) for trial in finished])
        if census.best is not None:
            recorder.ensure_best(census.best, config.metric)
        ended = recorder.end_parent_if_needed(status, census.finished)
        report = recorder.close(None, census.finished)
    except BaseException:
        recorder.terminate()
        raise
    return SyncResult(row.study_name, parent_run_id, created, repaired, ended,
                      census.best.number if census.best else None, report.errors)
