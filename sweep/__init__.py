"""sweep: hyperparameter sweeps where an Optuna study proposes settings and every trial is a nested MLflow run.

A trainer of your own is a function ``fit(trial)``; ``Trial`` is what it receives (see its docstring), and
raising ``TrialPruned`` prunes it. A command's script reports with ``from sweep.report import report``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sweep.trial import Trial, TrialPruned

__all__ = ["Trial", "TrialPruned"]


def __getattr__(name: str) -> Any:
    # loaded on first use: a command's script importing sweep.report pays for nothing else (numpy included)
    if name in __all__:
        from sweep import trial

        return getattr(trial, name)
    raise AttributeError(f"module 'sweep' has no attribute {name!r}")
