"""`sweep enqueue` driven in-process (tests/support/inprocess.py) on a real journal and MLflow database: a trial
queued into a stopped sweep runs on resume, one queued into a running `--jobs 2` sweep runs exactly once on a free
worker, and values outside the space are refused before anything is written."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from optuna.trial import TrialState

from sweep.engine.enqueue import Enqueued, enqueue_trial, split_arguments
from sweep.errors import SweepConfigError
from sweep.views import render_enqueued
from tests.support import e2e, inprocess
from tests.support.stores import copy_mlflow_db

pytestmark = pytest.mark.slow  # whole sweeps, in-process, on real stores

FIT = "def fit(trial):\n    return trial.params['lr'] * trial.params['epochs']\n"
CONFIG = ("trainer: {function: train.py:fit}\nobjective: {direction: maximize}\npruner: {name: none}\ntrials: 2\n"
          "fixed: {seed: 7}\nspace:\n  lr: {type: float, low: 0.1, high: 1.0, log: true}\n"
          "  epochs: {type: int, low: 1, high: 50}\n  opt: [adam, sgd]\n")
# the first two trials wait until the test has queued its trial: both workers are busy when it is queued
HELD = '''
import time
from pathlib import Path


def fit(trial):
    Path("arrivals", str(trial.number)).touch()
    deadline = time.monotonic() + 600  # reached only when the test failed before releasing the trials
    while trial.number < 2 and not Path("release").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    return trial.params["lr"] * trial.params["epochs"]
'''


def stopped_sweep(folder: Path) -> None:
    (folder / "train.py").write_text(FIT, encoding="utf-8")
    e2e.write_config(folder, CONFIG)
    result = inprocess.sweep(folder, "run", "--config", "sweep.yaml", "--name", "done")
    assert result.returncode == 0, result.stderr


def child_runs(folder: Path, number: int) -> list:
    _, children = e2e.runs(folder, experiment="sweep")
    return [c for c in children if c.data.tags["sweep.trial"] == str(number)]


def test_split_arguments_takes_an_optional_name_then_params():
    assert split_arguments(["demo", "lr=0.5", "opt=a=b"]) == ("demo", {"lr": "0.5", "opt": "a=b"})
    assert split_arguments(["lr=0.5"]) == (None, {"lr": "0.5"})
    for bad, message in ((["demo", "lr"], "expected PARAM=VALUE"), (["=3"], "name is missing"),
                         (["lr=1", "lr=2"], "given twice")):
        with pytest.raises(SweepConfigError, match=message):
            split_arguments(bad)


@pytest.mark.usefixtures("mlflow_db")
def test_a_trial_queued_into_a_finished_sweep_runs_once_on_resume(tmp_path: Path):
    stopped_sweep(tmp_path)
    result = inprocess.sweep(tmp_path, "enqueue", "done", "lr=0.5", "epochs=7", "opt=sgd")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ("queued trial 2 of sweep done (lr=0.5 epochs=7 opt=sgd); the sweep's target is "
                                     "now 3: sweep run --resume --name done runs it")
    for _ in range(2):  # the second resume finds the sweep complete: the trial ran once
        result = inprocess.sweep(tmp_path, "run", "--resume", "--name", "done")
        assert result.returncode == 0, result.stderr
    trials = e2e.study(tmp_path, "done").get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 3
    assert trials[2].params == {"lr": 0.5, "epochs": 7, "opt": "sgd"} and trials[2].value == 3.5
    [run] = child_runs(tmp_path, 2)
    assert run.data.params == {"lr": "0.5", "epochs": "7", "opt": "sgd", "seed": "7"} and run.info.status == "FINISHED"
    assert "3/3" in inprocess.sweep(tmp_path, "ls").stdout


@pytest.mark.usefixtures("mlflow_db")
def test_a_best_yaml_is_queued_with_from_and_arguments_override_it(tmp_path: Path):
    stopped_sweep(tmp_path)
    best = inprocess.sweep(tmp_path, "best", "--format", "yaml")
    (tmp_path / "best.yaml").write_text(best.stdout, encoding="utf-8")
    winner = max(e2e.study(tmp_path, "done").get_trials(), key=lambda t: t.value)
    result = inprocess.sweep(tmp_path, "enqueue", "--from", "best.yaml", "epochs=3")
    assert result.returncode == 0, result.stderr
    queued = e2e.study(tmp_path, "done").get_trials()[2]
    assert queued.system_attrs["fixed_params"] == {**winner.params, "epochs": 3}  # seed: 7 equals fixed: dropped


@pytest.fixture(scope="module")
def refusing(tmp_path_factory: pytest.TempPathFactory, mlflow_template: Path) -> Path:
    """One stopped sweep for the refusals below: each checks that nothing was written, so they can share it."""
    folder = tmp_path_factory.mktemp("refusing")
    copy_mlflow_db(mlflow_template, folder)
    stopped_sweep(folder)
    return folder


@pytest.mark.parametrize(("arguments", "error"), [
    (["lr=5"], "enqueue.lr: 5.0 is outside the range 0.1..1.0 (space.lr); give a value inside it, or add "
               "--allow-outside"),
    (["opt=adamw", "--allow-outside"], "enqueue.opt: 'adamw' is not among the choices 'adam', 'sgd'"),
    (["lr=-1", "--allow-outside"], "a log scale needs"),
    (["epochs=2.5"], "enqueue.epochs: 2.5 is not an integer"),
    (["depth=3"], "enqueue.depth: not a tuned param; use one of lr, epochs, opt"),
    (["seed=8"], "enqueue.seed: 8 differs from its fixed: value 7"),
])
def test_values_outside_the_space_are_refused_with_exit_2_and_nothing_written(refusing: Path, arguments, error):
    journal = (refusing / "sweep.journal").read_bytes()
    result = inprocess.sweep(refusing, "enqueue", "done", *arguments)
    assert result.returncode == 2 and error in result.stderr, result.stderr
    assert (refusing / "sweep.journal").read_bytes() == journal


@pytest.mark.usefixtures("mlflow_db")
def test_a_value_outside_its_range_runs_with_allow_outside(tmp_path: Path):
    stopped_sweep(tmp_path)
    assert inprocess.sweep(tmp_path, "enqueue", "lr=5", "--allow-outside").returncode == 0
    result = inprocess.sweep(tmp_path, "run", "--resume", "--name", "done")
    assert result.returncode == 0 and "warning" not in result.stderr.lower(), result.stderr
    assert e2e.study(tmp_path, "done").get_trials()[2].params["lr"] == 5.0


@pytest.mark.usefixtures("mlflow_db")
def test_enqueued_trial_runs_exactly_once_with_two_jobs(tmp_path: Path):
    (tmp_path / "train.py").write_text(HELD, encoding="utf-8")
    (tmp_path / "arrivals").mkdir()
    e2e.write_config(tmp_path, CONFIG.replace("trials: 2", "trials: 4"))
    queued: list[Enqueued | BaseException] = []

    def queue_while_both_workers_are_busy() -> None:
        try:
            deadline = time.monotonic() + 120
            while not all((tmp_path / "arrivals" / str(n)).exists() for n in (0, 1)) and time.monotonic() < deadline:
                time.sleep(0.01)
            queued.append(enqueue_trial(["live", "lr=0.5", "epochs=7", "opt=sgd"],
                                        storage_url=str(tmp_path / "sweep.journal")))
        except BaseException as error:  # reported by the test's thread below
            queued.append(error)
        finally:
            (tmp_path / "release").touch()

    helper = threading.Thread(target=queue_while_both_workers_are_busy)
    helper.start()
    try:
        result = inprocess.sweep(tmp_path, "run", "--config", "sweep.yaml", "--name", "live", "--jobs", "2")
    finally:
        (tmp_path / "release").touch()
        helper.join()
    assert result.returncode == 0, result.stderr
    [enqueued] = queued
    assert isinstance(enqueued, Enqueued), enqueued
    assert (enqueued.number, enqueued.running, enqueued.target, enqueued.target_raised) == (2, True, 4, False)
    assert render_enqueued(enqueued) == ("queued trial 2 of sweep live (lr=0.5 epochs=7 opt=sgd): the sweep's next "
                                         "free worker runs it (if none is left: sweep run --resume --name live "
                                         f"--storage {tmp_path / 'sweep.journal'})")
    trials = e2e.study(tmp_path, "live").get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 4  # it counted toward the target of 4
    assert [t.number for t in trials if t.params == {"lr": 0.5, "epochs": 7, "opt": "sgd"}] == [2]
    [run] = child_runs(tmp_path, 2)
    assert run.data.params["lr"] == "0.5" and run.data.params["epochs"] == "7"
    assert sorted(p.name for p in (tmp_path / "arrivals").iterdir()) == ["0", "1", "2", "3"]
