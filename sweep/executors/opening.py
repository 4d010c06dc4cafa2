"""Choosing and opening a sweep's executor: this process, `--jobs` worker processes, or a Ray cluster."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sweep.executors.base import Executor
from sweep.executors.local import local_workers
from sweep.executors.reachable import check_reachable, cluster_address, on_this_machine
from sweep.executors.spec import ExecutorSpec, Resources, check_executor_packages
from sweep.locations import StorageLocation, TrackingLocation


def check_executor(spec: ExecutorSpec, resources: Resources, storage: StorageLocation,
                   tracking: TrackingLocation) -> None:
    """What can be refused without connecting anywhere: Ray missing, stores in files of this machine for a
    cluster elsewhere, more GPUs asked of --jobs than this machine shows (SweepConfigError)."""
    check_executor_packages(spec)
    if spec.on == "ray":
        address = cluster_address(spec.address)
        if not on_this_machine(address):
            check_reachable(f"the Ray cluster at {address}", storage, tracking)
    else:
        local_workers(spec, resources)


@contextmanager
def open_executor(spec: ExecutorSpec, resources: Resources, storage: StorageLocation,
                  tracking: TrackingLocation) -> Iterator[Executor | None]:
    """The executor for ``spec`` while inside; None when the trials run in this process (one local worker).
    What cannot work (Ray missing, stores the nodes cannot reach, more GPUs asked for than there are) is
    refused here, before any store is written."""
    if spec.on == "ray":
        from sweep.executors.ray_cluster import connect

        executor: Executor | None = connect(spec, resources, storage, tracking)
    else:
        executor = local_workers(spec, resources)
    try:
        yield executor
    finally:
        if executor is not None:
            executor.close()

