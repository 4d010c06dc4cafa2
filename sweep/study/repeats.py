"""Trials whose settings another trial already had: found before training (``repeats: reuse``), marked by
`sweep show` and counted by `sweep ls` whatever the config says.

Settings are compared whole: every param a trial suggested plus the sweep's fixed values, by value and
type (1, 1.0 and True differ). A trial that suggested more than its space (define-by-run) never matches
one that did not: its settings are only known once it has run.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from operator import attrgetter
from typing import Any, Protocol

from sweep.records import TrialRecord
from sweep.states import TrialState

Settings = tuple[tuple[str, str], ...]


def settings_key(params: Mapping[str, Any]) -> Settings:
    """Identical settings give identical keys: names sorted, values by repr (exact for floats, typed)."""
    return tuple(sorted((str(name), repr(value)) for name, value in params.items()))


@dataclass(frozen=True)
class FinishedTrial:
    """A complete trial whose result answers a later proposal of the same settings."""

    number: int
    value: float
    metrics: dict[str, float]


class FinishedSettings:
    """The complete trials of a study by their settings, kept by a loop whose config says ``repeats: reuse``.

    Fed with the trials a census saw finish (the first look reads them all), so it holds one entry per
    distinct setting, and the earliest trial of each.
    """

    def __init__(self, fixed: Mapping[str, Any]) -> None:
        self._fixed = dict(fixed)
        self._by_settings: dict[Settings, FinishedTrial] = {}

    def note(self, trials: Iterable[TrialRecord]) -> None:
        """Keep the complete ones among ``trials`` (as a census's Tally hands them on: Tally.ended)."""
        for trial in trials:
            if trial.state is not TrialState.COMPLETE or trial.value is None:
                continue
            key = settings_key({**self._fixed, **trial.params})
            known = self._by_settings.get(key)
            if known is None or trial.number < known.number:
                self._by_settings[key] = FinishedTrial(trial.number, float(trial.value), dict(trial.metrics))

    def find(self, settings: Mapping[str, Any]) -> FinishedTrial | None:
        """The complete trial that had exactly ``settings`` (suggested and fixed values), if any."""
        return self._by_settings.get(settings_key(settings))


class SuggestedTrial(Protocol):
    """What identical_settings reads of a trial: Optuna's FrozenTrial and reading's PlainTrial both have it."""

    @property
    def number(self) -> int: ...

    @property
    def params(self) -> dict[str, Any]: ...


def identical_settings(trials: Iterable[SuggestedTrial]) -> dict[int, int]:
    """Trial number -> the earliest trial with identical settings, for every trial that repeats one (any state;
    trials that have suggested nothing yet are left out). The sweep's fixed values are the same for all its
    trials, so the suggested params alone tell settings apart."""
    suggested = sorted((trial for trial in trials if trial.params), key=attrgetter("number"))
    first: dict[frozenset[tuple[str, str]], int] = {}
    same: dict[int, int] = {}
    for trial in _may_repeat(suggested):
        # settings_key's pairs as a set: equal exactly when the sorted tuples are (a trial's names are distinct),
        # without sorting every trial's params (this runs over every trial on each `sweep ls` / `show`)
        key = frozenset(zip(map(str, trial.params), map(repr, trial.params.values())))
        if key in first:
            same[trial.number] = first[key]
        else:
            first[key] = trial.number
    return same


def _may_repeat(trials: list[SuggestedTrial]) -> list[SuggestedTrial]:
    """The trials (by number) that share their params' values with another one, compared as values (==, as a dict
    compares its keys): the only ones that can have identical settings, as values of one repr are equal ones (the
    repr then tells 1, 1.0 and True apart). Far cheaper than a repr of every value; a NaN (equal to nothing) or an
    unhashable value keeps them all."""
    groups: dict[frozenset[tuple[str, Any]], list[SuggestedTrial]] = {}
    try:
        for trial in trials:
            groups.setdefault(frozenset(trial.params.items()), []).append(trial)
    except TypeError:
        return trials
    if any(value != value for trial in trials for value in trial.params.values()):
        return trials
    if len(groups) == len(trials):  # no two alike
        return []
    return sorted((trial for group in groups.values() if len(group) > 1 for trial in group), key=attrgetter("number"))
