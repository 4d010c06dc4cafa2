"""The user attributes this project keeps on a study and its trials: names and defaults in one place.

Every key is prefixed ``sweep.`` in the storage. A study without ``sweep.config`` was made by some
other tool and is not a sweep. Every attribute written is one storage write, so ``write`` only
writes the values that differ from the stored ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any

from sweep.config import SweepConfig, config_from_yaml
from sweep.locations import StoredTracking
from sweep.records import MlflowTime

if TYPE_CHECKING:  # only named in hints: `sweep best/ls/show` read attributes without importing Optuna
    import optuna

    from sweep.study.optuna_internals import FrozenStudy

PREFIX = "sweep."  # of every study / trial user attribute this project writes


def _user_attrs(source: optuna.Study | FrozenStudy | optuna.trial.FrozenTrial | Mapping[str, Any]) -> Mapping[str, Any]:
    return source if isinstance(source, Mapping) else source.user_attrs


def _legacy_has_secret(shown: str) -> bool:
    """Sweeps stored before ``tracking_uri_has_secret`` existed: the only trace of a password is its mask."""
    return "***" in shown


@dataclass(frozen=True)
class SweepAttrs:
    """A sweep's study attributes: its config and where its runs are, its target and state, its published model."""

    config: str | None = None  # the resolved config as YAML; None: not a sweep
    token: str | None = None  # written before the parent run exists; the parent carries it (tag sweep.token)
    parent_run_id: str | None = None  # None until linked: a killed start is found again by the token
    experiment: str = ""
    experiment_id: str | None = None
    tracking_uri: str | None = None  # redacted: never a password
    tracking_uri_has_secret: bool | None = None  # redaction removed a password: the stored URI cannot reach the store
    metric: str = "val_accuracy"
    direction: str = "maximize"
    more_objectives: list[list[str]] | None = None  # [metric, direction] of each objective after the first
    target: int = 0
    status: str = "unknown"  # a SweepStatus as stored (starting: no parent run linked yet); unknown: none stored
    created: str | None = None  # ISO time, for "the latest sweep"
    model_uri: str | None = None  # the parent's pyfunc model (runs:/<parent>/model), logged at the end
    model_trial: int | None = None  # whose model that is
    registered_model: str | None = None  # "NAME/VERSION" of the last `sweep run --register NAME`
    registered_trial: int | None = None  # whose model that version holds
    # trial number (as text: JSON keys) -> child run id, for runs `sweep sync` rebuilt: a finished trial's
    # own attributes are frozen in Optuna, so the study-level map is what can follow a rebuilt run
    run_ids: dict[str, str] | None = None
    stopped_by: str | None = None  # a StopRule that ended the sweep before its target; "": none (a resume cleared it)

    @classmethod
    def read(cls, source: optuna.Study | FrozenStudy | Mapping[str, Any]) -> SweepAttrs:
        """The attributes of a loaded study, a listed one (storage.get_all_studies()) or a user_attrs mapping."""
        stored = _user_attrs(source)
        values = {f.name: stored[PREFIX + f.name] for f in fields(cls) if PREFIX + f.name in stored}
        if "target" in values:
            values["target"] = int(values["target"])
        return cls(**values)

    @property
    def is_sweep(self) -> bool:
        return self.config is not None

    @property
    def stored_config(self) -> SweepConfig:
        if self.config is None:
            raise ValueError("not a sweep: the study has no stored config")
        return config_from_yaml(self.config)

    @property
    def stored_tracking(self) -> StoredTracking | None:
        if self.tracking_uri is None:
            return None
        has_secret = self.tracking_uri_has_secret
        return StoredTracking(self.tracking_uri,
                              _legacy_has_secret(self.tracking_uri) if has_secret is None else has_secret)

    @property
    def objectives(self) -> list[tuple[str, str]]:
        """Every objective as (metric, direction), the first first."""
        more = [(metric, direction) for metric, direction in self.more_objectives or ()]
        return [(self.metric, self.direction), *more]

    def run_id_of(self, number: int, trial_run_id: str | None) -> str | None:
        """Trial ``number``'s child run: the rebuilt one when sync made one, else the one the trial recorded."""
        return (self.run_ids or {}).get(str(number), trial_run_id)

    def relinked(self, found: Mapping[int, str], recorded: Mapping[int, str | None]) -> SweepAttrs:
        """These attributes with ``found`` (trial -> run id in MLflow now) wherever it differs from the run
        the trial recorded (``recorded``); a run found where the trial recorded it needs no entry."""
        run_ids = dict(self.run_ids or {})
        for number, run_id in found.items():
            if recorded.get(number) == run_id:
                run_ids.pop(str(number), None)
            else:
                run_ids[str(number)] = run_id
        return replace(self, run_ids=run_ids if run_ids or self.run_ids else None)  # None: nothing to write

    def write(self, study: optuna.Study) -> None:
        """Store every value that is set (not None) and differs from the study's stored one.

        Built as ``replace(SweepAttrs.read(study), status=SweepStatus.FINISHED.value)``, it writes just what changed.
        """
        stored = study.user_attrs
        for item in fields(self):
            value = getattr(self, item.name)
            if value is not None and stored.get(PREFIX + item.name) != value:
                study.set_user_attr(PREFIX + item.name, value)


@dataclass(frozen=True)
class TrialAttrs:
    """A trial's attributes: its child run, final metrics, error, and the worker that runs it."""

    run_id: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)  # one attribute for all: one storage write
    error: str | None = None  # one line, for FAIL
    interrupted: bool = False  # stopped by Ctrl-C/SIGTERM
    worker: str | None = None  # host:pid of the process running it: a dead worker's trial is failed
    same_as: int | None = None  # the earlier trial of identical settings whose result it reused (repeats: reuse)
    # its code's time inside MLflow (mlflow: active | autolog), kept here so the summary of a sweep whose trials ran
    # in other processes (--jobs, Ray) has it too
    mlflow_time: MlflowTime | None = None

    @classmethod
    def read(cls, source: optuna.trial.FrozenTrial | Mapping[str, Any]) -> TrialAttrs:
        stored = _user_attrs(source)
        return cls(stored.get(PREFIX + "run_id"), dict(stored.get(PREFIX + "metrics", {})),
                   stored.get(PREFIX + "error"), bool(stored.get(PREFIX + "interrupted", False)),
                   stored.get(PREFIX + "worker"), stored.get(PREFIX + "same_as"),
                   MlflowTime.from_stored(stored.get(PREFIX + "mlflow_time")))

    @staticmethod
    def metrics_of(source: Mapping[str, Any]) -> Mapping[str, float]:
        """The stored metrics alone, not copied (read-only): what ranking reads of every trial."""
        return source.get(PREFIX + "metrics", {})

    def items(self) -> dict[str, Any]:
        """The storage keys and values worth writing: those that say something (no empty or default ones)."""
        values = {"run_id": self.run_id, "metrics": self.metrics or None, "error": self.error,
                  "interrupted": self.interrupted or None, "worker": self.worker, "same_as": self.same_as,
                  "mlflow_time": self.mlflow_time.stored() if self.mlflow_time is not None else None}
        return {PREFIX + key: value for key, value in values.items() if value is not None}

    def write(self, trial: optuna.Trial) -> None:
        """Onto a running trial: attributes can only be written before tell()."""
        for key, value in self.items().items():
            trial.set_user_attr(key, value)

    def write_to_storage(self, storage: optuna.storages.BaseStorage, trial_id: int) -> None:
        """Onto a trial this process does not run (another worker's), by its storage id."""
        for key, value in self.items().items():
            storage.set_trial_user_attr(trial_id, key, value)


def relink_runs(study: optuna.Study, found: Mapping[int, str]) -> list[int]:
    """Make the study follow the child runs MLflow holds now (``found``: trial number -> run id, e.g. the
    runs `sweep sync` rebuilt); readers take a trial's run id from SweepAttrs.run_id_of. Returns the
    trials whose run changed."""
    recorded = {trial.number: TrialAttrs.read(trial).run_id for trial in study.get_trials(deepcopy=False)}
    stored = SweepAttrs.read(study)
    relinked = stored.relinked(found, recorded)
    relinked.write(study)  # writes run_ids only if they changed
    return sorted(number for number in found
                  if relinked.run_id_of(number, recorded.get(number)) != stored.run_id_of(number, recorded.get(number)))
