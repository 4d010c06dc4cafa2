"""The one line format a command reports in, from any language: `sweep: step=10 val_loss=0.31`.

With ``step=`` it is an intermediate report at that step; without, the final result. Every other line of
the command's output is its own business.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sweep.trial import MAX_STEP

PREFIX = b"sweep:"
NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-/]{0,249}\Z")  # as sweep.report writes them


@dataclass(frozen=True)
class ReportLine:
    step: int | None  # None: the final result
    metrics: dict[str, float]


def parse_report(line: bytes) -> ReportLine:
    """A `sweep:` line (prefix included) -> its step and metrics; ValueError says what is wrong with it."""
    text = line[len(PREFIX):].decode("utf-8", errors="replace").strip()
    if not text:
        raise ValueError("no metrics")
    step: int | None = None
    metrics: dict[str, float] = {}
    for word in text.split():
        name, equals, value = word.partition("=")
        if not equals or not value:
            raise ValueError(f"{word!r} is not name=value")
        if name == "step":
            if not value.isdigit() or int(value) > MAX_STEP:
                raise ValueError(f"step={value} is not a non-negative integer below 2**63")
            step = int(value)
            continue
        if not NAME.match(name):
            raise ValueError(f"{name!r} is not a metric name")
        try:
            metrics[name] = float(value)
        except ValueError:
            raise ValueError(f"{name}={value} is not a number") from None
    if not metrics:
        raise ValueError("no metrics")
    return ReportLine(step, metrics)
