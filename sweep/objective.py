"""One trial: suggest settings -> train (record curves, report checkpoints, maybe prune) -> result.

No optuna import: the trial arrives from sweep/study/ and is used through its methods (suggest_*,
report, should_prune), so optuna.trial.FixedTrial drives it in tests.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from sweep.config import SweepConfig
from sweep.records import Curves
from sweep.space import SuggestingTrial, suggest
from trainer import Split, TrainConfig, TrainResult, train

CURVE_POINTS = 100  # at most this many points per learning curve: long runs stay cheap to log
CHECKPOINTS_PER_DECADE = 4  # pruner reports at 1, 2, 3, 6, 10, 18, 32, 56, 100, ... epochs


def checkpoint_epochs(limit: int) -> list[int]:
    """Log-spaced epochs, the same for every trial, so a pruner compares trials at equal steps.

    Optuna's pruners compare intermediate values reported at the same step. A per-trial schedule
    (every epochs/10) would put trials of different lengths on different steps and never prune.
    """
    epochs: list[int] = []
    k = 0
    while True:
        epoch = round(10 ** (k / CHECKPOINTS_PER_DECADE))
        if epoch > limit:
            return epochs
        if not epochs or epoch != epochs[-1]:
            epochs.append(epoch)
        k += 1


class ReportingTrial(SuggestingTrial, Protocol):
    number: int

    def report(self, value: float, step: int) -> None: ...

    def should_prune(self) -> bool: ...


class TrialPruned(Exception):
    """The pruner stopped this trial at ``epoch``."""

    def __init__(self, epoch: int) -> None:
        super().__init__(f"pruned at epoch {epoch}")
        self.epoch = epoch


class TrialInterrupted(Exception):
    """Ctrl-C or SIGTERM arrived: training stopped at ``epoch``."""

    def __init__(self, epoch: int) -> None:
        super().__init__(f"interrupted at epoch {epoch}")
        self.epoch = epoch


@dataclass
class TrialRun:
    """What one trial produced; ``curves`` fills in as it trains, so a pruned or failed trial keeps them."""

    params: dict[str, Any] = field(default_factory=dict)  # every trainer setting, tuned and fixed
    curves: Curves = field(default_factory=dict)
    result: TrainResult | None = None
    trainer_seconds: float = 0.0  # inside train(), less the pruner's report/should_prune calls

    def value(self, metric: str) -> float:
        if self.result is None:
            raise RuntimeError("the trial has not finished")
        return self.result.metrics[metric]


def run_trial(trial: ReportingTrial, config: SweepConfig, data: Split, run: TrialRun, *,
              should_stop: Callable[[], bool] | None = None) -> TrainResult:
    """Train with the trial's settings; raises TrialPruned when its pruner says so, and
    TrialInterrupted at the first epoch where ``should_stop()`` is true."""
    run.params = {**config.fixed, **suggest(trial, config.space)}
    train_config = TrainConfig.from_mapping(run.params)
    run.params = train_config.to_dict()
    curve_every = max(1, math.ceil(train_config.epochs / CURVE_POINTS))
    checkpoints = set(checkpoint_epochs(train_config.epochs)) if config.pruner != "none" else set()
    metric = config.metric

    def on_epoch(epoch: int, metrics: Mapping[str, float]) -> None:
        if should_stop is not None and should_stop():
            raise TrialInterrupted(epoch)
        if epoch % curve_every == 0 or epoch == train_config.epochs or epoch in checkpoints:
            for name, value in metrics.items():
                run.curves.setdefault(name, []).append((epoch, value))
        if epoch in checkpoints:
            nonlocal pruner_seconds
            clock = time.perf_counter()
            trial.report(metrics[metric], epoch)
            prune = trial.should_prune()
            pruner_seconds += time.perf_counter() - clock
            if prune:
                raise TrialPruned(epoch)

    pruner_seconds = 0.0
    started = time.perf_counter()
    try:
        run.result = train(train_config, data, on_epoch)  # every epoch: val metrics are cheap next to a step
    finally:
        run.trainer_seconds = time.perf_counter() - started - pruner_seconds
    return run.result
