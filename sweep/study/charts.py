"""The end of a sweep draws its plots here: SVG strings built with the standard library, so the plots need neither
matplotlib nor a second of CPU.

Five charts of a study, each a complete 1000x600 SVG document for the parent run's artifacts (MLflow's artifact
viewer shows .svg files as images): the optimization history, the settings' importances, parallel coordinates,
slices and, with several objectives, the Pareto front. The caller turns the study into plain values (Setting,
Point, numbers); nothing here imports Optuna, numpy or matplotlib.

Every chart is deterministic (same input, same bytes: the files can be compared between runs), leaves out values
that are NaN or infinite, and says "no finite values" rather than failing when nothing is left: pictures are never
worth a sweep's result. Coordinates carry one decimal and shared styles sit on groups, so thousands of lines stay a
few hundred kilobytes. Text widths are estimated (no font metrics without a renderer): generously, so that
shortened labels ("…") do not run into their neighbours whatever sans-serif font the viewer picks.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

WIDTH, HEIGHT = 1000, 600  # every chart's size in px: the width of MLflow's artifact viewer

_MAX_TICKS = 6  # labelled ticks per numeric axis: a parallel-coordinate axis or a slice panel is ~200 px wide
_ELLIPSIS = "\u2026"
_NO_VALUES = "no finite values"

# viridis, light to dark: perceptually even and readable in grey; "better" or "later" is the dark end
_PALETTE = ("#fde725", "#a0da39", "#4ac16d", "#1fa187", "#277f8e", "#365c8d", "#46327e", "#440154")
_BLUE = "#4c78a8"  # single-colour marks: history dots, importance bars
_RED = "#e45756"  # what stands out: the best-so-far line, the Pareto front
_GREY = "#b3b3b3"  # what does not: trials off the Pareto front

_STYLE = (
    "<style>"
    ".t{font-size:18px;font-weight:600;fill:#222}"
    ".l{font-size:13px;fill:#333}"
    ".b{font-size:12px;font-weight:600;fill:#333}"
    ".k{font-size:11px;fill:#555}"
    ".n{font-size:11px;fill:#777}"
    ".e{font-size:16px;fill:#888}"
    ".h{stroke:#fff;stroke-width:3px;stroke-linejoin:round;paint-order:stroke}"  # a halo: labels over lines
    "</style>"
)
# characters XML 1.0 forbids even escaped: a name holding one would make the whole document unreadable
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


@dataclass(frozen=True)
class Setting:
    """A tuned setting: one axis of the parallel-coordinate chart, one panel of the slice chart."""

    name: str
    log: bool = False  # numeric, drawn on a log10 scale (values are > 0)
    choices: tuple[str, ...] | None = None  # categorical: the labels in this order, equally spaced


@dataclass(frozen=True)
class Point:
    """A completed trial."""

    number: int  # trial number
    value: float  # the objective's value (the first objective with several)
    params: Mapping[str, float | str]  # numeric values, or the label of a categorical choice; absent: not used


# ---------------------------------------------------------------------------------------------------- the charts


def history_chart(points: Sequence[Point], *, metric: str, maximize: bool) -> str:
    """Each trial's value by trial number, and the best value so far as a step line: how the search converged."""
    title = "Optimization history"
    found = sorted((point.number, value) for point in points if (value := _finite(point.value)) is not None)
    if not found:
        return _empty(title)
    box = _Box(90, 60, 970, 515)
    xs = _Linear.over([number for number, _ in found], integer=True)
    ys = _Linear.over([value for _, value in found])
    body = _panel_axes(box, xs, ys, x_name="trial", y_name=metric)
    size = _by_count(len(found), 7.0, 4.0)
    body.append(_dots([(box.x(xs.at(n)), box.y(ys.at(v))) for n, v in found], _BLUE, size, 0.7))
    # the best so far as steps: level until a trial beats it, then straight up (or down) to the new best
    best = found[0][1]
    steps = [(found[0][0], best)]
    for number, value in found[1:]:
        if (value > best) if maximize else (value < best):
            steps += [(number, best), (number, value)]
            best = value
    if steps[-1][0] != found[-1][0]:
        steps.append((found[-1][0], best))
    best_points = [f"{_c(box.x(xs.at(number)))},{_c(box.y(ys.at(value)))}" for number, value in steps]
    body.append(f'<polyline class="best" points="{" ".join(best_points)}" fill="none" stroke="{_RED}" '
                f'stroke-width="2" stroke-linejoin="round"/>')
    body += _legend([("dot", _BLUE, "objective value"), ("line", _RED, "best value")])
    return _document(title, body)


def importance_chart(importances: Mapping[str, float], *, metric: str) -> str:
    """One horizontal bar per setting, the most important at the top: which settings the result depends on."""
    title = "Setting importances"
    items = sorted(((name, value) for name, raw in importances.items() if (value := _finite(raw)) is not None),
                   key=lambda item: (-item[1], item[0]))
    if not items:
        return _empty(title)
    top, bottom = 60.0, 515.0
    slot = (bottom - top) / len(items)
    size = round(min(12.0, max(7.0, slot * 0.7)), 1)  # names stay inside their slot however many settings
    label_width = min(260.0, max(_width(name, size) for name, _ in items))
    box = _Box(24 + label_width + 10, top, 900, bottom)
    low = min(0.0, *(value for _, value in items))
    high = max(0.0, *(value for _, value in items))
    if high == low:  # every importance 0
        high = 1.0
    margin = high * 0.05 - low * 0.05
    xs = _Linear(low - (margin if low < 0 else 0.0), high + margin)
    body = _panel_axes(box, xs, None, x_name=f"importance for {metric}", y_name=None)
    zero = box.x(xs.at(0.0))
    bar = min(34.0, slot * 0.72)
    bars, names, values = [], [], []
    for index, (name, value) in enumerate(items):
        middle = top + (index + 0.5) * slot
        end = box.x(xs.at(value))
        bars.append(f'<rect x="{_c(min(zero, end))}" y="{_c(middle - bar / 2)}" width="{_c(abs(end - zero))}" '
                    f'height="{_c(bar)}"/>')
        names.append(_text(box.left - 8, middle + size * 0.35, _shorten(name, label_width, size), "", "end"))
        shown = f"{value:.2f}" if abs(value) < 1e6 else _num(value)
        values.append(_text(max(zero, end) + 6, middle + size * 0.35, shown, "", "start"))
    body.append(f'<g class="bars" fill="{_BLUE}">{"".join(bars)}</g>')
    body.append(f'<g font-size="{size:g}" fill="#333">{"".join(names)}</g>')
    body.append(f'<g font-size="{min(size, 11.0):g}" fill="#555">{"".join(values)}</g>')
    return _document(title, body)


def parallel_chart(settings: Sequence[Setting], points: Sequence[Point], *, metric: str, maximize: bool,
                   note: str | None = None) -> str:
    """The objective's axis, then one vertical axis per setting; one polyline per trial through its values, coloured
    by its value (the better, the darker, drawn last so the best lines stay on top).

    A trial without a setting (a conditional one) has its line broken at that axis, into one polyline per stretch,
    rather than drawn through a value it never had; a value left alone between two gaps is a short dash across its
    axis.
    """
    title = "Parallel coordinates"
    drawn = [(point, value) for point in points if (value := _finite(point.value)) is not None]
    if not drawn:
        return _empty(title, note)
    values = [value for _, value in drawn]
    scales: list[_Scale] = [_Linear.over(values)]
    scales += [_setting_scale(setting, [point.params.get(setting.name) for point, _ in drawn]) for setting in settings]
    names = [metric, *(setting.name for setting in settings)]
    left, right, top, bottom = 80.0, 945.0, 92.0, 530.0
    spacing = (right - left) / (len(scales) - 1) if len(scales) > 1 else right - left
    xs = [left + index * spacing for index in range(len(scales))] if len(scales) > 1 else [(left + right) / 2]
    height = bottom - top

    low, high = min(values), max(values)
    # worst first: each line is drawn over the worse ones; the trial number settles ties, for the same bytes
    drawn.sort(key=lambda item: (item[1] if maximize else -item[1], item[0].number))
    lines = []
    x_text = [_c(x) for x in xs]
    for point, value in drawn:
        shade = (value - low) / (high - low) if high > low else 1.0
        fractions = [scales[0].at(value)]
        params = point.params
        fractions += [scale.at(params.get(setting.name)) for scale, setting in zip(scales[1:], settings)]
        colour = _colour(shade if maximize else 1.0 - shade)
        for run in _runs(x_text, xs, [None if f is None else _c(bottom - f * height) for f in fractions]):
            lines.append(f'<polyline points="{run}" stroke="{colour}"/>')
    width = _by_count(len(drawn), 1.6, 0.8)
    opacity = _by_count(len(drawn), 0.9, 0.35)
    body = [f'<g class="lines" fill="none" stroke-width="{width:g}" stroke-opacity="{opacity:g}" '
            f'stroke-linejoin="round">', *lines, "</g>"]

    axes, labels = [], []
    for index, (scale, name, x) in enumerate(zip(scales, names, xs)):
        axes.append(f"M{_c(x)} {_c(top)}V{_c(bottom)}")
        room = min(spacing - 10, 2 * (x - 10), 2 * (WIDTH - 10 - x)) if len(xs) > 1 else 400
        labels.append(_text(x, top - 14, _shorten(name, room, 12), "b", "middle"))
        budget = max(28.0, spacing * 0.45 if index else left - 14)
        for fraction, label in _fit_ticks(scale, height, across=False, budget=budget):
            y = bottom - fraction * height
            axes.append(f"M{_c(x - 4)} {_c(y)}h4")
            labels.append(_text(x - 6, y + 4, label, "k h", "end"))
        axes += [f"M{_c(x - 2.5)} {_c(bottom - fraction * height)}h2.5" for fraction in scale.minor()]
    body.append(f'<path d="{"".join(axes)}" stroke="#555" fill="none"/>')
    body += labels
    body += _colour_bar(metric, _num(low), _num(high), dark_high=maximize)
    return _document(title, body, note)


def slice_chart(settings: Sequence[Setting], points: Sequence[Point], *, metric: str, note: str | None = None) -> str:
    """One panel per setting: the objective's value against that setting's value, dots coloured by trial number
    (early light, late dark), so where the search settled shows beside what each setting did."""
    title = "Slice"
    drawn = [(point, value) for point in points if (value := _finite(point.value)) is not None]
    if not drawn:
        return _empty(title, note)
    if not settings:
        return _empty(title, note, "no settings")
    ys = _Linear.over([value for _, value in drawn])
    rows = math.ceil(len(settings) / 4)
    columns = math.ceil(len(settings) / rows)  # rows as full as they can be: 5 settings are 3 + 2 panels, not 4 + 1
    left, right, top, bottom = 90.0, 975.0, 62.0, 548.0
    gap = 26.0
    panel_width = (right - left - (columns - 1) * gap) / columns
    pitch = (bottom - top) / rows
    panel_height = pitch - 44  # below each panel: its tick labels and the setting's name

    first, last = min(point.number for point, _ in drawn), max(point.number for point, _ in drawn)
    levels = 64  # colours by trial number, grouped: one path per colour instead of one element per dot
    by_level: dict[int, list[str]] = {}
    body: list[str] = []
    for index, setting in enumerate(settings):
        row, column = divmod(index, columns)
        box = _Box(left + column * (panel_width + gap), top + row * pitch, left + column * (panel_width + gap)
                   + panel_width, top + row * pitch + panel_height)
        xs = _setting_scale(setting, [point.params.get(setting.name) for point, _ in drawn])
        body += _panel_axes(box, xs, ys, x_name=setting.name, y_name=None, y_labels=column == 0)
        spread = 0.3 / len(xs.choices) if isinstance(xs, _Categories) else 0.0
        for point, value in drawn:
            fraction = xs.at(point.params.get(setting.name))
            if fraction is None:
                continue
            if spread:  # a categorical value: a fixed offset per trial, so equal values do not hide each other
                fraction += spread * _jitter(point.number)
            level = round((point.number - first) / (last - first) * (levels - 1)) if last > first else levels - 1
            by_level.setdefault(level, []).append(f"M{_c(box.x(fraction))} {_c(box.y(ys.at(value)))}h0")
    size = _by_count(len(drawn), 6.5, 3.5)
    opacity = _by_count(len(drawn), 0.85, 0.55)
    body.append(f'<g class="dots" fill="none" stroke-width="{size:g}" stroke-opacity="{opacity:g}" '
                f'stroke-linecap="round">')
    body += [f'<path d="{"".join(by_level[level])}" stroke="{_colour(level / (levels - 1))}"/>'
             for level in sorted(by_level)]
    body.append("</g>")
    middle = top + (rows * pitch - 44) / 2
    body.append(_text(20, middle, _shorten(metric, rows * pitch - 44, 13), "l", "middle", rotate=True))
    body += _colour_bar("trial", str(first), str(last), dark_high=True)
    return _document(title, body, note)


def pareto_chart(names: Sequence[str], points: Sequence[tuple[int, Sequence[float]]], front: Collection[int],
                 directions: Sequence[bool]) -> str:
    """Trials by their objectives, the Pareto front's members in colour: what each objective costs the others.

    Two objectives: one panel, the front joined in x order (the curve of trade-offs). Three or more: one panel per
    pair among the first three, the front's members unjoined: a projection of a front is not a front, and a line
    through it in x order would zigzag without meaning.
    """
    title = "Pareto front"
    count = len(names)
    if count < 2:
        return _empty(title, None, "needs two objectives")
    pairs = [(0, 1)] if count == 2 else [(0, 1), (0, 2), (1, 2)]
    members = set(front)
    panels = []
    for i, j in pairs:
        found = []
        for number, values in points:
            if len(values) > j and (x := _finite(values[i])) is not None and (y := _finite(values[j])) is not None:
                found.append((number, x, y))
        panels.append(found)
    if not any(panels):
        return _empty(title)

    def named(index: int) -> str:
        maximized = index < len(directions) and directions[index]
        return f"{names[index]} ({'maximize' if maximized else 'minimize'})"

    if len(pairs) == 1:
        boxes = [_Box(100, 60, 965, 515)]
    else:
        width = (WIDTH - 100 - 30 - 2 * 95) / 3
        boxes = [_Box(100 + index * (width + 95), 60, 100 + index * (width + 95) + width, 515) for index in range(3)]
    body: list[str] = []
    others: list[tuple[float, float]] = []
    best: list[tuple[float, float]] = []
    for (i, j), found, box in zip(pairs, panels, boxes):
        xs = _Linear.over([x for _, x, _ in found])
        ys = _Linear.over([y for _, _, y in found])
        body += _panel_axes(box, xs, ys, x_name=named(i), y_name=named(j))
        on_front = sorted((x, y) for number, x, y in found if number in members)
        others += [(box.x(xs.at(x)), box.y(ys.at(y))) for number, x, y in found if number not in members]
        best += [(box.x(xs.at(x)), box.y(ys.at(y))) for x, y in on_front]
        if len(pairs) == 1 and len(on_front) > 1:
            line = " ".join(f"{_c(box.x(xs.at(x)))},{_c(box.y(ys.at(y)))}" for x, y in on_front)
            body.append(f'<polyline class="front" points="{line}" fill="none" stroke="{_RED}" stroke-width="1.5" '
                        f'stroke-opacity="0.8" stroke-linejoin="round"/>')
    size = _by_count(len(panels[0]), 7.0, 4.0)
    if others:
        body.append(_dots(others, _GREY, size, 0.7))
    if best:
        body.append(_dots(best, _RED, size + 1, 0.95))
    body += _legend([("dot", _RED, "Pareto front"), ("dot", _GREY, "other trials")])
    return _document(title, body)


# ---------------------------------------------------------------------------------------------------- scales


class _Scale:
    """Where the values of one axis fall along it, as fractions 0..1 of its length, and which ticks it labels."""

    def at(self, value: object) -> float | None:
        """A value's place on the axis; None for a value this axis cannot show (missing, not finite, wrong kind)."""
        raise NotImplementedError

    def ticks(self, most: int) -> list[tuple[float, str]]:
        """At most ``most`` labelled ticks, as (fraction, label)."""
        raise NotImplementedError

    def minor(self) -> list[float]:
        """Fractions of unlabelled ticks: where a log axis' decades are subdivided."""
        return []


class _Linear(_Scale):
    """A linear axis over [low, high], ticks 1, 2 or 5 x 10^k apart (whole numbers only for integer settings)."""

    def __init__(self, low: float, high: float, *, integer: bool = False) -> None:
        self.low, self.high, self.integer = low, high, integer
        # halved when the span overflows (values near +-1e308): positions stay finite, whatever a caller passes
        self.factor = 1.0 if math.isfinite(high - low) else 0.5
        self.span = high * self.factor - low * self.factor

    @classmethod
    def over(cls, values: Sequence[float], *, integer: bool = False) -> _Linear:
        """A scale showing every value with a 5% margin; a single value gets a padded range, not a zero span."""
        low, high = (min(values), max(values)) if values else (0.0, 1.0)
        if high - low <= 1e-12 * max(abs(low), abs(high), 1e-200):  # equal, or too close to tell apart
            pad = abs(low) * 0.1 or 1.0
            low, high = low - (max(pad, 1.0) if integer else pad), high + (max(pad, 1.0) if integer else pad)
        margin = high * 0.05 - low * 0.05
        return cls(low - margin, high + margin, integer=integer)

    def at(self, value: object) -> float | None:
        number = _finite(value)
        return None if number is None else (number * self.factor - self.low * self.factor) / self.span

    def ticks(self, most: int) -> list[tuple[float, str]]:
        values, step = _nice_ticks(self.low, self.high, most, integer=self.integer)
        return [(self.at(value) or 0.0, _tick_label(value, step)) for value in values]


class _Log(_Scale):
    """A log10 axis: positive values only, ticks at powers of ten."""

    def __init__(self, low: float, high: float) -> None:  # in log10 units
        self.low, self.high = low, high
        self.span = high - low

    @classmethod
    def over(cls, values: Sequence[float]) -> _Log:
        logs = [math.log10(value) for value in values]
        low, high = (min(logs), max(logs)) if logs else (0.0, 1.0)
        if high - low < 1e-9:
            low, high = low - 0.3, high + 0.3  # a factor of two either side
        margin = (high - low) * 0.05
        return cls(low - margin, high + margin)

    def at(self, value: object) -> float | None:
        number = _finite(value)
        return None if number is None or number <= 0 else (math.log10(number) - self.low) / self.span

    def ticks(self, most: int) -> list[tuple[float, str]]:
        """Powers of ten (every other one, or fewer, past ``most`` decades); 1, 2 and 5 of each decade within less
        than two; a narrower range, within one decade, gets plain linear ticks."""
        # within the powers of ten a float holds (a caller's 1e-320 has no tick of its own)
        first, last = max(math.ceil(self.low - 1e-9), -306), min(math.floor(self.high + 1e-9), 306)
        if self.span < 2:
            values = [mantissa * 10.0**exponent for exponent in range(first - 1, last + 1) for mantissa in (1, 2, 5)]
            values = [value for value in values if self.low - 1e-9 <= math.log10(value) <= self.high + 1e-9]
            if 2 <= len(values) <= most:
                return self._labelled(values)
        if last > first:
            stride = math.ceil((last - first + 1) / most)
            exponents = [exponent for exponent in range(first, last + 1) if exponent % stride == 0]
            if len(exponents) >= 2:
                return self._labelled([10.0**exponent for exponent in exponents])
        values, step = _nice_ticks(10 ** min(max(self.low, -306), 306), 10 ** min(max(self.high, -306), 306), most)
        return [((math.log10(value) - self.low) / self.span, _tick_label(value, step)) for value in values if value > 0]

    def minor(self) -> list[float]:
        """2, 3, ... 9 of each decade, over half a decade to six: a log axis reads as one; marks too dense beyond."""
        if not 0.5 <= self.span <= 6:
            return []
        found = []
        for exponent in range(math.floor(self.low), math.ceil(self.high) + 1):
            for mantissa in range(2, 10):
                place = math.log10(mantissa) + exponent
                if self.low <= place <= self.high:
                    found.append((place - self.low) / self.span)
        return found

    def _labelled(self, values: list[float]) -> list[tuple[float, str]]:
        """Ticks labelled plainly (0.01, 20); all in exponent form (1e-6, 2e-5) when any would be."""
        labels = [_num(value) for value in values]
        if any("e" in label for label in labels):
            labels = []
            for value in values:
                exponent = math.floor(math.log10(value) + 1e-9)
                labels.append(f"{round(value / 10.0**exponent, 3):g}e{exponent}")
        return [((math.log10(value) - self.low) / self.span, label) for value, label in zip(values, labels)]


class _Categories(_Scale):
    """A categorical axis: the choices in their order, each in the middle of an equal slot."""

    def __init__(self, choices: Sequence[str]) -> None:
        self.choices = tuple(choices) or ("",)
        self.index = {choice: index for index, choice in enumerate(self.choices)}

    def at(self, value: object) -> float | None:
        if value is None:
            return None
        index = self.index.get(value if isinstance(value, str) else str(value))
        return None if index is None else (index + 0.5) / len(self.choices)

    def ticks(self, most: int) -> list[tuple[float, str]]:
        return [((index + 0.5) / len(self.choices), choice) for index, choice in enumerate(self.choices)]


def _setting_scale(setting: Setting, values: Iterable[object]) -> _Scale:
    """A setting's axis: its choices; else its numbers (integers get integer ticks), on a log scale if it is one.
    A setting without choices whose values are all labels still gets them as choices, in order of appearance."""
    if setting.choices is not None:
        return _Categories(setting.choices)
    numbers: list[float] = []
    labels: dict[str, None] = {}
    integer = True
    for value in values:
        if isinstance(value, str):
            labels[value] = None
        elif (number := _finite(value)) is not None and (number > 0 or not setting.log):
            numbers.append(number)
            integer = integer and isinstance(value, int)
    if not numbers and labels:
        return _Categories(tuple(labels))
    return _Log.over(numbers) if setting.log else _Linear.over(numbers, integer=integer and bool(numbers))


def _nice_ticks(low: float, high: float, most: int, *, integer: bool = False) -> tuple[list[float], float]:
    """Tick values 1, 2 or 5 x 10^k apart inside [low, high], at most ``most`` of them, and their step (none for a
    range no float arithmetic can divide)."""
    room = high / most - low / most
    if not 0 < room < math.inf:
        return [], 1.0
    exponent = math.floor(math.log10(room))
    while True:
        for mantissa in (1, 2, 5):
            step = mantissa * 10.0**exponent
            if integer and step < 1:
                continue
            first, last = math.ceil(low / step - 1e-9), math.floor(high / step + 1e-9)
            if last - first + 1 <= most:
                # k * m / 10^-e: 0.3, not k * 0.1's 0.30000000000000004
                scale = 10 ** (-exponent) if exponent < 0 else None
                values = [k * mantissa / scale if scale else k * step for k in range(first, last + 1)]
                return values, step
        exponent += 1


def _fit_ticks(scale: _Scale, length: float, *, across: bool, budget: float) -> list[tuple[float, str]]:
    """The ticks an axis of ``length`` px has room for: labels side by side along it (``across``) or stacked; each
    label at most ``budget`` px wide when stacked. Choice labels are thinned out when there are too many."""
    if isinstance(scale, _Categories):
        ticks = scale.ticks(_MAX_TICKS)
        slot = length / len(ticks)
        stride = max(1, math.ceil((36 if across else 15) / slot))
        room = slot * stride - 6 if across else budget
        return [(fraction, _shorten(label, room, 11)) for fraction, label in ticks[::stride]]
    ticks: list[tuple[float, str]] = []
    for most in range(_MAX_TICKS, 1, -1):
        ticks = scale.ticks(most)
        need = sum(_width(label, 11) + 12 for _, label in ticks) if across else len(ticks) * 18
        if need <= length:
            break
    return ticks


# ---------------------------------------------------------------------------------------------------- drawing


@dataclass(frozen=True)
class _Box:
    """A panel's plotting area in px; fractions along its scales become coordinates (y grows downwards)."""

    left: float
    top: float
    right: float
    bottom: float

    def x(self, fraction: float | None) -> float:
        return self.left + (fraction or 0.0) * (self.right - self.left)

    def y(self, fraction: float | None) -> float:
        return self.bottom - (fraction or 0.0) * (self.bottom - self.top)


def _panel_axes(box: _Box, xs: _Scale, ys: _Scale | None, *, x_name: str, y_name: str | None,
                y_labels: bool = True) -> list[str]:
    """A panel's frame, light grid, ticks and their labels, and the axes' names (the y name rotated on the left)."""
    width, height = box.right - box.left, box.bottom - box.top
    x_ticks = _fit_ticks(xs, width, across=True, budget=width)
    y_ticks = _fit_ticks(ys, height, across=False, budget=box.left - 16) if ys is not None else []
    grid = [f"M{_c(box.x(f))} {_c(box.top)}V{_c(box.bottom)}" for f, _ in x_ticks]
    grid += [f"M{_c(box.left)} {_c(box.y(f))}H{_c(box.right)}" for f, _ in y_ticks]
    marks = [f"M{_c(box.x(f))} {_c(box.bottom)}v4" for f, _ in x_ticks]
    marks += [f"M{_c(box.x(f))} {_c(box.bottom)}v2.5" for f in xs.minor()]
    parts = [f'<path d="{"".join(grid)}" stroke="#ebebeb" fill="none"/>',
             f'<rect x="{_c(box.left)}" y="{_c(box.top)}" width="{_c(width)}" height="{_c(height)}" fill="none" '
             f'stroke="#c4c4c4"/>']
    labels = [_text(box.x(f), box.bottom + 16, label, "k", "middle") for f, label in x_ticks]
    if ys is not None:
        marks += [f"M{_c(box.left - 4)} {_c(box.y(f))}h4" for f, _ in y_ticks]
        marks += [f"M{_c(box.left - 2.5)} {_c(box.y(f))}h2.5" for f in ys.minor()]
        if y_labels:
            labels += [_text(box.left - 7, box.y(f) + 4, label, "k", "end") for f, label in y_ticks]
    parts.append(f'<path d="{"".join(marks)}" stroke="#888" fill="none"/>')
    parts += labels
    parts.append(_text((box.left + box.right) / 2, box.bottom + 34, _shorten(x_name, width, 13), "l", "middle"))
    if y_name is not None:
        widest = max((_width(label, 11) for _, label in y_ticks), default=0.0)
        parts.append(_text(box.left - 16 - widest, (box.top + box.bottom) / 2, _shorten(y_name, height, 13), "l",
                           "middle", rotate=True))
    return parts


def _runs(x_text: Sequence[str], xs: Sequence[float], ys: Sequence[str | None]) -> list[str]:
    """A line's polyline points through the axes it has values on, one run per stretch without a gap; a value alone
    between two gaps becomes a short dash across its axis, so it still shows."""
    runs: list[str] = []
    run: list[int] = []
    for index in [*range(len(ys)), -1]:
        if index >= 0 and ys[index] is not None:
            run.append(index)
            continue
        if len(run) == 1:
            x, y = xs[run[0]], ys[run[0]]
            runs.append(f"{_c(x - 5)},{y} {_c(x + 5)},{y}")
        elif run:
            runs.append(" ".join(f"{x_text[i]},{ys[i]}" for i in run))
        run = []
    return runs


def _dots(places: Iterable[tuple[float, float]], colour: str, size: float, opacity: float) -> str:
    """Round dots as zero-length path segments with round caps: one element for any number of dots."""
    d = "".join(f"M{_c(x)} {_c(y)}h0" for x, y in places)
    return (f'<path d="{d}" fill="none" stroke="{colour}" stroke-width="{size:g}" stroke-opacity="{opacity:g}" '
            f'stroke-linecap="round"/>')


def _by_count(count: int, few: float, many: float) -> float:
    """A mark's size (or opacity) for ``count`` marks: ``few`` up to 50, ``many`` from 2,000, log-scaled between:
    a few dots should be easy to see, thousands should not blot each other out."""
    share = min(1.0, max(0.0, math.log10(max(count, 1) / 50) / math.log10(2000 / 50)))
    return round(few + (many - few) * share, 2)


def _legend(items: Sequence[tuple[str, str, str]]) -> list[str]:
    """A one-row legend ending at the top-right corner, level with the title: (mark "dot"/"line", colour, label)."""
    widths = [20 + _width(label, 12) for _, _, label in items]
    x = WIDTH - 30 - sum(widths) - 18 * (len(items) - 1)
    parts = []
    for (mark, colour, label), width in zip(items, widths):
        if mark == "dot":
            parts.append(f'<circle cx="{_c(x + 5)}" cy="27" r="4.5" fill="{colour}"/>')
        else:
            parts.append(f'<path d="M{_c(x - 2)} 27h14" stroke="{colour}" stroke-width="2.5"/>')
        parts.append(f'<text x="{_c(x + 18)}" y="31" font-size="12" fill="#333">{_escape(label)}</text>')
        x += width + 18
    return parts


def _colour_bar(label: str, low: str, high: str, *, dark_high: bool) -> list[str]:
    """A small horizontal colour bar at the top right, the value range at its ends and its label above."""
    left, right = 800.0, 915.0
    stops = "".join(f'<stop offset="{index / (len(_PALETTE) - 1):.3g}" stop-color="{colour}"/>'
                    for index, colour in enumerate(_PALETTE))
    # one id per direction: charts placed in one page share ids, and each id must mean the same gradient
    name, direction = ("ramp-up", 'x1="0" x2="1"') if dark_high else ("ramp-down", 'x1="1" x2="0"')
    return [f'<defs><linearGradient id="{name}" {direction} y1="0" y2="0">{stops}</linearGradient></defs>',
            f'<rect x="{left:g}" y="22" width="{right - left:g}" height="10" fill="url(#{name})"/>',
            _text((left + right) / 2, 16, _shorten(label, right - left + 60, 11), "k", "middle"),
            _text(left - 6, 31, low, "k", "end"), _text(right + 6, 31, high, "k", "start")]


def _empty(title: str, note: str | None = None, message: str = _NO_VALUES) -> str:
    """The chart of nothing to draw: its title and why, so a missing picture never needs explaining elsewhere."""
    return _document(title, [_text(WIDTH / 2, HEIGHT / 2, message, "e", "middle")], note)


def _document(title: str, body: Sequence[str], note: str | None = None) -> str:
    """The standalone SVG: white background, title, body, then the note in small grey text at the bottom-left.
    Non-ASCII characters (the ellipsis, names) become character references: the same bytes whatever encoding a
    caller writes the text in."""
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
             f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif">',
             _STYLE, f'<rect width="{WIDTH}" height="{HEIGHT}" fill="#fff"/>', _text(24, 32, title, "t"), *body]
    if note:
        parts.append(_text(16, HEIGHT - 10, _shorten(note, WIDTH - 32, 11), "n"))
    parts.append("</svg>\n")
    return "\n".join(parts).encode("ascii", "xmlcharrefreplace").decode("ascii")


def _text(x: float, y: float, content: str, cls: str, anchor: str = "start", *, rotate: bool = False) -> str:
    """A text element at (x, y) (its baseline), escaped; rotated, it reads upwards along a vertical axis."""
    attrs = f' class="{cls}"' if cls else ""
    if anchor != "start":
        attrs += f' text-anchor="{anchor}"'
    if rotate:
        attrs += f' transform="rotate(-90 {_c(x)} {_c(y)})"'
    return f'<text x="{_c(x)}" y="{_c(y)}"{attrs}>{_escape(content)}</text>'


def _escape(text: str) -> str:
    """Text for an element's content: XML-escaped, on one line, without the characters XML cannot hold at all."""
    # by hand: xml.sax.saxutils would import urllib.request (and http.client, ssl) for four replacements
    text = _NOT_XML.sub("", text.replace("\r", " ").replace("\n", " "))
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


# ---------------------------------------------------------------------------------------------------- numbers and text


def _finite(value: object) -> float | None:
    """A number that can be drawn, as a float; None for NaN, infinities, labels and anything else."""
    if isinstance(value, (int, float)):
        number = float(value)
        return number if math.isfinite(number) else None
    return None


def _c(value: float) -> str:
    """A coordinate with one decimal, without a trailing ".0": the files stay small."""
    text = f"{value:.1f}"
    if text.endswith(".0"):
        text = text[:-2]
    return "0" if text == "-0" else text


def _num(value: float) -> str:
    """A number in at most 4 significant digits, exponents short (2e-5, 1.5e6)."""
    text = f"{value + 0.0:.4g}"
    if "e" in text:
        mantissa, exponent = text.split("e")
        text = f"{mantissa}e{int(exponent)}"
    return text


def _tick_label(value: float, step: float) -> str:
    """A linear tick's label, with as many decimals as its step needs (0.55, 0.60, 0.65: all alike)."""
    size = max(abs(value), step)
    if 1e-4 <= size < 1e6:
        decimals = max(0, -math.floor(math.log10(step) + 1e-9))
        return f"{value + 0.0:.{decimals}f}"  # + 0.0: zero, never "-0"
    if value == 0:
        return "0"
    digits = max(1, math.floor(math.log10(abs(value)) + 1e-9) - math.floor(math.log10(step) + 1e-9) + 1)
    text = f"{value:.{digits}g}"
    if "e" in text:
        mantissa, exponent = text.split("e")
        text = f"{mantissa}e{int(exponent)}"
    return text


def _jitter(number: int) -> float:
    """A trial's fixed offset in [-1, 1): a multiplicative hash of its number, the same on every draw."""
    return (number * 2654435761 % 4294967296) / 2147483648 - 1.0


def _colour(shade: float) -> str:
    """The palette's colour at ``shade`` (0 light .. 1 dark), from a 256-step table."""
    return _RAMP[round(min(1.0, max(0.0, shade)) * 255)]


def _ramp(steps: int) -> tuple[str, ...]:
    """The palette interpolated linearly in RGB between its anchors, as hex colours."""
    anchors = [tuple(int(colour[i:i + 2], 16) for i in (1, 3, 5)) for colour in _PALETTE]
    colours = []
    for step in range(steps):
        place = step / (steps - 1) * (len(anchors) - 1)
        index = min(int(place), len(anchors) - 2)
        share = place - index
        mixed = (round(a + (b - a) * share) for a, b in zip(anchors[index], anchors[index + 1]))
        colours.append("#" + "".join(f"{channel:02x}" for channel in mixed))
    return tuple(colours)


_RAMP = _ramp(256)

# rough glyph widths in ems, on the wide side (DejaVu Sans, the common Linux sans-serif, is wider than Arial)
_NARROW = frozenset("ijlI.,:;'|!`")
_SLIM = frozenset("frt()[]{}- /\\\"")
_WIDE = frozenset("mwMW@%")


def _width(text: str, size: float) -> float:
    """An estimate of ``text``'s width in px at font ``size``."""
    ems = 0.0
    for char in text:
        if char in _NARROW:
            ems += 0.3
        elif char in _SLIM:
            ems += 0.42
        elif char in _WIDE:
            ems += 0.95
        elif char.isupper():
            ems += 0.72
        else:
            ems += 0.62
    return ems * size


def _shorten(text: str, room: float, size: float) -> str:
    """``text`` cut to fit ``room`` px at font ``size``, an ellipsis marking the cut (one character at least)."""
    if _width(text, size) <= room:
        return text
    used, keep = 0.62 * size, 0  # the ellipsis' own width first
    for char in text:
        used += _width(char, size)
        if used > room and keep:
            break
        keep += 1
    return text[:keep].rstrip() + _ELLIPSIS
