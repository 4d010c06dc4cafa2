"""The end-of-sweep charts (sweep/study/charts.py): standalone SVG documents of 1000x600 that parse, escape what they
are given, leave out what cannot be drawn, never fail on degenerate input, and draw what they claim (best-so-far
steps, bars in order, log and categorical axes, broken lines, Pareto fronts). The SVG is read back with
ElementTree: the tests look at coordinates and labels, not at bytes."""

from __future__ import annotations

import math
import random
import re
import xml.etree.ElementTree as ET

import pytest

from sweep.study.charts import (
    HEIGHT,
    WIDTH,
    Point,
    Setting,
    history_chart,
    importance_chart,
    parallel_chart,
    pareto_chart,
    slice_chart,
)

NS = "{http://www.w3.org/2000/svg}"
NAN, INF = float("nan"), float("inf")


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == NS + "svg"
    return root


def texts(root: ET.Element) -> list[str]:
    return ["".join(element.itertext()) for element in root.iter(NS + "text")]


def tick_labels_by_x(root: ET.Element) -> dict[str, list[str]]:
    """A parallel-coordinate chart's tick labels, grouped by their axis (they share an x)."""
    axes: dict[str, list[str]] = {}
    for element in root.iter(NS + "text"):
        if element.get("class") == "k h":
            axes.setdefault(element.get("x"), []).append(element.text)
    return axes


def dot_places(d: str) -> list[tuple[float, float]]:
    """The dots of path data as the charts write them: zero-length segments "Mx yh0"."""
    return [(float(x), float(y)) for x, y in re.findall(r"M([-\d.]+) ([-\d.]+)h0", d)]


def group(root: ET.Element, cls: str) -> ET.Element:
    return next(element for element in root.iter(NS + "g") if element.get("class") == cls)


def points_of(element: ET.Element) -> list[tuple[float, float]]:
    return [tuple(map(float, pair.split(","))) for pair in element.get("points").split()]


def polyline(root: ET.Element, cls: str) -> list[tuple[float, float]]:
    return points_of(next(element for element in root.iter(NS + "polyline") if element.get("class") == cls))


def lines(root: ET.Element) -> list[tuple[str, list[tuple[float, float]]]]:
    """A parallel-coordinate chart's lines in drawing order: (colour, vertices)."""
    return [(element.get("stroke"), points_of(element)) for element in group(root, "lines")]


def dots(root: ET.Element) -> list[tuple[float, float]]:
    """Every dot drawn (zero-length round-capped segments), whatever its colour."""
    return [place for element in root.iter(NS + "path") for place in dot_places(element.get("d") or "")]


SETTINGS = [Setting("lr", log=True), Setting("epochs", log=True), Setting("vocab_size"),
            Setting("ngrams", choices=("1", "2")), Setting("l2", log=True)]


def trials(count: int, seed: int = 1) -> list[Point]:
    rng = random.Random(seed)
    return [Point(number, rng.uniform(0.5, 0.9), {
        "lr": 10 ** rng.uniform(-2, 1), "epochs": rng.randint(5, 500), "vocab_size": rng.randint(500, 20000),
        "ngrams": rng.choice(["1", "2"]), "l2": 10 ** rng.uniform(-6, -2)}) for number in range(count)]


def every_chart(points: list[Point], settings: list[Setting] = SETTINGS, metric: str = "val_accuracy",
                names: tuple[str, ...] = ("val_accuracy", "latency")) -> dict[str, str]:
    return {
        "history": history_chart(points, metric=metric, maximize=True),
        "importance": importance_chart({setting.name: 1 / (index + 1) for index, setting in enumerate(settings)},
                                       metric=metric),
        "parallel": parallel_chart(settings, points, metric=metric, maximize=True, note="a note"),
        "slice": slice_chart(settings, points, metric=metric, note="a note"),
        "pareto": pareto_chart(list(names), [(p.number, [p.value, p.number * 0.5]) for p in points],
                               {p.number for p in points[:3]}, [True, False]),
    }


@pytest.mark.parametrize("chart", ["history", "importance", "parallel", "slice", "pareto"])
def test_every_chart_is_a_standalone_svg_of_1000_by_600_on_white(chart):
    svg = every_chart(trials(50))[chart]
    assert svg.startswith('<svg xmlns="http://www.w3.org/2000/svg" width="1000" height="600" viewBox="0 0 1000 600"')
    root = parse(svg)
    assert (root.get("width"), root.get("height"), root.get("viewBox")) == ("1000", "600", f"0 0 {WIDTH} {HEIGHT}")
    assert root.get("font-family") == "sans-serif"
    background = root.find(NS + "rect")
    assert background.get("fill") == "#fff" and background.get("width") == "1000"
    assert "nan" not in svg and "inf" not in svg


def test_every_chart_is_titled():
    titles = {name: texts(parse(svg))[0] for name, svg in every_chart(trials(20)).items()}
    assert titles == {"history": "Optimization history", "importance": "Setting importances",
                      "parallel": "Parallel coordinates", "slice": "Slice", "pareto": "Pareto front"}


def test_names_with_markup_characters_are_escaped_and_read_back_as_written():
    name = 'a<b>&"c\''
    settings = [Setting(name), Setting("opt", choices=("<x>", "&y"))]
    points = [Point(index, index / 10, {name: index, "opt": ("<x>", "&y")[index % 2]}) for index in range(5)]
    metric = 'm<&>"'
    for chart, svg in every_chart(points, settings, metric=metric, names=(name, "o&p")).items():
        shown = texts(parse(svg))
        if chart != "pareto":
            assert any(metric in text for text in shown), chart
        if chart != "history":
            assert any(name in text for text in shown), chart
        if chart in ("parallel", "slice"):
            assert "<x>" in shown and "&y" in shown


def test_characters_xml_cannot_hold_are_dropped_and_the_rest_come_out_as_ascii():
    points = [Point(0, 1.0, {"s\x00é": 1.0}), Point(1, 2.0, {"s\x00é": 2.0})]
    svg = slice_chart([Setting("s\x00é")], points, metric="λ")
    assert svg.isascii()
    shown = texts(parse(svg))
    assert "sé" in shown and "λ" in shown


def test_long_names_are_shortened_with_an_ellipsis():
    long = "a_setting_name_far_too_long_to_fit_above_its_axis_in_a_chart_of_many"
    settings = [Setting(long), *(Setting(f"s{index}") for index in range(8))]
    points = [Point(index, float(index), {setting.name: float(index) for setting in settings}) for index in range(5)]
    shown = texts(parse(parallel_chart(settings, points, metric="m", maximize=True)))
    assert long not in shown
    assert any(text.startswith("a_setting") and text.endswith("\u2026") for text in shown)


@pytest.mark.parametrize("maximize", [True, False])
def test_the_best_line_steps_monotonically_to_the_best_value(maximize):
    points = trials(40, seed=3)
    root = parse(history_chart(points, metric="m", maximize=maximize))
    line = polyline(root, "best")
    heights = [y for _, y in line]
    # SVG's y grows downwards: a rising best (maximize) has falling y
    assert heights == sorted(heights, reverse=maximize)
    assert [x for x, _ in line] == sorted(x for x, _ in line)
    drawn = dots(root)
    assert len(drawn) == 40
    assert heights[-1] == (min if maximize else max)(y for _, y in drawn)
    assert heights[0] == drawn[0][1]  # from the first trial's value
    assert line[-1][0] == max(x for x, _ in drawn)  # to the last trial


def test_the_best_line_is_level_until_a_trial_beats_it():
    points = [Point(0, 0.5, {}), Point(1, 0.4, {}), Point(2, 0.7, {}), Point(3, 0.6, {})]
    line = polyline(parse(history_chart(points, metric="m", maximize=True)), "best")
    assert len(line) == 4  # level from trial 0 to 2, up, level to trial 3
    assert line[0][1] == line[1][1] and line[1][0] == line[2][0] and line[2][1] == line[3][1]


def test_importance_bars_are_ordered_largest_first_with_their_values():
    importances = {"small": 0.05, "large": 0.6, "middle": 0.35, "nan": NAN}
    root = parse(importance_chart(importances, metric="acc"))
    bars = sorted(group(root, "bars"), key=lambda bar: float(bar.get("y")))
    widths = [float(bar.get("width")) for bar in bars]
    assert len(bars) == 3 and widths == sorted(widths, reverse=True)
    shown = texts(root)
    assert shown.index("large") < shown.index("middle") < shown.index("small")
    assert {"0.60", "0.35", "0.05", "importance for acc"} <= set(shown)


def test_a_log_axis_labels_powers_of_ten_and_never_more_than_six():
    points = [Point(index, float(index), {"wide": 10.0 ** (index - 9)}) for index in range(20)]  # 1e-9 .. 1e10
    root = parse(parallel_chart([Setting("wide", log=True)], points, metric="m", maximize=True))
    axis = max(tick_labels_by_x(root).items(), key=lambda item: float(item[0]))[1]
    assert 2 <= len(axis) <= 6
    for label in axis:
        exponent = math.log10(float(label))
        assert exponent == round(exponent), label


def test_a_log_axis_within_two_decades_labels_1_2_and_5():
    points = [Point(index, float(index), {"lr": value}) for index, value in enumerate((0.011, 0.03, 0.09, 0.4))]
    root = parse(parallel_chart([Setting("lr", log=True)], points, metric="m", maximize=True))
    axis = max(tick_labels_by_x(root).items(), key=lambda item: float(item[0]))[1]
    assert 2 <= len(axis) <= 6
    assert {float(label) for label in axis} <= {0.01, 0.02, 0.05, 0.1, 0.2, 0.5}
    assert {"0.02", "0.05"} <= set(axis)


def test_no_numeric_axis_has_more_than_six_tick_labels():
    root = parse(parallel_chart(SETTINGS, trials(200), metric="m", maximize=True))
    axes = tick_labels_by_x(root)
    assert len(axes) == 6
    assert all(len(labels) <= 6 for labels in axes.values())
    numeric = [label for labels in axes.values() for label in labels if label not in ("1", "2")]
    assert all(len(label.replace("-", "").replace(".", "").lstrip("0")) <= 5 for label in numeric), numeric


def test_categorical_axes_show_their_choices_in_order():
    settings = [Setting("opt", choices=("adam", "sgd", "rmsprop"))]
    points = [Point(index, float(index), {"opt": ("sgd", "adam")[index % 2]}) for index in range(6)]
    parallel = parse(parallel_chart(settings, points, metric="m", maximize=True))
    axis = max(tick_labels_by_x(parallel).items(), key=lambda item: float(item[0]))[1]
    assert axis == ["adam", "sgd", "rmsprop"]  # bottom to top, unused choices too
    shown = texts(parse(slice_chart(settings, points, metric="m")))
    assert shown.index("adam") < shown.index("sgd") < shown.index("rmsprop")


def test_categorical_dots_are_jittered_the_same_way_every_time():
    settings = [Setting("opt", choices=("a", "b"))]
    points = [Point(index, 1.0, {"opt": "a"}) for index in range(10)]
    first = dots(parse(slice_chart(settings, points, metric="m")))
    assert len({x for x, _ in first}) == 10  # side by side, not stacked
    assert first == dots(parse(slice_chart(settings, points, metric="m")))


def test_values_that_are_nan_or_infinite_are_left_out():
    points = [Point(0, 0.5, {"x": 1.0}), Point(1, NAN, {"x": 2.0}), Point(2, INF, {"x": 3.0}),
              Point(3, 0.7, {"x": -INF}), Point(4, 0.6, {"x": 4.0})]
    assert len(dots(parse(history_chart(points, metric="m", maximize=True)))) == 3
    assert len(dots(parse(slice_chart([Setting("x")], points, metric="m")))) == 2  # trial 3 has no finite x
    assert len(lines(parse(parallel_chart([Setting("x")], points, metric="m", maximize=True)))) == 3


@pytest.mark.parametrize("chart", ["history", "importance", "parallel", "slice", "pareto"])
def test_nothing_finite_is_a_chart_saying_so(chart):
    points = [Point(0, NAN, {"lr": 0.1}), Point(1, INF, {"lr": 0.2}), Point(2, -INF, {"lr": 0.3})]
    svgs = {
        "history": history_chart(points, metric="m", maximize=True),
        "importance": importance_chart({"lr": NAN}, metric="m"),
        "parallel": parallel_chart([Setting("lr")], points, metric="m", maximize=True),
        "slice": slice_chart([Setting("lr")], points, metric="m"),
        "pareto": pareto_chart(["a", "b"], [(0, [NAN, 1.0]), (1, [1.0, INF])], {0}, [True, False]),
    }
    assert "no finite values" in texts(parse(svgs[chart]))


def test_empty_inputs_are_charts_saying_so():
    for svg in (history_chart([], metric="m", maximize=True), importance_chart({}, metric="m"),
                parallel_chart([], [], metric="m", maximize=False), slice_chart([], [], metric="m"),
                pareto_chart(["a", "b"], [], set(), [True, True])):
        assert "no finite values" in texts(parse(svg))


@pytest.mark.parametrize("points", [
    [Point(7, 0.5, {"lr": 0.1, "epochs": 10, "vocab_size": 1000, "ngrams": "1", "l2": 1e-4})],
    [Point(index, 0.5, {"lr": 0.1, "epochs": 10, "vocab_size": 1000, "ngrams": "2", "l2": 1e-4})
     for index in range(5)],
    [Point(index, 0.0, {"lr": 1.0, "epochs": 1, "vocab_size": 0, "ngrams": "2", "l2": 1.0}) for index in range(3)],
], ids=["one point", "equal values", "zeros and ones"])
def test_a_single_point_or_equal_values_get_a_padded_range(points):
    for name, svg in every_chart(points).items():
        root = parse(svg)
        assert "nan" not in svg and "inf" not in svg, name
        for x, y in dots(root):
            assert 0 < x < WIDTH and 0 < y < HEIGHT, name


@pytest.mark.parametrize("extremes", [(1e308, -1e308), (5e-324, 0.0), (1e-300, 1e300), (2.0**53, 2.0**53 + 2)],
                         ids=["overflowing span", "subnormal", "600 decades", "close to float precision"])
def test_extreme_magnitudes_give_finite_coordinates(extremes):
    low, high = extremes
    points = [Point(0, low, {"a": low, "b": abs(low) or 1e-9}), Point(1, high, {"a": high, "b": abs(high) or 1.0})]
    settings = [Setting("a"), Setting("b", log=True)]
    svgs = [history_chart(points, metric="m", maximize=True), importance_chart({"a": low, "b": high}, metric="m"),
            parallel_chart(settings, points, metric="m", maximize=False), slice_chart(settings, points, metric="m"),
            pareto_chart(["x", "y", "z"], [(0, [low, high, low]), (1, [high, low, high])], {0}, [True, False, True])]
    for svg in svgs:
        parse(svg)
        assert not re.search(r"nan|inf", svg)


def test_a_point_missing_a_setting_breaks_its_line_at_that_axis():
    settings = [Setting("a"), Setting("b"), Setting("c")]
    points = [Point(0, 1.0, {"a": 1.0, "b": 2.0, "c": 3.0}), Point(1, 2.0, {"a": 2.0, "c": 1.0}),
              Point(2, 3.0, {"a": 3.0, "b": 1.0, "c": 2.0})]
    drawn = lines(parse(parallel_chart(settings, points, metric="m", maximize=True)))
    # drawn worst first: point 0's line, point 1's two pieces (objective to a; c alone, a short dash), point 2's
    assert [len(vertices) for _, vertices in drawn] == [4, 2, 2, 4]
    assert drawn[1][0] == drawn[2][0]  # one trial, one colour
    axes = [x for x, _ in drawn[0][1]]
    assert [x for x, _ in drawn[1][1]] == axes[:2]
    (left, level), (right, same) = drawn[2][1]
    assert left < axes[3] < right and level == same
    assert all(x != axes[2] for _, vertices in drawn[1:3] for x, _ in vertices)


def test_a_point_missing_a_setting_has_no_dot_in_its_panel():
    settings = [Setting("a"), Setting("b")]
    points = [Point(0, 1.0, {"a": 1.0, "b": 2.0}), Point(1, 2.0, {"a": 2.0})]
    assert len(dots(parse(slice_chart(settings, points, metric="m")))) == 3


def test_the_best_lines_are_drawn_last_in_the_darkest_colour():
    for maximize in (True, False):
        points = trials(30, seed=5)
        drawn = lines(parse(parallel_chart(SETTINGS, points, metric="m", maximize=maximize)))
        assert len(drawn) == 30
        objective = [vertices[0][1] for _, vertices in drawn]  # y on the objective axis; smaller is higher
        assert objective[-1] == (min(objective) if maximize else max(objective))
        assert objective[0] == (max(objective) if maximize else min(objective))
        assert drawn[-1][0] == "#440154" and drawn[0][0] == "#fde725"


def test_slice_dots_go_from_light_to_dark_by_trial_number():
    root = parse(slice_chart([Setting("x")], [Point(index, float(index), {"x": float(index)}) for index in range(5)],
                             metric="m"))
    colours = [path.get("stroke") for path in group(root, "dots")]
    assert colours[0] == "#fde725" and colours[-1] == "#440154" and len(colours) == 5
    assert "trial" in texts(root)


def test_slice_panels_fill_a_grid_of_at_most_four_columns():
    settings = [Setting(f"s{index}") for index in range(9)]
    points = [Point(index, float(index), {setting.name: float(index) for setting in settings}) for index in range(4)]
    root = parse(slice_chart(settings, points, metric="m"))
    frames = [rect for rect in root.iter(NS + "rect") if rect.get("stroke") == "#c4c4c4"]
    assert len(frames) == 9
    assert len({rect.get("x") for rect in frames}) == 3 and len({rect.get("y") for rect in frames}) == 3
    for rect in frames:
        assert float(rect.get("x")) + float(rect.get("width")) <= WIDTH
        assert float(rect.get("y")) + float(rect.get("height")) <= HEIGHT


def test_a_pareto_chart_of_two_objectives_joins_its_front_in_x_order():
    points = [(0, [0.9, 30.0]), (1, [0.6, 10.0]), (2, [0.7, 40.0]), (3, [0.8, 20.0]), (4, [NAN, 1.0])]
    root = parse(pareto_chart(["accuracy", "latency"], points, front={0, 1, 3}, directions=[True, False]))
    line = polyline(root, "front")
    assert len(line) == 3 and [x for x, _ in line] == sorted(x for x, _ in line)
    assert len(dots(root)) == 4
    shown = texts(root)
    assert {"accuracy (maximize)", "latency (minimize)", "Pareto front", "other trials"} <= set(shown)


def test_a_pareto_chart_of_three_objectives_has_a_panel_per_pair():
    points = [(index, [index / 10, 10.0 - index, (index * 7) % 5]) for index in range(10)]
    root = parse(pareto_chart(["a", "b", "c"], points, front={0, 9}, directions=[True, False, True]))
    frames = [rect for rect in root.iter(NS + "rect") if rect.get("stroke") == "#c4c4c4"]
    assert len(frames) == 3 and len({rect.get("x") for rect in frames}) == 3
    shown = texts(root)
    assert shown.count("a (maximize)") == 2 and shown.count("b (minimize)") == 2 and shown.count("c (maximize)") == 2
    assert len(dots(root)) == 30


def test_a_pareto_chart_of_more_objectives_draws_the_first_three():
    points = [(index, [index, -index, index % 3, index % 4]) for index in range(6)]
    root = parse(pareto_chart(["a", "b", "c", "d"], points, front={0}, directions=[True, True, True, True]))
    shown = texts(root)
    assert "c (maximize)" in shown and not any(text.startswith("d (") for text in shown)


def test_the_same_input_gives_the_same_bytes():
    first, again = every_chart(trials(100, seed=9)), every_chart(trials(100, seed=9))
    assert first == again


def test_two_thousand_points_of_six_settings_stay_under_a_megabyte():
    settings = [*SETTINGS, Setting("dropout")]
    rng = random.Random(2)
    points = [Point(point.number, point.value, {**point.params, "dropout": rng.random()}) for point in trials(2000)]
    note = "2,000 of 10,000 completed trials drawn: the best 200 and an even spread of the others"
    parallel = parallel_chart(settings, points, metric="val_accuracy", maximize=True, note=note)
    sliced = slice_chart(settings, points, metric="val_accuracy", note=note)
    assert len(parallel.encode()) < 1_000_000 and len(sliced.encode()) < 1_000_000
    assert len(lines(parse(parallel))) == 2000
    assert len(dots(parse(sliced))) == 2000 * 6
    assert note in texts(parse(parallel))
