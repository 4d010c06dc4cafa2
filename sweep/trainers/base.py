"""The interface every trainer meets: run one trial through its `Trial`, say what it produced."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from sweep.records import ModelPublishing
from sweep.trial import Trial


@dataclass(frozen=True)
class TrialOutcome:
    """A trial that ran to its end: the objective's value and the final metrics (the objective's among them)."""

    value: float
    metrics: dict[str, float] = field(default_factory=dict)
    model_json: str | None = None  # the trial's model file (model.json), if its trainer makes one


class UnusableTrainer(Exception):
    """The trainer's code conflicts with how the sweep runs it (the message says what to change): every trial
    would fail the same way, so the sweep stops after the first instead of running them all."""


class Trainer(Protocol):
    """What the trial loop calls, the same for the built-in trainer and the user's function."""

    def run(self, trial: Trial) -> TrialOutcome:
        """Train with ``trial.params``; raise TrialPruned when the pruner says so (an exception fails it)."""
        ...

    def mlflow_seconds(self) -> float | None:
        """How long the last trial's own code spent inside MLflow (its mlflow.* calls, what autologging added to its
        fits), read once ``run`` has returned or raised; None when it is not measured (MLflow is not in the trial's
        process, or the trainer is not one whose code logs there)."""
        ...

    def provenance(self) -> dict[str, str]:
        """Parent-run tags that say which code and data the sweep's trials ran."""
        ...

    def model_publishing(self) -> ModelPublishing:
        """How the sweep's best model is published on its parent run (the tracking layer does as it says)."""
        ...

    def close(self) -> None:
        """Let go of what the trainer holds for its trials once this process runs none any more (a command's
        watchdog process, MLflow's autologging): a sweep driven in-process leaves nothing behind."""
        ...
