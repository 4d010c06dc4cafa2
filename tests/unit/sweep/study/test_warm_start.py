"""sweep/study/warm_start.py on a real journal: which of an earlier sweep's trials a new sweep's sampler is handed
(complete and pruned ones inside the new space, as trials of it, numbered apart from the new study's), and that
the sampler reads them before the study's own."""

from __future__ import annotations

import optuna
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState

from sweep.space import FloatRange
from sweep.study.storage import make_sampler, open_storage
from sweep.study.warm_start import prior_of, read_prior, with_prior
from tests.unit.sweep.study.conftest import add_trial, new_sweep, sweep_config


def test_the_prior_is_the_complete_and_pruned_trials_inside_the_new_space(journal):
    earlier = new_sweep(journal, "earlier")
    wide = {"lr": FloatDistribution(0.1, 1.0)}
    for lr, state in ((0.2, TrialState.COMPLETE), (0.6, TrialState.PRUNED), (0.7, TrialState.FAIL),
                      (0.9, TrialState.COMPLETE), (0.3, TrialState.COMPLETE)):
        earlier.add_trial(optuna.trial.create_trial(state=state, params={"lr": lr}, distributions=wide,
                                                    value=lr if state == TrialState.COMPLETE else None))
    config = sweep_config(space={"lr": FloatRange(0.25, 1.0)}, warm_start="earlier")
    prior = read_prior(open_storage(journal), config, strict=True)
    assert prior is not None and prior.source == "earlier"
    assert [(t.params["lr"], t.state) for t in prior.trials] == [
        (0.6, TrialState.PRUNED), (0.9, TrialState.COMPLETE), (0.3, TrialState.COMPLETE)]
    assert prior.skipped == 1  # 0.2 lies outside the new space; the failed trial is not looked at
    assert all(t.distributions["lr"] == FloatDistribution(0.25, 1.0) for t in prior.trials)
    assert [t.number for t in prior.trials] == list(range(-len(prior.trials), 0))


def test_a_sampler_with_a_prior_reads_its_trials_before_the_studys_own(journal):
    earlier = new_sweep(journal, "earlier")
    for value in (0.5, 0.4, 0.3):
        add_trial(earlier, TrialState.COMPLETE, value)
    config = sweep_config(warm_start="earlier", sampler="tpe")
    prior = read_prior(open_storage(journal), config, strict=True)
    seen: list[int] = []

    class Watching(optuna.samplers.RandomSampler):
        def sample_independent(self, study, trial, param_name, param_distribution):
            seen.extend(t.number for t in study._get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
            return super().sample_independent(study, trial, param_name, param_distribution)

    sampler = with_prior(Watching(seed=0), prior)
    assert prior_of(sampler) is prior and prior_of(make_sampler(config)) is None
    study = optuna.create_study(study_name="new", storage=open_storage(journal), sampler=sampler)
    study.optimize(lambda trial: trial.suggest_float("lr", 0.1, 1.0), n_trials=2)
    assert seen == [-3, -2, -1, -3, -2, -1, 0]  # the prior first, then the new study's trial 0
    assert len(study.trials) == 2, "the prior is never the new study's"
