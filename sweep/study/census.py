"""Counting a study's trials as every worker must see them: the census, and a finished trial as a record."""

from __future__ import annotations

import bisect
import collections
import datetime as dt
from dataclasses import dataclass, replace

import optuna
from optuna.trial import TrialState

from sweep import states
from sweep.config import SweepConfig
from sweep.constraints import feasible
from sweep.ranking import rank_key
from sweep.records import BestTrial, Counts, TrialRecord
from sweep.study.attrs import PREFIX, SweepAttrs, TrialAttrs
from sweep.study.optuna_internals import catch_up, changed_trials, storage_of, study_id_of

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
    # stop.patience: the finished trials (interrupted ones aside) numbered after the best's; every one without a best
    after_best: int = 0
    trial_seconds: float = 0.0  # the finished trials' durations summed (budget.trial_seconds)
    wall_seconds: float = 0.0  # the time while any finished trial ran: their spans' union (only with budget.seconds)
    target: int | None = None  # the trial target the study stored at the look (`sweep set` changes it)
    running_since: tuple[float, ...] = ()  # when each running trial started (POSIX seconds), earliest first
    covered_since: float = 0.0  # of wall_seconds, the time after the earliest running trial started

    def trial_seconds_at(self, now: float) -> float:
        """The trials' durations summed at ``now``: a running trial's so far."""
        return self.trial_seconds + sum(max(0.0, now - start) for start in self.running_since)

    def wall_seconds_at(self, now: float) -> float:
        """The time while any trial ran, up to ``now``: the running trials' spans end now."""
        if not self.running_since:
            return self.wall_seconds
        return self.wall_seconds + max(0.0, now - self.running_since[0]) - self.covered_since

    def after(self, record: TrialRecord, config: SweepConfig) -> Census:
        """This census once the loop's own trial has ended (without reading the storage again; the stop rules'
        figures wait for the next look)."""
        best = self.best
        if record.value is not None and record.feasible and (
                best is None or _key(record.value, record.metrics, record.number, config)
                < _key(best.value, best.metrics, best.number, config)):
            best = BestTrial(record.number, record.run_id, record.value, record.params, record.metrics,
                             record.model_json)
        return replace(self, running=max(0, self.running - 1),
                       finished=self.finished.add(record.state, reused=record.same_as is not None,
                                                  interrupted=record.interrupted), best=best)


def take_census(study: optuna.Study, config: SweepConfig) -> Census:
    """Count the study's trials, reading every one (a loop keeps a Tally instead, which reads only what
    changed). A retried trial counts once: its retry replaces it."""
    return Tally(study, config).census()


class Tally:
    """A loop's census kept up to date by reading only what can have changed since its last look.

    A finished trial never changes (Optuna refuses to update it), so after one full read a look reads
    the trials that were not finished then, and the trials numbered after the last one seen (trial
    numbers are dense: 0, 1, 2...), in one read of the storage (optuna_internals.changed_trials) however
    large the study grows and however many trials run. Counts and the best are carried forward; a retry's
    failed attempt leaves the counts when the retry is first seen. Nothing is kept per trial but the
    unfinished ones, and what a stop rule of the config needs: the finished trials' numbers
    (stop.patience), the union of their spans (budget.seconds).
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
        # what the stop rules need: the finished trials' numbers (stop.patience only), their summed durations,
        # and the union of their spans (budget.seconds only)
        self._finished_numbers: list[int] | None = [] if config.stop_patience is not None else None
        self._trial_seconds = 0.0
        self._spans = SpanUnion() if config.budget_seconds is not None else None
        for trial in study.get_trials(deepcopy=False):  # the first look reads everything once
            self._add(trial)
        self._attrs = self._storage.get_study_user_attrs(self._study_id)

    @property
    def running(self) -> list[optuna.trial.FrozenTrial]:
        """The counted trials that were running at the last look, as read then."""
        return [trial for trial in self._open.values() if trial.state == TrialState.RUNNING]

    @property
    def waiting(self) -> list[optuna.trial.FrozenTrial]:
        """The counted trials waiting (retries) at the last look, in number order."""
        return [trial for _number, trial in sorted(self._open.items()) if trial.state == TrialState.WAITING]

    @property
    def retried(self) -> frozenset[int]:
        """The failed attempts a retry has replaced, as of the last look: each counts through its retry."""
        return frozenset(self._retried)

    @property
    def ended(self) -> list[TrialRecord]:
        """The trials the last look saw finished for the first time (the first look: every finished one)."""
        return [record_of(trial) for trial in self._ended]

    def catch_up(self) -> None:
        """Read what other workers wrote since the last look, outside the trial gate, so that the look inside it
        (one worker at a time) has only the last few writes left to read."""
        catch_up(self._storage, self._study_id)

    def look(self) -> Census:
        """The census now: re-read the unfinished trials, then read the new ones."""
        self._ended = []
        before = [trial for _number, trial in sorted(self._open.items())]
        now, new = changed_trials(self._storage, self._study_id, before, self._next)
        for was, trial in zip(before, now, strict=True):
            self._states[was.state] -= 1
            self._settle(trial)
        for trial in new:
            self._add(trial)
        self._attrs = self._storage.get_study_user_attrs(self._study_id)  # the target `sweep set` may have changed
        return self.census()

    def census(self) -> Census:
        """The census as of the last look."""
        best = None
        stored = SweepAttrs.read(self._attrs)
        if self._best is not None:
            top = self._best[1]
            attrs = TrialAttrs.read(top)
            best = BestTrial(top.number, stored.run_id_of(top.number, attrs.run_id), float(top.values[0]),
                             {**self._config.fixed, **top.params}, attrs.metrics, None)
        states = self._states
        started = tuple(sorted(trial.datetime_start.timestamp() for trial in self.running
                               if trial.datetime_start is not None))
        wall_seconds = covered = 0.0
        if self._spans is not None:
            wall_seconds = self._spans.total
            covered = self._spans.covered_after(started[0]) if started else 0.0
        after_best = 0
        if self._finished_numbers is not None:
            after = bisect.bisect_right(self._finished_numbers, best.number) if best is not None else 0
            after_best = len(self._finished_numbers) - after
        return Census(self._next - len(self._retried), states[TrialState.RUNNING], states[TrialState.WAITING],
                      Counts(states[TrialState.COMPLETE], states[TrialState.PRUNED],
                             states[TrialState.FAIL] - self._interrupted, len(self._retried), self._reused,
                             self._interrupted), best, after_best, self._trial_seconds, wall_seconds,
                      stored.target or None, started, covered)

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
        if self._finished_numbers is not None:  # its retry is the one that counts
            at = bisect.bisect_left(self._finished_numbers, number)
            if at < len(self._finished_numbers) and self._finished_numbers[at] == number:
                del self._finished_numbers[at]

    def _settle(self, trial: optuna.trial.FrozenTrial) -> None:
        """Count ``trial`` in its state now (its former state already taken off)."""
        self._states[trial.state] += 1
        if not trial.state.is_finished():
            self._open[trial.number] = trial
            return
        self._open.pop(trial.number, None)
        self._ended.append(trial)
        if trial.datetime_start is not None and trial.datetime_complete is not None:
            start, end = trial.datetime_start.timestamp(), trial.datetime_complete.timestamp()
            self._trial_seconds += max(0.0, end - start)
            if self._spans is not None:
                self._spans.add(start, end)
        interrupted = trial.state == TrialState.FAIL and bool(trial.user_attrs.get(INTERRUPTED_ATTR))
        if interrupted:
            self._interrupted += 1
        elif self._finished_numbers is not None and trial.number not in self._retried:
            bisect.insort(self._finished_numbers, trial.number)
        if trial.state == TrialState.COMPLETE and trial.values:
            attrs = TrialAttrs.read(trial)
            self._reused += attrs.same_as is not None
            if not is_feasible(trial):
                return
            key = _key(trial.values[0], attrs.metrics, trial.number, self._config)
            if self._best is None or key < self._best[0]:
                self._best = (key, trial)


class SpanUnion:
    """The union of time spans (POSIX seconds), kept as disjoint spans in order: ``total`` is the time covered by
    at least one span (a sweep's wall time, its pauses between invocations left out)."""

    def __init__(self) -> None:
        self._starts: list[float] = []
        self._ends: list[float] = []
        self.total = 0.0

    def add(self, start: float, end: float) -> None:
        first = bisect.bisect_left(self._ends, start)  # the spans from here to ``last`` overlap [start, end]
        last = bisect.bisect_right(self._starts, end)
        if first < last:
            start, end = min(start, self._starts[first]), max(end, self._ends[last - 1])
            self.total -= sum(e - s for s, e in zip(self._starts[first:last], self._ends[first:last], strict=True))
        self._starts[first:last], self._ends[first:last] = [start], [end]
        self.total += end - start

    def covered_after(self, since: float) -> float:
        """The time after ``since`` the spans cover."""
        first = bisect.bisect_right(self._ends, since)
        return sum(e - max(s, since) for s, e in zip(self._starts[first:], self._ends[first:], strict=True))


def _key(value: float, metrics: dict[str, float], number: int, config: SweepConfig) -> tuple[float, ...]:
    return rank_key(value, metrics, number, metric=config.metric, direction=config.direction,
                    more=[(o.metric, o.direction) for o in config.more_objectives])


def is_feasible(trial: optuna.trial.FrozenTrial) -> bool:
    """Every constraint the trial recorded met (Optuna's rule: each value zero or less)."""
    return feasible(trial.constraints)


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
