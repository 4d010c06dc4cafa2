"""Parallel and distributed sweeps on real components: worker processes, PostgreSQL, an mlflow server."""

from __future__ import annotations

import collections
import subprocess
import time
from pathlib import Path

import optuna
import pytest
from mlflow import MlflowClient

from sweep.ranking import rank_key
from tests.support import e2e, pg

pytestmark = pytest.mark.slow
PASSWORD = "Sup3rSecretPw"


def parent_and_children(client: MlflowClient, experiment: str = "sentiment"):
    found = client.get_experiment_by_name(experiment)
    runs = client.search_runs([found.experiment_id], max_results=5000)
    parents = [r for r in runs if r.data.tags.get("sweep.role") == "parent"]
    assert len(parents) == 1
    return parents[0], [r for r in runs if r is not parents[0]]


def assert_consistent(client: MlflowClient, study: optuna.Study, target: int) -> None:
    """Exactly ``target`` counted trials, one child run each, all linked and ended, and the right best."""
    trials = study.get_trials(deepcopy=False)
    retried = {n for t in trials for n in t.system_attrs.get("retry_history", [])}
    counted = [t for t in trials if t.number not in retried]
    assert len(counted) == target
    assert all(t.state.is_finished() for t in trials)
    parent, children = parent_and_children(client)
    numbers = collections.Counter(int(c.data.tags["sweep.trial"]) for c in children)
    assert set(numbers) == {t.number for t in trials} and max(numbers.values()) == 1, numbers
    assert all(c.data.tags["mlflow.parentRunId"] == parent.info.run_id for c in children)
    assert not [c for c in children if c.info.status == "RUNNING"] and parent.info.status == "FINISHED"
    finished = [c for c in children if c.info.status == "FINISHED"]
    best = min(finished, key=lambda r: rank_key(r.data.metrics["val_accuracy"], r.data.metrics,
                                                 int(r.data.tags["sweep.trial"]), metric="val_accuracy",
                                                 direction="maximize"))
    assert parent.data.tags["best.trial"] == best.data.tags["sweep.trial"]


def journal_study(folder: Path, name: str) -> optuna.Study:
    return e2e.study(folder, name)


@pytest.mark.usefixtures("mlflow_db")
def test_two_jobs_on_embedded_stores_run_exactly_n_trials(tmp_path: Path):
    e2e.write_config(tmp_path, "trials: 200\npruner: {name: none}\nspace:\n"
                     "  lr: {type: float, low: 0.1, high: 3.0, log: true}\n  epochs: {type: int, low: 3, high: 12}\n")
    result = e2e.sweep(tmp_path, "run", "--config", "sweep.yaml", "--name", "pair", "--jobs", "2", timeout=600)
    assert result.returncode == 0, result.stderr
    assert "locked" not in result.stderr.lower()
    study = journal_study(tmp_path, "pair")
    assert not [t for t in study.trials if t.state.name == "FAIL"], "no trial may fail (database is locked?)"
    workers = {t.user_attrs["sweep.worker"] for t in study.trials}
    assert len(workers) == 2, "both worker processes ran trials"
    assert_consistent(e2e.mlflow_client(tmp_path), study, 200)


@pytest.mark.usefixtures("mlflow_db")
def test_interrupted_parallel_sweep_resumes_to_exactly_n(tmp_path: Path):
    e2e.write_config(tmp_path, "trials: 6\npruner: {name: none}\n" + e2e.SLOWER_SPACE)
    process = e2e.start_sweep(tmp_path, "run", "--config", "sweep.yaml", "--name", "pairstop", "--jobs", "2")
    e2e.wait_for_trials(process, 1)
    code, _, err = e2e.interrupt(process, e2e.SIGINT)
    assert code == 130, err
    client = e2e.mlflow_client(tmp_path)
    parent, children = parent_and_children(client)
    assert parent.info.status == "KILLED" and not [c for c in children if c.info.status == "RUNNING"]
    resumed = e2e.sweep(tmp_path, "run", "--resume", "--jobs", "2", timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert_consistent(client, journal_study(tmp_path, "pairstop"), 6)


def _pg_study(storage_url: str, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=storage_url)


def _wait_for_study(creator: subprocess.Popen[str]) -> None:
    """Until `sweep run` says it started: the study and parent exist (and a fresh database's schema:
    two processes creating Optuna's tables at once race, so nothing else touches the database before)."""
    assert creator.stdout is not None
    line = creator.stdout.readline()
    if not line.startswith(("starting sweep", "resuming sweep")):
        raise AssertionError(f"sweep run did not start: {line}{creator.communicate()}")


def test_workers_share_a_postgres_study_under_an_mlflow_server(tmp_path: Path):
    with pg.database(PASSWORD) as optuna_url, pg.database() as mlflow_url, \
            pg.mlflow_server(mlflow_url, tmp_path / "artifacts") as server:
        tracking = server.replace("http://", f"http://alice:{PASSWORD}@")
        e2e.write_config(tmp_path, "trials: 16\npruner: {name: none}\n" + e2e.SLOW_SPACE)
        first = e2e.start_sweep(tmp_path, "run", "--config", "sweep.yaml", "--name", "team",
                                "--storage", optuna_url, "--tracking-uri", tracking)
        _wait_for_study(first)
        workers = [subprocess.Popen([*e2e.SWEEP, "worker", "team", "--storage", optuna_url, "--tracking-uri",
                                     tracking], cwd=tmp_path, env=e2e.env(), stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True) for _ in range(2)]
        outputs = [w.communicate(timeout=300) for w in workers]
        out, err = first.communicate(timeout=300)
        assert first.returncode == 0, err
        assert all(w.returncode == 0 for w in workers), outputs
        study = _pg_study(optuna_url, "team")
        assert len({t.user_attrs["sweep.worker"] for t in study.trials}) >= 2, "the workers ran trials too"
        client = MlflowClient(server)
        assert_consistent(client, study, 16)

        # credentials never reach output, the stores or the artifacts
        shown = out + err + "".join(o + e for o, e in outputs)
        assert PASSWORD not in shown
        assert PASSWORD not in _database_text(mlflow_url) and PASSWORD not in _database_text(optuna_url)
        for file in (tmp_path / "artifacts").rglob("*"):
            if file.is_file():
                assert PASSWORD.encode() not in file.read_bytes(), file


def _database_text(url: str) -> str:
    """Every text value in every table of a database, for a password grep."""
    import psycopg

    chunks = []
    with psycopg.connect(url.replace(f":{PASSWORD}", ""), autocommit=True) as connection:
        tables = connection.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()
        for (table,) in tables:
            for row in connection.execute(f'SELECT * FROM "{table}"').fetchall():
                chunks.append(repr(row))
    return "\n".join(chunks)


@pytest.mark.usefixtures("mlflow_db")
def test_a_killed_worker_trial_is_failed_retried_and_its_run_fails(tmp_path: Path):
    with pg.database() as optuna_url:
        e2e.write_config(tmp_path, "trials: 5\nheartbeat: 1\npruner: {name: none}\n" + e2e.SLOWER_SPACE)
        first = e2e.start_sweep(tmp_path, "run", "--config", "sweep.yaml", "--name", "crash",
                                "--storage", optuna_url)
        _wait_for_study(first)
        victim = subprocess.Popen([*e2e.SWEEP, "worker", "crash", "--storage", optuna_url], cwd=tmp_path,
                                  env=e2e.env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        victim_trial = _wait_for_running_trial(optuna_url, "crash", victim.pid)
        _wait_for_child_run_and_heartbeat(tmp_path, optuna_url, "crash", victim_trial)
        victim.kill()  # SIGKILL: no handler runs in the worker
        victim.wait(timeout=30)
        _, err = first.communicate(timeout=300)
        assert first.returncode == 0, err
        study = _pg_study(optuna_url, "crash")
        killed = study.trials[victim_trial]
        assert killed.state.name == "FAIL"
        retries = [t for t in study.trials if t.system_attrs.get("failed_trial") == victim_trial]
        assert len(retries) == 1 and retries[0].state.is_finished()
        assert retries[0].params == killed.params
        client = e2e.mlflow_client(tmp_path)
        _, children = parent_and_children(client)
        run = next(c for c in children if int(c.data.tags["sweep.trial"]) == victim_trial)
        assert run.info.status == "FAILED"
        assert_consistent(client, study, 5)


def _wait_for_child_run_and_heartbeat(folder: Path, storage_url: str, name: str, number: int,
                                      timeout: float = 120) -> None:
    """Until the trial has its child run in MLflow and a heartbeat in the study: a kill before either
    would leave nothing for the other workers to fail."""
    import psycopg

    client = e2e.mlflow_client(folder)
    query = ("SELECT 1 FROM trial_heartbeats h JOIN trials t ON t.trial_id = h.trial_id "
             "JOIN studies s ON s.study_id = t.study_id WHERE s.study_name = %s AND t.number = %s")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        experiment = client.get_experiment_by_name("sentiment")
        runs = client.search_runs([experiment.experiment_id], f"tags.`sweep.trial` = '{number}'") if experiment else []
        with psycopg.connect(storage_url, autocommit=True) as connection:
            beating = connection.execute(query, (name, number)).fetchone() is not None
        if runs and beating:
            return
        time.sleep(0.2)  # polling both stores: neither tells when it is written
    raise AssertionError(f"trial {number} got no child run and heartbeat in {timeout:.0f} s")


def _wait_for_running_trial(storage_url: str, name: str, pid: int, timeout: float = 120) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for trial in pg.trials(storage_url, name):
            if trial.state.name == "RUNNING" and str(trial.user_attrs.get("sweep.worker", "")).endswith(f":{pid}"):
                return trial.number
        time.sleep(0.2)
    raise AssertionError("the worker never started a trial")


