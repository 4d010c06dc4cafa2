"""--jobs says when a sweep was too short to gain from its workers: their start-up outweighed the trials."""

from __future__ import annotations

import datetime as dt

from sweep.engine.jobs import too_short_note
from sweep.study.sweep_study import TrialSpan

SPAWNED = dt.datetime(2026, 1, 1, 12, 0, 0)


def trial(number: int, starts_after: float, seconds: float) -> TrialSpan:
    start = SPAWNED + dt.timedelta(seconds=starts_after)
    return TrialSpan(number, start.timestamp(), (start + dt.timedelta(seconds=seconds)).timestamp())


def test_workers_slower_to_start_than_their_share_of_short_trials_get_the_note():
    trials = [trial(n, 4.0 + 0.2 * n, 0.2) for n in range(10)]  # 2 s of trials, 4 s to start
    note = too_short_note(trials, 2, SPAWNED.timestamp())
    assert note == "the workers took 4.0 s to start and the trials 2.0 s in all: a sweep this short is faster " \
                   "with --jobs 1"


def test_long_trials_pay_for_the_start_up_and_get_no_note():
    trials = [trial(n, 4.0 + 5 * n, 5.0) for n in range(10)]
    assert too_short_note(trials, 2, SPAWNED.timestamp()) is None


def test_no_timed_trial_no_note():
    assert too_short_note([], 2, SPAWNED.timestamp()) is None


def test_a_trial_still_running_has_no_time_and_gets_no_note():
    assert too_short_note([TrialSpan(0, SPAWNED.timestamp() + 9.0, None)], 2, SPAWNED.timestamp()) is None
