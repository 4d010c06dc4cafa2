"""Read-only views of sweeps: the best trial, the list of sweeps, one sweep's trials. No MLflow needed."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import yaml

from sweep.errors import NotFoundError
from sweep.locations import TrackingLocation
from sweep.ranking import rank_key
from sweep.states import TrialState
from sweep.study import SweepRow, TrialRow, list_sweeps, sweep_trials

FORMATS = ("text", "json", "yaml")


NO_MODEL = ("none: the best trial logged no MLflow model (log one from fit with trainer mlflow: autolog, or "
            "mlflow.<flavor>.log_model under mlflow: active), or its sweep has not ended yet")


@dataclass(frozen=True)
class Best:
    sweep: SweepRow
    trial: TrialRow
    settings: dict[str, Any]  # every param of the winning trial: fixed, tuned and suggested by fit
    config: dict[str, Any]  # the sweep's stored config, in its file form

    @property
    def builtin(self) -> bool:
        return self.config.get("trainer", "sentiment") == "sentiment"

    @property
    def model_uri(self) -> str | None:
        """The built-in trainer's model.json on the trial's child run; a function trainer's model as its trial
        logged it (models:/<id>), once the parent recorded it."""
        if not self.builtin:
            return self.pyfunc_model_uri
        return f"runs:/{self.trial.run_id}/model.json" if self.trial.run_id else None

    @property
    def pyfunc_model_uri(self) -> str | None:
        """The parent's best model, when it holds this trial's (written when a sweep run ends): the built-in
        trainer's pyfunc model, or the model a function trainer's trial logged; both load with
        mlflow.pyfunc.load_model."""
        return self.sweep.model_uri if self.sweep.model_trial == self.trial.number else None

    @property
    def registered_model(self) -> str | None:
        """models:/NAME/VERSION of the last `--register`, when it holds this trial's model."""
        if self.sweep.registered_model is None or self.sweep.registered_trial != self.trial.number:
            return None
        return f"models:/{self.sweep.registered_model}"

    def as_dict(self) -> dict[str, Any]:
        return {"sweep": self.sweep.name, "trial": self.trial.number, "params": self.settings,
                "metrics": self.trial.metrics, "parent_run_id": self.sweep.parent_run_id,
                "run_id": self.trial.run_id, "trainer": self.config.get("trainer", "sentiment"),
                "model_uri": self.model_uri, "pyfunc_model_uri": self.pyfunc_model_uri,
                "registered_model": self.registered_model}

    def rerun_config(self) -> dict[str, Any]:
        """A sweep config that runs exactly this trial again: every param of it under fixed:, no space, one
        trial (Trial.suggest_* gives a name under fixed: its fixed value). `train --config` reads it too."""
        document: dict[str, Any] = {"experiment": self.config["experiment"], "trainer": self.config["trainer"],
                                    "objective": self.config["objective"]}
        if "data" in self.config:  # the built-in trainer's data; a function loads its own
            document["data"] = self.config["data"]
        return {**document, "trials": 1, "pruner": {"name": "none"}, "fixed": dict(self.settings)}


def best(storage: str | None, name: str | None) -> Best:
    """The winning trial of the named (else the latest) sweep, by the same ordering as the parent run."""
    sweep, trials, config = sweep_trials(storage, name)
    ranked = rank_trials(sweep, trials)
    if not ranked:
        raise NotFoundError(f"sweep {sweep.name!r} has no completed trial yet")
    winner = ranked[0]
    settings = {**config["fixed"], **winner.params}
    return Best(sweep, winner, settings, config)


def rank_trials(sweep: SweepRow, trials: list[TrialRow]) -> list[TrialRow]:
    """Completed trials, best first."""
    complete = [t for t in trials if t.state == TrialState.COMPLETE and t.value is not None]
    return sorted(complete, key=lambda t: rank_key(t.value or 0.0, t.metrics, t.number, metric=sweep.metric,
                                                   direction=sweep.direction))


def render_best(result: Best, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(result.as_dict(), indent=2)
    sweep, trial = result.sweep, result.trial
    if fmt == "yaml":
        header = (f"# best trial {trial.number} of sweep {sweep.name}: {sweep.metric}={trial.value:.4f}\n"
                  f"# run exactly this trial again: sweep run --config best.yaml\n")
        if result.builtin:
            header += "# or train it once, without MLflow: train --config best.yaml\n"
        return header + yaml.safe_dump(result.rerun_config(), sort_keys=False)
    if result.builtin:
        models = {"model": result.model_uri,
                  "pyfunc": f"{result.pyfunc_model_uri}  (mlflow.pyfunc.load_model)" if result.pyfunc_model_uri
                  else None}
    else:
        models = {"model": f"{result.model_uri}  (mlflow.pyfunc.load_model, sweep predict --file)"
                  if result.model_uri else NO_MODEL}
    where = {"parent run": sweep.parent_run_id, "trial run": None if result.builtin else trial.run_id, **models,
             "registered": result.registered_model}
    lines = [f"best trial {trial.number} of sweep {sweep.name} ({sweep.counts.finished} trials), by {sweep.metric} "
             f"({'max' if sweep.direction == 'maximize' else 'min'})"]
    lines += _section("settings", result.settings, 16)
    lines += _section("metrics", {key: f"{value:.4f}" for key, value in sorted(trial.metrics.items())}, 16)
    lines += _section("where", {key: value for key, value in where.items() if value}, 12)
    return "\n".join(lines)


def _section(heading: str, values: dict[str, Any], width: int) -> list[str]:
    """A heading, then one aligned `key: value` line per entry."""
    return ["", heading, *(f"  {key + ':':<{width}}{value}" for key, value in values.items())]


def sweeps(storage: str | None) -> list[SweepRow]:
    return list_sweeps(storage)


def show(storage: str | None, name: str | None) -> tuple[SweepRow, list[TrialRow]]:
    sweep, trials, _ = sweep_trials(storage, name)
    ranked = rank_trials(sweep, trials)
    shown = {t.number for t in ranked}  # a set: `t not in ranked` compared every pair of rows (n x n)
    others = sorted((t for t in trials if t.number not in shown), key=lambda t: t.number)
    return sweep, ranked + others


def tracking_of(sweep: SweepRow | None, given: str | None) -> TrackingLocation:
    """The MLflow store to read a sweep from: the flag, else the one the sweep wrote to (unless its stored
    form lost a password), else MLFLOW_TRACKING_URI, then MLflow's default."""
    return TrackingLocation.resolve(given, stored=sweep.tracking if sweep is not None else None)
