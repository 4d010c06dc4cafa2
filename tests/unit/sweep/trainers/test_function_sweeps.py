"""A user's fit(trial) swept by `sweep run` and `sweep sync` driven in-process (tests/support/inprocess.py), on a
real journal and MLflow database. `--jobs 2` still starts two real `sweep worker` processes: the fit runs there.
What needs a process of its own (kill -9 mid-trial, Ctrl-C) is tests/e2e/test_function_trainer_e2e.py."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from tests.support import e2e, inprocess, pg
from tests.support.objectives import define_by_run

pytestmark = pytest.mark.slow  # each test runs whole sweeps on real stores (in-process)

# an Optuna objective as its users write it; a trial pauses after each report for fixed: {pause: seconds}
OBJECTIVE = define_by_run('        time.sleep(float(trial.params.get("pause", 0)))\n')
# The same objective for a sweep whose trials run in this test process: its tracking server is a thread here, so
# mlflow is imported. That the trial's process of a `sweep run` and of a `sweep worker` never imports it is checked
# where they are processes of their own: the --jobs test below, and tests/e2e/test_function_trainer_e2e.py.
OBJECTIVE_IN_THIS_PROCESS = OBJECTIVE.replace(
    '    assert "mlflow" not in sys.modules, "mlflow was imported in the trial\'s process"\n', "")

ACTIVE = '''
import mlflow
import mlflow.pyfunc


class Constant(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        return [1.0] * len(model_input)


def fit(trial):
    lr = trial.params["lr"]
    for step in range(3):
        mlflow.log_metric("own_loss", 1.0 / (1 + step + lr), step=step)
    mlflow.log_text(f"lr={lr}", "notes.txt")
    if trial.number % 2 == 0:
        mlflow.pyfunc.log_model(name="model", python_model=Constant(), pip_requirements=[])
    return lr
'''


def config(folder: Path, source: str, body: str) -> Path:
    (folder / "train.py").write_text(source, encoding="utf-8")
    return e2e.write_config(folder, body)


@pytest.mark.usefixtures("mlflow_db")
def test_an_optuna_objective_runs_unchanged_with_two_jobs_and_prunes(tmp_path: Path):
    config(tmp_path, OBJECTIVE, "trainer: {function: train.py:fit}\nobjective: {metric: score, direction: maximize}\n"
                                "pruner: {name: median, startup_trials: 2}\n")
    result = inprocess.sweep(tmp_path, "run", "--config", "sweep.yaml", "--name", "fn", "--trials", "10",
                             "--jobs", "2")
    assert result.returncode == 0, result.stderr
    trials = e2e.finished(e2e.study(tmp_path, "fn").get_trials())
    assert len(trials) == 10
    assert {t.state for t in trials} <= {TrialState.COMPLETE, TrialState.PRUNED}
    parent, children = e2e.runs(tmp_path, experiment="sweep")
    assert [int(c.data.tags["sweep.trial"]) for c in children] == sorted(t.number for t in trials)
    for trial, child in zip(sorted(trials, key=lambda t: t.number), children, strict=True):
        # the conditional params, exactly as the sampler chose them, are the child run's params
        assert {k: v for k, v in child.data.params.items()} == {k: str(v) for k, v in trial.params.items()}
        assert child.info.status == ("FINISHED" if trial.state == TrialState.COMPLETE else "KILLED")
        curve = e2e.mlflow_client(tmp_path).get_metric_history(child.info.run_id, "score")
        assert [m.step for m in curve if not math.isnan(m.value)] == sorted(trial.intermediate_values)
        if trial.state == TrialState.PRUNED:  # no result: its latest value is NaN, after every complete run
            assert math.isnan(child.data.metrics["score"])
    best = max((t for t in trials if t.state == TrialState.COMPLETE), key=lambda t: t.value)
    assert parent.data.tags["best.trial"] == str(best.number)
    assert parent.data.tags["trainer.function"].endswith("train.py:fit")
    assert "trainer.file_sha256" in parent.data.tags
    for name, value in best.params.items():
        assert parent.data.tags[f"best.{name}"] == str(value)


@pytest.mark.usefixtures("mlflow_db")
def test_mlflow_active_puts_the_users_own_logging_in_each_child_run(tmp_path: Path):
    config(tmp_path, ACTIVE, "trainer: {function: train.py:fit, mlflow: active}\n"
                             "objective: {direction: maximize}\npruner: {name: none}\n"
                             "space:\n  lr: {type: float, low: 0.1, high: 1.0}\n")
    result = inprocess.sweep(tmp_path, "run", "--config", "sweep.yaml", "--name", "own", "--trials", "4",
                             "--jobs", "2")
    assert result.returncode == 0, result.stderr
    # the workers clocked their trials' own MLflow calls; the summary reads it back from the study
    assert "MLflow logging inside fit: " in result.stdout and "log_models" not in result.stdout
    client = e2e.mlflow_client(tmp_path)
    parent, children = e2e.runs(tmp_path, experiment="sweep")  # one parent, and no stray top-level run
    assert len(children) == 4
    assert "own_loss" not in parent.data.metrics
    for child in children:
        assert child.info.status == "FINISHED"
        assert [m.step for m in client.get_metric_history(child.info.run_id, "own_loss")] == [0, 1, 2]
        assert "notes.txt" in {info.path for info in client.list_artifacts(child.info.run_id)}
        assert child.data.metrics["value"] == pytest.approx(float(child.data.params["lr"]))
        logged = int(child.data.tags["sweep.trial"]) % 2 == 0
        assert ("sweep.model_uri" in child.data.tags) == logged
        if logged:
            model_id = child.data.tags["sweep.model_uri"].removeprefix("models:/")
            assert client.get_logged_model(model_id).source_run_id == child.info.run_id


@pytest.mark.usefixtures("mlflow_db")
def test_a_fit_returning_the_wrong_thing_fails_its_trials_and_stops_early_with_the_reason(tmp_path: Path):
    config(tmp_path, "def fit(trial):\n    return 'done'\n", "trainer: {function: train.py:fit}\n"
                                                            "objective: {direction: maximize}\n")
    result = inprocess.sweep(tmp_path, "run", "--config", "sweep.yaml", "--name", "wrong", "--trials", "20")
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1] == (
        "error: all 5 trials failed with: TypeError: fit returned str; return a number (the objective) or a "
        "mapping of metrics holding 'value'; stopping early")


@pytest.mark.usefixtures("mlflow_db")
def test_sync_rebuilds_a_function_trainers_lost_children_with_their_define_by_run_params(tmp_path: Path):
    config(tmp_path, OBJECTIVE_IN_THIS_PROCESS, "trainer: {function: train.py:fit}\n"
                                                "objective: {metric: score, direction: maximize}\n"
                                                "pruner: {name: none}\nfixed: {pause: 0}\n")
    done = inprocess.sweep(tmp_path, "run", "--config", "sweep.yaml", "--name", "fs", "--trials", "3")
    assert done.returncode == 0, done.stderr
    client = e2e.mlflow_client(tmp_path)
    _, children = e2e.runs(tmp_path, experiment="sweep")
    client.delete_run(children[1].info.run_id)  # lost
    synced = inprocess.sweep(tmp_path, "sync", "fs")
    assert synced.returncode == 0, synced.stderr
    assert "repaired 1 child run" in synced.stdout
    trials = {t.number: t for t in e2e.study(tmp_path, "fs").get_trials()}
    _, children = e2e.runs(tmp_path, experiment="sweep")
    rebuilt = next(c for c in children if c.data.tags["sweep.trial"] == "1")
    assert rebuilt.info.status == "FINISHED"
    # the sampler's conditional params (family, then x or slope) and the fixed ones
    assert rebuilt.data.params == {**{k: str(v) for k, v in trials[1].params.items()}, "pause": "0"}
    assert rebuilt.data.metrics["score"] == trials[1].value


@pytest.mark.usefixtures("mlflow_db")
def test_each_child_runs_objective_is_its_trials_result_not_its_curves_last_point(tmp_path: Path):
    # the curve ends at 0.31 + x, the result is x: MLflow keeps the larger of two points at one step and time
    source = ("def fit(trial):\n    x = trial.suggest_float('x', 0.0, 0.1)\n"
              "    for step, loss in enumerate((0.9, 0.5, 0.31 + x), start=1):\n"
              "        trial.report(step=step, val_loss=loss)\n"
              "    return {'val_loss': x}\n")
    config(tmp_path, source, "trainer: {function: train.py:fit}\nobjective: {metric: val_loss, direction: minimize}\n"
                             "pruner: {name: none}\n")
    result = inprocess.sweep(tmp_path, "run", "--config", "sweep.yaml", "--name", "final", "--trials", "5")
    assert result.returncode == 0, result.stderr
    parent, children = e2e.runs(tmp_path, experiment="sweep")
    values = {t.number: t.value for t in e2e.study(tmp_path, "final").trials}
    assert {int(c.data.tags["sweep.trial"]): c.data.metrics["val_loss"] for c in children} == values
    best = min(children, key=lambda c: c.data.metrics["val_loss"])  # the runs table's "best first"
    assert parent.data.tags["best.run_id"] == best.info.run_id
    assert parent.data.metrics["best_val_loss"] == best.data.metrics["val_loss"]


@pytest.mark.usefixtures("mlflow_db")
def test_a_step_or_metric_name_mlflow_cannot_store_fails_its_trial_at_once_and_leaves_sync_nothing(tmp_path: Path):
    source = ("def fit(trial):\n    x = trial.suggest_float('x', 0.0, 1.0)\n"
              "    if trial.number == 1:\n        trial.report(x, step=2**70)\n"
              "    if trial.number == 2:\n        return {'value': x, '': 1.0}\n"
              "    return x\n")
    config(tmp_path, source, "trainer: {function: train.py:fit}\nobjective: {direction: maximize}\n"
                             "pruner: {name: none}\n")
    result = inprocess.sweep(tmp_path, "run", "--config", "sweep.yaml", "--name", "bad", "--trials", "4")
    assert result.returncode == 0, result.stderr
    trials = {t.number: t for t in e2e.study(tmp_path, "bad").trials}
    assert [trials[n].state for n in range(4)] == [TrialState.COMPLETE, TrialState.FAIL, TrialState.FAIL,
                                                   TrialState.COMPLETE]
    assert trials[1].user_attrs["sweep.error"] == (
        "TypeError: trial.report: step must be a non-negative integer below 2**63, got 1180591620717411303424")
    assert trials[2].user_attrs["sweep.error"].startswith("ValueError: fit's returned mapping: '' is not a metric name")
    _, children = e2e.runs(tmp_path, experiment="sweep")
    assert [c.info.status for c in children] == ["FINISHED", "FAILED", "FAILED", "FINISHED"]
    synced = inprocess.sweep(tmp_path, "sync", "bad")
    assert synced.returncode == 0 and "nothing to repair" in synced.stdout, synced.stdout + synced.stderr


@pytest.mark.usefixtures("mlflow_db")
def test_a_password_in_a_fits_error_is_hidden_in_the_study_and_the_run(tmp_path: Path):
    source = ("import os\n\ndef fit(trial):\n"
              "    raise ConnectionError(f\"cannot reach {os.environ['FEATURE_DB']} as {os.environ['API_TOKEN']}\")\n")
    config(tmp_path, source, "trainer: {function: train.py:fit}\nobjective: {direction: maximize}\n"
                             "space:\n  x: {type: float, low: 0.0, high: 1.0}\n")
    secrets = {"FEATURE_DB": "postgresql://me:pg-pa55word@db/features", "API_TOKEN": "tok-0a1b2c3d"}
    result = inprocess.sweep(tmp_path, "run", "--config", "sweep.yaml", "--name", "hidden", "--trials", "2",
                             environment=secrets)
    assert result.returncode == 1  # every trial failed
    error = e2e.study(tmp_path, "hidden").trials[0].user_attrs["sweep.error"]
    assert error == "ConnectionError: cannot reach postgresql://me:***@db/features as ***"
    for path in (path for path in tmp_path.rglob("*") if path.is_file()):
        content = path.read_bytes()
        assert b"pg-pa55word" not in content and b"tok-0a1b2c3d" not in content, path
    assert "pg-pa55word" not in result.stdout + result.stderr


OWN_RUNS = '''
import mlflow


def fit(trial):
    lr = trial.params["lr"]
    with mlflow.start_run():  # the most common MLflow code there is
        mlflow.log_metric("plain", lr)
    assert mlflow.active_run().info.run_id == trial.run_id  # leaving the block did not end the trial's run
    with mlflow.start_run(nested=True, run_name="inner"):
        mlflow.log_metric("inner", lr)
    with mlflow.start_run(run_id=trial.run_id):
        mlflow.log_metric("by_id", lr)
    if trial.number == 1:  # code that ends the active run and starts its own
        mlflow.end_run()
        mlflow.start_run(run_name="restarted")
        mlflow.log_metric("restarted", lr)
    return lr
'''


@pytest.mark.usefixtures("mlflow_db")
def test_mlflow_runs_a_fit_starts_itself_are_the_trials_run_and_leave_it_open(tmp_path: Path):
    config(tmp_path, OWN_RUNS, "trainer: {function: train.py:fit, mlflow: active}\n"
                               "objective: {direction: maximize}\npruner: {name: none}\n"
                               "space:\n  lr: {type: float, low: 0.1, high: 1.0}\n")
    result = inprocess.sweep(tmp_path, "run", "--config", "sweep.yaml", "--name", "own-runs", "--trials", "2")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "error" not in result.stdout
    client = e2e.mlflow_client(tmp_path)
    default = client.search_runs(["0"])
    assert not default, f"runs in experiment Default: {[r.info.run_name for r in default]}"
    _, children = e2e.runs(tmp_path, experiment="sweep")
    runs = client.search_runs([client.get_experiment_by_name("sweep").experiment_id])
    assert len(runs) == 3  # the parent and the two trials' runs: no run of the code's own
    for child in children:
        lr = float(child.data.params["lr"])
        assert child.info.status == "FINISHED"
        assert {name: child.data.metrics[name] for name in ("plain", "inner", "by_id")} == \
            {"plain": lr, "inner": lr, "by_id": lr}
    assert "restarted" in children[1].data.metrics and "restarted" not in children[0].data.metrics


@pytest.mark.usefixtures("mlflow_db")
def test_a_step_beyond_a_database_storages_32_bit_column_fails_its_trial_with_the_reason(tmp_path: Path):
    source = ("def fit(trial):\n    x = trial.suggest_float('x', 0.0, 1.0)\n"
              "    trial.report(x, step=2**31 - 1 if trial.number == 0 else 2**31)\n"
              "    return x\n")
    config(tmp_path, source, "trainer: {function: train.py:fit}\nobjective: {direction: maximize}\n"
                             "pruner: {name: none}\n")
    with pg.database() as storage:
        result = inprocess.sweep(tmp_path, "run", "--config", "sweep.yaml", "--name", "steps", "--trials", "2",
                                 "--storage", storage)
        trials = sorted(optuna.load_study(study_name="steps", storage=storage).trials, key=lambda t: t.number)
    assert result.returncode == 0, result.stderr
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.FAIL]
    assert list(trials[0].intermediate_values) == [2**31 - 1]
    assert trials[1].user_attrs["sweep.error"] == (
        "ValueError: trial.report: step 2147483648 is above 2147483647, the largest step the Optuna storage keeps "
        "(a database keeps steps as 32-bit integers); count steps from 0 (epochs, batches)")


@pytest.mark.usefixtures("mlflow_db")
def test_a_fit_logging_to_mlflow_itself_with_mlflow_off_gets_one_warning_naming_the_setting(tmp_path: Path):
    source = ("import mlflow\n\n\ndef fit(trial):\n    x = trial.suggest_float('x', 0.0, 1.0)\n"
              "    mlflow.log_metric('own', x)\n    return x\n")
    config(tmp_path, source, "trainer: {function: train.py:fit}\nobjective: {direction: maximize}\n"
                             "pruner: {name: none}\n")
    try:
        result = inprocess.sweep(tmp_path, "run", "--config", "sweep.yaml", "--name", "off", "--trials", "3")
    finally:
        import mlflow

        with inprocess.working_in(tmp_path):  # in the store the fit's own run went to (./mlflow.db)
            mlflow.end_run()  # left active in this test process, as in the user's
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if "logs to MLflow itself" in line]
    assert len(warnings) == 1, result.stderr
    assert "set `trainer: {function: " in warnings[0] and "train.py:fit, mlflow: active}`" in warnings[0]


@pytest.mark.usefixtures("mlflow_db")
def test_a_warning_the_trials_code_raises_every_trial_is_shown_once_per_sweep(tmp_path: Path):
    source = ("import warnings\n\n\ndef fit(trial):\n"
              "    with warnings.catch_warnings():  # as MLflow's autologging does: Python's record is reset\n"
              "        pass\n"
              "    warnings.warn('y_pred was renamed to y_proba', FutureWarning)\n"
              "    return trial.suggest_float('x', 0.0, 1.0)\n")
    config(tmp_path, source, "trainer: {function: train.py:fit}\nobjective: {direction: maximize}\n"
                             "pruner: {name: none}\n")
    with warnings.catch_warnings(record=True) as shown:  # what reaches the screen (here: this list)
        warnings.simplefilter("always")  # even Python's own once-per-place rule would show it every time
        result = inprocess.sweep(tmp_path, "run", "--config", "sweep.yaml", "--name", "warns", "--trials", "3")
    assert result.returncode == 0, result.stderr
    assert sum("y_pred was renamed to y_proba" in str(w.message) for w in shown) == 1
