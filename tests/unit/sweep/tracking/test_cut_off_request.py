"""The tracking process of a sweep killed halfway through sending it a request (a large trial record, while the
tracking process was still importing MLflow and the pipe was full) serves every request that came whole, ends the
runs left open, and ends, instead of waiting for the rest forever. A real spawned tracking process on a real MLflow
store; the sweep's death is its writing end closing after half a message."""

from __future__ import annotations

import multiprocessing
import os
import struct
import time
from multiprocessing.reduction import ForkingPickler
from pathlib import Path

import pytest
from mlflow import MlflowClient

from sweep.records import SweepIdentity, TrialRecord
from sweep.tracking.operations import Connect, FinishTrial, OpenParent, StartTrial
from sweep.tracking.server import serve

pytestmark = pytest.mark.slow  # a tracking process importing MLflow

ENDS_WITHIN_SECONDS = 120.0  # MLflow's import on a loaded machine, then the end: a bound, never a timing


def test_a_request_cut_off_by_the_sweeps_death_ends_the_tracking_process_after_the_whole_ones(mlflow_uri: str):
    context = multiprocessing.get_context("spawn")
    requests, replies = context.Queue(), context.Queue()
    # parent_pid: this process, alive all along, so only the cut-off request can end the loop
    tracking = context.Process(target=serve, args=(requests, replies, os.getpid()), daemon=True)
    tracking.start()
    writer = requests._writer  # what the sweep's queue writes through
    for request in (Connect(SweepIdentity("cut", "cut", mlflow_uri)), OpenParent(None, {}, {}, "trials: 2\n"),
                    StartTrial(0, 1), FinishTrial(TrialRecord(0, "COMPLETE", {"lr": 0.5}, 0.8, {"val_accuracy": 0.8},
                                                              start_ms=1, end_ms=2)),
                    StartTrial(1, 3)):
        requests._sem.acquire()  # as put() does before its thread sends the request
        writer.send_bytes(ForkingPickler.dumps(request))
    os.write(writer.fileno(), struct.pack("!i", 100_000) + b"\x80" * 10)  # half of trial 1's record, then death
    writer.close()
    deadline = time.monotonic() + ENDS_WITHIN_SECONDS
    while tracking.is_alive() and time.monotonic() < deadline:
        tracking.join(timeout=0.5)
    alive = tracking.is_alive()
    if alive:
        tracking.kill()
    assert not alive, "the tracking process still waits for the rest of the request"
    client = MlflowClient(mlflow_uri)
    runs = client.search_runs([client.get_experiment_by_name("cut").experiment_id])
    status = {run.data.tags.get("sweep.trial", "parent"): run.info.status for run in runs}
    assert status == {"parent": "KILLED", "0": "FINISHED", "1": "KILLED"}, "served what came whole, then ended"
    assert Path(mlflow_uri.removeprefix("sqlite:///")).exists()
