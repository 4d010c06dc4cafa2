"""Whether a sweep starts another trial: its trial target, and the config's rules that end it before the target
(stop:, budget:), decided from the study's census.

Every loop (`--jobs` processes, `sweep worker`s, Ray tasks) and the end of the sweep decide from the census,
never from what one process saw: they all reach the same decision, and a resumed sweep re-evaluates it (a rule
that still holds ends the resume before any trial starts). A rule only stops new trials from starting: the
running ones end as usual, none is cut short.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sweep.config import SweepConfig
from sweep.states import StopRule
from sweep.study.census import Census


@dataclass(frozen=True)
class Stopped:
    """A rule that holds, and one line saying why."""

    rule: StopRule
    reason: str


def rule_that_holds(census: Census, config: SweepConfig, now: float | None = None) -> Stopped | None:
    """The first of the config's rules that holds for ``census`` at ``now`` (POSIX seconds; default: now), else
    None (always None without a rule). The budgets count the running trials' time up to ``now``."""
    best = census.best
    now = time.time() if now is None else now
    if config.stop_target is not None and best is not None and reached(best.value, config.stop_target,
                                                                       config.direction):
        return Stopped(StopRule.TARGET, f"trial {best.number}'s {config.metric} {best.value:.6g} reached "
                                        f"stop.target {config.stop_target:g}")
    if config.stop_patience is not None and census.after_best >= config.stop_patience:
        since = f"trial {best.number}'s best" if best is not None else "the start, with no complete trial"
        return Stopped(StopRule.PATIENCE, f"{census.after_best} finished trials since {since} without a better "
                                          f"one (stop.patience {config.stop_patience})")
    wall_seconds = census.wall_seconds_at(now)
    if config.budget_seconds is not None and wall_seconds >= config.budget_seconds:
        return Stopped(StopRule.SECONDS, f"the trials ran for {wall_seconds:.1f} s of wall time "
                                         f"(budget.seconds {config.budget_seconds:g})")
    trial_seconds = census.trial_seconds_at(now)
    if config.budget_trial_seconds is not None and trial_seconds >= config.budget_trial_seconds:
        return Stopped(StopRule.TRIAL_SECONDS, f"the trials took {trial_seconds:.1f} s in all "
                                               f"(budget.trial_seconds {config.budget_trial_seconds:g})")
    return None


def reached(value: float, target: float, direction: str) -> bool:
    """Whether ``value`` is at least as good as ``target`` in ``direction``."""
    return value >= target if direction == "maximize" else value <= target


def has_rules(config: SweepConfig) -> bool:
    """Whether the config has any rule that can end the sweep early."""
    return any(value is not None for value in (config.stop_patience, config.stop_target, config.budget_seconds,
                                               config.budget_trial_seconds))


def trial_target(census: Census, config: SweepConfig, *, own_target: bool) -> int:
    """The trials the study should hold: the target the study stored at the census's look (`sweep set NAME
    --trials M` changes it), else the config's; ``own_target`` (a `sweep worker --trials N`) keeps the config's."""
    stored = census.target
    if own_target or stored is None:
        return config.trials
    # the grid's target was capped at its size (run._capped_at_grid): past it the grid would only repeat
    return min(stored, config.trials) if config.sampler == "grid" else stored


def may_start(census: Census, config: SweepConfig, *, own_target: bool) -> bool:
    """Whether one more trial starts after ``census``: a waiting one (a retry) always runs; a new one while no stop
    rule holds and the target is not met. Every loop decides by this, and so does the storage proxy that decides
    for its workers (served.py)."""
    if census.waiting:
        return True
    return rule_that_holds(census, config) is None and census.counted < trial_target(census, config,
                                                                                      own_target=own_target)
