"""A study's trials as plain values, read without Optuna: what `sweep best`, `ls` and `show` need.

Importing Optuna costs more than these commands may take, and replaying a large study through it costs seconds:
the readers (journal_reading.py, sql_reading.py) read the stored records directly into these values, and the
replay through Optuna (reading.py's fallback) turns its trials into the same values, so one set of rules ranks
and counts them whatever the source. Nothing here imports Optuna.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from numbers import Real
from typing import Any

from sweep.constraints import feasible
from sweep.errors import NotFoundError
from sweep.records import Counts
from sweep.states import SweepStatus, TrialState
from sweep.study.attrs import SweepAttrs

# the trial system attributes the commands read: Optuna's constraints (both of its forms), a retry's attempts, a
# queued trial's params; the rest (sampler state, heartbeats) is left out of what is read and cached
CONSTRAINTS_KEY = "constraints"
RETRY_HISTORY_KEY = "retry_history"
FIXED_PARAMS_KEY = "fixed_params"
INTERRUPTED_ATTR = "sweep.interrupted"  # TrialAttrs.interrupted as stored (census.INTERRUPTED_ATTR)
REUSED_ATTR = "sweep.same_as"  # TrialAttrs.same_as as stored (census.REUSED_ATTR)
WORKER_ATTR = "sweep.worker"  # TrialAttrs.worker as stored: liveness reads it of running trials
# the user attributes every trial of a brief read keeps (TrialSource.trials): what count_plain reads, and liveness
# (the worker, read with the times); the rest (run ids, metrics, errors) is read for the trials a command shows
BRIEF_USER_ATTRS = (REUSED_ATTR, INTERRUPTED_ATTR)


class UnreadableStore(Exception):
    """A store a plain reader cannot read after all (a record it does not know): read it through Optuna instead."""


def kept_system_attr(key: str) -> bool:
    """Whether a trial system attribute is one the commands read."""
    return key in (RETRY_HISTORY_KEY, FIXED_PARAMS_KEY, CONSTRAINTS_KEY) or key.startswith(CONSTRAINTS_KEY + ":")


@dataclass
class PlainTrial:
    """A trial as Optuna's FrozenTrial holds it, in plain values (only the system attributes the commands read).

    Never changed once read; not a frozen dataclass only because the readers build one per trial, and a frozen
    dataclass sets each field through object.__setattr__ (several times slower to build)."""

    number: int
    state: TrialState
    values: tuple[float, ...] | None
    params: dict[str, Any]
    user_attrs: Mapping[str, Any]
    system_attrs: Mapping[str, Any] = field(default_factory=dict)
    # when it started and ended, as stored: only `sweep ls` of a running sweep reads them, so they are turned into
    # Optuna's form (datetime_start, datetime_complete) on first use (see local_time)
    started: dt.datetime | str | None = None
    completed: dt.datetime | str | None = None

    @cached_property
    def datetime_start(self) -> dt.datetime | None:
        return local_time(self.started)

    @cached_property
    def datetime_complete(self) -> dt.datetime | None:
        return local_time(self.completed)

    @property
    def constraints(self) -> dict[str, float]:
        """Optuna's rule for reading a trial's constraints: the old list form, then one key per constraint."""
        found = {str(i): value for i, value in enumerate(self.system_attrs.get(CONSTRAINTS_KEY) or ())}
        prefix = CONSTRAINTS_KEY + ":"
        found.update({key[len(prefix):]: value for key, value in self.system_attrs.items() if key.startswith(prefix)})
        return found

    @property
    def feasible(self) -> bool:
        return feasible(self.constraints) if self.system_attrs else True

    @property
    def first_value(self) -> float | None:
        return self.values[0] if self.values else None


@dataclass(frozen=True)
class PlainStudy:
    """A study's row: its name and user attributes; its trials are read apart (a listing may not need them)."""

    key: int  # the storage's study id
    name: str
    user_attrs: Mapping[str, Any]


def count_plain(trials: Sequence[PlainTrial]) -> Counts:
    """census.count_trials over plain trials: a retried trial counts once, the failed attempts its retry replaced
    are counted as ``retried``; failed trials a stop cut short are counted apart, reused results too."""
    retried = {number for t in trials for number in t.system_attrs.get(RETRY_HISTORY_KEY, ())}
    counted = [t for t in trials if t.number not in retried] if retried else list(trials)
    states = [t.state for t in counted]  # counted by list.count: hashing an enum member runs Python code
    reused = len([t for t in counted if REUSED_ATTR in t.user_attrs and t.state == TrialState.COMPLETE])
    interrupted = sum(bool(t.user_attrs.get(INTERRUPTED_ATTR)) for t in counted if t.state == TrialState.FAIL)
    return Counts(states.count(TrialState.COMPLETE), states.count(TrialState.PRUNED),
                  states.count(TrialState.FAIL) - interrupted, len(trials) - len(counted), reused, interrupted)


def choose_sweep(studies: Sequence[tuple[str, Mapping[str, Any]]], name: str | None, *, hint: str,
                 unfinished: bool = False) -> int:
    """The index in ``studies`` ((name, user attributes) each) of the sweep ``name``, else of the latest (unfinished)
    one; studies other tools made are skipped. ``hint`` names the storage in the error (never its URL)."""
    read = [(index, SweepAttrs.read(attrs)) for index, (_, attrs) in enumerate(studies)]
    sweeps = [(index, attrs) for index, attrs in read if attrs.is_sweep]
    if name is not None:
        for index, _ in sweeps:
            if studies[index][0] == name:
                return index
        raise NotFoundError(f"no sweep named {name!r} in {hint}; `sweep ls` lists them")
    if unfinished:
        sweeps = [(index, attrs) for index, attrs in sweeps if attrs.status != SweepStatus.FINISHED]
    if not sweeps:
        if unfinished:
            raise NotFoundError(f"no unfinished sweep in {hint}; extend the latest one with "
                                f"`sweep run --resume --trials N` (N above its count), pick one with --name, "
                                f"or start one with `sweep run`")
        raise NotFoundError(f"no sweep in {hint}; start one with `sweep run`")
    return max(sweeps, key=lambda item: item[1].created or "")[0]


# -- Optuna's distributions, read from their JSON --------------------------------------------------------------

# legacy class -> (the class Optuna compares, whether it is log-scaled); Optuna loads each legacy name as its own
# subclass, so two names never count as the same kind of distribution
LOG_SCALED = {"LogUniformDistribution": True, "IntLogUniformDistribution": True}
INT_KINDS = ("IntDistribution", "IntUniformDistribution", "IntLogUniformDistribution")


@dataclass(frozen=True)
class Distribution:
    """What the commands need of an Optuna distribution: its kind (class), log scale and choices."""

    kind: str
    log: bool = False
    choices: tuple[Any, ...] = ()

    @classmethod
    def from_json(cls, text: str) -> Distribution:
        """optuna.distributions.json_to_distribution, both of its forms."""
        loaded = json.loads(text)
        if "name" in loaded:
            attributes = loaded["attributes"]
            kind = loaded["name"]
            if kind == "CategoricalDistribution":
                return cls(kind, choices=tuple(attributes["choices"]))
            return cls(kind, bool(attributes.get("log", LOG_SCALED.get(kind, False))))
        if loaded["type"] == "categorical":
            return cls("CategoricalDistribution", choices=tuple(loaded["choices"]))
        kind = "FloatDistribution" if loaded["type"] == "float" else "IntDistribution"
        return cls(kind, bool(loaded.get("log", False)))

    def external(self, internal: float) -> Any:
        """A stored (internal) value as the trial's params give it (to_external_repr)."""
        if self.kind == "CategoricalDistribution":
            return self.choices[int(internal)]
        if self.kind in INT_KINDS:
            return int(internal)
        return internal

    def converter(self) -> Callable[[float], Any] | None:
        """external as one call, None where a stored value is its external one already (floats): for the readers,
        which turn tens of thousands of values."""
        if self.kind == "CategoricalDistribution":
            return lambda internal: self.choices[int(internal)]
        if self.kind in INT_KINDS:
            return int
        return None

    def compatible(self, new: Distribution) -> bool:
        """optuna.distributions.check_distribution_compatibility(self, new) passes."""
        if self.kind != new.kind:
            return False
        if self.kind != "CategoricalDistribution":
            return self.log == new.log
        return len(self.choices) == len(new.choices) and all(
            _same_choice(a, b) for a, b in zip(self.choices, new.choices, strict=True))


def _same_choice(a: Any, b: Any) -> bool:
    return a == b or (_is_nan(a) and _is_nan(b))


def _is_nan(value: Any) -> bool:
    return isinstance(value, Real) and math.isnan(float(value))


def local_time(stored: dt.datetime | str | None) -> dt.datetime | None:
    """A stored time as Optuna gives it: naive local time. A text is read as Optuna's journal replay reads it (a
    zone, else local time); a datetime without a zone is local time already (a FrozenTrial's)."""
    if stored is None:
        return None
    if isinstance(stored, str):
        return dt.datetime.fromisoformat(stored).astimezone().replace(tzinfo=None)
    if stored.tzinfo is None:
        return stored
    return stored.astimezone().replace(tzinfo=None)
