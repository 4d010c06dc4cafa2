"""sweep/space.py: the YAML forms of Optuna's distributions, suggest() through FixedTrial, grids, round trips."""

from __future__ import annotations

import warnings

import pytest
from optuna.trial import FixedTrial

from sweep.errors import SweepConfigError
from sweep.space import (
    Categorical,
    FloatRange,
    IntRange,
    grid,
    outside,
    parse_dimension,
    parse_space,
    parse_value,
    suggest,
    to_yaml_dict,
)

FORMS = {  # id: (YAML form, the Dimension it parses to)
    "float": ({"type": "float", "low": 0.1, "high": 1}, FloatRange(0.1, 1.0)),
    "float-log": ({"type": "float", "low": 0.01, "high": 20, "log": True}, FloatRange(0.01, 20.0, log=True)),
    "float-step": ({"type": "float", "low": 0, "high": 1, "step": 0.25}, FloatRange(0.0, 1.0, step=0.25)),
    "int": ({"type": "int", "low": 1, "high": 10}, IntRange(1, 10)),
    "int-log": ({"type": "int", "low": 10, "high": 5000, "log": True}, IntRange(10, 5000, log=True)),
    "int-step": ({"type": "int", "low": 0, "high": 10, "step": 2}, IntRange(0, 10, step=2)),
    "int-log-step-1": ({"type": "int", "low": 1, "high": 100, "log": True, "step": 1}, IntRange(1, 100, log=True)),
    "categorical": ({"type": "categorical", "choices": [1, 2]}, Categorical((1, 2))),
    "list-shorthand": ([1, "two", 3.5, True, None], Categorical((1, "two", 3.5, True, None))),
}


@pytest.mark.parametrize(("spec", "expected"), FORMS.values(), ids=FORMS.keys())
def test_parse_dimension_reads_each_distribution_form(spec, expected):
    assert parse_dimension("x", spec) == expected


def test_parse_dimension_gives_floats_for_float_ranges_written_as_integers():
    dimension = parse_dimension("x", {"type": "float", "low": 1, "high": 5, "step": 1})
    assert all(isinstance(v, float) for v in (dimension.low, dimension.high, dimension.step))


@pytest.mark.parametrize(("spec", "expected"), FORMS.values(), ids=FORMS.keys())
def test_to_yaml_dict_round_trips_through_parse_dimension(spec, expected):
    assert parse_dimension("x", to_yaml_dict(expected)) == expected


def test_to_yaml_dict_writes_only_what_differs_from_the_defaults():
    assert to_yaml_dict(IntRange(1, 10)) == {"type": "int", "low": 1, "high": 10}
    assert to_yaml_dict(FloatRange(0.01, 1.0, log=True)) == {"type": "float", "low": 0.01, "high": 1.0, "log": True}
    assert to_yaml_dict(FloatRange(0.0, 1.0, step=1.0))["step"] == 1.0  # a float step of 1 is not the default
    assert to_yaml_dict(Categorical((1, 2))) == {"type": "categorical", "choices": [1, 2]}


def test_parse_space_keeps_the_order_of_the_file():
    space = parse_space({"vocab_size": {"type": "int", "low": 10, "high": 20}, "lr": [0.1, 0.2], "ngrams": [1, 2]})
    assert list(space) == ["vocab_size", "lr", "ngrams"]


@pytest.mark.parametrize("spec", [None, {}, [], "lr"])
def test_parse_space_refuses_an_empty_or_non_mapping_space(spec):
    with pytest.raises(SweepConfigError, match=r"^space: must map at least one trainer setting"):
        parse_space(spec)


# -- suggest: FixedTrial gives back the fixed values, with the dimension's type ---------------------------------


def test_suggest_with_fixed_trial_returns_each_fixed_value_with_its_type():
    space = parse_space({
        "lr": {"type": "float", "low": 0.01, "high": 20, "log": True},
        "l2": {"type": "float", "low": 0, "high": 1, "step": 0.25},
        "epochs": {"type": "int", "low": 5, "high": 500, "log": True},
        "vocab_size": {"type": "int", "low": 10, "high": 100, "step": 10},
        "ngrams": [1, 2],
    })
    fixed = {"lr": 0.5, "l2": 0.75, "epochs": 42, "vocab_size": 30, "ngrams": 2}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # FixedTrial warns when a value is outside its distribution
        params = suggest(FixedTrial(fixed), space)
    assert params == fixed
    assert list(params) == list(space)
    assert [type(params[k]) for k in params] == [float, float, int, int, int]


def test_suggest_with_categorical_strings_and_none():
    space = parse_space({"mode": ["a", "b", None]})
    assert suggest(FixedTrial({"mode": None}), space) == {"mode": None}
    assert suggest(FixedTrial({"mode": "b"}), space) == {"mode": "b"}


def test_suggest_passes_step_and_log_to_the_trial():
    calls = []

    class Recording:
        def suggest_float(self, name, low, high, *, step=None, log=False):
            calls.append(("float", name, low, high, step, log))
            return low

        def suggest_int(self, name, low, high, *, step=1, log=False):
            calls.append(("int", name, low, high, step, log))
            return low

        def suggest_categorical(self, name, choices):
            calls.append(("categorical", name, tuple(choices)))
            return choices[0]

    space = {"a": FloatRange(0.1, 1.0, step=0.1), "b": FloatRange(0.01, 1.0, log=True),
             "c": IntRange(2, 20, step=3), "d": IntRange(1, 100, log=True), "e": Categorical(("x", "y"))}
    suggest(Recording(), space)
    assert calls == [("float", "a", 0.1, 1.0, 0.1, False), ("float", "b", 0.01, 1.0, None, True),
                     ("int", "c", 2, 20, 3, False), ("int", "d", 1, 100, 1, True), ("categorical", "e", ("x", "y"))]


# -- grid ----------------------------------------------------------------------------------------------------


def test_grid_of_an_int_range_is_every_integer():
    assert grid({"epochs": IntRange(1, 5)}) == {"epochs": [1, 2, 3, 4, 5]}


def test_grid_of_an_int_range_with_step_stops_at_the_last_step_inside_the_range():
    assert grid({"epochs": IntRange(1, 10, step=4)}) == {"epochs": [1, 5, 9]}


def test_grid_of_a_categorical_is_its_choices_in_order():
    assert grid({"ngrams": Categorical((2, 1))}) == {"ngrams": [2, 1]}


def test_grid_of_a_float_with_step_includes_both_ends():
    values = grid({"lr": FloatRange(0.1, 0.5, step=0.1)})["lr"]
    assert values == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.5])


def test_grid_of_a_float_with_step_not_dividing_the_range_stays_inside_it():
    values = grid({"lr": FloatRange(0.0, 1.0, step=0.3)})["lr"]
    assert values == pytest.approx([0.0, 0.3, 0.6, 0.9])


def test_grid_combines_every_dimension():
    space = {"epochs": IntRange(1, 2), "ngrams": Categorical((1, 2)), "lr": FloatRange(0.5, 1.0, step=0.5)}
    assert grid(space) == {"epochs": [1, 2], "ngrams": [1, 2], "lr": [0.5, 1.0]}


@pytest.mark.parametrize("dimension", [FloatRange(0.1, 1.0), FloatRange(0.01, 1.0, log=True)], ids=["plain", "log"])
def test_grid_of_a_float_without_step_names_it_and_says_add_a_step(dimension):
    with pytest.raises(SweepConfigError) as caught:
        grid({"epochs": IntRange(1, 3), "lr": dimension})
    message = str(caught.value)
    assert message.startswith("space.lr:") and "add step:" in message and "\n" not in message


def test_a_value_given_as_text_is_read_as_its_dimension_holds_it():
    choices = Categorical((True, None, 3, "adam"))
    assert [parse_value(choices, text) for text in ("true", "True", "null", "3", "adam")] == [True, True, None, 3,
                                                                                              "adam"]
    assert parse_value(IntRange(1, 9), "4") == 4 and parse_value(IntRange(1, 9), "4.5") == 4.5  # refused later
    assert parse_value(FloatRange(0.1, 1.0), "1e-1") == 0.1 and parse_value(FloatRange(0.1, 1.0), "x") == "x"
    assert parse_value(None, "0.5") == 0.5 and parse_value(None, "linear") == "linear"


def test_outside_says_why_a_value_is_not_a_point_of_its_dimension():
    assert outside(FloatRange(0.1, 1.0, step=0.1), 0.3) is None
    assert outside(FloatRange(0.1, 1.0, step=0.1), 0.35) == "not on the range's step of 0.1 from 0.1"
    assert outside(FloatRange(0.1, 1.0), 2) == "outside the range 0.1..1.0"
    assert outside(IntRange(1, 9, step=2), 4) == "not on the range's step of 2 from 1"
    assert outside(IntRange(1, 9), True) == "not an integer"
    assert outside(Categorical((1, 2)), True) == "not among the choices 1, 2"  # True == 1, but not a choice of 1
