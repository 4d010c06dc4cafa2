"""warm_start: an earlier sweep's finished trials handed to a new sweep's sampler as prior knowledge.

The earlier sweep's trials are never copied into the new study: they would count as its trials everywhere
(the target, the best, `sweep show`, the child runs `sweep sync` rebuilds). They are read from the earlier
study (same storage) when the new sweep's sampler is built, and the sampler sees them before the study's own
trials (optuna_internals.StudyWithPrior): its first proposals already build on them.

Which trials: the earlier sweep's complete and pruned ones (failed ones say nothing about the objective), each
with its params checked against the new space: a trial whose value of a tuned setting lies outside the new
space (a narrowed range, a dropped choice) is skipped; the rest are handed over as trials of the new space.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import FrozenTrial, TrialState

from sweep.config import SweepConfig
from sweep.errors import SweepConfigError
from sweep.space import Dimension
from sweep.study.attrs import SweepAttrs
from sweep.study.optuna_internals import StudyWithPrior, contains, study_id_of
from sweep.study.storage import storage_hint

PRIOR_STATES = (TrialState.COMPLETE, TrialState.PRUNED)


@dataclass(frozen=True)
class PriorTrials:
    """The earlier sweep's trials as the new sweep's sampler sees them."""

    source: str  # the earlier sweep's name
    trials: tuple[FrozenTrial, ...]  # numbered -len(trials) .. -1, in the earlier sweep's order
    skipped: int  # its complete and pruned trials that do not fit the new space


def read_prior(storage: optuna.storages.BaseStorage, config: SweepConfig, *, strict: bool) -> PriorTrials | None:
    """The prior trials of ``config.warm_start`` (None without one). ``strict`` (a new sweep, before anything
    is written): a missing sweep, another objective or no trial that fits is a SweepConfigError. Otherwise (a
    resume, a worker: the sweep has trials of its own by then) such a prior is left out."""
    name = config.warm_start
    if name is None:
        return None
    row = next((row for row in storage.get_all_studies() if row.study_name == name), None)
    attrs = SweepAttrs.read(row) if row is not None else SweepAttrs()
    if row is None or not attrs.is_sweep:
        if strict:
            raise SweepConfigError(f"warm_start.sweep: no sweep named {name!r} in {storage_hint(storage)}; `sweep ls` "
                                   f"lists them (warm_start reads a sweep of the same storage)")
        return None
    wanted = [(objective.metric, objective.direction) for objective in config.objectives]
    if attrs.objectives != wanted:
        if strict:
            raise SweepConfigError(f"warm_start.sweep: {name!r} {_shown(attrs.objectives)} and this sweep "
                                   f"{_shown(wanted)}; its values would mislead the sampler: warm-start from a "
                                   f"sweep of the same objectives")
        return None
    finished = storage.get_all_trials(study_id_of(row), deepcopy=False, states=PRIOR_STATES)
    space = {key: distribution_of(dimension) for key, dimension in config.space.items()}
    fitting = [fitted for trial in finished if (fitted := fitted_trial(trial, space)) is not None]
    if strict and not fitting:
        raise SweepConfigError(f"warm_start.sweep: none of {name!r}'s {len(finished)} complete or pruned trials "
                               f"fits this space (each has a tuned setting outside it); widen space: or drop "
                               f"warm_start")
    for position, trial in enumerate(fitting):
        trial.number = position - len(fitting)  # negative: never one of the new study's numbers
    return PriorTrials(name, tuple(fitting), len(finished) - len(fitting))


def fitted_trial(trial: FrozenTrial, space: dict[str, BaseDistribution]) -> FrozenTrial | None:
    """``trial`` as a trial of the new ``space`` (its tuned settings under the new distributions), or None when
    one of them lies outside it. Settings the new space does not tune keep their own distribution."""
    params, distributions = {}, {}
    for key, value in trial.params.items():
        distribution = space.get(key, trial.distributions[key])
        if not contains(distribution, value):
            return None
        params[key], distributions[key] = value, distribution
    return optuna.trial.create_trial(state=trial.state, values=trial.values if trial.state == TrialState.COMPLETE
                                     else None, params=params, distributions=distributions,
                                     intermediate_values=dict(trial.intermediate_values),
                                     constraints=dict(trial.constraints) or None)  # samplers weigh feasibility


def _shown(objectives: list[tuple[str, str]]) -> str:
    """Objectives in words: "minimizes 'value'", "maximizes 'acc' and minimizes 'size'"."""
    return " and ".join(f"{direction}s {metric!r}" for metric, direction in objectives)


class _Distributions:
    """A stand-in for a trial that answers each suggest_* with its distribution (sweep.space's SuggestingTrial)."""

    def suggest_float(self, name: str, low: float, high: float, *, step: float | None = None,
                      log: bool = False) -> Any:
        return FloatDistribution(low, high, step=step, log=log)

    def suggest_int(self, name: str, low: int, high: int, *, step: int = 1, log: bool = False) -> Any:
        return IntDistribution(low, high, step=step, log=log)

    def suggest_categorical(self, name: str, choices: Any) -> Any:
        return CategoricalDistribution(choices)


def distribution_of(dimension: Dimension) -> BaseDistribution:
    """The Optuna distribution a trial suggests ``dimension`` from."""
    return dimension.suggest(_Distributions(), "")  # type: ignore[arg-type,return-value]


class PriorSampler(optuna.samplers.BaseSampler):
    """A sampler that samples as ``sampler`` does, reading ``prior``'s trials before the study's own."""

    def __init__(self, sampler: optuna.samplers.BaseSampler, prior: PriorTrials) -> None:
        self.sampler, self.prior = sampler, prior

    def _with_prior(self, study: optuna.Study) -> Any:
        return StudyWithPrior(study, self.prior.trials)

    def infer_relative_search_space(self, study: optuna.Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        return self.sampler.infer_relative_search_space(self._with_prior(study), trial)

    def sample_relative(self, study: optuna.Study, trial: FrozenTrial,
                        search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        return self.sampler.sample_relative(self._with_prior(study), trial, search_space)

    def sample_independent(self, study: optuna.Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        return self.sampler.sample_independent(self._with_prior(study), trial, param_name, param_distribution)

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self.sampler.before_trial(study, trial)

    def after_trial(self, study: optuna.Study, trial: FrozenTrial, state: TrialState,
                    values: Any) -> None:
        self.sampler.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self.sampler.reseed_rng()


def with_prior(sampler: optuna.samplers.BaseSampler, prior: PriorTrials | None) -> optuna.samplers.BaseSampler:
    """``sampler`` reading ``prior``'s trials first; ``sampler`` itself without a prior."""
    return sampler if prior is None or not prior.trials else PriorSampler(sampler, prior)


def prior_of(sampler: optuna.samplers.BaseSampler) -> PriorTrials | None:
    """The prior a sampler built by with_prior reads (a new sampler for another stream keeps it)."""
    return sampler.prior if isinstance(sampler, PriorSampler) else None
