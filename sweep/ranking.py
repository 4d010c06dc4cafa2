"""Which trial is best: one ordering shared by the parent run's best.* and `sweep best`."""

from __future__ import annotations

import math
from collections.abc import Mapping

# The other validation metric breaks ties: equal accuracy -> lower loss wins, and the reverse.
TIE_BREAKERS = {"val_accuracy": ("val_loss", 1.0), "val_loss": ("val_accuracy", -1.0)}


def rank_key(value: float, metrics: Mapping[str, float], number: int, *, metric: str,
             direction: str) -> tuple[float, float, int]:
    """Smaller is better: the objective, then the other validation metric, then the earlier trial."""
    primary = -value if direction == "maximize" else value
    tie_metric, sign = TIE_BREAKERS.get(metric, (metric, 0.0))
    secondary = sign * metrics.get(tie_metric, math.inf) if sign else 0.0
    return (primary, secondary if math.isfinite(secondary) else math.inf, number)
