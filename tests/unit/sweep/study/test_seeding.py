"""Every trial a new proposal: processes sharing a study (or starting it again) never replay one sampler
sequence, and a fresh single process proposes exactly what plain Optuna proposes with the same seed."""

from __future__ import annotations

import importlib.util

import optuna
import pytest

from sweep.config import SweepConfig
from sweep.locations import StorageLocation
from sweep.space import FloatRange
from sweep.study.optuna_internals import ask_new
from sweep.study.seeding import SamplerStreams, trial_seed
from sweep.study.storage import make_sampler, open_storage
from sweep.trainers.spec import TrainerSpec

RANDOM_SAMPLERS = ["tpe", "random", "qmc", "cmaes",
                   pytest.param("gp", marks=pytest.mark.skipif(importlib.util.find_spec("torch") is None,
                                                               reason="the GP sampler needs torch"))]
SPACE = {"x": FloatRange(-5.0, 5.0), "y": FloatRange(-5.0, 5.0)}


def sweep_config(sampler: str, seed: int | None = 0, space=None) -> SweepConfig:
    """A function trainer's sweep over ``space`` (the continuous SPACE by default), minimizing."""
    return SweepConfig(space=space or SPACE, trainer=TrainerSpec(function="train:fit"), metric="value",
                       direction="minimize", sampler=sampler, seed=seed)


def objective(params: dict[str, float]) -> float:
    return (params["x"] - 1.0) ** 2 + (params["y"] + 2.0) ** 2


class Process:
    """What one sweep process holds of a shared study: its own Study object and sampler, and its streams."""

    def __init__(self, location: StorageLocation, config, name: str) -> None:
        self.config = config
        self.study = optuna.load_study(study_name=name, storage=open_storage(location),
                                       sampler=make_sampler(config))
        self.streams = SamplerStreams(config)

    def ask(self) -> optuna.Trial:
        trial = ask_new(self.study)
        self.streams.before_sampling(self.study, trial.number)
        if self.streams.samples_at_ask:
            trial.relative_params  # noqa: B018 - as the loop does under its gate
        for name, dimension in SPACE.items():
            dimension.suggest(trial, name)
        return trial

    def tell(self, trial: optuna.Trial) -> None:
        self.study.tell(trial, objective(trial.params))


def shared_study(tmp_path, sampler: str, name: str = "demo"):
    config = sweep_config(sampler)
    location = StorageLocation.parse(str(tmp_path / "sweep.journal"))
    optuna.create_study(study_name=name, storage=open_storage(location), direction="minimize")
    return location, config


def settings(study: optuna.Study) -> list[tuple[tuple[str, float], ...]]:
    return [tuple(sorted(trial.params.items())) for trial in study.get_trials(deepcopy=False)]


@pytest.mark.parametrize("sampler", RANDOM_SAMPLERS)
def test_two_processes_sharing_a_study_never_propose_the_same_settings(tmp_path, sampler):
    location, config = shared_study(tmp_path, sampler)
    first, second = Process(location, config, "demo"), Process(location, config, "demo")
    for _ in range(8):  # each asks while the other's trial runs, as two --jobs workers do
        one, other = first.ask(), second.ask()
        first.tell(one)
        second.tell(other)
    found = settings(first.study)
    assert len(found) == 16
    assert len(set(found)) == 16, f"{sampler} repeated settings: {found}"


@pytest.mark.parametrize("sampler", RANDOM_SAMPLERS)
def test_a_study_taken_up_again_three_times_continues_the_search(tmp_path, sampler):
    location, config = shared_study(tmp_path, sampler)
    for _ in range(4):  # a start and three resumes, each a new process with a new sampler
        process = Process(location, config, "demo")
        for _ in range(3):
            process.tell(process.ask())
    found = settings(process.study)
    assert len(set(found)) == len(found) == 12, f"{sampler} repeated settings across starts: {found}"


@pytest.mark.parametrize("sampler", ["tpe", "random"])
def test_one_fresh_process_proposes_what_plain_optuna_proposes_with_the_same_seed(tmp_path, sampler):
    location, config = shared_study(tmp_path, sampler)
    process = Process(location, config, "demo")
    for _ in range(14):  # past TPE's 10 random start-up trials
        process.tell(process.ask())
    plain_sampler = {"tpe": optuna.samplers.TPESampler, "random": optuna.samplers.RandomSampler}[sampler](seed=0)
    plain = optuna.create_study(direction="minimize", sampler=plain_sampler)
    plain.optimize(lambda trial: objective({"x": trial.suggest_float("x", -5.0, 5.0),
                                            "y": trial.suggest_float("y", -5.0, 5.0)}), n_trials=14)
    assert settings(process.study) == settings(plain)
    assert process.streams.restarts == 0


def test_a_process_that_falls_behind_starts_a_sequence_of_its_own_once_per_gap(tmp_path):
    location, config = shared_study(tmp_path, "random")
    process = Process(location, config, "demo")
    process.tell(process.ask())  # trial 0: the sweep's own sequence
    other = Process(location, config, "demo")
    other.tell(other.ask())  # trial 1, elsewhere
    process.tell(process.ask())  # trial 2: a new sequence...
    process.tell(process.ask())  # trial 3: ...which it keeps while its trials follow one another
    assert process.streams.restarts == 1
    assert other.streams.restarts == 1


def test_trial_seeds_differ_by_seed_and_trial_and_fit_numpy():
    seeds = {trial_seed(seed, number) for seed in range(5) for number in range(200)}
    assert len(seeds) == 1000
    assert all(0 <= seed < 2**32 for seed in seeds)
    assert trial_seed(3, 7) == trial_seed(3, 7)


def test_the_grid_and_unseeded_samplers_are_left_as_they_are(tmp_path):
    for config in (sweep_config("random", seed=None),
                   sweep_config("grid", space={"x": FloatRange(0.1, 0.5, step=0.1)})):
        study = optuna.create_study(sampler=make_sampler(config))
        before = study.sampler
        streams = SamplerStreams(config)
        streams.before_sampling(study, 5)
        assert study.sampler is before


def test_tpe_proposes_away_from_running_trials_in_every_process():
    """Constant liar: a running trial counts as a bad result, so the next proposal avoids its region. The sampler
    the sweep builds behaves as TPE with the liar on, not as TPE with it off."""
    config = sweep_config("tpe", seed=1)

    def next_proposal(sampler: optuna.samplers.BaseSampler) -> dict[str, float]:
        study = optuna.create_study(direction="minimize", sampler=sampler)
        for index in range(12):
            x, y = -4.0 + 0.7 * index, 4.0 - 0.6 * index
            study.add_trial(optuna.trial.create_trial(
                params={"x": x, "y": y}, value=objective({"x": x, "y": y}),
                distributions={"x": optuna.distributions.FloatDistribution(-5, 5),
                               "y": optuna.distributions.FloatDistribution(-5, 5)}))
        for _ in range(3):  # trials other workers are running near the best point
            running = study.ask()
            running.suggest_float("x", -5, 5)
            running.suggest_float("y", -5, 5)
        trial = study.ask()
        return {"x": trial.suggest_float("x", -5, 5), "y": trial.suggest_float("y", -5, 5)}

    ours = next_proposal(make_sampler(config))
    assert ours == next_proposal(optuna.samplers.TPESampler(seed=1, constant_liar=True))
    assert ours != next_proposal(optuna.samplers.TPESampler(seed=1, constant_liar=False))
