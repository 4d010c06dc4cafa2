"""Read-only views of sweeps in a storage: the list, one sweep's trials, the best (report.py formats them)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import optuna
from optuna.storages import BaseStorage, JournalStorage
from optuna.study._frozen import FrozenStudy  # what storage.get_all_studies() returns
from optuna.trial import TrialState

from sweep.config import config_from_yaml
from sweep.errors import NotFoundError
from sweep.ranking import rank_key
from sweep.records import Counts
from sweep.study.sharing import _count
from sweep.study.storage import ATTR, open_storage


@dataclass(frozen=True)
class SweepRow:
    name: str
    status: str
    counts: Counts
    target: int
    best_value: float | None
    created: str
    experiment: str
    parent_run_id: str | None
    metric: str
    direction: str
    experiment_id: str | None = None
    tracking_uri: str | None = None  # as the sweep stored it: redacted, maybe relative (sqlite:///mlflow.db)
    model_uri: str | None = None  # the parent's pyfunc model (runs:/<parent>/model), logged at the end
    model_trial: int | None = None  # whose model that is: stale unless it is the best trial's
    registered_model: str | None = None  # "NAME/VERSION" of the last `sweep run --register NAME`
    registered_trial: int | None = None  # whose model that version holds


def _published(attrs: dict[str, Any]) -> dict[str, Any]:
    """The SweepRow fields written at a sweep's end and for `sweep ui` (older sweeps lack them)."""
    return {key: attrs.get(f"{ATTR}{key}") for key in ("experiment_id", "tracking_uri", "model_uri", "model_trial",
                                                       "registered_model", "registered_trial")}


@dataclass(frozen=True)
class TrialRow:
    number: int
    state: str
    value: float | None
    params: dict[str, Any]
    metrics: dict[str, float]
    run_id: str | None
    error: str | None


def list_sweeps(storage_url: str | None) -> list[SweepRow]:
    """Every sweep in the storage, oldest first; none when the default journal file does not exist yet."""
    try:
        storage = open_storage(storage_url, create=False)
    except NotFoundError:
        return []
    rows = []
    for summary in storage.get_all_studies():  # not get_all_study_summaries: it deep-copies every trial
        attrs = summary.user_attrs
        if f"{ATTR}config" not in attrs:
            continue  # a study some other tool made
        study = optuna.load_study(study_name=summary.study_name, storage=storage)
        trials = _all_trials(study)
        counts = _count(trials)
        best = _best_row(trials, attrs)
        rows.append(SweepRow(summary.study_name, attrs.get(f"{ATTR}status", "unknown"), counts,
                             int(attrs.get(f"{ATTR}target", 0)), best.value if best else None,
                             attrs.get(f"{ATTR}created", ""), attrs.get(f"{ATTR}experiment", ""),
                             attrs.get(f"{ATTR}parent_run_id"), attrs.get(f"{ATTR}metric", "val_accuracy"),
                             attrs.get(f"{ATTR}direction", "maximize"), **_published(attrs)))
    return sorted(rows, key=lambda row: row.created)


def sweep_trials(storage_url: str | None, name: str | None) -> tuple[SweepRow, list[TrialRow], dict[str, Any]]:
    """One sweep (the latest when no name is given), its trials, and its stored config as a mapping."""
    storage = open_storage(storage_url, create=False)
    summary = _find_study(storage, name, resume=False)
    study = optuna.load_study(study_name=summary.study_name, storage=storage)
    attrs = study.user_attrs
    trials = _all_trials(study)
    rows = [_trial_row(trial) for trial in trials]
    best = _best_row(trials, attrs)
    sweep = SweepRow(study.study_name, attrs.get(f"{ATTR}status", "unknown"), _count(trials),
                     int(attrs.get(f"{ATTR}target", 0)), best.value if best else None, attrs.get(f"{ATTR}created", ""),
                     attrs.get(f"{ATTR}experiment", ""), attrs.get(f"{ATTR}parent_run_id"),
                     attrs.get(f"{ATTR}metric", "val_accuracy"), attrs.get(f"{ATTR}direction", "maximize"),
                     **_published(attrs))
    return sweep, rows, config_from_yaml(attrs[f"{ATTR}config"]).to_file_dict()


def _find_study(storage: BaseStorage, name: str | None, *, resume: bool) -> FrozenStudy:
    summaries = [s for s in storage.get_all_studies()
                 if f"{ATTR}config" in s.user_attrs]
    if name is not None:
        for summary in summaries:
            if summary.study_name == name:
                return summary
        raise NotFoundError(f"no sweep named {name!r} in {_storage_hint(storage)}; `sweep ls` lists them")
    if resume:
        summaries = [s for s in summaries if s.user_attrs.get(f"{ATTR}status") != "finished"]
    if not summaries:
        what = "unfinished sweep" if resume else "sweep"
        raise NotFoundError(f"no {what} in {_storage_hint(storage)}; start one with `sweep run`")
    return max(summaries, key=lambda s: s.user_attrs.get(f"{ATTR}created", ""))


def _study_exists(storage: BaseStorage, name: str) -> bool:
    """Whether a sweep of that name exists. A study a killed `sweep run` created but never set up (no
    config stored, no trial) is removed instead: it holds nothing, and it would block the name."""
    for summary in storage.get_all_studies():
        if summary.study_name == name:
            if f"{ATTR}config" in summary.user_attrs or storage.get_all_trials(summary._study_id, deepcopy=False):
                return True
            optuna.delete_study(study_name=name, storage=storage)
            return False
    return False


def _all_trials(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return study.get_trials(deepcopy=False)


def _best_row(trials: list[optuna.trial.FrozenTrial], attrs: dict[str, Any]) -> TrialRow | None:
    metric, direction = attrs.get(f"{ATTR}metric", "val_accuracy"), attrs.get(f"{ATTR}direction", "maximize")
    complete = [t for t in trials if t.state == TrialState.COMPLETE and t.value is not None]
    if not complete:
        return None
    best = min(complete, key=lambda t: rank_key(t.value, t.user_attrs.get(f"{ATTR}metrics", {}), t.number,
                                                 metric=metric, direction=direction))
    return _trial_row(best)


def _trial_row(trial: optuna.trial.FrozenTrial) -> TrialRow:
    return TrialRow(trial.number, trial.state.name, trial.value if trial.state == TrialState.COMPLETE else None,
                    dict(trial.params), dict(trial.user_attrs.get(f"{ATTR}metrics", {})),
                    trial.user_attrs.get(f"{ATTR}run_id"), trial.user_attrs.get(f"{ATTR}error"))


def _storage_hint(storage: BaseStorage) -> str:
    if isinstance(storage, JournalStorage):
        return "the journal storage"
    return "the storage"
