"""Crashes at awkward moments and broken stores: the next command recovers, or says in one line what to do.

Each test reproduces a failure found by an attack on real stores (kill -9 during MLflow's first
migration, two sweeps racing for one name, workers that lose MLflow, a killed `--jobs` worker, a
parent run killed before the study links it); the sweep runs as a real subprocess in its own
process group, so a kill reaches the tracking process too, as a power cut would. The next command,
whose recovery is checked, runs in-process (tests/support/inprocess.py). Broken or lost MLflow
databases without a kill: tests/unit/sweep/engine/test_recovery_runs.py and test_sync_repairs.py.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sweep.errors import SweepError
from tests.support import e2e, inprocess, pg
from tests.support.storage_proxy import storage_proxy
from tests.support.stores import copy_mlflow_db

pytestmark = pytest.mark.slow

TWO_FAST_TRIALS = "trials: 2\npruner: {name: none}\n" + e2e.FAST_SPACE
# each trial waits until the test creates its file "go": the trials are running while the test acts
BARRIER_FIT = """
import pathlib
import time

GO = pathlib.Path({go!r})


def fit(trial):
    while not GO.exists():
        time.sleep(0.01)
    return trial.params["x"]
"""
BARRIER_CONFIG = ("pruner: {name: none}\ntrainer: {function: train.py:fit}\nobjective: {direction: maximize}\n"
                  "space:\n  x: {type: float, low: 0.0, high: 1.0}\n")


def write_barrier_sweep(folder: Path, trials: int) -> Path:
    """A sweep of ``trials`` whose trials all wait for the file this returns."""
    go = folder / "go"
    (folder / "train.py").write_text(BARRIER_FIT.format(go=str(go)), encoding="utf-8")
    e2e.write_config(folder, f"trials: {trials}\n" + BARRIER_CONFIG)
    return go


def start_group(folder: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """`sweep ARGS` as the leader of a new process group: a group kill reaches every process it started."""
    return e2e.SweepProcess([*e2e.SWEEP, *args], cwd=folder, env=env or e2e.env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def kill_group(process: subprocess.Popen[str]) -> None:
    """SIGKILL to the whole group, back only once every process of it is gone, as after a power cut: until
    something reaps them, killed processes still count as alive (their drafts and trials as in use)."""
    os.killpg(process.pid, signal.SIGKILL)
    process.communicate(timeout=60)
    wait_until(lambda: not group_members(process.pid), "the killed processes to be reaped", pause=0.05)


def group_members(group: int) -> list[int]:
    """The processes of process group ``group``, killed but not yet reaped ones included."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()  # state, parent, process group, ...
        except OSError:  # gone meanwhile
            continue
        if len(fields) > 2 and int(fields[2]) == group:
            members.append(int(stat.parent.name))
    return members


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 120, pause: float = 0.002) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(pause)
    raise AssertionError(f"timed out waiting for {what}")


def has_content(path: Path) -> bool:
    try:
        return path.stat().st_size > 0
    except FileNotFoundError:  # a draft's journal file comes and goes while the migration runs
        return False


def mlflow_files(folder: Path) -> list[Path]:
    return [path for path in folder.iterdir() if "mlflow.db" in path.name]


MIGRATION_KILL_DELAYS = [0.3, 0.8, 1.5]  # after the database first has content: early, middle, late migrations


def kill_mid_migration_then_run_again(root: Path, delay: float) -> tuple[Path, inprocess.Result]:
    folder = root / f"kill-{delay:.2f}"
    folder.mkdir()
    e2e.write_config(folder, TWO_FAST_TRIALS)
    # no schema template kept from an earlier database: this first run migrates, and is killed doing it
    process = start_group(folder, "run", "--config", "sweep.yaml", "--name", "first",
                          env={**e2e.env(), "XDG_CACHE_HOME": str(folder / "cache")})
    wait_until(lambda: any(has_content(path) for path in mlflow_files(folder)), "the MLflow database")
    time.sleep(delay)
    kill_group(process)
    # a late kill may land after the study exists: then it is resumed, as the fault harness does
    resumed = inprocess.sweep(folder, "run", "--resume", "--name", "first")
    if "no sweep named" not in resumed.stderr and "no sweeps yet" not in resumed.stderr:
        return folder, resumed
    return folder, inprocess.sweep(folder, "run", "--config", "sweep.yaml", "--name", "first")


@pytest.mark.timeout(900)  # three kills and three first runs that migrate a new MLflow database: minutes under load
def test_kill_during_the_first_mlflow_migration_leaves_a_folder_that_works(tmp_path: Path):
    # one case at a time: run together, their start-up times (and so their kill points) depend on the load
    outcomes = [kill_mid_migration_then_run_again(tmp_path, delay) for delay in MIGRATION_KILL_DELAYS]
    for folder, again in outcomes:
        assert again.returncode == 0, f"{folder.name}: {again.stderr}"
        assert {path.name for path in mlflow_files(folder)} <= {"mlflow.db", "mlflow.db-wal", "mlflow.db-shm"}
        parent, children = e2e.runs(folder)
        assert len(children) == 2 and parent.info.status == "FINISHED", folder.name


def test_two_sweeps_started_together_with_one_name_one_wins_one_says_it_exists(tmp_path: Path):
    e2e.write_config(tmp_path, TWO_FAST_TRIALS)
    processes = [start_group(tmp_path, "run", "--config", "sweep.yaml", "--name", "same") for _ in range(2)]
    outputs = [process.communicate(timeout=300) for process in processes]
    codes = sorted(process.returncode for process in processes)
    assert codes == [0, 2], outputs
    loser_err = next(err for (_, err), process in zip(outputs, processes) if process.returncode == 2)
    assert "a sweep named 'same' exists already" in loser_err, loser_err
    assert "alembic" not in loser_err.lower() and "Traceback" not in loser_err


def test_jobs_whose_tracking_server_goes_away_finish_every_trial_and_say_sync_repairs(tmp_path: Path,
                                                                                     mlflow_template: Path):
    # the workers record through the sweep's own tracking process: once they run trials, losing the server is an
    # outage of that process, as with one job (tests/e2e/test_sync_e2e.py), never a worker's failure or a stop
    go = write_barrier_sweep(tmp_path, 4)
    env = {**e2e.env(), "SWEEP_TRACKING_RETRY_SECONDS": "1"}
    backend = f"sqlite:///{copy_mlflow_db(mlflow_template, tmp_path, 'server.db')}"  # the server migrates nothing
    with pg.mlflow_server(backend, tmp_path / "artifacts", e2e.free_port()) as url:
        process = start_group(tmp_path, "run", "--config", "sweep.yaml", "--name", "lost", "--jobs", "2",
                              "--tracking-uri", url, env=env)
        wait_until(lambda: process.poll() is not None or running_trials(tmp_path, "lost") == 2,
                   "both workers to run a trial", pause=0.1)
        assert process.poll() is None, process.communicate()
    go.touch()  # the server is gone: the two running trials end now, and the last two run without it
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, (out, err)
    assert "interrupted" not in err and "resume with" not in err, err
    assert "MLflow is behind" in out and "sweep sync lost" in out, out
    assert len(e2e.finished(e2e.study(tmp_path, "lost").trials)) == 4


def running_trials(folder: Path, name: str) -> int:
    """How many of the sweep's trials are RUNNING (0 before its study exists)."""
    try:
        return sum(trial.state.name == "RUNNING" for trial in e2e.study(folder, name).trials)
    except (KeyError, SweepError):  # no study yet, or no journal yet
        return 0


@contextlib.contextmanager
def storage_flags(kind: str, folder: Path) -> Iterator[list[str]]:
    """The --storage flags of a sweep on the folder's journal: none (the file itself), or `sweep storage-proxy`
    serving it (the proxy starts the trials, and names a dead worker's to the workers of its host)."""
    if kind == "journal":
        yield []
    else:
        with storage_proxy(folder, str(folder / "sweep.journal")) as (url, _process):
            yield ["--storage", url]


@pytest.mark.parametrize("kind", ["journal", "proxy"])
@pytest.mark.usefixtures("mlflow_db")
def test_a_killed_jobs_worker_is_counted_once_everywhere(tmp_path: Path, kind: str):
    go = write_barrier_sweep(tmp_path, 6)
    with storage_flags(kind, tmp_path) as flags:
        process = start_group(tmp_path, "run", "--config", "sweep.yaml", "--name", "one-down", "--jobs", "2", *flags)
        victim = wait_for_worker_running_a_trial(tmp_path, "one-down")
        os.kill(victim, signal.SIGKILL)  # mid-trial: its trial cannot end before the file exists
        go.touch()
        out, err = process.communicate(timeout=300)
    assert process.returncode == 0, err
    assert "leaked semaphore" not in err, err
    summary = re.search(r"(\d+) trials \((\d+) complete, (\d+) pruned, (\d+) failed", out)
    assert summary is not None, out
    assert int(summary[1]) == 6
    for line in out.splitlines():  # the killed attempt's retry is counted once, and completes without its error
        counter = re.search(r"\[\s*(\d+)/6\]", line)
        assert counter is None or int(counter[1]) <= 6, out
        assert not (" complete " in line and "error:" in line), out
    listed = inprocess.sweep(tmp_path, "ls").stdout
    assert re.search(r"one-down\s+\S+\s+6/6", listed), listed
    parent, children = e2e.runs(tmp_path, experiment="sweep")  # a function trainer's config file's default
    tags = parent.data.tags
    counted = [tags["sweep.trials_complete"], tags["sweep.trials_pruned"], tags["sweep.trials_failed"]]
    assert counted == [summary[2], summary[3], summary[4]], (counted, out)
    retried = int(tags.get("sweep.trials_retried", "0"))
    assert retried == 1 and len(children) == 6 + retried
    assert sum(child.info.status == "FAILED" for child in children) >= retried


def test_kill_9_of_a_jobs_parent_takes_its_workers_with_it_and_a_resume_finishes_exactly(tmp_path: Path):
    go = write_barrier_sweep(tmp_path, 6)
    process = start_group(tmp_path, "run", "--config", "sweep.yaml", "--name", "orphans", "--jobs", "2")
    worker = wait_for_worker_running_a_trial(tmp_path, "orphans")
    workers = [pid for pid in group_members(process.pid) if b"worker" in Path(f"/proc/{pid}/cmdline").read_bytes()]
    assert worker in workers
    os.kill(process.pid, signal.SIGKILL)  # the parent alone: its workers are not signalled by anybody
    process.communicate(timeout=60)
    go.touch()  # were a worker left, it would now finish its trial and go on with the sweep unseen
    wait_until(lambda: not [pid for pid in workers if Path(f"/proc/{pid}").exists()
                            and "Z" not in Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2][:3]],
               "the workers to die with their parent", timeout=60, pause=0.05)
    trials = e2e.study(tmp_path, "orphans").trials
    assert not [t for t in trials if t.state.name == "COMPLETE"], "a worker went on after its parent died"
    resumed = inprocess.sweep(tmp_path, "run", "--resume", "--name", "orphans")
    assert resumed.returncode == 0, resumed.stderr
    trials = e2e.study(tmp_path, "orphans").trials
    assert len([t for t in trials if t.state.name == "COMPLETE"]) == 6 - sum(t.state.name == "FAIL" for t in trials)
    assert sum(t.state.name in ("COMPLETE", "FAIL", "PRUNED") for t in trials) == len(trials)
    listed = inprocess.sweep(tmp_path, "ls").stdout
    assert re.search(r"orphans\s+\S+\s+6/6", listed), listed


def wait_for_worker_running_a_trial(folder: Path, name: str, timeout: float = 120) -> int:
    """The pid of a `sweep worker` process that is running a trial of the sweep (from the journal)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (folder / "sweep.journal").exists():
            try:
                study = e2e.study(folder, name)
            except KeyError:
                study = None
            for trial in study.trials if study is not None else []:
                worker = str(trial.user_attrs.get("sweep.worker", ""))
                # params: the trial is training (a trial is marked with its worker when created, before sampling)
                if trial.state.name == "RUNNING" and trial.params and worker.rpartition(":")[2].isdigit():
                    pid = int(worker.rpartition(":")[2])
                    if b"worker" in Path(f"/proc/{pid}/cmdline").read_bytes():
                        return pid
        time.sleep(0.1)
    raise AssertionError("no worker started a trial")


@pytest.mark.usefixtures("mlflow_db")
def test_a_parent_created_but_not_linked_is_adopted_or_ended_by_the_next_run(tmp_path: Path):
    e2e.write_config(tmp_path, TWO_FAST_TRIALS)
    process = start_group(tmp_path, "run", "--config", "sweep.yaml", "--name", "orphan")

    def parent_row_exists() -> bool:
        database = tmp_path / "mlflow.db"
        if not database.exists():
            return False
        try:
            with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=0.1) as connection:
                rows = connection.execute("SELECT count(*) FROM tags WHERE key = 'sweep.role' "
                                          "AND value = 'parent'").fetchone()
        except sqlite3.Error:
            return False
        return bool(rows and rows[0])

    wait_until(parent_row_exists, "the parent run")
    kill_group(process)
    for args in (("run", "--resume", "--name", "orphan"), ("run", "--config", "sweep.yaml", "--name", "orphan")):
        result = inprocess.sweep(tmp_path, *args)
        if result.returncode == 0:
            break
    assert result.returncode == 0, result.stderr
    client = e2e.mlflow_client(tmp_path)
    experiment = client.get_experiment_by_name("sentiment")
    every = client.search_runs([experiment.experiment_id], max_results=100)
    assert not [run for run in every if run.info.status == "RUNNING"]
    live_parents = [run for run in every if run.data.tags.get("sweep.role") == "parent"
                    and run.info.status == "FINISHED"]
    assert len(live_parents) == 1
