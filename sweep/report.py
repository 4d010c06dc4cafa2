"""`from sweep.report import report`: a trial's report line for a script run by a command trainer.

    report(step=10, val_loss=0.31)   # prints `sweep: step=10 val_loss=0.31`: an intermediate report
    report(val_accuracy=0.91)        # prints `sweep: val_accuracy=0.91`: the final result

Any language can print the same line itself. This module imports nothing but the standard library, so a
script pays nothing for it (no mlflow, no optuna).
"""

from __future__ import annotations

import re
import sys
from typing import TextIO

NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-/]{0,249}\Z")  # a metric name MLflow accepts, without spaces


def report(step: int | None = None, *, file: TextIO | None = None, **metrics: float) -> None:
    """Print one `sweep:` line (flushed, so the sweep sees it at once): metrics at ``step``, or the final
    metrics when ``step`` is None."""
    if step is not None and (isinstance(step, bool) or not isinstance(step, int) or step < 0):
        raise TypeError(f"report: step must be a non-negative integer, got {step!r}")
    if not metrics:
        raise TypeError("report: give at least one metric, like report(step=3, val_loss=0.4)")
    words = [] if step is None else [f"step={step}"]
    for name, value in metrics.items():
        if not NAME.match(name) or name == "step":
            raise ValueError(f"report: {name!r} is not a metric name; use letters, digits, '_', '-', '.', '/'")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"report: {name} is {value!r}, not a number")
        words.append(f"{name}={float(value)!r}")
    print("sweep: " + " ".join(words), file=file if file is not None else sys.stdout, flush=True)
