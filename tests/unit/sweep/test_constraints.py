"""Bounds on metrics: parsed from the config and from `sweep best --pick`, and judged as Optuna judges constraints."""

from __future__ import annotations

import math

import pytest

from sweep.constraints import Bound, feasible, parse_pick, violations
from sweep.errors import SweepConfigError


def test_a_bound_is_zero_or_less_when_met_in_either_direction():
    assert Bound.parse("model_bytes <= 100", "c").violation({"model_bytes": 80}) == -20
    assert Bound.parse("model_bytes<=100", "c").violation({"model_bytes": 130}) == 30
    assert Bound.parse("accuracy >= 0.9", "c").violation({"accuracy": 0.95}) == pytest.approx(-0.05)


def test_a_trial_without_the_bounded_metric_does_not_meet_it():
    assert violations([Bound("size", "<=", 1.0)], {"other": 0.0}) == {"size <= 1": math.inf}
    assert not feasible(violations([Bound("size", "<=", 1.0)], {}))


def test_pick_takes_several_bounds_separated_by_commas():
    assert parse_pick("model_bytes<=50_000, train_seconds <= 2") == (Bound("model_bytes", "<=", 50000.0),
                                                                     Bound("train_seconds", "<=", 2.0))


@pytest.mark.parametrize("text", ["", "model_bytes", "model_bytes == 3", "model_bytes <= big", "<= 3",
                                  "model_bytes <= nan"])
def test_pick_refuses_what_is_not_a_bound(text):
    with pytest.raises(SweepConfigError, match="--pick"):
        parse_pick(text)
