"""The ranking of trial rows as `sweep best` and `sweep show` computed it before they ranked plain trials lazily
(reading.SweepRead): every row built, the complete feasible ones sorted by rank_key. Tests compare the commands
against it."""

from __future__ import annotations

from sweep.queries import front_members
from sweep.ranking import rank_key
from sweep.states import TrialState
from sweep.study import SweepRow, TrialRow


def rank_rows(sweep: SweepRow, trials: list[TrialRow]) -> list[TrialRow]:
    """Completed trials that meet the constraints, best first."""
    complete = [t for t in trials if t.state == TrialState.COMPLETE and t.value is not None and t.feasible]
    return sorted(complete, key=lambda t: rank_key(t.value or 0.0, t.metrics, t.number, metric=sweep.metric,
                                                   direction=sweep.direction, more=sweep.more_objectives))


def front_rows(sweep: SweepRow, trials: list[TrialRow]) -> list[TrialRow]:
    """The Pareto front: feasible complete trials no other dominates (of identical values, the first), best first
    on the first objective."""
    return front_members(sweep, rank_rows(sweep, trials))
