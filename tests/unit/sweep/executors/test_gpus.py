"""This machine's GPUs for --jobs workers: read from CUDA_VISIBLE_DEVICES or the driver, shared round-robin."""

from __future__ import annotations

from pathlib import Path

import pytest

from sweep.errors import SweepConfigError
from sweep.executors.gpus import assign_gpus, visible_gpus
from sweep.executors.local import local_workers
from sweep.executors.spec import ExecutorSpec, Resources


def test_whole_gpus_give_each_worker_its_own_devices():
    assert assign_gpus(2, 1, ["3", "7"]) == ["3", "7"]
    assert assign_gpus(2, 2, ["0", "1", "2", "3"]) == ["0,1", "2,3"]


def test_a_fraction_spreads_workers_over_devices_before_sharing_one():
    assert assign_gpus(2, 0.5, ["0", "1"]) == ["0", "1"]
    assert assign_gpus(4, 0.5, ["0", "1"]) == ["0", "1", "0", "1"]
    assert assign_gpus(3, 0.25, ["0"]) == ["0", "0", "0"]


def test_no_gpus_asked_leaves_the_workers_environment_alone():
    assert assign_gpus(4, 0, []) == []


@pytest.mark.parametrize(("workers", "gpus", "devices", "needed"), [
    (3, 1, ["0", "1"], "3 workers x 1 GPU need 3 GPUs, 2 visible"),
    (2, 2, ["0", "1", "2"], "2 workers x 2 GPU need 4 GPUs, 3 visible"),
    (5, 0.5, ["0", "1"], "5 workers x 0.5 GPU need 3 GPUs, 2 visible"),
    (1, 1, [], "1 worker x 1 GPU need 1 GPU, 0 visible"),
])
def test_more_gpu_demand_than_devices_is_refused_in_one_line(workers, gpus, devices, needed):
    with pytest.raises(SweepConfigError) as raised:
        assign_gpus(workers, gpus, devices, "CUDA_VISIBLE_DEVICES=0,1")
    message = str(raised.value)
    assert message.startswith("resources.gpus: ") and needed in message and "lower --jobs" in message
    assert "\n" not in message


def test_visible_gpus_come_from_cuda_visible_devices_else_the_drivers_listing(tmp_path: Path):
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "2, 5"}, tmp_path)[0] == ["2", "5"]
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": ""}, tmp_path)[0] == []
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "1,-1,3"}, tmp_path)[0] == ["1"]  # CUDA stops at an invalid one
    for number in range(2):
        (tmp_path / f"0000:0{number}:00.0").mkdir()
    assert visible_gpus({}, tmp_path)[0] == ["0", "1"]
    assert visible_gpus({}, tmp_path / "missing")[0] == []


def test_local_workers_get_devices_from_the_environment_and_one_worker_runs_in_process():
    workers = local_workers(ExecutorSpec(workers=2), Resources(gpus=1), {"CUDA_VISIBLE_DEVICES": "4,6"})
    assert workers is not None and workers.gpus == ("4", "6")
    assert local_workers(ExecutorSpec(), Resources(gpus=1), {"CUDA_VISIBLE_DEVICES": "4"}) is None
    with pytest.raises(SweepConfigError, match="CUDA_VISIBLE_DEVICES=4"):
        local_workers(ExecutorSpec(workers=2), Resources(gpus=1), {"CUDA_VISIBLE_DEVICES": "4"})
