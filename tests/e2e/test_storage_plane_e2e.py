"""Many workers on one study through a journal in Redis and through `sweep storage-proxy`: exact counts.

Each test runs a sweep with --jobs 2, then extends it with two `sweep worker` processes at once; both
times the study must hold exactly the target, one child run per trial, and the right best.
"""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import optuna
import pytest

from sweep.locations import StorageLocation
from sweep.study.storage import open_storage
from tests.e2e.test_parallel_e2e import assert_consistent
from tests.support import e2e, inprocess, pg, redis_db
from tests.support.storage_proxy import storage_proxy

pytestmark = pytest.mark.slow

TINY = """pruner: {name: none}
space:
  lr: {type: float, low: 0.1, high: 3.0, log: true}
  epochs: {type: int, low: 1, high: 2}
  vocab_size: {type: int, low: 50, high: 100}
"""


def _study(url: str, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=open_storage(StorageLocation.parse(url), create=False))


def _jobs_then_two_workers(folder: Path, url: str) -> None:
    e2e.write_config(folder, TINY)
    # in-process: its --jobs workers are real processes all the same (tests/support/inprocess.py)
    first = inprocess.sweep(folder, "run", "--config", "sweep.yaml", "--trials", "3", "--jobs", "2", "--name", "plane",
                            "--storage", url)
    assert first.returncode == 0, first.stderr
    client = e2e.mlflow_client(folder)
    assert_consistent(client, _study(url, "plane"), 3)

    workers = [subprocess.Popen([*e2e.SWEEP, "worker", "plane", "--storage", url, "--trials", "6", "--quiet"],
                                cwd=folder, env=e2e.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for _ in range(2)]
    outputs = [worker.communicate(timeout=300) for worker in workers]
    assert all(worker.returncode == 0 for worker in workers), outputs
    assert_consistent(client, _study(url, "plane"), 6)


@pytest.mark.usefixtures("mlflow_db")
def test_a_journal_in_redis_runs_exactly_the_target_with_jobs_and_with_workers(tmp_path: Path):
    with redis_db.journal() as url:
        _jobs_then_two_workers(tmp_path, url)


@pytest.mark.usefixtures("mlflow_db")
def test_the_storage_proxy_runs_exactly_the_target_with_jobs_and_with_workers_then_stops_on_sigterm(tmp_path: Path):
    with pg.database() as database, storage_proxy(tmp_path, database) as (url, proxy):
        _jobs_then_two_workers(tmp_path, url)
        proxy.send_signal(signal.SIGTERM)
        _, err = proxy.communicate(timeout=30)
        assert proxy.returncode == 0 and err == "", err
        assert len(_study(database, "plane").trials) == 6  # the served database holds the trials
