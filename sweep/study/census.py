"""Counting a study's trials as every worker must see them: the census, and a finished trial as a record."""

from __future__ import annotations

import collections
import datetime as dt
from dataclasses import dataclass, replace

import optuna
from optuna.trial import TrialState

from sweep import states
from sweep.config import SweepConfig
from sweep.ranking import rank_key
from sweep.records import BestTrial, Counts, TrialRecord
from sweep.study.attrs import PREFIX, SweepAttrs, TrialAttrs
from sweep.study.optuna_internals import storage_of, study_id_of, trial_id_of

REUSED_ATTR = PREFIX + "same_as"  # TrialAttrs.same_as as stored: looked up without reading the other attributes
INTERRUPTED_ATTR = PREFIX + "interrupted"  # TrialAttrs.interrupted as stored


def state_of(state: TrialState) -> states.TrialState:
    """Optuna's state of a trial as the sweep names it (the sweep's names are Optuna's)."""
    return states.TrialState(state.name)


def optuna_state(state: states.TrialState) -> TrialState:
    """The sweep's state of a trial as Optuna's (to tell the study)."""
    return TrialState[states.TrialState(state).value]


def finished_state(trial: optuna.trial.FrozenTrial) -> states.TrialState:
    """A trial's state as a record for its child run: COMPLETE, PRUNED, or FAIL for a trial not finished
    (its run ends as a failed trial's)."""
    state = state_of(trial.state)
    return state if state.finished else states.TrialState.FAIL


@dataclass(frozen=True)
class Census:
    """The study as every worker must see it to share the trial budget."""

    counted: int  # trials that count toward the target: all but those replaced by a retry
    running: int
    waiting: int  # retries queued by the heartbeat, to be run before any new trial
    finished: Counts
    best: BestTrial | None

    def after(self, record: TrialRecord, config: SweepConfig) -> Census:
        """This census once the loop's own trial has ended (without reading the storage again)."""
        best = self.best
        if record.value is not None and record.feasible and (
                best is None or _key(record.value, record.metrics, record.number, config)
                < _key(best.value, best.metrics, best.number, config)):
            best = BestTrial(record.number, record.run_id, record.value, record.params, record.metrics,
                             record.model_json)
        return Census(self.counted, max(0, self.running - 1), self.waiting,
                      self.finished.add(record.state, reused=record.same_as is not None,
                                        interrupted=record.interrupted), best)


def take_census(study: optuna.Study, config: SweepConfig) -> Census:
    """Count the study's trials, reading every one (a loop keeps a Tally instead, which reads only what
    changed). A retried trial counts once: its retry replaces it."""
    return Tally(study, config).census()


class Tally:
    """A loop's census kept up to date by reading only what can have changed since its last look.

    A finished trial never changes (Optuna refuses to update it), so after one full read a look reads
    the trials that were not finished then, and the trials numbered after the last one seen (trial
    numbers are dense: 0, 1, 2...), each by its number: a few reads per look however large the study
    grows. Counts and the best are carried forward; a retry's failed attempt leaves the counts when the
    retry is first seen. Nothing is kept per trial but the unfinished ones.
    """

    def __init__(self, study: optuna.Study, config: SweepConfig) -> None:
        self._config = config
        self._storage, self._study_id = storage_of(study), study_id_of(study)
        self._next = 0  # every trial numbered below this has been read
        self._open: dict[int, optuna.trial.FrozenTrial] = {}  # counted trials not finished at the last look
        self._states: collections.Counter[TrialState] = collections.Counter()  # of the counted trials
        self._retried: set[int] = set()  # failed attempts a retry replaced: they no longer count
        self._reused = 0  # complete trials that reused an earlier one's result (repeats: reuse)
        self._interrupted = 0  # failed trials a stop cut short: counted apart from the failures
        self._best: tuple[tuple[float, ...], optuna.trial.FrozenTrial] | None = None
        self._ended: list[optuna.trial.FrozenTrial] = []  # trials seen finished for the first time by the last look
        for trial in study.get_trials(deepcopy=False):  # the first look reads everything once
            self._add(trial)

    @property
    def running(self) -> list[optuna.trial.FrozenTrial]:
        """The counted trials that were running at the last look, as read then."""
        return [trial for trial in self._open.values() if trial.state == TrialState.RUNNING]

    @property
    def retried(self) -> frozenset[int]:
        """The failed attempts a retry has replaced, as of the last look: each counts through its retry."""
        return frozenset(self._retried)

    @property
    def ended(self) -> list[TrialRecord]:
        """The trials the last look saw finished for the first time (the first look: every finished one)."""
        return [record_of(trial) for trial in self._ended]

    def look(self) -> Census:
        """The census now: re-read the unfinished trials, then read the new ones."""
        self._ended = []
        for _number, before in sorted(self._open.items()):
            now = self._storage.get_trial(trial_id_of(before))
            self._states[before.state] -= 1
            self._settle(now)
        while True:
            try:
                trial_id = self._storage.get_trial_id_from_study_id_trial_number(self._study_id, self._next)
            except KeyError:
                break
            self._add(self._storage.get_trial(trial_id))
        return self.census()

    def census(self) -> Census:
        """The census as of the last look."""
        best = None
        if self._best is not None:
            top = self._best[1]
            attrs = TrialAttrs.read(top)
            stored = SweepAttrs.read(self._storage.get_study_user_attrs(self._study_id))
            best = BestTrial(top.number, stored.run_id_of(top.number, attrs.run_id), float(top.values[0]),
                             {**self._config.fixed, **top.params}, attrs.metrics, None)
        states = self._states
        return Census(self._next - len(self._retried), states[TrialState.RUNNING], states[TrialState.WAITING],
                      Counts(states[TrialState.COMPLETE], states[TrialState.PRUNED],
                             states[TrialState.FAIL] - self._interrupted, len(self._retried), self._reused,
                             self._interrupted), best)

    def _add(self, trial: optuna.trial.FrozenTrial) -> None:
        self._next = max(self._next, trial.number + 1)
        for number in trial.system_attrs.get("retry_history", ()):  # read in number order: seen already
            self._replaced(number)
        self._settle(trial)

    def _replaced(self, number: int) -> None:
        if number in self._retried:
            return
        self._retried.add(number)
        before = self._open.pop(number, None)  # counted as it was then when still open, else as FAIL
        self._states[before.state if before is not None else TrialState.FAIL] -= 1

    def _settle(self, trial: optuna.trial.FrozenTrial) -> None:
        """Count ``trial`` in its state now (its former state already taken off)."""
        self._states[trial.state] += 1
        if not trial.state.is_finished():
            self._open[trial.number] = trial
            return
        self._open.pop(trial.number, None)
        self._ended.append(trial)
        if trial.state == TrialState.FAIL and trial.user_attrs.get(INTERRUPTED_ATTR):
            self._interrupted += 1
        if trial.state == TrialState.COMPLETE and trial.values:
            attrs = TrialAttrs.read(trial)
            self._reused += attrs.same_as is not None
            if not is_feasible(trial):
                return
            key = _key(trial.values[0], attrs.metrics, trial.number, self._config)
            if self._best is None or key < self._best[0]:
                self._best = (key, trial)


def _key(value: float, metrics: dict[str, float], number: int, config: SweepConfig) -> tuple[float, ...]:
    return rank_key(value, metrics, number, metric=config.metric, direction=config.direction,
                    more=[(o.metric, o.direction) for o in config.more_objectives])


def is_feasible(trial: optuna.trial.FrozenTrial) -> bool:
    """Every constraint the trial recorded met (Optuna's rule: each value zero or less)."""
    return all(value <= 0.0 for value in trial.constraints.values())


def first_value(trial: optuna.trial.FrozenTrial) -> float | None:
    """A complete trial's value of the first objective (FrozenTrial.value refuses a trial of several)."""
    return trial.values[0] if trial.values else None


def counted_trials(trials: list[optuna.trial.FrozenTrial]) -> list[optuna.trial.FrozenTrial]:
    """The trials that count: all but the failed attempts a retry replaced (docs/scaling.md's rule)."""
    retried = {number for t in trials for number in t.system_attrs.get("retry_history", ())}
    return [t for t in trials if t.number not in retried] if retried else trials


def count_states(trials: list[optuna.trial.FrozenTrial]) -> Counts:
    """Complete, pruned and failed trials among ``trials``, every one counted (see count_trials), and the
    complete ones that reused an earlier trial's result."""
    states = collections.Counter(trial.state for trial in trials)  # one pass, no object per trial
    reused = interrupted = 0
    for trial in trials:  # a second pass, reading only what the state does not say
        if trial.state == TrialState.COMPLETE:
            reused += REUSED_ATTR in trial.user_attrs
        elif trial.state == TrialState.FAIL:
            interrupted += bool(trial.user_attrs.get(INTERRUPTED_ATTR))
    return Counts(states[TrialState.COMPLETE], states[TrialState.PRUNED], states[TrialState.FAIL] - interrupted, 0,
                  reused, interrupted)


def count_trials(trials: list[optuna.trial.FrozenTrial]) -> Counts:
    """A study's counts by the one rule every view uses: a retried trial counts once, and the
    failed attempts its retry replaced are counted as ``retried``."""
    counted = counted_trials(trials)
    return replace(count_states(counted), retried=len(trials) - len(counted))


def record_of(trial: optuna.trial.FrozenTrial) -> TrialRecord:
    """A finished trial as the tracking process needs it to rebuild a missing child run."""
    state = finished_state(trial)
    attrs = TrialAttrs.read(trial)
    complete = state is states.TrialState.COMPLETE
    several = complete and trial.values is not None and len(trial.values) > 1
    return TrialRecord(trial.number, state, dict(trial.params),
                       first_value(trial) if complete else None, attrs.metrics, {}, None,
                       attrs.error if state is states.TrialState.FAIL else None, None,  # a retry inherits the error
                       _ms(trial.datetime_start), _ms(trial.datetime_complete), attrs.run_id, attrs.interrupted,
                       values=tuple(trial.values) if several else None, constraints=dict(trial.constraints))


def _ms(moment: dt.datetime | None) -> int:
    return int(moment.timestamp() * 1000) if moment is not None else 0
