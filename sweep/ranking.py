"""Which trial is best: one ordering shared by the parent run's best.* and `sweep best`.

With one objective: the objective, then the other validation metric (ties), then the earlier trial. With several:
each objective in the config's order, then the earlier trial; the best is then the front member that is best on
the first objective (a trial best on the first objective, ties broken by the next, is never dominated).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

# The other validation metric breaks ties: equal accuracy -> lower loss wins, and the reverse.
TIE_BREAKERS = {"val_accuracy": ("val_loss", 1.0), "val_loss": ("val_accuracy", -1.0)}


def rank_key(value: float, metrics: Mapping[str, float], number: int, *, metric: str,
             direction: str, more: Sequence[tuple[str, str]] = ()) -> tuple[float, ...]:
    """Smaller is better (see the module docstring); ``more`` is (metric, direction) of the objectives after the
    first."""
    primary = -value if direction == "maximize" else value
    if more:
        rest = [signed(metrics.get(name, math.nan), way) for name, way in more]
        return (primary, *(part if math.isfinite(part) else math.inf for part in rest), number)
    tie_metric, sign = TIE_BREAKERS.get(metric, (metric, 0.0))
    secondary = sign * metrics.get(tie_metric, math.inf) if sign else 0.0
    return (primary, secondary if math.isfinite(secondary) else math.inf, number)


def signed(value: float, direction: str) -> float:
    """A value to minimize: a maximized one turned around."""
    return -value if direction == "maximize" else value


def pareto_front(points: Sequence[tuple[int, Sequence[float]]]) -> list[int]:
    """The numbers of the points no other point dominates, best first (on the first value, then the next, then
    the lower number); ``points`` are (number, values to minimize each), and of points with identical values
    only the first is kept (one trial per point of the front)."""
    ordered = sorted(points, key=lambda point: (tuple(point[1]), point[0]))
    front: list[tuple[int, Sequence[float]]] = []
    for number, values in ordered:  # sorted: a point can only be dominated by one before it
        if not any(dominates(kept, values) or tuple(kept) == tuple(values) for _, kept in front):
            front.append((number, values))
    return [number for number, _ in front]


def dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    """``a`` is no worse than ``b`` on every value (all minimized) and better on one."""
    return all(x <= y for x, y in zip(a, b)) and any(x < y for x, y in zip(a, b))
