"""SweepConfig: a YAML file plus CLI overrides, validated in one place before anything is written."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from sweep.errors import SweepConfigError
from sweep.space import Categorical, Dimension, FloatRange, parse_space, shown_key, to_yaml_dict
from trainer import ConfigError, TrainConfig

SAMPLERS = ("tpe", "random", "grid", "cmaes", "gp", "qmc")
PRUNERS = ("median", "hyperband", "none")
METRICS = {"val_accuracy": "maximize", "val_loss": "minimize"}  # select on validation, report test
DEFAULT_CONFIG = "sentiment.yaml"  # shipped inside the package; configs/sentiment.yaml is the same file
# safe in file names and store queries; \Z, not $, which also matches before a final newline
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}\Z")
_TOP_KEYS = {"name", "experiment", "objective", "trials", "timeout", "sampler", "pruner", "data", "fixed",
             "space", "storage", "tracking_uri", "heartbeat"}
_SECTION_KEYS = {"objective": {"metric", "direction"}, "sampler": {"name", "seed"},
                 "pruner": {"name", "startup_trials", "warmup_epochs"},
                 "data": {"source", "text_column", "label_column"}}


@dataclass(frozen=True)
class SweepConfig:
    space: dict[str, Dimension]
    name: str | None = None  # None: generated when the sweep starts
    experiment: str = "sentiment"
    metric: str = "val_accuracy"
    direction: str = "maximize"
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

    def __post_init__(self) -> None:
        for key in ("name", "experiment"):
            value = getattr(self, key)
            if value is not None and not (isinstance(value, str) and NAME_PATTERN.match(value)):
                raise SweepConfigError(f"{key}: {value!r} is not a valid name; use 1-100 letters, digits, "
                                       f"'.', '_' or '-', starting with a letter or digit")
        if not isinstance(self.metric, str) or self.metric not in METRICS:  # a list is unhashable
            raise SweepConfigError(f"objective.metric: {self.metric!r} is not supported; use one of "
                                   f"{', '.join(METRICS)}")
        if self.direction not in ("maximize", "minimize"):
            raise SweepConfigError(f"objective.direction: must be maximize or minimize, got {self.direction!r}")
        _positive_int("trials", self.trials)
        _positive_int("heartbeat", self.heartbeat)
        if self.timeout is not None and (isinstance(self.timeout, bool) or not isinstance(self.timeout, (int, float))
                                         or not self.timeout > 0):
            raise SweepConfigError(f"timeout: must be a positive number of seconds, got {self.timeout!r}")
        if self.sampler not in SAMPLERS:
            raise SweepConfigError(f"sampler.name: {self.sampler!r} is unknown; use one of {', '.join(SAMPLERS)}")
        if self.seed is not None and (isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0):
            raise SweepConfigError(f"sampler.seed: must be a non-negative integer, got {self.seed!r}")
        if self.pruner not in PRUNERS:
            raise SweepConfigError(f"pruner.name: {self.pruner!r} is unknown; use one of {', '.join(PRUNERS)}")
        _positive_int("pruner.startup_trials", self.pruner_startup_trials, allow_zero=True)
        _positive_int("pruner.warmup_epochs", self.pruner_warmup_epochs, allow_zero=True)
        if METRICS[self.metric] != self.direction:
            raise SweepConfigError(f"objective.direction: {self.metric} is only ever {METRICS[self.metric]}d, "
                                   f"got {self.direction}; set direction: {METRICS[self.metric]} or drop it")
        for key in ("storage", "tracking_uri"):
            value = getattr(self, key)
            if value is not None and not (isinstance(value, str) and value.strip()):
                raise SweepConfigError(f"{key}: must be a URL or path string, got {value!r}")
        for key in ("data", "text_column", "label_column"):
            if not isinstance(getattr(self, key), str) or not getattr(self, key):
                raise SweepConfigError(f"data.{key.replace('data', 'source')}: must be a non-empty string")
        _check_trainer_settings(self.space, self.fixed)

    def to_yaml(self) -> str:
        """The resolved config, in the file format from_file reads (stored with the sweep)."""
        return yaml.safe_dump(self.to_file_dict(), sort_keys=False)

    def to_file_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name, "experiment": self.experiment,
            "objective": {"metric": self.metric, "direction": self.direction},
            "trials": self.trials, "timeout": self.timeout,
            "sampler": {"name": self.sampler, "seed": self.seed},
            "pruner": {"name": self.pruner, "startup_trials": self.pruner_startup_trials,
                       "warmup_epochs": self.pruner_warmup_epochs},
            "data": {"source": self.data, "text_column": self.text_column, "label_column": self.label_column},
            "heartbeat": self.heartbeat,
            "fixed": dict(self.fixed),
            "space": {name: to_yaml_dict(dimension) for name, dimension in self.space.items()},
        }
        return out

    def replace(self, **changes: Any) -> SweepConfig:
        return dataclasses.replace(self, **changes)


def default_config_text() -> str:
    return resources.files("sweep").joinpath(DEFAULT_CONFIG).read_text(encoding="utf-8")


def load_config(path: str | Path | None = None, overrides: Mapping[str, Any] | None = None) -> SweepConfig:
    """The one place where precedence lives: CLI flag > config file > built-in default file.

    ``overrides`` holds flags the user gave (None values are ignored), under SweepConfig field names.
    """
    if path is None:
        text, source = default_config_text(), "built-in sentiment.yaml"
    else:
        file = Path(path)
        try:
            text, source = file.read_text(encoding="utf-8"), str(file)
        except FileNotFoundError as error:
            raise SweepConfigError(f"{file}: no such config file; check --config") from error
        except (OSError, UnicodeDecodeError) as error:
            raise SweepConfigError(f"{file}: cannot read config file ({error})") from error
    values = _fields_from_file(text, source)
    try:
        SweepConfig(**values)  # the file alone: its mistakes are named as the file's
    except SweepConfigError as error:
        raise SweepConfigError(f"{source}: {error}") from None
    given = {key: value for key, value in (overrides or {}).items() if value is not None}
    if "metric" in given and "direction" not in given and given["metric"] in METRICS:
        given["direction"] = METRICS[given["metric"]]  # --metric val_loss means minimize it
    try:
        return SweepConfig(**{**values, **given})
    except SweepConfigError as error:
        raise SweepConfigError(f"command-line flag: {error}") from None


def config_from_yaml(text: str, source: str = "stored config") -> SweepConfig:
    """Rebuild a stored sweep's config (the study keeps its resolved YAML)."""
    return SweepConfig(**_fields_from_file(text, source))


def _fields_from_file(text: str, source: str) -> dict[str, Any]:
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or "invalid syntax"
        raise SweepConfigError(f"{source}{where}: not valid YAML ({problem}); fix the syntax") from None
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
        space = parse_space(document.get("space"))
    except SweepConfigError as error:
        raise SweepConfigError(f"{source}: {error}") from None
    values: dict[str, Any] = {"space": space, "fixed": dict(fixed)}
    plain = {"name": "name", "experiment": "experiment", "trials": "trials", "timeout": "timeout",
             "storage": "storage", "tracking_uri": "tracking_uri", "heartbeat": "heartbeat"}
    values.update({target: document[key] for key, target in plain.items() if document.get(key) is not None})
    nested = {("objective", "metric"): "metric", ("objective", "direction"): "direction",
              ("sampler", "name"): "sampler", ("sampler", "seed"): "seed", ("pruner", "name"): "pruner",
              ("pruner", "startup_trials"): "pruner_startup_trials",
              ("pruner", "warmup_epochs"): "pruner_warmup_epochs", ("data", "source"): "data",
              ("data", "text_column"): "text_column", ("data", "label_column"): "label_column"}
    values.update({target: sections[section][key] for (section, key), target in nested.items()
                   if key in sections[section]})
    if "metric" in values and "direction" not in values and isinstance(values["metric"], str):
        values["direction"] = METRICS.get(values["metric"], "maximize")
    return values


def _positive_int(key: str, value: Any, *, allow_zero: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < (0 if allow_zero else 1):
        raise SweepConfigError(f"{key}: must be an integer >= {0 if allow_zero else 1}, got {value!r}")


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


def _corners(dimension: Dimension) -> tuple[Any, ...]:
    if isinstance(dimension, Categorical):
        return dimension.choices
    return (dimension.low, dimension.high)


def registered_model_name(value: str | None) -> str | None:
    """`--register NAME`, checked before anything is written: the same rule as sweep and experiment names."""
    if value is not None and not NAME_PATTERN.match(value):
        raise SweepConfigError(f"--register: {value!r} is not a valid model name; use 1-100 letters, digits, "
                               f"'.', '_' or '-', starting with a letter or digit")
    return value
