"""Read-only views of sweeps: the best trial, the list of sweeps, one sweep's trials. No MLflow needed."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import yaml

from sweep.errors import NotFoundError
from sweep.ranking import rank_key
from sweep.study import SweepRow, TrialRow, list_sweeps, sweep_trials

FORMATS = ("text", "json", "yaml")


@dataclass(frozen=True)
class Best:
    sweep: SweepRow
    trial: TrialRow
    settings: dict[str, Any]  # every trainer setting of the winning trial: fixed and tuned
    data: dict[str, Any]  # source, text_column, label_column

    @property
    def model_uri(self) -> str | None:
        return f"runs:/{self.trial.run_id}/model.json" if self.trial.run_id else None

    @property
    def pyfunc_model_uri(self) -> str | None:
        """The parent's pyfunc model, when it holds this trial's model (written when a sweep run ends)."""
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
                "run_id": self.trial.run_id, "model_uri": self.model_uri,
                "pyfunc_model_uri": self.pyfunc_model_uri, "registered_model": self.registered_model}


def best(storage: str | None, name: str | None) -> Best:
    """The winning trial of the named (else the latest) sweep, by the same ordering as the parent run."""
    sweep, trials, config = sweep_trials(storage, name)
    ranked = rank_trials(sweep, trials)
    if not ranked:
        raise NotFoundError(f"sweep {sweep.name!r} has no completed trial yet")
    winner = ranked[0]
    settings = {**config["fixed"], **winner.params}
    return Best(sweep, winner, settings, config["data"])


def rank_trials(sweep: SweepRow, trials: list[TrialRow]) -> list[TrialRow]:
    """Completed trials, best first."""
    complete = [t for t in trials if t.state == "COMPLETE" and t.value is not None]
    return sorted(complete, key=lambda t: rank_key(t.value or 0.0, t.metrics, t.number, metric=sweep.metric,
                                                   direction=sweep.direction))


def render_best(result: Best, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(result.as_dict(), indent=2)
    if fmt == "yaml":
        # exactly what `train --config` reads: trainer settings plus where the data comes from
        document = {**result.settings, "data": result.data["source"], "text_column": result.data["text_column"],
                    "label_column": result.data["label_column"]}
        header = (f"# best trial {result.trial.number} of sweep {result.sweep.name}: "
                  f"{result.sweep.metric}={result.trial.value:.4f}\n")
        return header + yaml.safe_dump(document, sort_keys=False)
    lines = [f"sweep:   {result.sweep.name}  (trial {result.trial.number} of {result.sweep.counts.finished})",
             f"{result.sweep.metric}: {result.trial.value:.4f}"]
    lines += [f"  {key} = {value}" for key, value in result.settings.items()]
    lines += [f"  {key}: {value:.4f}" for key, value in sorted(result.trial.metrics.items())]
    lines.append(f"parent run: {result.sweep.parent_run_id}")
    if result.model_uri:
        lines.append(f"model:      {result.model_uri}")
    if result.pyfunc_model_uri:
        lines.append(f"pyfunc:     {result.pyfunc_model_uri}  (mlflow.pyfunc.load_model)")
    if result.registered_model:
        lines.append(f"registered: {result.registered_model}")
    return "\n".join(lines)


def sweeps(storage: str | None) -> list[SweepRow]:
    return list_sweeps(storage)


def show(storage: str | None, name: str | None) -> tuple[SweepRow, list[TrialRow]]:
    sweep, trials, _ = sweep_trials(storage, name)
    ranked = rank_trials(sweep, trials)
    others = sorted((t for t in trials if t not in ranked), key=lambda t: t.number)
    return sweep, ranked + others


def tracking_uri_of(sweep: SweepRow | None, given: str | None) -> str | None:
    """The MLflow store to read a sweep from: the flag, else the one the sweep wrote to (unless its stored
    form lost a password), else None (MLFLOW_TRACKING_URI, then MLflow's default)."""
    if given is not None:
        return given
    stored = sweep.tracking_uri if sweep is not None else None
    return stored if stored and "***" not in stored else None
