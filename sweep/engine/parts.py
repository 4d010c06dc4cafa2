"""The engine's collaborators: what run_sweep, run_worker and sync_sweep are built from.

`sweep` runs with the defaults (sweep/engine/composition.py: the tracking process, the trainer the config
names, worker processes or Ray for --jobs / --on ray). Tests and other callers give their own: a thread
serving the tracking requests in-process, a trainer of their own, an executor that runs nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass

from sweep.config import SweepConfig
from sweep.executors import Executor, ExecutorSpec, Resources
from sweep.locations import StorageLocation, TrackingLocation
from sweep.tracking.transport import TrackingTransport
from sweep.trainers.base import Trainer

TransportFactory = Callable[[], TrackingTransport]  # one transport per invocation: its server starts first thing
# a `sweep worker`'s, given its sweep's name and storage and whether it was started by hand (not by `sweep run --jobs`
# or a Ray task): it may share a tracking process with the sweep's other workers
WorkerTransportFactory = Callable[[str, StorageLocation, bool], TrackingTransport]
TrainerFactory = Callable[[SweepConfig, TrackingLocation], Trainer]  # checked and loaded before any store is touched
ExecutorFactory = Callable[[ExecutorSpec, Resources, StorageLocation, TrackingLocation],
                           AbstractContextManager[Executor | None]]  # None: the trials run in this process


@dataclass(frozen=True)
class Parts:
    """What one engine invocation is built from (see the module docstring)."""

    transport: TransportFactory
    trainer: TrainerFactory
    executor: ExecutorFactory
    worker_transport: WorkerTransportFactory | None = None  # None: a worker's is ``transport()`` too
