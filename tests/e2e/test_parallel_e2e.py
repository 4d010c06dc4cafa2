"""Parallel and distributed sweeps on real components: worker processes, PostgreSQL, an mlflow server, and the
signals and kills they get. `--jobs 2` on the embedded stores without either is
tests/unit/sweep/executors/test_jobs_sweeps.py, whose assert_consistent these tests share."""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
from mlflow import MlflowClient

from tests.support import e2e, inprocess, pg
from tests.unit.sweep.executors.test_jobs_sweeps import assert_consistent, parent_and_children

pytestmark = pytest.mark.slow
PASSWORD = "Sup3rSecretPw"

# A trial held until the test creates ./go, at a checkpoint every few milliseconds: Ctrl-C or SIGTERM stops it
# there, as the built-in trainer stops at its next epoch. The first `through` trials are not held.
HELD = """
import time
from pathlib import Path


def fit(trial):
    lr, epochs = trial.params["lr"], trial.params["epochs"]
    Path(f"started-{trial.number}").touch()
    step = 0
    while trial.number >= trial.params["through"] and not Path("go").exists():
        step += 1
        trial.checkpoint(step)
        time.sleep(0.05)
    return {"val_accuracy": 1 - 1 / (1 + lr * epochs), "val_loss": 1 / (1 + lr * epochs)}
"""
HELD_SWEEP = ("trainer: {function: train.py:fit}\nexperiment: sentiment\n"
              "objective: {metric: val_accuracy, direction: maximize}\npruner: {name: none}\nspace:\n"
              "  lr: {type: float, low: 0.1, high: 3.0, log: true}\n  epochs: {type: int, low: 3, high: 12}\n")


def write_held_sweep(folder: Path, settings: str) -> None:
    (folder / "train.py").write_text(HELD, encoding="utf-8")
    e2e.write_config(folder, settings + HELD_SWEEP)


@contextlib.contextmanager
def let_go_at_the_end(folder: Path) -> Iterator[None]:
    """The held trials are let go when the block ends, however it ends: a failed test leaves no sweep held."""
    try:
        yield
    finally:
        (folder / "go").touch()


def wait_for_files(process: subprocess.Popen[str], *paths: Path, timeout: float = 300) -> None:
    """Until every one of ``paths`` exists (the held trials have started), while ``process`` runs."""
    deadline = time.monotonic() + timeout
    while not all(path.exists() for path in paths):
        assert process.poll() is None, f"the sweep ended: {process.communicate()}"
        assert time.monotonic() < deadline, f"no {[str(p) for p in paths if not p.exists()]} in {timeout:.0f} s"
        time.sleep(0.05)


def journal_study(folder: Path, name: str) -> optuna.Study:
    return e2e.study(folder, name)


@pytest.mark.usefixtures("mlflow_db")
def test_interrupted_parallel_sweep_resumes_to_exactly_n(tmp_path: Path):
    write_held_sweep(tmp_path, "trials: 6\nfixed: {through: 1}\n")  # one trial finishes before the stop
    with let_go_at_the_end(tmp_path):
        process = e2e.start_sweep(tmp_path, "run", "--config", "sweep.yaml", "--name", "pairstop", "--jobs", "2")
        e2e.wait_for_trials(process, 1)
        wait_for_files(process, tmp_path / "started-1", tmp_path / "started-2")  # both workers are mid-trial
        code, _, err = e2e.interrupt(process, e2e.SIGINT)
    assert code == 130, err
    client = e2e.mlflow_client(tmp_path)
    parent, children = parent_and_children(client)
    assert parent.info.status == "KILLED" and not [c for c in children if c.info.status == "RUNNING"]
    resumed = inprocess.sweep(tmp_path, "run", "--resume", "--jobs", "2")  # no signal: this process will do
    assert resumed.returncode == 0, resumed.stderr
    assert_consistent(client, journal_study(tmp_path, "pairstop"), 6)


def _pg_study(storage_url: str, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=storage_url)


def _wait_for_study(creator: subprocess.Popen[str]) -> None:
    """Until `sweep run` says it started: the study and parent exist (and a fresh database's schema:
    two processes creating Optuna's tables at once race, so nothing else touches the database before)."""
    assert creator.stdout is not None
    seen = ""
    while not (line := creator.stdout.readline()).startswith("  mlflow:"):  # the line naming the parent run
        seen += line
        if not line:
            raise AssertionError(f"sweep run did not start: {seen}{creator.communicate()}")


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
        write_held_sweep(tmp_path, "trials: 5\nheartbeat: 1\nfixed: {through: 0}\n")
        with let_go_at_the_end(tmp_path):  # then the first process's held trial runs on, and the rest
            first = e2e.start_sweep(tmp_path, "run", "--config", "sweep.yaml", "--name", "crash",
                                    "--storage", optuna_url)
            _wait_for_study(first)
            victim = subprocess.Popen([*e2e.SWEEP, "worker", "crash", "--storage", optuna_url], cwd=tmp_path,
                                      env=e2e.env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            victim_trial = _wait_for_running_trial(optuna_url, "crash", victim)
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
                                      timeout: float = 300) -> None:
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


def _wait_for_running_trial(storage_url: str, name: str, worker: subprocess.Popen[str], timeout: float = 300) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for trial in pg.trials(storage_url, name):
            # params: the trial is training (a trial is marked with its worker when created, before sampling)
            if trial.state.name == "RUNNING" and trial.params and \
                    str(trial.user_attrs.get("sweep.worker", "")).endswith(f":{worker.pid}"):
                return trial.number
        assert worker.poll() is None, f"the worker ended before it started a trial: {worker.communicate()}"
        time.sleep(0.2)
    raise AssertionError("the worker never started a trial")




@pytest.mark.usefixtures("mlflow_db")
def test_a_finished_jobs_sweep_leaves_its_database_closed_and_no_scratch_folder(tmp_path: Path):
    # its tracking processes end without the interpreter's teardown: what that teardown did, they must do first
    write_held_sweep(tmp_path, "trials: 4\nfixed: {through: 4}\n")
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    done = subprocess.run([*e2e.SWEEP, "run", "--config", "sweep.yaml", "--name", "tidy", "--jobs", "2"],
                          cwd=tmp_path, env={**e2e.env(), "TMPDIR": str(scratch)}, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    e2e.wait_for_publishers(scratch)  # its lock is a file of its TMPDIR: gone with the publisher
    assert not list(tmp_path.glob("mlflow.db-*")), "a write-ahead log left: deleting mlflow.db would not start over"
    assert not list(scratch.iterdir()), "the tracking processes' scratch folders are removed"
    assert_consistent(e2e.mlflow_client(tmp_path), journal_study(tmp_path, "tidy"), 4)
