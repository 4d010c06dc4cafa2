"""`sweep.Trial`: what a trainer's ``fit(trial)`` receives, one per trial.

It speaks Optuna's trial language (suggest_*, report, should_prune), so an existing Optuna objective runs
unchanged, and it writes to the trial's own MLflow child run (log_metrics, log_params, set_tags,
log_artifact) through the sweep's tracking process, off the trial's critical path. Nothing here imports
optuna or mlflow: the Optuna trial arrives from sweep/study/ and is used through its methods.
"""

from __future__ import annotations

import math
import posixpath
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from sweep.records import Curves
from sweep.space import Dimension, SuggestingTrial, suggest

MAX_STEP = 2**63 - 1  # MLflow stores a step as a 64-bit integer


class OptunaTrial(SuggestingTrial, Protocol):
    number: int

    @property
    def params(self) -> dict[str, Any]: ...  # what it suggested so far

    def report(self, value: float, step: int) -> None: ...

    def report_objectives(self, values: Sequence[float], step: int) -> None: ...  # several objectives at once

    def should_prune(self) -> bool: ...


class TrialPruned(Exception):  # Optuna's name, so an Optuna objective's `raise` reads the same
    """Raise it (or ``optuna.TrialPruned``) from ``fit`` when ``trial.should_prune()`` says so."""


class TrialInterrupted(Exception):
    """Ctrl-C or SIGTERM reached the sweep: the trial stopped at its next report, at ``step``."""

    def __init__(self, step: int | None) -> None:
        super().__init__(f"interrupted at step {step}" if step is not None else "interrupted")
        self.step = step


@dataclass
class TrialRun:
    """What one trial produced so far: filled in as it runs, so a pruned or failed trial keeps it."""

    params: dict[str, Any] = field(default_factory=dict)  # space + fixed + define-by-run + log_params
    curves: Curves = field(default_factory=dict)  # metric -> [(step, value), ...]
    metrics: dict[str, float] = field(default_factory=dict)  # final values
    tags: dict[str, str] = field(default_factory=dict)
    artifacts: list[str] = field(default_factory=list)  # absolute paths, logged when the trial ends
    model_json: str | None = None  # the built-in trainer's model
    pruner_seconds: float = 0.0  # inside report/should_prune: the pruner's time, not the trainer's


class Trial:
    """One trial of a sweep, as ``fit(trial)`` sees it.

    - ``params``: this trial's values of the config's ``space:`` plus ``fixed:`` (and whatever ``fit``
      suggests itself); ``number``, ``sweep``, ``run_id`` (the trial's MLflow child run) and ``workdir``
      (a fresh folder for this trial, made on first use).
    - ``suggest_float / suggest_int / suggest_categorical``: Optuna's signatures, define-by-run. A name
      given under ``fixed:`` returns its fixed value (how `sweep best --format yaml` re-runs a winner).
    - ``report(value, step)`` and ``should_prune()`` as in Optuna; ``report(step=..., **metrics)`` logs
      those metrics as curves and feeds the objective metric to the pruner. Raise ``sweep.TrialPruned``
      (or ``optuna.TrialPruned``) to prune.
    - ``log_metrics``, ``log_params``, ``set_tags``, ``log_artifact``: into the child run.
    - Return a number (the objective) or a mapping of final metrics holding the objective metric.
    """

    def __init__(self, trial: OptunaTrial, run: TrialRun, *, sweep: str, metric: str, space: Mapping[str, Dimension],
                 fixed: Mapping[str, Any], run_id: Callable[[], str | None], workdirs: Path,
                 should_stop: Callable[[], bool] = lambda: False,
                 experiment_id: Callable[[], str | None] = lambda: None,
                 storage_step_limit: int = MAX_STEP, more_objectives: Sequence[str] = ()) -> None:
        self._trial, self._run, self._metric = trial, run, metric
        self._more_objectives = tuple(more_objectives)  # the metrics of the objectives after the first
        self._storage_step_limit = storage_step_limit  # the largest step the Optuna storage keeps
        self._fixed = dict(fixed)
        self._run_id, self._workdirs, self._should_stop = run_id, workdirs, should_stop
        self.sweep = sweep
        self._experiment_id = experiment_id
        run.params.update(self._fixed)
        run.params.update(suggest(trial, space))

    @property
    def number(self) -> int:
        return self._trial.number

    @property
    def params(self) -> dict[str, Any]:
        """The trial's settings: the run's own dict, so define-by-run suggestions land in it."""
        return self._run.params

    @property
    def run_id(self) -> str | None:
        """The trial's MLflow child run (None when the tracking store could not create it)."""
        return self._run_id()

    @property
    def experiment_id(self) -> str | None:
        """The MLflow experiment of the sweep's runs (None: not known here)."""
        return self._experiment_id()

    @property
    def workdir(self) -> Path:
        folder = self._workdirs / f"trial-{self.number}"
        if folder.is_symlink():  # left by someone else: following it would write (and later delete) elsewhere
            raise FileExistsError(f"the trial's working folder {folder} is a symbolic link; remove it (a sweep "
                                  f"writes only into folders of its own)")
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    # -- define-by-run, as Optuna --------------------------------------------------------------------

    def suggest_float(self, name: str, low: float, high: float, *, step: float | None = None,
                      log: bool = False) -> float:
        if name in self._fixed:
            return self._fixed[name]
        return self._keep(name, self._trial.suggest_float(name, low, high, step=step, log=log))

    def suggest_int(self, name: str, low: int, high: int, *, step: int = 1, log: bool = False) -> int:
        if name in self._fixed:
            return self._fixed[name]
        return self._keep(name, self._trial.suggest_int(name, low, high, step=step, log=log))

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        if name in self._fixed:
            return self._fixed[name]
        return self._keep(name, self._trial.suggest_categorical(name, choices))

    def _keep(self, name: str, value: Any) -> Any:
        self.params[name] = value
        return value

    def report(self, value: float | None = None, step: int | None = None, **metrics: float) -> None:
        """An intermediate result at ``step``: ``value`` is the objective's (Optuna's form); ``metrics`` are
        logged as curves, and the objective metric among them goes to the pruner. With several objectives,
        each is given by name, and a step that has all of them goes to the pruner."""
        step_number("trial.report", step)
        self.checkpoint(step)
        objectives = (self._metric, *self._more_objectives)
        if value is not None and self._more_objectives:
            raise TypeError(f"trial.report: this sweep has {len(objectives)} objectives; report each by name: "
                            f"trial.report(step=..., {', '.join(f'{name}=...' for name in objectives)})")
        points = {metric_name("trial.report", name): number(f"trial.report: {name}", given)
                  for name, given in metrics.items()}
        if value is not None:
            points.setdefault(self._metric, number("trial.report: value", value))
        for name, given in points.items():
            self._point(name, step, given)
        values = [points.get(name) for name in objectives]
        if all(given is not None and math.isfinite(given) for given in values):
            if step > self._storage_step_limit:  # the storage would refuse it with an error about its commit
                raise ValueError(f"trial.report: step {step} is above {self._storage_step_limit}, the largest step "
                                 f"the Optuna storage keeps (a database keeps steps as 32-bit integers); count "
                                 f"steps from 0 (epochs, batches)")
            clock = time.perf_counter()
            if self._more_objectives:
                self._trial.report_objectives(values, step)  # type: ignore[arg-type]
            else:
                self._trial.report(values[0], step)  # type: ignore[arg-type]
            self._run.pruner_seconds += time.perf_counter() - clock

    def should_prune(self) -> bool:
        self.checkpoint(None)
        clock = time.perf_counter()
        try:
            return self._trial.should_prune()
        finally:
            self._run.pruner_seconds += time.perf_counter() - clock

    # -- into the child run -------------------------------------------------------------------------

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Metric values at ``step`` (a curve), or final values when ``step`` is None."""
        if step is not None:
            self.checkpoint(step_number("trial.log_metrics", step))
        for name, given in metrics.items():
            value = number(f"trial.log_metrics: {metric_name('trial.log_metrics', name)}", given)
            if step is None:
                self._run.metrics[name] = value
            else:
                self._point(name, step, value)

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Extra params of the child run; a name the trial already has keeps its value (MLflow params are
        immutable), so giving it another one is an error."""
        for name, value in params.items():
            if name in self.params and self.params[name] != value:
                raise ValueError(f"trial.log_params: {name!r} is already {self.params[name]!r} in this trial; "
                                 f"params cannot change, log it as a metric or tag")
            self.params[name] = value

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        self._run.tags.update({str(name): str(value) for name, value in tags.items()})

    def log_artifact(self, path: str | Path) -> None:
        """A file (or folder) for the child run's artifacts; it is copied when the trial ends, so keep it
        until then (the trial's ``workdir`` is kept)."""
        file = Path(path).resolve()
        if not file.exists():
            raise FileNotFoundError(f"trial.log_artifact: no such file {str(file)!r}")
        self._run.artifacts.append(str(file))

    @property
    def final_metrics(self) -> dict[str, float]:
        """The final values given to log_metrics without a step."""
        return dict(self._run.metrics)

    def checkpoint(self, step: int | None = None) -> None:
        """A point where the trial may stop: raises TrialInterrupted once Ctrl-C or SIGTERM reached the sweep
        (report, should_prune and log_metrics with a step check it too)."""
        if self._should_stop():
            raise TrialInterrupted(step)

    # -- the loop's side ----------------------------------------------------------------------------

    def _point(self, name: str, step: int, value: float) -> None:
        points = self._run.curves.setdefault(name, [])
        if points and points[-1][0] == step:
            points[-1] = (step, value)  # one value per step: MLflow keeps one point per (metric, step)
        else:
            points.append((step, value))


METRIC_NAME = re.compile(r"[\w.\- :/]{1,250}\Z")  # the characters MLflow takes in a metric name


def step_number(where: str, step: Any) -> int:
    """A curve's step as given, or TypeError saying what a step must be."""
    if isinstance(step, bool) or not isinstance(step, int) or not 0 <= step <= MAX_STEP:
        raise TypeError(f"{where}: step must be a non-negative integer below 2**63, got {step!r}")
    return step


def metric_name(where: str, name: Any) -> str:
    """A metric name MLflow takes, or ValueError: a name it refuses would leave a child run `sweep sync` could
    never write."""
    if not (isinstance(name, str) and METRIC_NAME.match(name)) or posixpath.normpath(name) != name \
            or name == "." or name.startswith(("/", "..")):  # MLflow's own test: a name is a relative path
        raise ValueError(f"{where}: {name!r} is not a metric name; use letters, digits, '_', '-', '.', ' ', ':' "
                         f"and '/' between words (at most 250 characters)")
    return name


def number(where: str, value: Any) -> float:
    """A metric value as a float; a string, a bool or an object without a float value is refused."""
    if isinstance(value, (str, bytes, bool)) or value is None:
        raise TypeError(f"{where} is {value!r}, not a number")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{where} is {type(value).__name__}, not a number") from None
