"""The tracking hub: workers' records reach MLflow through the sweep's own tracking server (here on a thread of
this process, on a real MLflow store), each worker in a session of its own; a worker that hangs up without closing
has its open child run ended FAILED, a peer without the key is refused, and the sweep's close waits for the
sessions still open."""

from __future__ import annotations

import time
from multiprocessing.connection import Client

import pytest
from mlflow import MlflowClient

from sweep.records import Counts, SweepIdentity, TrialRecord
from sweep.states import RunStatus
from sweep.tracking import Recorder
from sweep.tracking.hub import HubAddress, HubTransport
from sweep.tracking.operations import AttachParent, FinishTrial, OpenHub, OpenParent, StartTrial
from sweep.tracking.transport import ThreadTransport


def now_ms() -> int:
    return int(time.time() * 1000)


def wait_for_status(client: MlflowClient, run_id: str, status: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while client.get_run(run_id).info.status != status:
        assert time.monotonic() < deadline, f"run {run_id} is {client.get_run(run_id).info.status}, not {status}"
        time.sleep(0.05)  # polling the store: the session writes on its own thread


def joined_worker(address: HubAddress, identity: SweepIdentity, parent_run_id: str) -> tuple[Recorder, HubTransport]:
    transport = HubTransport.connect(address)
    worker = Recorder(transport)
    worker.connect(identity)
    worker.call(AttachParent(parent_run_id))
    return worker, transport


def test_workers_record_through_the_hub_and_one_that_hangs_up_has_its_open_run_failed(mlflow_uri: str):
    identity = SweepIdentity("hub", "hub", mlflow_uri)
    sweep = Recorder(ThreadTransport())
    sweep.connect(identity)
    parent_run_id, _ = sweep.call(OpenParent(None, params={}, tags={}, config_yaml="trials: 2\n"))
    address = HubAddress.new()
    sweep.call(OpenHub(address))
    client = MlflowClient(mlflow_uri)

    finishing, _ = joined_worker(address, identity, parent_run_id)
    dying, dying_link = joined_worker(address, identity, parent_run_id)
    finishing.send(StartTrial(0, now_ms()))
    dying.send(StartTrial(1, now_ms()))
    finished_run, open_run = finishing.run_id(0), dying.run_id(1)
    assert finished_run is not None and open_run is not None and finished_run != open_run
    finishing.send(FinishTrial(TrialRecord(0, "COMPLETE", {"x": 0.5}, value=0.25, metrics={"value": 0.25},
                                           start_ms=now_ms(), end_ms=now_ms(), run_id=finished_run)))
    report = finishing.close(None, Counts(complete=1))
    assert not report.errors and not report.failed_trials

    dying_link.kill()  # as a killed worker's connection ends: no Close, its trial's run still open
    wait_for_status(client, open_run, "FAILED")

    sweep.close(RunStatus.FINISHED, Counts(complete=1, failed=1))
    finished = client.get_run(finished_run)
    assert finished.info.status == "FINISHED" and finished.data.metrics["value"] == 0.25
    assert finished.data.params["x"] == "0.5" and finished.data.tags["mlflow.parentRunId"] == parent_run_id
    assert client.get_run(parent_run_id).info.status == "FINISHED"
    with pytest.raises(OSError):  # the sweep closed: its hub listens no more
        HubTransport.connect(address)


def test_a_peer_without_the_key_is_refused_and_the_hub_serves_on(mlflow_uri: str):
    identity = SweepIdentity("hub", "hub", mlflow_uri)
    sweep = Recorder(ThreadTransport())
    sweep.connect(identity)
    parent_run_id, _ = sweep.call(OpenParent(None, params={}, tags={}, config_yaml="trials: 1\n"))
    address = HubAddress.new()
    sweep.call(OpenHub(address))
    with pytest.raises(Exception, match="digest"):  # multiprocessing's AuthenticationError
        Client(address.name, family="AF_UNIX", authkey=b"not the key").send("hello")
    worker, _ = joined_worker(address, identity, parent_run_id)
    worker.send(StartTrial(0, now_ms()))
    assert worker.run_id(0) is not None
    worker.close(None, Counts())
    sweep.close(RunStatus.FINISHED, Counts())
