"""The Pareto front `sweep best` and `sweep show` give: never a dominated trial, never an infeasible one, never an
unfinished one, and every feasible trial no other beats."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from sweep.ranking import dominates
from sweep.records import Counts
from sweep.states import TrialState
from sweep.study import SweepRow, TrialRow
from tests.support.ranking_reference import front_rows

SWEEP = SweepRow("s", "finished", Counts(), 0, None, "", "sentiment", None, "val_accuracy", "maximize",
                 more_objectives=(("model_bytes", "minimize"),))
TRIAL = st.tuples(st.sampled_from([TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL]),
                  st.integers(0, 4).map(lambda n: n / 4), st.integers(0, 4).map(float), st.booleans())


def rows(drawn: list[tuple[TrialState, float, float, bool]]) -> list[TrialRow]:
    out = []
    for number, (state, accuracy, size, feasible) in enumerate(drawn):
        complete = state is TrialState.COMPLETE
        out.append(TrialRow(number, state, accuracy if complete else None, {"x": number},
                            {"val_accuracy": accuracy, "model_bytes": size}, None, None,
                            values=(accuracy, size) if complete else None, feasible=feasible))
    return out


def minimized(row: TrialRow) -> tuple[float, float]:
    assert row.values is not None
    return (-row.values[0], row.values[1])


@given(st.lists(TRIAL, max_size=30))
def test_the_front_holds_only_feasible_complete_undominated_trials_and_all_such_values(drawn):
    trials = rows(drawn)
    front = front_rows(SWEEP, trials)
    candidates = [t for t in trials if t.state is TrialState.COMPLETE and t.feasible]
    for member in front:
        assert member.state is TrialState.COMPLETE and member.feasible
        assert not any(dominates(minimized(other), minimized(member)) for other in candidates)
    undominated = {minimized(t) for t in candidates
                   if not any(dominates(minimized(other), minimized(t)) for other in candidates)}
    assert {minimized(member) for member in front} == undominated
    assert [minimized(m) for m in front] == sorted(minimized(m) for m in front)  # best first on the first objective
