"""Every trial a new proposal, driven through the engine in-process on real stores: a fresh sweep proposes what
plain Optuna proposes, resumes continue the search instead of replaying it, and `repeats: reuse` answers a
repeated setting from the trial that had it."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import optuna
import pytest

from sweep.config import load_config
from sweep.engine import SweepInterrupted, run_sweep
from sweep.study import configure_optuna
from tests.support import e2e, inprocess

pytestmark = pytest.mark.slow  # each test runs whole sweeps on real stores (in-process)

OBJECTIVE = '''
import os
import signal
from pathlib import Path


def fit(trial):
    x, y = trial.params["x"], trial.params["y"]
    stop_at = trial.params.get("stop_at")
    if stop_at is not None and trial.number in stop_at:
        marker = Path(trial.params["markers"]) / str(trial.number)
        if not marker.exists():  # Ctrl-C once per listed trial: the resume passes it by
            marker.touch()
            os.kill(os.getpid(), signal.SIGINT)
    return (x - 1.0) ** 2 + (y + 2.0) ** 2
'''
SPACE = "space:\n  x: {type: float, low: -5.0, high: 5.0}\n  y: {type: float, low: -5.0, high: 5.0}\n"


def plain_objective(trial: optuna.Trial) -> float:
    x, y = trial.suggest_float("x", -5.0, 5.0), trial.suggest_float("y", -5.0, 5.0)
    return (x - 1.0) ** 2 + (y + 2.0) ** 2


def write_sweep(folder: Path, body: str) -> Path:
    (folder / "objective.py").write_text(OBJECTIVE, encoding="utf-8")
    return e2e.write_config(folder, "trainer: {function: objective.py:fit}\nobjective: {direction: minimize}\n"
                                    "pruner: {name: none}\n" + SPACE + body)


def settings(trials: list[optuna.trial.FrozenTrial]) -> list[tuple[float, float]]:
    return [(trial.params["x"], trial.params["y"]) for trial in sorted(trials, key=lambda t: t.number)]


def run(folder: Path, *, resume: bool = False, **overrides):
    config = load_config(folder / "sweep.yaml", {"tracking_uri": f"sqlite:///{folder / 'mlflow.db'}",
                                                 "storage": str(folder / "sweep.journal"), **overrides})
    configure_optuna()
    with inprocess.working_in(folder):
        return run_sweep(config, resume=resume, listener=inprocess.RecordingListener(),
                         flags=frozenset(overrides), parts=inprocess.in_process_parts())


@pytest.mark.parametrize("sampler", ["tpe", "random"])
@pytest.mark.usefixtures("mlflow_db")
def test_a_fresh_sweep_proposes_exactly_what_plain_optuna_proposes_with_the_same_seed(tmp_path, sampler):
    write_sweep(tmp_path, f"trials: 14\nsampler: {{name: {sampler}, seed: 3}}\n")
    summary = run(tmp_path, name="same")
    assert summary.counts.complete == 14
    samplers = {"tpe": optuna.samplers.TPESampler, "random": optuna.samplers.RandomSampler}
    plain = optuna.create_study(direction="minimize", sampler=samplers[sampler](seed=3))
    plain.optimize(plain_objective, n_trials=14)  # past TPE's ten random start-up trials
    assert settings(e2e.study(tmp_path, "same").trials) == settings(plain.trials)
    assert summary.best.value == plain.best_value  # the MLflowCallback migration's promise: the same best trial


@pytest.mark.usefixtures("mlflow_db")
def test_the_same_config_and_seed_give_the_same_trials_twice(tmp_path):
    write_sweep(tmp_path, "trials: 12\nsampler: {name: tpe, seed: 5}\n")
    run(tmp_path, name="once")
    run(tmp_path, name="twice")
    assert settings(e2e.study(tmp_path, "once").trials) == settings(e2e.study(tmp_path, "twice").trials)


# The engine's two ways to a trial's settings: sampled as the trial is asked under the gate (QMC), or as the
# objective suggests them (every other sampler; TPE, the default, here). Each sampler's own resumes, the same
# three on a real journal with a new sampler each time, are tests/unit/sweep/study/test_seeding.py's.
@pytest.mark.parametrize("sampler", ["tpe", "qmc"])
@pytest.mark.usefixtures("mlflow_db")
def test_interrupted_and_resumed_three_times_no_setting_repeats_and_the_count_is_exact(tmp_path, sampler):
    (tmp_path / "markers").mkdir()
    write_sweep(tmp_path, f"trials: 12\nsampler: {{name: {sampler}, seed: 0}}\n"
                          f"fixed: {{stop_at: [1, 4, 7], markers: {tmp_path / 'markers'}}}\n")
    with pytest.raises(SweepInterrupted):
        run(tmp_path, name="stopped")
    for _ in range(2):
        with pytest.raises(SweepInterrupted):
            run(tmp_path, resume=True, name="stopped")
    summary = run(tmp_path, resume=True, name="stopped")
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler or os.name != "posix"
    trials = e2e.study(tmp_path, "stopped").trials
    assert summary.counts.finished == 12 and len(trials) == 12
    assert sorted(os.listdir(tmp_path / "markers")) == ["1", "4", "7"]  # three interruptions, three resumes
    found = settings(trials)
    assert len(set(found)) == 12, f"{sampler} proposed settings again after a resume: {found}"
    _, children = e2e.runs(tmp_path, experiment="sweep")
    assert sorted(int(c.data.tags["sweep.trial"]) for c in children) == list(range(12))


TINY = '''
from pathlib import Path


def fit(trial):
    with open(trial.params["log"], "a") as log:
        log.write(f"{trial.number}\\n")
    return {"value": trial.params["a"] * 10 + trial.params["b"], "size": float(trial.params["a"])}
'''


@pytest.mark.usefixtures("mlflow_db")
def test_reuse_answers_each_repeated_setting_from_its_first_trial_without_training(tmp_path):
    (tmp_path / "tiny.py").write_text(TINY, encoding="utf-8")
    e2e.write_config(tmp_path, "trainer: {function: tiny.py:fit}\nobjective: {direction: minimize}\n"
                               "trials: 20\nrepeats: reuse\nsampler: {name: random, seed: 1}\npruner: {name: none}\n"
                               f"fixed: {{log: {tmp_path / 'trained.log'}}}\n"
                               "space:\n  a: [1, 2, 3]\n  b: [0, 1]\n")  # six settings
    summary = run(tmp_path, name="tiny")
    trained = [int(line) for line in (tmp_path / "trained.log").read_text().split()]
    assert len(trained) == 6, "each of the six settings trained once"
    assert (summary.counts.complete, summary.counts.reused) == (20, 14)

    trials = {t.number: t for t in e2e.study(tmp_path, "tiny").trials}
    parent, children = e2e.runs(tmp_path, experiment="sweep")
    assert sorted(int(c.data.tags["sweep.trial"]) for c in children) == list(range(20)), "every trial has its run"
    for child in children:
        number = int(child.data.tags["sweep.trial"])
        same = child.data.tags.get("sweep.same_as")
        if number in trained:
            assert same is None
            continue
        original = trials[int(same)]
        assert int(same) in trained and original.params == trials[number].params
        assert child.info.status == "FINISHED" and child.data.metrics["value"] == original.value
        assert child.data.metrics["size"] == float(original.params["a"])
        assert trials[number].user_attrs["sweep.same_as"] == int(same)
    first_best = min(number for number, trial in trials.items() if trial.params == {"a": 1, "b": 0})
    assert parent.data.tags["best.trial"] == str(first_best) and first_best in trained  # the trained one, not a reuse
    assert summary.best.number == first_best and summary.best.value == 10.0
    assert parent.data.tags["sweep.trials_reused"] == "14"

    shown = inprocess.sweep(tmp_path, "show", "tiny", "--top", "20")
    assert shown.returncode == 0, shown.stderr
    rows = shown.stdout.splitlines()[2:]
    assert len(rows) == 20 and sum(row.rstrip().endswith(tuple(f"trial {n}" for n in trained)) for row in rows) == 14
    listed = inprocess.sweep(tmp_path, "ls")
    header, row = listed.stdout.splitlines()[:2]
    assert row.split()[header.split().index("repeats")] == "14"
