"""Trials queued with their params fixed: a config's start_with sets, and `sweep enqueue`'s.

A queued trial is a WAITING trial whose params Optuna's trial gives its suggest_* calls (system attribute
fixed_params, as study.enqueue_trial writes it). The trial loop takes a WAITING trial before asking for a
new one, under the trial gate (sweep_study.py, sharing.py), so each queued trial runs once, on whichever
worker is free first. It counts toward the target like any trial.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import optuna
from optuna.trial import TrialState, create_trial

from sweep.config import SweepConfig
from sweep.study.attrs import SweepAttrs
from sweep.study.census import take_census
from sweep.study.optuna_internals import storage_of, study_id_of


@dataclass(frozen=True)
class QueuedTrial:
    """A trial `sweep enqueue` queued: its number, and the sweep's target after it (raised by one when the
    sweep had started its whole target already)."""

    number: int
    target: int
    target_raised: bool


def queue_start_with(study: optuna.Study, config: SweepConfig) -> None:
    """The config's start_with param sets as the sweep's first trials (numbers 0, 1, ...). Only while the study
    holds no trial: a new sweep's, or one whose start was cut short before this (a resume never queues them
    twice)."""
    if not config.start_with or storage_of(study).get_n_trials(study_id_of(study)) > 0:
        return
    for params in config.start_with:
        study.enqueue_trial(dict(params))


def queue_trial(study: optuna.Study, config: SweepConfig, params: Mapping[str, Any]) -> QueuedTrial:
    """Queue one trial with ``params``, while the caller holds the sweep's trial gate (no worker counts the trials
    between the count here and the queueing). It counts toward the target; when the sweep has started every
    trial of its target already, the target is raised by one, so the trial is run, not left waiting past the
    end (a resume, or a worker joining, reads the raised target)."""
    counted = take_census(study, config).counted
    storage = storage_of(study)
    trial_id = storage.create_new_trial(study_id_of(study), template_trial=create_trial(
        state=TrialState.WAITING, system_attrs={"fixed_params": dict(params)}))  # as study.enqueue_trial
    attrs = SweepAttrs.read(study)
    raised = counted >= attrs.target
    if raised:
        replace(attrs, target=counted + 1).write(study)
    return QueuedTrial(storage.get_trial_number_from_id(trial_id), max(attrs.target, counted + 1), raised)
