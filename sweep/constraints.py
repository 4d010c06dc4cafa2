"""What a feasible trial meets: bounds on its metrics (``model_bytes <= 200000``), or the user's own function.

A constraint's value follows Optuna's rule: a trial is feasible when every value is zero or less. A bound
``metric <= limit`` is ``value - limit``, ``metric >= limit`` is ``limit - value``. The same bounds pick one
trial of a Pareto front (`sweep best --pick "model_bytes<=50000"`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sweep.errors import SweepConfigError
from sweep.trainers.spec import function_reference  # the trainer's rule for a function reference

BOUND = re.compile(r"^\s*(?P<metric>[A-Za-z0-9_][A-Za-z0-9_.\-/ ]*?)\s*(?P<op><=|>=)\s*(?P<limit>\S+)\s*\Z")
OPERATORS = ("<=", ">=")


@dataclass(frozen=True)
class Bound:
    """``metric <= limit`` or ``metric >= limit``."""

    metric: str
    op: str
    limit: float

    @classmethod
    def parse(cls, text: Any, where: str) -> Bound:
        match = BOUND.match(text) if isinstance(text, str) else None
        limit = _number(match["limit"]) if match is not None else None
        if match is None or limit is None:
            raise SweepConfigError(f"{where}: {text!r} is not a bound; write metric <= number or metric >= number, "
                                   f"e.g. \"model_bytes <= 200000\"")
        return cls(match["metric"], match["op"], limit)

    def violation(self, metrics: Mapping[str, float]) -> float | None:
        """How far the trial's metric is beyond the limit (zero or less: met); None when it has no such metric."""
        value = metrics.get(self.metric)
        if value is None or not math.isfinite(value):
            return None
        return value - self.limit if self.op == "<=" else self.limit - value

    def __str__(self) -> str:
        return f"{self.metric} {self.op} {self.limit:g}"


@dataclass(frozen=True)
class Constraints:
    """The sweep's constraints: bounds on metrics, or ``function`` (``file.py:name``: Optuna's constraints_func,
    given the finished trial, returning one value per constraint). Empty: every trial is feasible."""

    bounds: tuple[Bound, ...] = ()
    function: str | None = None

    def __bool__(self) -> bool:
        return bool(self.bounds) or self.function is not None

    def to_yaml(self) -> list[str] | dict[str, str] | None:
        if self.function is not None:
            return {"function": self.function}
        return [str(bound) for bound in self.bounds] or None

    def describe(self) -> str:
        return f"function {self.function}" if self.function is not None else "; ".join(map(str, self.bounds))

    def metrics_named(self) -> list[str]:
        return [bound.metric for bound in self.bounds]


def parse_constraints(value: Any, base: Path) -> Constraints:
    """The config's ``constraints:``: a list of bounds, or ``{function: file.py:name}``."""
    if value is None:
        return Constraints()
    if isinstance(value, Mapping):
        if set(value) != {"function"}:
            raise SweepConfigError(f"constraints: expected a list of bounds or {{function: file.py:name}}, got keys "
                                   f"{', '.join(sorted(map(str, value)))}")
        return Constraints(function=function_reference(value["function"], base, key="constraints.function"))
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, Sequence) or not value:
        raise SweepConfigError("constraints: expected a list of bounds such as [\"model_bytes <= 200000\"], or "
                               "{function: file.py:name}")
    return Constraints(tuple(Bound.parse(text, f"constraints[{i}]") for i, text in enumerate(value)))


def parse_pick(text: str) -> tuple[Bound, ...]:
    """`sweep best --pick "model_bytes<=50000, train_seconds<=2"`: bounds separated by commas."""
    parts = [part for part in text.split(",") if part.strip()]
    if not parts:
        raise SweepConfigError("--pick: give a bound such as \"model_bytes<=50000\"")
    return tuple(Bound.parse(part, "--pick") for part in parts)


def violations(bounds: Sequence[Bound], metrics: Mapping[str, float]) -> dict[str, float]:
    """Each bound's value for a trial's ``metrics``: +inf for a metric the trial does not have (it is not met)."""
    out = {}
    for bound in bounds:
        value = bound.violation(metrics)
        out[str(bound)] = math.inf if value is None else value
    return out


def feasible(values: Mapping[str, float] | Sequence[float]) -> bool:
    """Optuna's rule: every constraint value zero or less."""
    numbers = values.values() if isinstance(values, Mapping) else values
    return all(value <= 0.0 for value in numbers)


def _number(text: str) -> float | None:
    try:
        value = float(text.replace("_", ""))
    except ValueError:
        return None
    return value if math.isfinite(value) else None
