"""The search space: YAML forms of Optuna's distributions, and one trial's suggestions.

Nothing here imports optuna: ``suggest`` calls the suggest_* methods of the trial it is given, so
FixedTrial, a real Trial, or a test double all work.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import yaml

from sweep.errors import SweepConfigError

Choice = bool | int | float | str | None


class SuggestingTrial(Protocol):
    def suggest_float(self, name: str, low: float, high: float, *, step: float | None = None,
                      log: bool = False) -> float: ...

    def suggest_int(self, name: str, low: int, high: int, *, step: int = 1, log: bool = False) -> int: ...

    def suggest_categorical(self, name: str, choices: Any) -> Any: ...


@dataclass(frozen=True)
class FloatRange:
    low: float
    high: float
    log: bool = False
    step: float | None = None

    def suggest(self, trial: SuggestingTrial, name: str) -> float:
        return trial.suggest_float(name, self.low, self.high, step=self.step, log=self.log)

    def grid(self) -> list[Choice] | None:
        if self.step is None:
            return None
        count = math.floor((self.high - self.low) / self.step + 1e-9) + 1
        return [self.low + i * self.step for i in range(count)]


@dataclass(frozen=True)
class IntRange:
    low: int
    high: int
    log: bool = False
    step: int = 1

    def suggest(self, trial: SuggestingTrial, name: str) -> int:
        return trial.suggest_int(name, self.low, self.high, step=self.step, log=self.log)

    def grid(self) -> list[Choice] | None:
        return list(range(self.low, self.high + 1, self.step))


@dataclass(frozen=True)
class Categorical:
    choices: tuple[Choice, ...]

    def suggest(self, trial: SuggestingTrial, name: str) -> Choice:
        return trial.suggest_categorical(name, self.choices)

    def grid(self) -> list[Choice] | None:
        return list(self.choices)


Dimension = FloatRange | IntRange | Categorical
_KEYS = {"float": {"type", "low", "high", "log", "step"}, "int": {"type", "low", "high", "log", "step"},
         "categorical": {"type", "choices"}}


def parse_dimension(name: str, spec: Any) -> Dimension:
    """One entry of `space:` -> a Dimension; every mistake names `space.<name>` and the fix."""
    where = f"space.{shown_key(name)}"
    if isinstance(spec, list):  # shorthand: a plain list is a categorical
        spec = {"type": "categorical", "choices": spec}
    if not isinstance(spec, Mapping):
        raise SweepConfigError(f"{where}: expected a mapping like {{type: float, low: 0.01, high: 1}}, got {spec!r}")
    kind = spec.get("type")
    if not isinstance(kind, str) or kind not in _KEYS:  # a list or mapping is unhashable
        raise SweepConfigError(f"{where}.type: must be one of float, int, categorical; got {kind!r}")
    unknown = sorted(set(spec) - _KEYS[kind])
    if unknown:
        raise SweepConfigError(f"{where}: unknown key {unknown[0]!r} for type {kind}; "
                               f"allowed: {', '.join(sorted(_KEYS[kind]))}")
    if kind == "categorical":
        return _categorical(where, spec.get("choices"))
    return _range(where, kind, spec)


def _categorical(where: str, choices: Any) -> Categorical:
    if not isinstance(choices, list) or not choices:
        raise SweepConfigError(f"{where}.choices: must be a non-empty list")
    for choice in choices:
        if not (choice is None or isinstance(choice, (bool, int, float, str))):
            raise SweepConfigError(f"{where}.choices: {choice!r} is not a number, string, boolean or null")
    for i, choice in enumerate(choices):
        # Optuna finds a choice with ==, so 1 and 1.0 are one choice; True and 1 stay apart by type
        if any(choice == other and isinstance(choice, bool) == isinstance(other, bool) for other in choices[:i]):
            raise SweepConfigError(f"{where}.choices: {choice!r} appears twice; remove one")
    return Categorical(tuple(choices))


def _range(where: str, kind: str, spec: Mapping[str, Any]) -> Dimension:
    number: tuple[type, ...] = (int,) if kind == "int" else (int, float)
    for key in ("low", "high"):
        value = spec.get(key)
        if isinstance(value, bool) or not isinstance(value, number) or not _finite(value):
            raise SweepConfigError(f"{where}.{key}: must be {'an integer' if kind == 'int' else 'a number'}, "
                                   f"got {value!r}")
    low, high = spec["low"], spec["high"]
    log, step = spec.get("log", False), spec.get("step")
    if not isinstance(log, bool):
        raise SweepConfigError(f"{where}.log: must be true or false, got {log!r}")
    if low >= high:
        raise SweepConfigError(f"{where}: low must be < high (got low={low}, high={high}); swap or widen them")
    if log and low <= 0:
        raise SweepConfigError(f"{where}: a log scale needs low > 0 (got low={low}); raise low or set log: false")
    if step is not None:
        if isinstance(step, bool) or not isinstance(step, number) or not _finite(step) or not step > 0:
            raise SweepConfigError(f"{where}.step: must be a positive {'integer' if kind == 'int' else 'number'}")
        if log and step != 1:
            raise SweepConfigError(f"{where}: step and log: true cannot be combined; drop one")
    if kind == "int":
        return IntRange(int(low), int(high), log, int(step) if step is not None else 1)
    return FloatRange(float(low), float(high), log, float(step) if step is not None and not log else None)


def _finite(value: int | float) -> bool:
    """math.isfinite, except that an int too large for a float (400 digits of YAML) is not finite either."""
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def shown_key(key: Any) -> str:
    """A user's key as it goes into a one-line message: newlines and control characters escaped."""
    return repr(str(key))[1:-1]


def parse_space(spec: Any, *, required: bool = True) -> dict[str, Dimension]:
    """`space:` -> dimensions; a function trainer may leave it out (its fit suggests its own, define-by-run)."""
    if not required and (spec is None or (isinstance(spec, Mapping) and not spec)):
        return {}
    if not isinstance(spec, Mapping) or not spec:
        raise SweepConfigError("space: must map at least one trainer setting to a range, e.g. "
                               "lr: {type: float, low: 0.01, high: 5, log: true}")
    return {str(name): parse_dimension(str(name), value) for name, value in spec.items()}


def suggest(trial: SuggestingTrial, space: Mapping[str, Dimension]) -> dict[str, Any]:
    """Ask the trial for one value per dimension, in the space's order."""
    return {name: dimension.suggest(trial, name) for name, dimension in space.items()}


def grid(space: Mapping[str, Dimension]) -> dict[str, list[Choice]]:
    """The grid sampler's search space; a continuous float without a step has no grid."""
    out: dict[str, list[Choice]] = {}
    for name, dimension in space.items():
        values = dimension.grid()
        if values is None:
            raise SweepConfigError(f"space.{name}: the grid sampler needs a step (or choices) for every "
                                   f"float; add step: or use another --sampler")
        out[name] = values
    return out


def same_choice(value: Any, choice: Choice) -> bool:
    """Optuna finds a choice with ==, so 1 and 1.0 are one choice; True and 1 stay apart by type."""
    return value == choice and isinstance(value, bool) == isinstance(choice, bool)


def outside(dimension: Dimension, value: Any) -> str | None:
    """Why ``value`` is not a point of ``dimension`` ("outside 0.01..5", "not among the choices"), else None."""
    if isinstance(dimension, Categorical):
        if any(same_choice(value, choice) for choice in dimension.choices):
            return None
        return f"not among the choices {', '.join(repr(choice) for choice in dimension.choices)}"
    if wrong_type(dimension, value):
        return f"not {'an integer' if isinstance(dimension, IntRange) else 'a number'}"
    if not dimension.low <= value <= dimension.high:
        return f"outside the range {dimension.low}..{dimension.high}"
    if dimension.step is not None and not _on_step(value - dimension.low, dimension.step):
        return f"not on the range's step of {dimension.step} from {dimension.low}"
    return None


def _on_step(offset: float, step: float) -> bool:
    """Whether ``offset`` is a whole number of steps (as Optuna's own check, with room for float rounding)."""
    steps = offset / step
    return abs(steps - round(steps)) < 1e-8


def wrong_type(dimension: Dimension, value: Any) -> bool:
    """Whether ``value`` cannot be a value of ``dimension`` at all (whatever its range): a text for a number,
    a fraction for an integer, a value not among a categorical's choices."""
    if isinstance(dimension, Categorical):
        return outside(dimension, value) is not None
    integer = isinstance(dimension, IntRange)
    return isinstance(value, bool) or not isinstance(value, int if integer else (int, float)) or not _finite(value)


def parse_value(dimension: Dimension | None, text: str) -> Any:
    """A value given as text (`lr=0.5` on the command line) read as ``dimension`` holds it: an integer, a number,
    or the categorical choice it spells (``true``, ``3``, ``adam``); without a dimension, as YAML reads it."""
    if isinstance(dimension, Categorical):
        for choice in dimension.choices:
            if text == str(choice) or text == _yaml_text(choice):
                return choice
        return _yaml_scalar(text)
    if isinstance(dimension, IntRange):
        try:
            return int(text)
        except ValueError:
            return _yaml_scalar(text)
    if isinstance(dimension, FloatRange):
        try:
            return float(text)
        except ValueError:
            return _yaml_scalar(text)
    return _yaml_scalar(text)


def _yaml_text(choice: Choice) -> str:
    """A choice as YAML writes it (true, null): what a user types for a categorical's bool or null."""
    return str(yaml.safe_dump(choice, default_flow_style=True)).removesuffix("\n...\n").strip()


def _yaml_scalar(text: str) -> Any:
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    return value if value is None or isinstance(value, (bool, int, float, str)) else text


def to_yaml_dict(dimension: Dimension) -> dict[str, Any]:
    """The YAML form of a dimension, as parse_dimension reads it back."""
    if isinstance(dimension, Categorical):
        return {"type": "categorical", "choices": list(dimension.choices)}
    out: dict[str, Any] = {"type": "int" if isinstance(dimension, IntRange) else "float",
                           "low": dimension.low, "high": dimension.high}
    if dimension.log:
        out["log"] = True
    if dimension.step not in (None, 1) or (isinstance(dimension, FloatRange) and dimension.step is not None):
        out["step"] = dimension.step
    return out
