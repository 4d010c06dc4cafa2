"""sweep/ranking.py: one ordering for the parent run's best.* and `sweep best`: objective, other metric, trial."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from sweep.ranking import dominates, pareto_front, rank_key


def ranked(trials: list[tuple[int, dict[str, float]]], *, metric: str, direction: str) -> list[int]:
    """Trial numbers, best first; each trial is (number, metrics) and its value is metrics[metric]."""
    return [number for number, metrics in sorted(
        trials, key=lambda t: rank_key(t[1][metric], t[1], t[0], metric=metric, direction=direction))]


def test_maximize_puts_the_highest_value_first():
    trials = [(0, {"val_accuracy": 0.7, "val_loss": 0.5}), (1, {"val_accuracy": 0.9, "val_loss": 0.5}),
              (2, {"val_accuracy": 0.8, "val_loss": 0.5})]
    assert ranked(trials, metric="val_accuracy", direction="maximize") == [1, 2, 0]


def test_minimize_puts_the_lowest_value_first():
    trials = [(0, {"val_loss": 0.3, "val_accuracy": 0.8}), (1, {"val_loss": 0.1, "val_accuracy": 0.8}),
              (2, {"val_loss": 0.2, "val_accuracy": 0.8})]
    assert ranked(trials, metric="val_loss", direction="minimize") == [1, 2, 0]


def test_equal_val_accuracy_is_broken_by_lower_val_loss():
    trials = [(0, {"val_accuracy": 0.9, "val_loss": 0.40}), (1, {"val_accuracy": 0.9, "val_loss": 0.20}),
              (2, {"val_accuracy": 0.9, "val_loss": 0.30})]
    assert ranked(trials, metric="val_accuracy", direction="maximize") == [1, 2, 0]


def test_equal_val_loss_is_broken_by_higher_val_accuracy():
    trials = [(0, {"val_loss": 0.2, "val_accuracy": 0.80}), (1, {"val_loss": 0.2, "val_accuracy": 0.95}),
              (2, {"val_loss": 0.2, "val_accuracy": 0.90})]
    assert ranked(trials, metric="val_loss", direction="minimize") == [1, 2, 0]


def test_full_tie_goes_to_the_earlier_trial():
    same = {"val_accuracy": 0.9, "val_loss": 0.2}
    trials = [(5, dict(same)), (2, dict(same)), (9, dict(same))]
    assert ranked(trials, metric="val_accuracy", direction="maximize") == [2, 5, 9]
    assert ranked(trials, metric="val_loss", direction="minimize") == [2, 5, 9]


def test_the_objective_outranks_the_tie_breaker():
    trials = [(0, {"val_accuracy": 0.90, "val_loss": 0.01}), (1, {"val_accuracy": 0.91, "val_loss": 0.90})]
    assert ranked(trials, metric="val_accuracy", direction="maximize") == [1, 0]


def test_the_tie_breaker_outranks_the_trial_number():
    trials = [(0, {"val_accuracy": 0.9, "val_loss": 0.3}), (1, {"val_accuracy": 0.9, "val_loss": 0.2})]
    assert ranked(trials, metric="val_accuracy", direction="maximize") == [1, 0]


def test_a_tied_trial_without_the_tie_breaking_metric_ranks_after_one_with_it():
    trials = [(0, {"val_accuracy": 0.9}), (1, {"val_accuracy": 0.9, "val_loss": 5.0})]
    assert ranked(trials, metric="val_accuracy", direction="maximize") == [1, 0]
    trials = [(0, {"val_loss": 0.2}), (1, {"val_loss": 0.2, "val_accuracy": 0.1})]
    assert ranked(trials, metric="val_loss", direction="minimize") == [1, 0]


def test_rank_key_is_smaller_for_the_better_trial():
    better = rank_key(0.9, {"val_loss": 0.2}, 3, metric="val_accuracy", direction="maximize")
    worse = rank_key(0.8, {"val_loss": 0.1}, 1, metric="val_accuracy", direction="maximize")
    assert better < worse


# -- several objectives ------------------------------------------------------------------------------------------

POINTS = st.lists(st.lists(st.integers(0, 6).map(float), min_size=2, max_size=2), max_size=25)


@given(POINTS)
def test_the_front_holds_no_dominated_point_and_every_undominated_value(values):
    points = list(enumerate(values))
    front = set(pareto_front(points))
    for number in front:
        assert not any(dominates(other, values[number]) for other in values)
    undominated = {tuple(v) for v in values if not any(dominates(other, v) for other in values)}
    assert {tuple(values[number]) for number in front} == undominated  # one trial per point of the front
    assert len(front) == len(undominated)
    order = pareto_front(points)  # best first: on the first value, then the next, then the lower number
    assert order == sorted(order, key=lambda number: (tuple(values[number]), number))


def test_with_several_objectives_the_first_ranks_then_the_next():
    more = [("model_bytes", "minimize")]
    small = rank_key(0.8, {"model_bytes": 10.0}, 3, metric="val_accuracy", direction="maximize", more=more)
    large = rank_key(0.8, {"model_bytes": 99.0}, 1, metric="val_accuracy", direction="maximize", more=more)
    better = rank_key(0.9, {"model_bytes": 99.0}, 2, metric="val_accuracy", direction="maximize", more=more)
    assert better < small < large
