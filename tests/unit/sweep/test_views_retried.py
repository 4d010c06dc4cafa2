"""Text renderings: retried attempts are named apart from the trials, so every view agrees with the child runs."""

from __future__ import annotations

from sweep.engine import SweepSummary
from sweep.records import Counts
from sweep.study import SweepRow
from sweep.views import render_summary, render_sweeps, render_trials

ONE_RETRIED = Counts(complete=5, pruned=0, failed=1, retried=1)


def row(counts: Counts) -> SweepRow:
    return SweepRow("one-down", "finished", counts, 6, 0.8, "2026-01-01T00:00:00", "exp", "parent-1",
                    "val_accuracy", "maximize")


def test_the_summary_counts_trials_and_says_how_many_attempts_were_retried():
    summary = SweepSummary("one-down", "exp", "parent-1", "finished", ONE_RETRIED, None, 1.0, None, 7)
    assert "6 trials (5 complete, 0 pruned, 1 failed, 1 retried) in" in render_summary(summary)
    plain = SweepSummary("s", "exp", "parent-1", "finished", Counts(complete=2), None, 1.0, None, 2)
    assert "2 trials (2 complete, 0 pruned, 0 failed) in" in render_summary(plain)


def test_ls_and_show_name_the_retried_attempts_beside_trials_done_over_target():
    assert "6/6 (1 retried)" in render_sweeps([row(ONE_RETRIED)])
    assert render_trials(row(ONE_RETRIED), []).startswith("sweep one-down (finished): 6/6 trials (1 retried), ")
    assert "retried" not in render_sweeps([row(Counts(complete=6))])
