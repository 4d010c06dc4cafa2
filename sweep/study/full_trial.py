"""What a trainer's ``fit(trial)`` receives: a sweep.Trial that *is* an optuna.trial.Trial (isinstance holds).

An unchanged Optuna objective uses more of the trial than suggesting and reporting: ``set_user_attr`` and
``user_attrs``, ``trial.study`` (its ``best_value``, ``trials``, ``direction``), ``distributions``,
``datetime_start``, and ``optuna.artifacts.upload_artifact(study_or_trial=trial, ...)``, which reads the trial's
storage. FullTrial takes over the state of the trial the study asked (its cached record and relative params,
sampled under the trial gate), so every Optuna member works on the real trial, while what sweep.Trial adds (fixed
settings, curves into the child run, ``log_metrics``, ``workdir``, ``run_id``, the stop at a report) stays first.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import optuna

from sweep.study.attrs import PREFIX
from sweep.study.objective_pruning import report_objectives, should_prune_objectives
from sweep.trial import Trial, TrialRun

USER_TAG_PREFIX = "user."  # a user attribute on the trial's child run: tag user.<key>


class OptunaSide:
    """The Optuna half of a FullTrial, as sweep.Trial reaches its underlying trial: Optuna's own methods, called on
    the FullTrial itself (sweep.Trial's methods of the same names come first on the FullTrial)."""

    def __init__(self, whole: FullTrial) -> None:
        self._whole = whole

    @property
    def number(self) -> int:
        return optuna.trial.Trial.number.fget(self._whole)  # type: ignore[attr-defined]

    @property
    def params(self) -> dict[str, Any]:
        return optuna.trial.Trial.params.fget(self._whole)  # type: ignore[attr-defined]

    def suggest_float(self, name: str, low: float, high: float, *, step: float | None = None,
                      log: bool = False) -> float:
        return optuna.trial.Trial.suggest_float(self._whole, name, low, high, step=step, log=log)

    def suggest_int(self, name: str, low: int, high: int, *, step: int = 1, log: bool = False) -> int:
        return optuna.trial.Trial.suggest_int(self._whole, name, low, high, step=step, log=log)

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        return optuna.trial.Trial.suggest_categorical(self._whole, name, choices)

    def report(self, value: float, step: int) -> None:
        optuna.trial.Trial.report(self._whole, value, step)

    def report_objectives(self, values: Sequence[float], step: int) -> None:
        report_objectives(self._whole, values, step)  # Optuna's report refuses several objectives

    def should_prune(self) -> bool:
        if len(self._whole.study.directions) > 1:  # Optuna's should_prune refuses several objectives
            return should_prune_objectives(self._whole)
        return optuna.trial.Trial.should_prune(self._whole)


class FullTrial(Trial, optuna.trial.Trial):
    """sweep.Trial and optuna.trial.Trial in one object (see the module docstring)."""

    def __init__(self, asked: optuna.trial.Trial, run: TrialRun, **sweep_settings: Any) -> None:
        self.__dict__.update(vars(asked))  # Optuna's state of the asked trial, shared: not asked or sampled again
        Trial.__init__(self, OptunaSide(self), run, **sweep_settings)

    @property
    def user_attrs(self) -> dict[str, Any]:
        """The user attributes the trial's code set (the sweep's own, under ``sweep.``, are left out)."""
        stored = optuna.trial.Trial.user_attrs.fget(self)  # type: ignore[attr-defined]
        return {key: value for key, value in stored.items() if not key.startswith(PREFIX)}

    def set_user_attr(self, key: str, value: Any) -> None:
        """Optuna's user attribute, also on the trial's child run as tag ``user.<key>``."""
        if key.startswith(PREFIX):
            raise ValueError(f"trial.set_user_attr: {key!r}: keys starting with {PREFIX!r} are the sweep's own; "
                             f"choose another key")
        optuna.trial.Trial.set_user_attr(self, key, value)
        self.set_tags({USER_TAG_PREFIX + key: value})
