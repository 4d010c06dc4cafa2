"""Plain records passed between the sweep loop and the tracking process (picklable, no MLflow types)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from sweep.states import TrialState

Curves = dict[str, list[tuple[int, float]]]  # metric name -> [(epoch, value), ...]


def now_ms() -> int:
    """Wall-clock time in milliseconds since the epoch, as MLflow stamps runs and metrics."""
    return int(time.time() * 1000)


@dataclass(frozen=True)
class SweepIdentity:
    """What names a sweep in both stores."""

    name: str  # the Optuna study name and the parent run's name
    experiment: str
    tracking_uri: str | None  # None: MLFLOW_TRACKING_URI, else MLflow's default
    run_name: str | None = None  # the config's run_name template for child runs; None: trial-<number>
    fixed: dict[str, Any] = field(default_factory=dict)  # the sweep's fixed params, which the template may name


@dataclass(frozen=True)
class MlflowTime:
    """The wall time trials' own code spent inside MLflow (`trainer.mlflow: active | autolog`: its mlflow.* calls and
    what autologging added to its fits), out of their whole time in the trainer; one trial's, or summed."""

    seconds: float
    trial_seconds: float
    trials: int = 1

    def __add__(self, other: MlflowTime) -> MlflowTime:
        return MlflowTime(self.seconds + other.seconds, self.trial_seconds + other.trial_seconds,
                          self.trials + other.trials)

    def stored(self) -> dict[str, float]:
        """One trial's, as the study keeps it (a trial attribute)."""
        return {"seconds": self.seconds, "trial_seconds": self.trial_seconds}

    @classmethod
    def from_stored(cls, value: object) -> MlflowTime | None:
        if not isinstance(value, dict):
            return None
        return cls(float(value.get("seconds", 0.0)), float(value.get("trial_seconds", 0.0)))


@dataclass(frozen=True)
class TrialRecord:
    """One finished trial, everything its child run needs."""

    number: int
    state: TrialState  # COMPLETE, PRUNED or FAIL (given as text, it is read as the state)
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
    tags: dict[str, str] = field(default_factory=dict)  # the trainer's own (trial.set_tags)
    artifacts: list[str] = field(default_factory=list)  # files the trainer gave trial.log_artifact
    mlflow_active: bool = False  # the trainer wrote to the run itself: its params and models are there already
    same_as: int | None = None  # answered by this earlier trial of identical settings, without training (repeats)
    values: tuple[float, ...] | None = None  # every objective's value, for a sweep of several (value is the first)
    constraints: dict[str, float] = field(default_factory=dict)  # constraint -> its value (feasible: all <= 0)
    mlflow_time: MlflowTime | None = None  # the trainer's code inside MLflow, when the trainer clocks it

    def __post_init__(self) -> None:
        object.__setattr__(self, "state", TrialState(self.state))

    @property
    def feasible(self) -> bool:
        """Every constraint met (a trial of a sweep without constraints is feasible)."""
        return all(value <= 0.0 for value in self.constraints.values())


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
class FrontMember:
    """A trial on the Pareto front of a sweep of several objectives, as the parent's pareto.json lists it."""

    trial: int
    run_id: str | None
    params: dict[str, Any]
    values: dict[str, float]  # objective metric -> the trial's value, in the config's order

    def as_dict(self) -> dict[str, Any]:
        return {"trial": self.trial, "run_id": self.run_id, "params": self.params, "values": self.values}


@dataclass(frozen=True)
class Counts:
    """A sweep's trials: a retried trial counts once (its retry replaces its failed attempt), and the
    attempts so replaced are counted apart, so trials + retried = the child runs."""

    complete: int = 0
    pruned: int = 0
    failed: int = 0
    retried: int = 0  # failed attempts a retry replaced (a worker died during them): not in finished
    reused: int = 0  # complete trials answered by an earlier one of identical settings (repeats: reuse): in complete
    interrupted: int = 0  # trials a stop (Ctrl-C, SIGTERM) cut short: FAIL in the study, not failures; in finished

    @property
    def finished(self) -> int:
        return self.complete + self.pruned + self.failed + self.interrupted

    def add(self, state: TrialState, *, reused: bool = False, interrupted: bool = False) -> Counts:
        return Counts(self.complete + (state == TrialState.COMPLETE), self.pruned + (state == TrialState.PRUNED),
                      self.failed + (state == TrialState.FAIL and not interrupted), self.retried,
                      self.reused + reused, self.interrupted + (state == TrialState.FAIL and interrupted))


@dataclass(frozen=True)
class PyfuncRecipe:
    """A pyfunc model over the best trial's model file (its model.json), as its trainer builds one: the trainer's
    own PythonModel file logged "as code" with the sources it imports, so loading it needs no sweep installed."""

    model_code: str  # the PythonModel file: MLflow copies it into the model and runs it when the model is loaded
    code: dict[str, str]  # sources shipped with the model: path in its code folder -> the file copied there
    artifact_key: str  # the name the PythonModel finds model.json under (context.artifacts)
    input_example: dict[str, list[Any]]  # the columns of an example input, logged with the model
    output_example: dict[str, list[Any]]  # the model's output for such an input: with the input, its signature
    requirements: tuple[str, ...]  # pip requirements besides mlflow, pinned: a model server installs them
    retrain: str  # how to get the model when its model.json was never logged; {name} stands for the sweep's


@dataclass(frozen=True)
class ModelPublishing:
    """How a trainer's best model is published on the parent run, as the trainer says: a pyfunc model its
    ``pyfunc`` recipe makes of the best trial's model.json, or (no recipe) the MLflow model the best trial's own
    code logged to its child run, if it logged one."""

    pyfunc: PyfuncRecipe | None = None

    @property
    def shown_as(self) -> str:
        """What `sweep sync` calls the model it published."""
        return "pyfunc model" if self.pyfunc is not None else "best model"


TRIAL_LOGGED_MODEL = ModelPublishing()  # a user trainer's: the model its best trial logged itself


@dataclass(frozen=True)
class PublishedModel:
    """The best model as the parent run holds it at the end of a sweep: a pyfunc model, maybe registered."""

    uri: str | None = None  # runs:/<parent run id>/model, for mlflow.pyfunc.load_model
    trial: int | None = None  # the trial whose model it is
    registered: str | None = None  # "NAME/VERSION" in the MLflow Model Registry
    warning: str | None = None  # one line: why it could not be logged or registered (the sweep is still fine)


@dataclass(frozen=True)
class TrackingReport:
    """What the tracking process could not write; the study still has it (`sweep sync` repairs)."""

    failed_trials: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    plots: list[str] = field(default_factory=list)  # plot files now under plots/ on the parent
    plots_skipped: dict[str, str] = field(default_factory=dict)  # plot -> why it was not made
    model: PublishedModel = field(default_factory=PublishedModel)  # the best model as a pyfunc model


@dataclass(frozen=True)
class SweepEnding:
    """How the end of a sweep went to MLflow: written before the answer (``report`` says what failed), or left to a
    background publisher (``publisher``: its pid), whose failures `sweep sync` repairs."""

    report: TrackingReport = field(default_factory=TrackingReport)
    publisher: int | None = None


@dataclass(frozen=True)
class Reconciled:
    """What a reconcile did: the trials whose child run it created or corrected, and every trial's run now."""

    repaired: list[int] = field(default_factory=list)
    run_ids: dict[int, str] = field(default_factory=dict)  # trial number -> its one child run (found or made)
    refused: dict[int, str] = field(default_factory=dict)  # trial number -> what MLflow refused of its record


@dataclass(frozen=True)
class BestAgreement:
    """The parent run's best once `sweep sync` made it agree with the study's best trial."""

    repaired: list[str] = field(default_factory=list)  # the pieces that disagreed and were rewritten
    missing: str | None = None  # one line: what cannot be rebuilt, why, and how to get it
    model_json: bool = False  # the best trial's model.json is in MLflow: a pyfunc model can be made from it
    model_trial: int | None = None  # whose pyfunc model the parent holds (best.model_trial)
    has_plots: bool = False  # the parent has a plots/ folder
    logged_model: bool = False  # a function trainer's best trial logged an MLflow model to its child run
