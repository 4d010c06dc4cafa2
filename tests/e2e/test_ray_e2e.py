"""`sweep run --on ray` on a real Ray cluster of two nodes (one cluster for the module): exact counts, each
worker on its own GPU, Ctrl-C then --resume, and a node lost mid-sweep."""

from __future__ import annotations

import collections
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest

from sweep.ranking import rank_key
from tests.support import e2e, pg
from tests.support.cluster import RayCluster, cluster_env, descendants

pytestmark = pytest.mark.slow
pytest.importorskip("ray", reason="the dev extra brings Ray: pip install -e '.[dev]'")

TRAINER = '''
import os
import time
from pathlib import Path


def fit(trial):
    x = trial.suggest_float("x", -3.0, 3.0)
    meeting = trial.params.get("meeting")
    if meeting:  # each worker's first trial waits for the other's: both run trials, whichever starts first
        Path(meeting, str(os.getpid())).touch()
        deadline = time.monotonic() + 120
        while len(list(Path(meeting).iterdir())) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
    time.sleep(trial.params["pause"])
    return {"score": -(x - 1.0) ** 2, "gpu": float(os.environ.get("CUDA_VISIBLE_DEVICES") or -1)}
'''


@pytest.fixture(scope="module")
def cluster() -> Iterator[RayCluster]:
    started = RayCluster()
    try:
        started.start()
        yield started
    finally:
        started.stop()


def write_sweep(folder: Path, body: str) -> None:
    (folder / "train.py").write_text(TRAINER, encoding="utf-8")
    e2e.write_config(folder, "trainer: {function: train.py:fit}\nobjective: {metric: score, direction: maximize}\n"
                             "pruner: {name: none}\n" + body)


def start_sweep(folder: Path, cluster: RayCluster, *args: str) -> subprocess.Popen[str]:
    return e2e.SweepProcess([*e2e.SWEEP, "run", "--on", "ray", "--address", cluster.address, "--workers", "2", *args],
                            cwd=folder, env=cluster_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(process: subprocess.Popen[str]) -> str:
    out, err = process.communicate(timeout=240)
    assert process.returncode == 0, out + err
    return out


def assert_consistent(folder: Path, study: optuna.Study, target: int) -> None:
    """As for --jobs: exactly ``target`` counted trials, one ended child run each under the one parent, the best."""
    trials = study.get_trials(deepcopy=False)
    retried = {n for t in trials for n in t.system_attrs.get("retry_history", [])}
    assert len([t for t in trials if t.number not in retried]) == target
    assert all(t.state.is_finished() for t in trials)
    parent, children = e2e.runs(folder, experiment="sweep")
    numbers = collections.Counter(int(c.data.tags["sweep.trial"]) for c in children)
    assert set(numbers) == {t.number for t in trials} and max(numbers.values()) == 1, numbers
    assert all(c.data.tags["mlflow.parentRunId"] == parent.info.run_id for c in children)
    assert not [c for c in children if c.info.status == "RUNNING"] and parent.info.status == "FINISHED"
    settings = [tuple(sorted(t.params.items())) for t in trials if t.number not in retried]
    assert len(set(settings)) == len(settings), f"settings proposed twice: {settings}"  # a retry repeats on purpose
    best = min((c for c in children if c.info.status == "FINISHED"),
               key=lambda r: rank_key(r.data.metrics["score"], r.data.metrics, int(r.data.tags["sweep.trial"]),
                                      metric="score", direction="maximize"))
    assert parent.data.tags["best.trial"] == best.data.tags["sweep.trial"]


def sweep_workers(cluster: RayCluster) -> list[int]:
    """`sweep worker` processes still running under the cluster's nodes."""
    found = []
    for root in (cluster.head, cluster.node):
        for pid in descendants(root.pid) if root is not None and root.poll() is None else []:
            try:
                command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"worker" in command and b"sweep.cli" in command:
                found.append(pid)
    return found


@pytest.mark.usefixtures("mlflow_db")
def test_two_ray_workers_run_exactly_n_trials_each_on_its_own_gpu_and_never_one_setting_twice(cluster: RayCluster,
                                                                                            tmp_path: Path):
    (tmp_path / "meeting").mkdir()  # each worker's first trial waits for the other's: both run trials
    # CMA-ES: the sampler that, asked from two processes at once, would propose one setting twice unless guarded
    write_sweep(tmp_path, f"trials: 8\nsampler: {{name: cmaes, seed: 0}}\n"
                          f"fixed: {{pause: 0.2, meeting: {tmp_path / 'meeting'}}}\n"
                          "resources: {gpus: 1}\n"
                          "space:\n  y: {type: float, low: -3.0, high: 3.0}\n")
    finish(start_sweep(tmp_path, cluster, "--config", "sweep.yaml", "--name", "onray"))
    study = e2e.study(tmp_path, "onray")
    assert_consistent(tmp_path, study, 8)  # which checks that no two trials share their settings
    seen: dict[str, set[float]] = collections.defaultdict(set)
    for trial in study.trials:
        seen[trial.user_attrs["sweep.worker"]].add(trial.user_attrs["sweep.metrics"]["gpu"])
    assert len(seen) == 2, "both Ray workers ran trials"
    assert sorted(device for devices in seen.values() for device in devices) == [0.0, 1.0], seen
    assert not sweep_workers(cluster)


@pytest.mark.usefixtures("mlflow_db")
def test_ctrl_c_cancels_the_ray_workers_and_the_sweep_resumes_to_exactly_n(cluster: RayCluster, tmp_path: Path):
    write_sweep(tmp_path, "trials: 5\nfixed: {pause: 0.5}\n")
    process = start_sweep(tmp_path, cluster, "--config", "sweep.yaml", "--name", "stopped")
    e2e.wait_for_trials(process, 1)
    code, _, err = e2e.interrupt(process, signal.SIGINT)
    assert code == 130, err
    assert "--resume" in err
    parent, children = e2e.runs(tmp_path, experiment="sweep")
    assert parent.info.status == "KILLED" and not [c for c in children if c.info.status == "RUNNING"]
    assert not sweep_workers(cluster), "a cancelled Ray task left its worker running"
    finish(start_sweep(tmp_path, cluster, "--resume"))
    assert_consistent(tmp_path, e2e.study(tmp_path, "stopped"), 5)


@pytest.mark.usefixtures("mlflow_db")
def test_a_lost_node_fails_and_retries_its_trial_and_the_sweep_ends_with_exactly_n(cluster: RayCluster,
                                                                                   tmp_path: Path):
    cluster.add_node()
    with pg.database() as storage:
        write_sweep(tmp_path, "trials: 6\nheartbeat: 1\nfixed: {pause: 1.5}\n")
        process = start_sweep(tmp_path, cluster, "--config", "sweep.yaml", "--name", "lost", "--storage", storage)
        victim = running_on_node(storage, "lost", cluster)
        cluster.kill_node()
        finish(process)
        study = optuna.load_study(study_name="lost", storage=storage)
        assert study.trials[victim].state == optuna.trial.TrialState.FAIL
        retries = [t for t in study.trials if t.system_attrs.get("failed_trial") == victim]
        assert len(retries) == 1 and retries[0].state.is_finished()  # define-by-run: the retry suggests anew
        _, children = e2e.runs(tmp_path, experiment="sweep")
        assert next(c for c in children if int(c.data.tags["sweep.trial"]) == victim).info.status == "FAILED"
        assert_consistent(tmp_path, study, 6)


def running_on_node(storage: str, name: str, cluster: RayCluster, timeout: float = 120) -> int:
    """A trial a worker on the second node runs, once it has a heartbeat: a kill before that would leave
    nothing for the heartbeat to fail."""
    import psycopg

    query = ("SELECT 1 FROM trial_heartbeats h JOIN trials t ON t.trial_id = h.trial_id "
             "JOIN studies s ON s.study_id = t.study_id WHERE s.study_name = %s AND t.number = %s")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for trial in pg.trials(storage, name):
            if trial.state != optuna.trial.TrialState.RUNNING:
                continue
            pid = str(trial.user_attrs.get("sweep.worker", "")).rpartition(":")[2]
            if pid.isdigit() and int(pid) in cluster.node_pids():
                with psycopg.connect(storage, autocommit=True) as connection:
                    if connection.execute(query, (name, trial.number)).fetchone() is not None:
                        return trial.number
        time.sleep(0.2)  # polling the study: it tells no one when a trial starts
    raise AssertionError("no worker on the second node started a trial (did Ray place both on the head?)")
