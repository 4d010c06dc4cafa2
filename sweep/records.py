"""Plain records passed between the sweep loop and the tracking process (picklable, no MLflow types)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

TrialState = Literal["COMPLETE", "PRUNED", "FAIL"]
Curves = dict[str, list[tuple[int, float]]]  # metric name -> [(epoch, value), ...]


@dataclass(frozen=True)
class SweepIdentity:
    """What names a sweep in both stores."""

    name: str  # the Optuna study name and the parent run's name
    experiment: str
    tracking_uri: str | None  # None: MLFLOW_TRACKING_URI, else MLflow's default


@dataclass(frozen=True)
class TrialRecord:
    """One finished trial, everything its child run needs."""

    number: int
    state: TrialState
    params: dict[str, Any]  # every trainer setting, tuned and fixed
    value: float | None = None  # the objective; None unless COMPLETE
    metrics: dict[str, float] = field(default_factory=dict)  # final train/val/test accuracy and loss
    curves: Curves = field(default_factory=dict)
    model_json: str | None = None
    error: str | None = None  # one line, for FAIL
    traceback: str | None = None
    start_ms: int = 0
    end_ms: int = 0
    run_id: str | None = None  # the child run, when it was created already
    interrupted: bool = False  # stopped by Ctrl-C/SIGTERM: the child run ends KILLED, the trial FAIL


@dataclass(frozen=True)
class BestTrial:
    """The best trial so far, as the parent run shows it."""

    number: int
    run_id: str | None
    value: float
    params: dict[str, Any]
    metrics: dict[str, float]
    model_json: str | None


@dataclass(frozen=True)
class Counts:
    complete: int = 0
    pruned: int = 0
    failed: int = 0

    @property
    def finished(self) -> int:
        return self.complete + self.pruned + self.failed

    def add(self, state: TrialState) -> Counts:
        return Counts(self.complete + (state == "COMPLETE"), self.pruned + (state == "PRUNED"),
                      self.failed + (state == "FAIL"))


@dataclass(frozen=True)
class PublishedModel:
    """The best model as the parent run holds it at the end of a sweep: a pyfunc model, maybe registered."""

    uri: str | None = None  # runs:/<parent run id>/model, for mlflow.pyfunc.load_model
    trial: int | None = None  # the trial whose model it is
    registered: str | None = None  # "NAME/VERSION" in the MLflow Model Registry
    warning: str | None = None  # one line: why it could not be logged or registered (the sweep is still fine)
