"""SweepConfig: a YAML file plus CLI overrides, validated in one place before anything is written."""

from __future__ import annotations

import dataclasses
import importlib.util
import math
import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from sweep.constraints import Constraints, parse_constraints
from sweep.errors import SweepConfigError
from sweep.executors.spec import ExecutorSpec, Resources, parse_executor, parse_resources
from sweep.locations import STORAGE_FORMS, STORAGE_SCHEMES, TRACKING_FORMS, TRACKING_SCHEMES, check_scheme
from sweep.run_names import TRIAL_FIELD, template_fields
from sweep.space import (
    Categorical,
    Dimension,
    FloatRange,
    IntRange,
    outside,
    parse_space,
    shown_key,
    to_yaml_dict,
    wrong_type,
)
from sweep.trainers.spec import BUILTIN, TrainerSpec, parse_trainer
from trainer import ConfigError, TrainConfig

SAMPLERS = ("tpe", "random", "grid", "cmaes", "gp", "qmc", "nsga2")
MULTI_OBJECTIVE_SAMPLERS = ("tpe", "random", "grid", "gp", "qmc", "nsga2")  # Optuna's that take several directions
PRUNERS = ("median", "hyperband", "none")
WARM_SAMPLERS = ("tpe", "gp")  # the samplers that read the study's earlier trials (warm_start hands them more)
METRICS = {"val_accuracy": "maximize", "val_loss": "minimize"}  # select on validation, report test
# what the built-in trainer reports besides: a further objective (accuracy against size or time), or a constraint
COSTS = {"model_bytes": "minimize", "train_seconds": "minimize"}
BUILTIN_OBJECTIVES = {**METRICS, **COSTS}
BUILTIN_REPORTS = ("train_accuracy", "train_loss", "val_accuracy", "val_loss", "test_accuracy", "test_loss",
                   *COSTS)  # every final metric of the built-in trainer's trials
DEFAULT_CONFIG = "sentiment.yaml"  # shipped inside the package; configs/sentiment.yaml is the same file
# safe in file names and store queries; \Z, not $, which also matches before a final newline
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}\Z")
MAX_CONFIG_BYTES = 1024 * 1024  # a sweep config is a page of YAML; a bigger file is a mistake (or /dev/zero)
MAX_TRIALS = 1_000_000  # far beyond any sweep one study holds; a typo like 1e26 fails here, not after hours
MAX_HEARTBEAT = 3600  # seconds: a dead worker's trial is retried after 3 of these
MAX_SEED = 2**32 - 1  # numpy's seeds (and so every Optuna sampler's) are 32-bit
_TOP_KEYS = {"name", "experiment", "objective", "constraints", "trials", "timeout", "sampler", "pruner", "data",
             "fixed", "space", "storage", "tracking_uri", "heartbeat", "trainer", "executor", "resources", "repeats",
             "start_with", "run_name", "stop", "budget", "warm_start"}
# an MLflow metric name: what its stores accept, and short enough to read
METRIC_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-/ ]{0,249}\Z")
REPEATS = ("train", "reuse")  # a trial proposed with a finished trial's exact settings: train it again, or reuse
OBJECTIVE_SOURCES = ("report", "mlflow")  # where a command's objective comes from: its report lines, or its run
OBJECTIVE_KEYS = {"metric", "direction", "source"}
_SECTION_KEYS = {"objective": OBJECTIVE_KEYS, "sampler": {"name", "seed"},
                 "pruner": {"name", "startup_trials", "warmup_epochs"},
                 "data": {"source", "text_column", "label_column"},
                 "stop": {"patience", "target"}, "budget": {"seconds", "trial_seconds"}, "warm_start": {"sweep"}}


@dataclass(frozen=True)
class Objective:
    """One objective of a sweep: a metric and whether it is maximized or minimized."""

    metric: str
    direction: str

    def to_yaml(self) -> dict[str, str]:
        return {"metric": self.metric, "direction": self.direction}


@dataclass(frozen=True)
class SweepConfig:
    space: dict[str, Dimension]
    name: str | None = None  # None: generated when the sweep starts
    experiment: str = "sentiment"  # a config file for a function trainer defaults it to "sweep"
    metric: str = "val_accuracy"  # a config file for a function trainer defaults it to "value" (what fit returns)
    direction: str = ""  # "": the built-in metric's own; a function trainer's metric needs one given
    trials: int = 50  # finished trials (complete + pruned + failed) the study should hold
    timeout: float | None = None  # seconds after which no new trial starts
    sampler: str = "tpe"
    seed: int | None = 0  # the sampler's seed; None draws one
    pruner: str = "median"
    pruner_startup_trials: int = 5  # trials that run to the end before pruning starts
    pruner_warmup_epochs: int = 0  # epochs of every trial that are never pruned
    data: str = "bundled"
    text_column: str = "text"
    label_column: str = "label"
    fixed: dict[str, Any] = field(default_factory=dict)  # trainer settings not tuned
    storage: str | None = None  # None: the embedded journal file in the working folder
    tracking_uri: str | None = None  # None: MLFLOW_TRACKING_URI, else MLflow's default
    heartbeat: int = 10  # seconds; RDB storages: a trial without a heartbeat for 3 of these is failed, retried
    trainer: TrainerSpec = field(default_factory=TrainerSpec)  # the built-in sentiment trainer, or the user's code
    source: str = "report"  # report | mlflow: a command's objective is read from its child run after it exits
    resources: Resources = field(default_factory=Resources)  # what one trial needs (Ray; GPUs with --jobs)
    executor: ExecutorSpec = field(default_factory=ExecutorSpec)  # where the trial loops run; never stored
    repeats: str = "train"  # train | reuse: a proposal identical to a complete trial's settings is answered by it
    # the objectives after the first (metric, direction): a multi-objective sweep and its Pareto front when set
    more_objectives: tuple[Objective, ...] = ()
    constraints: Constraints = field(default_factory=Constraints)  # what a feasible trial meets
    stop_patience: int | None = None  # finished trials after the best without a better one: no new trial starts
    stop_target: float | None = None  # a best value this good (direction-aware) is good enough: no new trial starts
    budget_seconds: float | None = None  # wall seconds while any of the sweep's trials ran, over all its invocations
    budget_trial_seconds: float | None = None  # the sweep's trials' durations summed (compute: GPU-hours and co.)
    warm_start: str | None = None  # an earlier sweep (same storage) whose finished trials the sampler starts from

    @property
    def objectives(self) -> tuple[Objective, ...]:
        """Every objective, the first (metric, direction) first."""
        return (Objective(self.metric, self.direction), *self.more_objectives)

    @property
    def multi_objective(self) -> bool:
        return bool(self.more_objectives)
    # param sets the first trials run (numbers 0, 1, ...), each a mapping of tuned params; left out: sampled
    start_with: tuple[dict[str, Any], ...] = ()
    run_name: str | None = None  # child run names: a template of {trial} and params; None: trial-<number>

    def __post_init__(self) -> None:
        builtin = self.trainer.builtin
        if builtin and not self.direction and isinstance(self.metric, str) and self.metric in BUILTIN_OBJECTIVES:
            object.__setattr__(self, "direction", BUILTIN_OBJECTIVES[self.metric])
        for key in ("name", "experiment"):
            value = getattr(self, key)
            if value is not None and not (isinstance(value, str) and NAME_PATTERN.match(value)):
                raise SweepConfigError(f"{key}: {value!r} is not a valid name; use 1-100 letters, digits, "
                                       f"'.', '_' or '-', starting with a letter or digit")
        # isinstance first: a list is unhashable
        if builtin and (not isinstance(self.metric, str) or self.metric not in BUILTIN_OBJECTIVES):
            raise SweepConfigError(f"objective.metric: {self.metric!r} is not supported; use one of "
                                   f"{', '.join(BUILTIN_OBJECTIVES)}")
        if not builtin and not (isinstance(self.metric, str) and METRIC_NAME.match(self.metric)):
            raise SweepConfigError(f"objective.metric: {self.metric!r} is not a metric name; use letters, digits, "
                                   f"'_', '-', '.', '/' or spaces")
        if not builtin and not self.direction:
            raise SweepConfigError(f"objective.direction: required for your trainer's metric "
                                   f"{self.metric!r}; add direction: maximize or direction: minimize")
        if self.direction not in ("maximize", "minimize"):
            raise SweepConfigError(f"objective.direction: must be maximize or minimize, got {self.direction!r}")
        _positive_int("trials", self.trials, at_most=MAX_TRIALS)
        _positive_int("heartbeat", self.heartbeat, at_most=MAX_HEARTBEAT)
        if self.timeout is not None and (isinstance(self.timeout, bool) or not isinstance(self.timeout, (int, float))
                                         or not self.timeout > 0):
            raise SweepConfigError(f"timeout: must be a positive number of seconds, got {self.timeout!r}")
        if self.sampler not in SAMPLERS:
            raise SweepConfigError(f"sampler.name: {self.sampler!r} is unknown; use one of {', '.join(SAMPLERS)}")
        if self.seed is not None and (isinstance(self.seed, bool) or not isinstance(self.seed, int)
                                      or not 0 <= self.seed <= MAX_SEED):
            raise SweepConfigError(f"sampler.seed: must be a non-negative integer up to {MAX_SEED}, got {self.seed!r}")
        if self.pruner not in PRUNERS:
            raise SweepConfigError(f"pruner.name: {self.pruner!r} is unknown; use one of {', '.join(PRUNERS)}")
        _positive_int("pruner.startup_trials", self.pruner_startup_trials, allow_zero=True)
        _positive_int("pruner.warmup_epochs", self.pruner_warmup_epochs, allow_zero=True)
        if builtin and BUILTIN_OBJECTIVES[self.metric] != self.direction:
            wanted = BUILTIN_OBJECTIVES[self.metric]
            raise SweepConfigError(f"objective.direction: {self.metric} is only ever {wanted}d, "
                                   f"got {self.direction}; set direction: {wanted} or drop it")
        self._check_objectives()
        for key in ("storage", "tracking_uri"):
            value = getattr(self, key)
            if value is not None and not (isinstance(value, str) and value.strip()):
                raise SweepConfigError(f"{key}: must be a URL or path string, got {value!r}")
        if self.storage is not None:
            check_scheme("storage", self.storage, STORAGE_SCHEMES, STORAGE_FORMS)
        if self.tracking_uri is not None:
            check_scheme("tracking_uri", self.tracking_uri, TRACKING_SCHEMES, TRACKING_FORMS)
        for key in ("data", "text_column", "label_column"):
            if not isinstance(getattr(self, key), str) or not getattr(self, key):
                raise SweepConfigError(f"data.{key.replace('data', 'source')}: must be a non-empty string")
        if builtin and not self.space and self.trials != 1:
            raise SweepConfigError("space: must map at least one trainer setting to a range, e.g. lr: {type: float, "
                                   "low: 0.01, high: 5, log: true}; or set trials: 1 to train the fixed settings once")
        if builtin:
            _check_trainer_settings(self.space, self.fixed)
        else:
            _check_function_settings(self.space, self.fixed)
            if (self.data, self.text_column, self.label_column) != ("bundled", "text", "label"):  # --data and co.
                raise SweepConfigError("data: only the built-in trainer reads data; your trainer loads its own "
                                       "(drop --data/--text-column/--label-column, or pass a path under fixed:)")
        if self.source not in OBJECTIVE_SOURCES:
            raise SweepConfigError(f"objective.source: {self.source!r} is unknown; use report (the default) or mlflow")
        if self.source == "mlflow" and self.trainer.command is None:
            raise SweepConfigError("objective.source: mlflow is for a command trainer (a function returns its "
                                   "objective); drop source:")
        if self.trainer.command is not None:
            self.trainer.command.check_placeholders(self.space, self.fixed)
        if self.repeats not in REPEATS:
            raise SweepConfigError(f"repeats: {self.repeats!r} is unknown; use train (the default) or reuse")
        if self.repeats == "reuse" and not self.space:
            raise SweepConfigError("repeats: reuse compares the settings under space: before a trial trains, and "
                                   "this config tunes none there; move the tuned settings into space: or drop repeats")
        _positive_int("stop.patience", self.stop_patience, optional=True)
        if self.stop_target is not None and (isinstance(self.stop_target, bool)
                                             or not isinstance(self.stop_target, (int, float))
                                             or not math.isfinite(self.stop_target)):
            raise SweepConfigError(f"stop.target: must be a number (a value of {self.metric} good enough to stop), "
                                   f"got {_shown_value(self.stop_target)}")
        if self.multi_objective and (self.stop_patience is not None or self.stop_target is not None):
            key = "stop.patience" if self.stop_patience is not None else "stop.target"
            raise SweepConfigError(f"{key}: a sweep of several objectives has a front, not one best to compare; "
                                   f"drop {key} (budget: still applies)")
        for key in ("budget_seconds", "budget_trial_seconds"):
            value = getattr(self, key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                      or not 0 < value < math.inf):
                raise SweepConfigError(f"{key.replace('_', '.', 1)}: must be a positive number of seconds, "
                                       f"got {_shown_value(value)}")
        if self.warm_start is not None:
            if not (isinstance(self.warm_start, str) and NAME_PATTERN.match(self.warm_start)):
                raise SweepConfigError(f"warm_start.sweep: {_shown_value(self.warm_start)} is not a sweep name; "
                                       f"give the name of an earlier sweep in the same storage")
            if self.sampler not in WARM_SAMPLERS:
                raise SweepConfigError(f"warm_start: the {self.sampler} sampler does not learn from earlier trials; "
                                       f"use {' or '.join(WARM_SAMPLERS)}, or drop warm_start")
        if self.sampler == "grid" and not self.space:
            raise SweepConfigError("sampler.name: the grid sampler needs a space: to lay its grid over; add one "
                                   "or use another --sampler")
        self._check_start_with()
        self._check_run_name()

    def _check_run_name(self) -> None:
        """The template names the trial and params only, each formatted as its spec says: tried on every corner
        of the space (the range's ends, each choice) and the fixed values, so a bad spec fails here."""
        template = self.run_name
        if template is None:
            return
        if not isinstance(template, str) or not template.strip():
            raise SweepConfigError(f"run_name: expected a text such as \"{{trial}}-lr{{lr:.2g}}\", got "
                                   f"{_shown_value(template)}")
        try:
            fields = template_fields(template)
        except ValueError as error:
            raise SweepConfigError(f"run_name: {error} in {template!r}; write {{{{ and }}}} for literal "
                                   f"braces") from None
        known = [TRIAL_FIELD, *self.space, *self.fixed]
        free = not self.space and self.trainer.function is not None  # a define-by-run fit names its own params
        samples: dict[str, tuple[Any, ...]] = {TRIAL_FIELD: (0,)}
        samples.update({name: (value,) for name, value in self.fixed.items()})
        samples.update({name: _corners(dimension) for name, dimension in self.space.items()})
        for name, _spec, _conversion in fields:
            if name not in known and not (free and name.isidentifier()):
                raise SweepConfigError(f"run_name: {{{shown_key(name)}}} names no param; use {{trial}} or a param "
                                       f"under space: or fixed: ({', '.join(known)})")
        for name, spec, conversion in fields:
            for value in samples.get(name, ()):  # a define-by-run param's type is unknown here: not tried
                try:
                    format(CONVERSIONS.get(conversion or "", lambda given: given)(value), spec)
                except (ValueError, TypeError) as error:
                    raise SweepConfigError(f"run_name: cannot format {shown_key(name)}={_shown_value(value)} with "
                                           f"{{{shown_key(name)}:{spec}}} ({error}); change its format spec") from None

    def _check_start_with(self) -> None:
        if not isinstance(self.start_with, (tuple, list)):
            raise SweepConfigError(f"start_with: expected a list of param sets, e.g. [{{lr: 0.5, epochs: 30}}], got "
                                   f"{_shown_value(self.start_with)}")
        object.__setattr__(self, "start_with", tuple(self.start_with))
        if not self.start_with:
            return
        if self.sampler == "grid":
            raise SweepConfigError("start_with: the grid sampler tries every point of its grid itself; drop "
                                   "start_with or use another --sampler")
        if len(self.start_with) > self.trials:
            raise SweepConfigError(f"start_with: {len(self.start_with)} param sets but trials: {self.trials}; "
                                   f"raise trials to at least {len(self.start_with)} or drop some")
        object.__setattr__(self, "start_with", tuple(self.check_params(params, f"start_with[{i}]")
                                                     for i, params in enumerate(self.start_with)))

    def check_params(self, params: Any, where: str, *, allow_outside: bool = False,
                     outside_hint: str = "give a value inside it") -> dict[str, Any]:
        """A param set a trial must run with (``where`` names it in errors): a mapping of tuned params, each a
        point of its dimension (with ``allow_outside``, out of its range too, though never another type or a
        choice the space lacks). A name under fixed: may be given with its fixed value (what `sweep best
        --format yaml` prints holds both). Returns the set without the fixed names."""
        if not isinstance(params, Mapping) or not params:
            raise SweepConfigError(f"{where}: expected a mapping of tuned params, e.g. {{lr: 0.5}}, got "
                                   f"{_shown_value(params)}")
        tuned: dict[str, Any] = {}
        for name, value in params.items():
            key = f"{where}.{shown_key(name)}"
            if name in self.fixed:
                if value != self.fixed[name] or isinstance(value, bool) != isinstance(self.fixed[name], bool):
                    raise SweepConfigError(f"{key}: {_shown_value(value)} differs from its fixed: value "
                                           f"{_shown_value(self.fixed[name])}; only params under space: are tuned")
                continue
            if not isinstance(name, str):
                raise SweepConfigError(f"{key}: a param name is text, got {_shown_value(name)}")
            dimension = self.space.get(name)
            if dimension is None and (self.space or self.trainer.function is None):
                raise SweepConfigError(f"{key}: not a tuned param; use one of {', '.join(self.space) or 'none'} "
                                       f"(the params under space:)")
            if dimension is None:  # no space: the function suggests its own params, whose names are unknown here
                if not (value is None or isinstance(value, (bool, int, float, str))):
                    raise SweepConfigError(f"{key}: {_shown_value(value)} is not a number, string, boolean or null")
            else:
                why = outside(dimension, value)
                wrong = why is not None and wrong_type(dimension, value)
                if why is not None and (not allow_outside or wrong):
                    hint = ("give one of them" if isinstance(dimension, Categorical) else
                            f"give {'an integer' if isinstance(dimension, IntRange) else 'a number'}"
                            if wrong else outside_hint)
                    raise SweepConfigError(f"{key}: {_shown_value(value)} is {why} (space.{shown_key(name)}); "
                                           f"{hint}")
                if why is not None and not isinstance(dimension, Categorical) and dimension.log and value <= 0:
                    raise SweepConfigError(f"{key}: {_shown_value(value)} is not > 0, which a log scale needs "
                                           f"(space.{shown_key(name)}); give a positive value")
            tuned[name] = value
        if not tuned:
            raise SweepConfigError(f"{where}: sets only fixed: params; give at least one param under space:")
        if self.trainer.builtin:
            try:
                TrainConfig.from_mapping({**self.fixed, **tuned})
            except ConfigError as error:
                raise SweepConfigError(f"{where}: not a valid trainer setting ({error})") from None
        return tuned

    def _check_objectives(self) -> None:
        """The objectives after the first, the sampler and pruner that go with several, and the constraints."""
        builtin = self.trainer.builtin
        seen = {self.metric}
        for position, objective in enumerate(self.more_objectives, start=2):
            where = f"objective[{position - 1}]"
            if builtin and objective.metric not in BUILTIN_OBJECTIVES:
                raise SweepConfigError(f"{where}.metric: {objective.metric!r} is not supported; use one of "
                                       f"{', '.join(BUILTIN_OBJECTIVES)}")
            if not (isinstance(objective.metric, str) and METRIC_NAME.match(objective.metric)):
                raise SweepConfigError(f"{where}.metric: {objective.metric!r} is not a metric name; use letters, "
                                       f"digits, '_', '-', '.', '/' or spaces")
            if objective.direction not in ("maximize", "minimize"):
                raise SweepConfigError(f"{where}.direction: must be maximize or minimize, got {objective.direction!r}")
            if builtin and BUILTIN_OBJECTIVES[objective.metric] != objective.direction:
                wanted = BUILTIN_OBJECTIVES[objective.metric]
                raise SweepConfigError(f"{where}.direction: {objective.metric} is only ever {wanted}d, got "
                                       f"{objective.direction}; set direction: {wanted} or drop it")
            if objective.metric in seen:
                raise SweepConfigError(f"{where}.metric: {objective.metric!r} is listed twice; each objective is a "
                                       f"different metric")
            seen.add(objective.metric)
        if self.multi_objective:
            if self.sampler not in MULTI_OBJECTIVE_SAMPLERS:
                raise SweepConfigError(f"sampler.name: {self.sampler} optimizes one objective, and this sweep has "
                                       f"{len(self.objectives)}; use one of {', '.join(MULTI_OBJECTIVE_SAMPLERS)}")
            if self.pruner == "hyperband":
                raise SweepConfigError("pruner.name: hyperband compares one objective; a sweep of several prunes "
                                       "with median (each objective against its own median) or none")
            if self.source == "mlflow":
                raise SweepConfigError("objective.source: mlflow reads one metric from the run; a command with "
                                       "several objectives prints them as `sweep: name=value` lines (drop source:)")
        if builtin:
            unknown = [name for name in self.constraints.metrics_named() if name not in BUILTIN_REPORTS]
            if unknown:
                raise SweepConfigError(f"constraints: the built-in trainer reports no {unknown[0]!r}; bound one of "
                                       f"{', '.join(BUILTIN_REPORTS)}")

    def to_yaml(self) -> str:
        """The resolved config, in the file format from_file reads (stored with the sweep)."""
        return yaml.safe_dump(self.to_file_dict(), sort_keys=False)

    def to_file_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name, "experiment": self.experiment,
            "objective": self._objective_yaml(),
            "trials": self.trials, "timeout": self.timeout,
            "sampler": {"name": self.sampler, "seed": self.seed},
            "pruner": {"name": self.pruner, "startup_trials": self.pruner_startup_trials,
                       "warmup_epochs": self.pruner_warmup_epochs},
            "trainer": self.trainer.to_yaml(),
            "data": {"source": self.data, "text_column": self.text_column, "label_column": self.label_column},
            "heartbeat": self.heartbeat,
            "fixed": dict(self.fixed),
            "space": {name: to_yaml_dict(dimension) for name, dimension in self.space.items()},
        }
        if not self.trainer.builtin:
            del out["data"]  # only the built-in trainer reads data; a function loads its own
        if self.repeats != "train":
            out["repeats"] = self.repeats  # stored only when set: configs of earlier sweeps read the same
        if self.constraints:
            out["constraints"] = self.constraints.to_yaml()
        if self.start_with:
            out["start_with"] = [dict(params) for params in self.start_with]  # stored only when set, as repeats
        if self.run_name is not None:
            out["run_name"] = self.run_name  # stored only when set, as repeats
        # stored only when set: configs of earlier sweeps read the same
        stop = {key: value for key, value in (("patience", self.stop_patience), ("target", self.stop_target))
                if value is not None}
        if stop:
            out["stop"] = stop
        budget = {key: value for key, value in (("seconds", self.budget_seconds),
                                                ("trial_seconds", self.budget_trial_seconds)) if value is not None}
        if budget:
            out["budget"] = budget
        if self.warm_start is not None:
            out["warm_start"] = {"sweep": self.warm_start}
        resources = self.resources.to_yaml()
        if resources is not None:
            out["resources"] = resources  # what a trial needs is the sweep's; where it runs (executor:) is not
        return out

    def _objective_yaml(self) -> dict[str, str] | list[dict[str, str]]:
        first = {"metric": self.metric, "direction": self.direction,
                 **({"source": self.source} if self.source != "report" else {})}
        if not self.multi_objective:
            return first
        return [first, *(objective.to_yaml() for objective in self.more_objectives)]

    def replace(self, **changes: Any) -> SweepConfig:
        return dataclasses.replace(self, **changes)


def default_config_text() -> str:
    return resources.files("sweep").joinpath(DEFAULT_CONFIG).read_text(encoding="utf-8")


def load_config(path: str | Path | None = None, overrides: Mapping[str, Any] | None = None) -> SweepConfig:
    """The one place where precedence lives: CLI flag > config file > built-in default file.

    ``overrides`` holds flags the user gave (None values are ignored), under SweepConfig field names;
    on, address, workers and jobs go over the file's executor: section.
    """
    if path is None:
        text, source = default_config_text(), "built-in sentiment.yaml"
    else:
        text, source = read_config_file(Path(path)), str(path)
    values = _fields_from_file(text, source, Path(path).resolve().parent if path is not None else Path.cwd())
    try:
        SweepConfig(**values)  # the file alone: its mistakes are named as the file's
    except SweepConfigError as error:
        raise SweepConfigError(f"{source}: {error}") from None
    given = {key: value for key, value in (overrides or {}).items() if value is not None}
    flags = {key: given.pop(key, None) for key in EXECUTOR_FLAGS}
    if any(value is not None for value in flags.values()):
        try:
            given["executor"] = values.get("executor", ExecutorSpec()).with_flags(**flags)
        except SweepConfigError as error:
            raise SweepConfigError(f"command-line flag: {error}") from None
    if "metric" in given and "direction" not in given and given["metric"] in BUILTIN_OBJECTIVES:
        given["direction"] = BUILTIN_OBJECTIVES[given["metric"]]  # --metric val_loss means minimize it
    try:
        return SweepConfig(**{**values, **given})
    except SweepConfigError as error:
        raise SweepConfigError(f"command-line flag: {error}") from None


EXECUTOR_FLAGS = ("on", "address", "workers", "jobs")  # overrides merged into executor:, see with_flags


def read_config_file(file: Path) -> str:
    """A config file's text: a regular file of at most MAX_CONFIG_BYTES, read with that cap."""
    try:
        # non-blocking: opening a FIFO for reading would otherwise wait for a writer
        with open(os.open(file, os.O_RDONLY | os.O_NONBLOCK), "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                raise SweepConfigError(f"{file}: cannot read config file (not a regular file: a device, pipe or "
                                       f"folder); give --config a YAML file")
            raw = handle.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError as error:
        raise SweepConfigError(f"{file}: no such config file; check --config") from error
    except IsADirectoryError:
        raise SweepConfigError(f"{file}: cannot read config file (not a regular file: a device, pipe or folder); "
                               f"give --config a YAML file") from None
    except OSError as error:
        raise SweepConfigError(f"{file}: cannot read config file ({error})") from error
    if len(raw) > MAX_CONFIG_BYTES:
        raise SweepConfigError(f"{file}: larger than {MAX_CONFIG_BYTES // 1024} KiB; a sweep config is a short "
                               f"YAML file, check --config")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise SweepConfigError(f"{file}: cannot read config file ({error})") from error


def param_set_from_file(file: Path) -> dict[str, Any]:
    """The params of a trial to queue, from a YAML (or JSON) file: `sweep best --format yaml`'s config (its
    fixed: holds every param of the winner), `sweep best --format json`'s (its params:), or a plain mapping."""
    source = str(file)
    try:
        text = read_config_file(file)
    except SweepConfigError as error:
        raise SweepConfigError(str(error).replace("config file", "file").replace("--config", "--from")) from None
    try:
        document = yaml.load(text, Loader=UniqueKeyLoader)
    except DuplicateKeyError as error:
        raise SweepConfigError(f"{source}:{error.line}: key {shown_key(error.key)!r} appears twice; keep one") from None
    except (yaml.YAMLError, ValueError, OverflowError, RecursionError):
        raise SweepConfigError(f"{source}: not valid YAML; give a mapping of params, e.g. lr: 0.5") from None
    if isinstance(document, Mapping):
        for section in ("params", "fixed"):  # sweep best --format json, then --format yaml
            if isinstance(document.get(section), Mapping) and not isinstance(document.get("space"), Mapping):
                return dict(document[section])
        return dict(document)
    raise SweepConfigError(f"{source}: expected a mapping of params (or `sweep best --format yaml` output), got "
                           f"{_shown_value(document)}")


def config_from_yaml(text: str, source: str = "stored config") -> SweepConfig:
    """Rebuild a stored sweep's config (the study keeps its resolved YAML)."""
    return SweepConfig(**_fields_from_file(text, source, Path.cwd()))


def _fields_from_file(text: str, source: str, base: Path) -> dict[str, Any]:
    """The file's settings under SweepConfig's field names; ``base`` is where a relative trainer file is."""
    try:
        document = yaml.load(text, Loader=UniqueKeyLoader)  # a SafeLoader: no arbitrary objects
    except DuplicateKeyError as error:
        raise SweepConfigError(f"{source}:{error.line}: key {shown_key(error.key)!r} appears twice in one "
                               f"mapping; keep one") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or "invalid syntax"
        hint = "fix the syntax"
        if problem == "expected ',' or '}', but got '{'":  # a {placeholder} inside a {flow: mapping}
            hint = "quote a value that holds braces, e.g. {command: \"python train.py {x}\"}"
        raise SweepConfigError(f"{source}{where}: not valid YAML ({problem}); {hint}") from None
    except (ValueError, OverflowError) as error:  # an impossible date (2001-02-30), an int of 5,000 digits
        raise SweepConfigError(f"{source}: not valid YAML ({' '.join(str(error).split())}); fix the value") from None
    except RecursionError:
        raise SweepConfigError(f"{source}: not valid YAML (nested too deeply); fix the structure") from None
    if document is None:
        document = {}
    if not isinstance(document, Mapping):
        raise SweepConfigError(f"{source}: expected a mapping of settings at the top, got {type(document).__name__}")
    unknown = sorted(str(key) for key in document if key not in _TOP_KEYS)
    if unknown:
        raise SweepConfigError(f"{source}: unknown key {unknown[0]!r}; allowed: {', '.join(sorted(_TOP_KEYS))}")
    sections = {}
    more_objectives: tuple[Objective, ...] = ()
    objective_list = document.get("objective")
    if isinstance(objective_list, list):
        document = dict(document)
        builtin = document.get("trainer") in (None, BUILTIN)
        first, more_objectives = _objective_list(objective_list, source, builtin=builtin)
        document["objective"] = first
    for section, allowed in _SECTION_KEYS.items():
        value = document.get(section) or {}
        if not isinstance(value, Mapping):
            raise SweepConfigError(f"{source}: {section}: expected a mapping, got {value!r}")
        bad = sorted(str(key) for key in value if key not in allowed)
        if bad:
            raise SweepConfigError(f"{source}: unknown key {section}.{shown_key(bad[0])}; "
                                   f"allowed: {', '.join(sorted(allowed))}")
        sections[section] = value
    fixed = document.get("fixed") or {}
    if not isinstance(fixed, Mapping):
        raise SweepConfigError(f"{source}: fixed: expected a mapping of trainer settings, got {fixed!r}")
    try:
        trainer = parse_trainer(document.get("trainer"), base)
        if not trainer.builtin and document.get("data") is not None:
            raise SweepConfigError("data: only the built-in trainer reads data:; your trainer loads its own "
                                   "(remove data:, or pass a path under fixed:)")
        # one trial of fixed settings (`sweep best --format yaml`) needs no space, whatever the trainer
        space = parse_space(document.get("space"), required=trainer.builtin and document.get("trials") != 1)
    except SweepConfigError as error:
        raise SweepConfigError(f"{source}: {error}") from None
    try:
        values: dict[str, Any] = {"space": space, "fixed": dict(fixed), "trainer": trainer,
                                  "executor": parse_executor(document.get("executor")),
                                  "resources": parse_resources(document.get("resources")),
                                  "constraints": parse_constraints(document.get("constraints"), base)}
        if more_objectives:
            values["more_objectives"] = more_objectives
    except SweepConfigError as error:
        raise SweepConfigError(f"{source}: {error}") from None
    plain = {"name": "name", "experiment": "experiment", "trials": "trials", "timeout": "timeout",
             "storage": "storage", "tracking_uri": "tracking_uri", "heartbeat": "heartbeat", "repeats": "repeats",
             "start_with": "start_with", "run_name": "run_name"}
    values.update({target: document[key] for key, target in plain.items() if document.get(key) is not None})
    nested = {("objective", "metric"): "metric", ("objective", "direction"): "direction",
              ("objective", "source"): "source",
              ("sampler", "name"): "sampler", ("sampler", "seed"): "seed", ("pruner", "name"): "pruner",
              ("pruner", "startup_trials"): "pruner_startup_trials",
              ("pruner", "warmup_epochs"): "pruner_warmup_epochs", ("data", "source"): "data",
              ("data", "text_column"): "text_column", ("data", "label_column"): "label_column",
              ("stop", "patience"): "stop_patience", ("stop", "target"): "stop_target",
              ("budget", "seconds"): "budget_seconds", ("budget", "trial_seconds"): "budget_trial_seconds",
              ("warm_start", "sweep"): "warm_start"}
    values.update({target: sections[section][key] for (section, key), target in nested.items()
                   if key in sections[section]})
    if values.get("direction") == "":
        raise SweepConfigError(f"{source}: objective.direction: must be maximize or minimize, got ''")
    if "metric" in values and "direction" not in values and isinstance(values["metric"], str) and trainer.builtin:
        values["direction"] = BUILTIN_OBJECTIVES.get(values["metric"], "maximize")
    if not trainer.builtin:
        values.setdefault("experiment", "sweep")
        values.setdefault("metric", "values_0" if more_objectives else "value")
    return values


def _objective_list(entries: list[Any], source: str, *, builtin: bool) -> tuple[dict[str, Any], tuple[Objective, ...]]:
    """``objective:`` as a list (several objectives): the first as the usual section, and the others. A metric left
    out is named as Optuna names a multi-objective study's values: values_0, values_1, ..."""
    if not entries:
        raise SweepConfigError(f"{source}: objective: an empty list; give one {{metric, direction}} per objective")
    parsed = []
    for position, entry in enumerate(entries):
        where = f"objective[{position}]"
        if not isinstance(entry, Mapping):
            raise SweepConfigError(f"{source}: {where}: expected a mapping such as {{metric: val_accuracy, "
                                   f"direction: maximize}}, got {entry!r}")
        allowed = OBJECTIVE_KEYS if position == 0 else OBJECTIVE_KEYS - {"source"}
        bad = sorted(str(key) for key in entry if key not in allowed)
        if bad:
            raise SweepConfigError(f"{source}: unknown key {where}.{shown_key(bad[0])}; allowed: "
                                   f"{', '.join(sorted(allowed))}")
        metric = entry.get("metric", None if builtin else f"values_{position}")
        if metric is None:
            raise SweepConfigError(f"{source}: {where}.metric: required; use one of {', '.join(BUILTIN_OBJECTIVES)}")
        if builtin and not (isinstance(metric, str) and metric in BUILTIN_OBJECTIVES):
            raise SweepConfigError(f"{source}: {where}.metric: {metric!r} is not supported; use one of "
                                   f"{', '.join(BUILTIN_OBJECTIVES)}")
        direction = entry.get("direction")
        if direction is None and builtin and isinstance(metric, str):
            direction = BUILTIN_OBJECTIVES.get(metric)
        if direction is None:
            raise SweepConfigError(f"{source}: {where}.direction: required for {metric!r}; add direction: maximize "
                                   f"or direction: minimize")
        parsed.append((metric, direction, entry))
    metric, direction, entry = parsed[0]
    first = {"metric": metric, "direction": direction, **({"source": entry["source"]} if "source" in entry else {})}
    if len(parsed) == 1:
        return first, ()
    return first, tuple(Objective(metric, direction) for metric, direction, _ in parsed[1:])


class DuplicateKeyError(yaml.YAMLError):
    """A mapping in a config file holds the same key twice (YAML would silently keep the last)."""

    def __init__(self, key: Any, line: int) -> None:
        super().__init__(f"duplicate key {key!r} at line {line}")
        self.key, self.line = key, line


class UniqueKeyLoader(yaml.SafeLoader):
    """yaml.SafeLoader that refuses a key given twice in one mapping, naming the key and its line."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _value in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<:` merges are SafeLoader's own business
            key = self.construct_object(key_node, deep=deep)
            try:
                duplicate = key in seen
            except TypeError:  # an unhashable key: SafeLoader reports it itself
                continue
            if duplicate:
                raise DuplicateKeyError(key, key_node.start_mark.line + 1)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _positive_int(key: str, value: Any, *, allow_zero: bool = False, at_most: int | None = None,
                  optional: bool = False) -> None:
    if optional and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < (0 if allow_zero else 1):
        raise SweepConfigError(f"{key}: must be an integer >= {0 if allow_zero else 1}, got {_shown_value(value)}")
    if at_most is not None and value > at_most:
        raise SweepConfigError(f"{key}: must be at most {at_most:,}, got {_shown_value(value)}")


def _shown_value(value: Any) -> str:
    """A value in a one-line message, cut short: a 5,000-digit integer is not worth printing whole."""
    text = repr(value) if not isinstance(value, int) or value.bit_length() < 200 else "an integer of over 60 digits"
    return text if len(text) <= 80 else f"{text[:77]}..."


def _check_trainer_settings(space: Mapping[str, Dimension], fixed: Mapping[str, Any]) -> None:
    """Every tuned or fixed name is a trainer setting, and every bound is one the trainer accepts."""
    names = TrainConfig.field_names()
    types = {f.name: f.type for f in dataclasses.fields(TrainConfig)}
    for where, keys in (("space", space), ("fixed", fixed)):
        for key in keys:
            if key not in names:
                raise SweepConfigError(f"{where}.{shown_key(key)}: the trainer has no setting {key!r}; "
                                       f"use one of {', '.join(names)}")
    both = sorted(set(space) & set(fixed))
    if both:
        raise SweepConfigError(f"fixed.{both[0]}: also in space; a setting is either tuned or fixed")
    if "seed" in space:
        raise SweepConfigError("space.seed: the split seed cannot be tuned (it changes the validation set); "
                               "set it under fixed:")
    try:
        TrainConfig.from_mapping(dict(fixed))
    except ConfigError as error:
        raise SweepConfigError(f"fixed: {error}") from None
    for name, dimension in space.items():
        if types[name] == "int" and isinstance(dimension, FloatRange):
            raise SweepConfigError(f"space.{name}: the trainer takes an integer; use type: int")
        for value in _corners(dimension):
            try:
                TrainConfig.from_mapping({**fixed, name: value})
            except ConfigError as error:
                raise SweepConfigError(f"space.{name}: {value!r} is not a valid {name} ({error})") from None


def _check_function_settings(space: Mapping[str, Dimension], fixed: Mapping[str, Any]) -> None:
    """A function takes any names; a name is still either tuned or fixed, and fixed values are plain YAML."""
    both = sorted(set(space) & set(fixed))
    if both:
        raise SweepConfigError(f"fixed.{shown_key(both[0])}: also in space; a setting is either tuned or fixed")
    for key, value in fixed.items():
        if not (value is None or isinstance(value, (bool, int, float, str, list, dict))):
            raise SweepConfigError(f"fixed.{shown_key(key)}: {_shown_value(value)} is not a number, string, "
                                   f"boolean, list or mapping")


CONVERSIONS = {"r": repr, "s": str, "a": ascii}  # a template field's !r, !s, !a


def _corners(dimension: Dimension) -> tuple[Any, ...]:
    if isinstance(dimension, Categorical):
        return dimension.choices
    return (dimension.low, dimension.high)


# samplers whose Optuna implementation imports a package of its own: (module, how to install it)
SAMPLER_PACKAGES = {"cmaes": ("cmaes", "pip install cmaes"), "gp": ("torch", "pip install 'sweep[gp]'")}


def check_sampler_packages(sampler: str) -> None:
    """A sampler whose package is missing is refused before anything is written: its trials would all fail."""
    needed = SAMPLER_PACKAGES.get(sampler)
    if needed is not None and importlib.util.find_spec(needed[0]) is None:
        raise SweepConfigError(f"sampler {sampler!r} needs the {needed[0]!r} package, which is not installed: "
                               f"{needed[1]}, or choose another --sampler")


def registered_model_name(value: str | None) -> str | None:
    """`--register NAME`, checked before anything is written: the same rule as sweep and experiment names."""
    if value is not None and not NAME_PATTERN.match(value):
        raise SweepConfigError(f"--register: {value!r} is not a valid model name; use 1-100 letters, digits, "
                               f"'.', '_' or '-', starting with a letter or digit")
    return value
