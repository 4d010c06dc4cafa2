"""The artifact-store probe against a real `mlflow server` that proxies artifacts, from several processes of
one host at once: `--jobs` workers, or workers started together, probe the same per-host object."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import e2e, pg
from tests.support.stores import copy_mlflow_db

PROBES_PER_PROCESS = 8

PROBING = f"""
import sys
from sweep.errors import TrackingError
from sweep.tracking.artifact_probe import probe_artifact_store

for _ in range({PROBES_PER_PROCESS}):
    try:
        print(probe_artifact_store("mlflow-artifacts:/0"))
    except TrackingError as error:
        print(error)
"""


@pytest.mark.slow
def test_three_processes_of_one_host_probing_at_once_all_pass(tmp_path: Path, mlflow_template: Path):
    backend = f"sqlite:///{copy_mlflow_db(mlflow_template, tmp_path, 'server.db')}"  # the server migrates nothing
    with pg.mlflow_server(backend, tmp_path / "artifacts") as url:
        environment = {**e2e.env(), "MLFLOW_TRACKING_URI": url, "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"}
        processes = [subprocess.Popen([sys.executable, "-c", PROBING], env=environment, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True) for _ in range(3)]
        outputs = [process.communicate(timeout=300) for process in processes]
    lines = [line for out, _ in outputs for line in out.splitlines()]
    assert lines == ["write, read, delete ok"] * (3 * PROBES_PER_PROCESS), outputs
