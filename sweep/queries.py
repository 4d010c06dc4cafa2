"""Read-only views of sweeps: the best trial, the list of sweeps, one sweep's trials. No MLflow needed."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import yaml

from sweep.constraints import Bound
from sweep.errors import NotFoundError
from sweep.locations import TrackingLocation
from sweep.ranking import pareto_front, signed
from sweep.states import TrialState
from sweep.study import PlainTrial, SweepRead, SweepRow, TrialRow, list_sweeps, read_sweep
from sweep.views import table

FORMATS = ("text", "json", "yaml")


NO_MODEL = ("none: the best trial logged no MLflow model (log one from fit with trainer mlflow: autolog, or "
            "mlflow.<flavor>.log_model under mlflow: active), or its sweep has not ended yet")


@dataclass(frozen=True)
class Best:
    sweep: SweepRow
    trial: TrialRow
    settings: dict[str, Any]  # every param of the winning trial: fixed, tuned and suggested by fit
    config: dict[str, Any]  # the sweep's stored config, in its file form
    picked_by: tuple[Bound, ...] = ()  # `--pick`: the bounds it was the best trial to meet

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


@dataclass(frozen=True)
class Front:
    """The Pareto front of a sweep of several objectives: its feasible complete trials that no other dominates."""

    sweep: SweepRow
    members: list[TrialRow]  # best first on the first objective (then the next ...)
    config: dict[str, Any]

    @property
    def objectives(self) -> list[tuple[str, str]]:
        return [(self.sweep.metric, self.sweep.direction), *self.sweep.more_objectives]

    def as_dict(self) -> dict[str, Any]:
        return {"sweep": self.sweep.name, "parent_run_id": self.sweep.parent_run_id,
                "objectives": [{"metric": metric, "direction": direction} for metric, direction in self.objectives],
                "front": [front_entry(trial, self.objectives, self.config) for trial in self.members]}


def front_entry(trial: TrialRow, objectives: list[tuple[str, str]], config: dict[str, Any]) -> dict[str, Any]:
    """One front member as `sweep best --format json` and the parent's pareto.json give it."""
    values = trial.values or (trial.value,)
    return {"trial": trial.number, "run_id": trial.run_id, "params": {**config.get("fixed", {}), **trial.params},
            "values": {metric: value for (metric, _), value in zip(objectives, values)}}


def best(storage: str | None, name: str | None, pick: tuple[Bound, ...] = ()) -> Best:
    """The winning trial of the named (else the latest) sweep, by the same ordering as the parent run; with
    several objectives, a member of the front (the best on the first objective). ``pick``: the best among the
    trials (the front's, with several objectives) that meet these bounds."""
    return read_sweep(storage, name, lambda read: _best_of(read, pick))


def best_or_front(storage: str | None, name: str | None, pick: tuple[Bound, ...] = ()) -> Best | Front:
    """`sweep best`: a sweep of several objectives without ``pick`` answers with its whole front."""
    return read_sweep(storage, name, lambda read: _best_or_front(read, pick))


def _best_or_front(read: SweepRead, pick: tuple[Bound, ...]) -> Best | Front:
    if read.sweep.more_objectives and not pick:
        members = _front(read)
        if not members:
            raise NotFoundError(_nothing_complete(read.sweep, read.trials))
        return Front(read.sweep, read.rows(members), read.config)
    return _best_of(read, pick)


def _front(read: SweepRead) -> list[PlainTrial]:
    """The Pareto front's members, best first (rank_key)."""
    return read.ranked(among=front_members(read.sweep, read.candidates))


def _best_of(read: SweepRead, pick: tuple[Bound, ...]) -> Best:
    sweep = read.sweep
    # rows only for the trials looked at: the front's, the ones a bound is checked on, else the best alone
    ranked = _front(read) if sweep.more_objectives else read.ranked() if pick else read.ranked(1)
    candidates = read.rows(ranked)
    if not candidates:
        raise NotFoundError(_nothing_complete(sweep, read.trials))
    if pick:
        met = [t for t in candidates if all(meets(bound, t.metrics) for bound in pick)]
        if not met:
            among = "the front's" if sweep.more_objectives else "the complete"
            ranges = "; ".join(_range(bound.metric, candidates) for bound in pick)
            raise NotFoundError(f"no trial of {among} {len(candidates)} meets --pick "
                                f"{', '.join(map(str, pick))} ({ranges}); loosen the bound")
        candidates = met
    winner = candidates[0]
    config = read.config
    settings = {**config["fixed"], **winner.params}
    return Best(sweep, winner, settings, config, pick)


def meets(bound: Bound, metrics: dict[str, float]) -> bool:
    violation = bound.violation(metrics)
    return violation is not None and violation <= 0.0


def _nothing_complete(sweep: SweepRow, trials: Sequence[PlainTrial]) -> str:
    complete = [t for t in trials if t.state == TrialState.COMPLETE and t.first_value is not None]
    if complete:
        return (f"sweep {sweep.name!r} has {len(complete)} completed trials, and none meets its constraints yet; "
                f"`sweep show {sweep.name}` lists them")
    return f"sweep {sweep.name!r} has no completed trial yet"


def _range(metric: str, trials: list[TrialRow]) -> str:
    values = [t.metrics[metric] for t in trials if metric in t.metrics]
    return f"{metric} from {min(values):g} to {max(values):g}" if values else f"no trial has {metric}"


Ranked = TypeVar("Ranked", TrialRow, PlainTrial)


def front_members(sweep: SweepRow, ranked: Sequence[Ranked]) -> list[Ranked]:
    """The front's members among ``ranked`` (complete feasible trials or their rows, best first: each has every
    objective's value), in that order."""
    directions = [sweep.direction, *(direction for _, direction in sweep.more_objectives)]
    members = set(pareto_front([(t.number, [signed(v, d) for v, d in zip(t.values or (), directions)])
                                for t in ranked]))
    return [t for t in ranked if t.number in members]


def render_front(front: Front, fmt: str) -> str:
    """`sweep best` of a sweep of several objectives: its Pareto front as a table, JSON or YAML."""
    if fmt == "json":
        return json.dumps(front.as_dict(), indent=2)
    if fmt == "yaml":
        header = (f"# the Pareto front of sweep {front.sweep.name}; one trial as a config that re-runs it: "
                  f"sweep best --pick \"{front.sweep.more_objectives[0][0]}<=...\" --format yaml\n")
        return header + yaml.safe_dump(front.as_dict(), sort_keys=False)
    objectives = front.objectives
    names = ", ".join(f"{metric} ({'max' if direction == 'maximize' else 'min'})" for metric, direction in objectives)
    params = sorted({key for t in front.members for key in t.params})
    header = ("trial", *(metric for metric, _ in objectives), *params)
    rows = [(t.number, *(f"{value:.6g}" for value in (t.values or (t.value,))),
             *(_shown_param(t.params.get(p, "")) for p in params)) for t in front.members]
    title = (f"Pareto front of sweep {front.sweep.name}: {len(front.members)} of {front.sweep.counts.finished} "
             f"trials, by {names}")
    hint = (f"pick one: sweep best --pick \"{objectives[1][0]}<=...\" (a bound, then the best {objectives[0][0]}); "
            f"with --format yaml, a config that re-runs it")
    return "\n".join([title, table(header, rows), hint])


def _shown_param(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


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
    among = (f", of the trials{' on its Pareto front' if sweep.more_objectives else ''} meeting "
             f"{', '.join(map(str, result.picked_by))}" if result.picked_by else "")
    lines = [f"best trial {trial.number} of sweep {sweep.name} ({sweep.counts.finished} trials){among}, by "
             f"{sweep.metric} ({'max' if sweep.direction == 'maximize' else 'min'})"]
    lines += _section("settings", result.settings, 16)
    lines += _section("metrics", {key: f"{value:.4f}" for key, value in sorted(trial.metrics.items())}, 16)
    lines += _section("where", {key: value for key, value in where.items() if value}, 12)
    return "\n".join(lines)


def _section(heading: str, values: dict[str, Any], width: int) -> list[str]:
    """A heading, then one aligned `key: value` line per entry."""
    return ["", heading, *(f"  {key + ':':<{width}}{value}" for key, value in values.items())]


def sweeps(storage: str | None) -> list[SweepRow]:
    return list_sweeps(storage)


def show(storage: str | None, name: str | None, top: int | None = None) -> tuple[SweepRow, list[TrialRow]]:
    """A sweep and its first ``top`` trials (all without it): the complete feasible ones best first (with several
    objectives, the front's members first, marked), then the others by number. Rows are built for those alone."""
    return read_sweep(storage, name, lambda read: _show(read, top))


def _show(read: SweepRead, top: int | None) -> tuple[SweepRow, list[TrialRow]]:
    front: set[int] = set()
    if read.sweep.more_objectives:  # the front's members first, marked, then the other feasible trials
        members = _front(read)
        front = {t.number for t in members}
        rest = [t for t in read.candidates if t.number not in front]
        order = members[:top] + read.ranked(None if top is None else top - len(members), among=rest)
    else:
        order = read.ranked(top)
    if top is None or len(order) < top:
        shown = {t.number for t in read.candidates}  # a set: `t not in ranked` compared every pair of rows (n x n)
        others = sorted((t for t in read.trials if t.number not in shown), key=lambda t: t.number)
        order += others[:None if top is None else top - len(order)]
    return read.sweep, read.rows(order, front)


def tracking_of(sweep: SweepRow | None, given: str | None) -> TrackingLocation:
    """The MLflow store to read a sweep from: the flag, else the one the sweep wrote to (unless its stored
    form lost a password), else MLFLOW_TRACKING_URI, then MLflow's default."""
    return TrackingLocation.resolve(given, stored=sweep.tracking if sweep is not None else None)
