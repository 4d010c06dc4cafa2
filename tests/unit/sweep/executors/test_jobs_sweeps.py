"""`sweep run --jobs 2` driven in-process (tests/support/inprocess.py): the sweep that starts and watches its
workers runs in this process, its two `sweep worker`s are real processes on the embedded stores. What needs a
signal, a kill or a real server is tests/e2e/test_parallel_e2e.py, which checks its sweeps with the same
assert_consistent."""

from __future__ import annotations

import collections
import contextlib
import json
from pathlib import Path

import optuna
import pytest
from mlflow import MlflowClient

from sweep.config import load_config
from sweep.engine import run_sweep
from sweep.engine.composition import make_trainer
from sweep.engine.parts import Parts
from sweep.errors import SweepError
from sweep.executors import Executor, open_executor
from sweep.ranking import rank_key
from sweep.tracking.transport import ThreadTransport
from tests.support import e2e, inprocess

pytestmark = pytest.mark.slow  # each test runs a whole sweep and its two worker processes


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


PAIRED_TRIALS = 41  # 20 pairs, then one last trial both workers race for
# Trials 2k and 2k+1 run side by side: the one started first waits for its partner, which only the other worker
# can start (this one's is busy), so every pair keeps both workers busy and ends both trials at once: their
# records reach the study and the one MLflow database together. The last trial (odd count) has no partner: both
# workers are free when it is proposed, and only one may start it.
PAIRED = f'''
import json
import os
import sys
import time
from pathlib import Path


def fit(trial):
    lr, epochs = trial.params["lr"], trial.params["epochs"]
    arrivals = Path("arrivals")
    children = [pid for task in os.listdir("/proc/self/task")
                for pid in Path(f"/proc/self/task/{{task}}/children").read_text().split()]
    (arrivals / str(trial.number)).write_text(json.dumps({{  # what the worker process is made of
        "pid": os.getpid(), "mlflow": "mlflow" in sys.modules, "children": children,
        "hub key": "SWEEP_TRACKING_HUB_KEY" in os.environ}}))
    partner = arrivals / str(trial.number ^ 1)
    deadline = time.monotonic() + 600  # only a worker that died leaves a trial without its partner
    while trial.number ^ 1 < {PAIRED_TRIALS} and not partner.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    for epoch in range(1, epochs + 1):  # curves, as the built-in trainer logs them
        trial.log_metrics({{"val_accuracy": 1 - 1 / (1 + lr * epoch), "val_loss": 1 / (1 + lr * epoch)}},
                          step=epoch)
    return {{"val_accuracy": 1 - 1 / (1 + lr * epochs), "val_loss": 1 / (1 + lr * epochs)}}
'''


@pytest.mark.usefixtures("mlflow_db")
def test_two_jobs_on_embedded_stores_run_exactly_n_trials_recorded_by_the_sweeps_own_tracking_process(
        tmp_path: Path):
    (tmp_path / "train.py").write_text(PAIRED, encoding="utf-8")
    (tmp_path / "arrivals").mkdir()
    e2e.write_config(tmp_path, "trainer: {function: train.py:fit}\nexperiment: sentiment\n"
                     "objective: {metric: val_accuracy, direction: maximize}\n"
                     f"trials: {PAIRED_TRIALS}\npruner: {{name: none}}\nspace:\n"
                     "  lr: {type: float, low: 0.1, high: 3.0, log: true}\n  epochs: {type: int, low: 3, high: 12}\n")
    result = inprocess.sweep(tmp_path, "run", "--config", "sweep.yaml", "--name", "pair", "--jobs", "2")
    assert result.returncode == 0, result.stderr
    assert "locked" not in result.stderr.lower()
    study = e2e.study(tmp_path, "pair")
    assert not [t for t in study.trials if t.state.name == "FAIL"], "no trial may fail (database is locked?)"
    workers = {t.user_attrs["sweep.worker"] for t in study.trials}
    assert len(workers) == 2, "both worker processes ran trials"
    for first in range(0, PAIRED_TRIALS - 1, 2):  # the barrier held: each pair ran in both workers at once
        pair = study.trials[first], study.trials[first + 1]
        assert pair[0].user_attrs["sweep.worker"] != pair[1].user_attrs["sweep.worker"], pair
    assert_consistent(e2e.mlflow_client(tmp_path), study, PAIRED_TRIALS)
    seen = [json.loads(arrival.read_text()) for arrival in (tmp_path / "arrivals").iterdir()]
    assert len({worker["pid"] for worker in seen}) == 2
    # the workers' records went to the sweep's tracking server: no worker started a process or imported MLflow
    assert not [worker for worker in seen if worker["mlflow"] or worker["children"] or worker["hub key"]], seen


GPU_TRAINER = '''
import os
import time
from pathlib import Path


def fit(trial):
    x = trial.suggest_float("x", -1.0, 1.0)
    Path(trial.params["meeting"], str(os.getpid())).touch()  # both workers run trials, whichever starts first
    deadline = time.monotonic() + 120
    while len(list(Path(trial.params["meeting"]).iterdir())) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    return {"score": x, "gpu": float(os.environ["CUDA_VISIBLE_DEVICES"])}
'''


@pytest.mark.usefixtures("mlflow_db")
def test_two_jobs_each_get_their_own_gpu_from_cuda_visible_devices(tmp_path: Path):
    (tmp_path / "train.py").write_text(GPU_TRAINER, encoding="utf-8")
    (tmp_path / "meeting").mkdir()
    e2e.write_config(tmp_path, "trainer: {function: train.py:fit}\nobjective: {metric: score, direction: maximize}\n"
                               f"trials: 4\nresources: {{gpus: 1}}\nfixed: {{meeting: {tmp_path / 'meeting'}}}\n")
    result = inprocess.sweep(tmp_path, "run", "--config", "sweep.yaml", "--name", "gpus", "--jobs", "2",
                             environment={"CUDA_VISIBLE_DEVICES": "3,7"})
    assert result.returncode == 0, result.stderr
    seen: dict[str, set[float]] = collections.defaultdict(set)
    for trial in e2e.study(tmp_path, "gpus").trials:
        seen[trial.user_attrs["sweep.worker"]].add(trial.user_attrs["sweep.metrics"]["gpu"])
    assert sorted(seen.values(), key=min) == [{3.0}, {7.0}], seen


class RecordingExecutor:
    """The real executor, keeping the pools it starts."""

    def __init__(self, inner: Executor) -> None:
        self.inner, self.pools = inner, []
        self.workers, self.on_this_machine = inner.workers, inner.on_this_machine

    def start(self, *args, **kwargs):
        self.pools.append(self.inner.start(*args, **kwargs))
        return self.pools[-1]

    def close(self) -> None:
        self.inner.close()


def test_a_start_that_fails_after_the_workers_started_ends_them_without_a_trial(tmp_path: Path):
    # the workers are started before MLflow is reached
    (tmp_path / "mlflow.db").write_bytes(b"not an SQLite database\n" * 100)
    e2e.write_config(tmp_path, "trials: 4\npruner: {name: none}\n" + e2e.FAST_SPACE)
    config = load_config(tmp_path / "sweep.yaml", {"tracking_uri": f"sqlite:///{tmp_path / 'mlflow.db'}",
                                                   "storage": str(tmp_path / "sweep.journal"), "name": "broken",
                                                   "jobs": 2})
    executors: list[RecordingExecutor] = []

    @contextlib.contextmanager
    def recording(*args):
        with open_executor(*args) as executor:
            executors.append(RecordingExecutor(executor))
            yield executors[-1]

    parts = Parts(transport=ThreadTransport, trainer=make_trainer, executor=recording)
    with inprocess.working_in(tmp_path), pytest.raises(SweepError):
        run_sweep(config, resume=False, listener=inprocess.RecordingListener(), parts=parts)
    [pool] = executors[0].pools
    assert [process.poll() for process in pool.processes] == [0, 0], "ended, without a trial or an error"
    assert not (tmp_path / "sweep.journal").exists(), "nothing half-written"
