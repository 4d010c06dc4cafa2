"""Starting a sweep or taking one up again: its name, its study, its data, and what the study stores about it."""

from __future__ import annotations

import contextlib
import datetime as dt
import uuid
from dataclasses import replace
from typing import Any

import optuna
from optuna.storages import BaseStorage

from sweep.config import SweepConfig
from sweep.errors import SweepConfigError
from sweep.locations import TrackingLocation
from sweep.space import to_yaml_dict
from sweep.states import SweepStatus
from sweep.study.attrs import SweepAttrs
from sweep.study.opening import ExistingSweep
from sweep.study.optuna_internals import storage_of, study_id_of
from sweep.study.storage import make_pruner, make_sampler
from sweep.study.warm_start import PriorTrials, with_prior


def resumed_config(sweep: ExistingSweep, given: SweepConfig, flags: frozenset[str]) -> SweepConfig:
    """The stored config wins on resume (same space, sampler, objective, resources); only the target, timeout,
    where the stores are and where the trials run can change, and the target only when --trials is given."""
    target = given.trials if "trials" in flags else (sweep.attrs.target or sweep.config.trials)
    return sweep.config.replace(trials=target, timeout=given.timeout if "timeout" in flags else None,
                                storage=given.storage, tracking_uri=given.tracking_uri, executor=given.executor)


def claim_name(storage: BaseStorage, name: str | None) -> str:
    """A free name for a new sweep: ``name`` unless a sweep holds it, else a new dated one.

    A study a killed `sweep run` created but never set up (no config stored, no trial) is removed:
    it holds nothing, and it would block the name.
    """
    if name is None:
        return _new_name(storage)
    for row in storage.get_all_studies():
        if row.study_name != name:
            continue
        if SweepAttrs.read(row).is_sweep or storage.get_all_trials(study_id_of(row), deepcopy=False):
            raise name_taken(name)
        optuna.delete_study(study_name=name, storage=storage)
    return name


def _new_name(storage: BaseStorage) -> str:
    base = "sweep-" + dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    taken = {s.study_name for s in storage.get_all_studies()}
    name, suffix = base, 2
    while name in taken:
        name, suffix = f"{base}-{suffix}", suffix + 1
    return name


def name_taken(name: str) -> SweepConfigError:
    return SweepConfigError(f"a sweep named {name!r} exists already; add --resume to continue it, "
                            f"or choose another --name")


def create_study(storage: BaseStorage, config: SweepConfig, name: str,
                 prior: PriorTrials | None = None) -> optuna.Study:
    """The new sweep's study, its sampler reading ``prior`` (warm_start) first; a sweep started at the same time
    that took the name first stops this one."""
    try:
        directions = [objective.direction for objective in config.objectives]
        return optuna.create_study(study_name=name, storage=storage, sampler=with_prior(make_sampler(config), prior),
                                   pruner=make_pruner(config), directions=directions)
    except optuna.exceptions.DuplicatedStudyError:
        raise name_taken(name) from None


def record_sweep(study: optuna.Study, config: SweepConfig, experiment_id: str | None,
                 tracking: TrackingLocation) -> str:
    """What the study keeps about its sweep, written before its parent run is created: the config, where
    the runs are (never a password), the target, and the token its parent run will carry; returns the token.

    A sweep killed after this and before link_parent is still a sweep ("starting"): the next run,
    --resume or sync finds the parent it may have created by that token, and adopts or ends it.
    ``experiment_id`` None: MLflow has not answered yet (link_parent writes it).
    """
    stored = SweepAttrs.read(study)
    created = stored.created or dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")
    token = stored.token or uuid.uuid4().hex
    where = tracking.stored()
    replace(stored, config=config.replace(name=study.study_name).to_yaml(), token=token,
            experiment=config.experiment, experiment_id=experiment_id or stored.experiment_id, tracking_uri=where.shown,
            tracking_uri_has_secret=where.has_secret, metric=config.metric, direction=config.direction,
            more_objectives=[[o.metric, o.direction] for o in config.more_objectives] or None,
            target=config.trials, status=stored.status if stored.parent_run_id else SweepStatus.STARTING.value,
            created=created).write(study)
    return token


def link_parent(study: optuna.Study, parent_run_id: str, experiment_id: str | None = None) -> None:
    """The study's link to its parent run, and "running"; with ``experiment_id`` when record_sweep had none."""
    stored = SweepAttrs.read(study)
    replace(stored, parent_run_id=parent_run_id, status=SweepStatus.RUNNING.value,
            experiment_id=experiment_id or stored.experiment_id).write(study)


def discard_new_study(study: optuna.Study) -> None:
    """Remove the study this invocation created when its start failed before the parent run was linked:
    it holds no trial, and it would block the name. By its id, so a study another run made under the same
    name meanwhile is never touched."""
    with contextlib.suppress(Exception):  # the start's own error is the one worth reporting
        storage_of(study).delete_study(study_id_of(study))


def parent_params(config: SweepConfig) -> dict[str, Any]:
    """What cannot change on resume (the stored config wins), so MLflow's immutable params fit it."""
    params: dict[str, Any] = {"metric": config.metric, "direction": config.direction, "sampler": config.sampler,
                              "sampler_seed": config.seed, "pruner": config.pruner,
                              "trainer": config.trainer.describe()}
    if config.multi_objective:
        params["objectives"] = ", ".join(f"{o.metric} ({o.direction})" for o in config.objectives)
    if config.constraints:
        params["constraints"] = config.constraints.describe()
    if config.trainer.builtin:
        params["data"] = config.data
    params.update({f"fixed.{name}": value for name, value in config.fixed.items()})
    params.update({f"space.{name}": _describe(dimension) for name, dimension in config.space.items()})
    return params


def _describe(dimension: Any) -> str:
    return ", ".join(f"{key}={value}" for key, value in to_yaml_dict(dimension).items())
