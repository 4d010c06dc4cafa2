"""`--jobs N`: N `sweep worker` processes on this machine, each with its own share of the GPUs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sweep.executors.gpus import assign_gpus, visible_gpus
from sweep.executors.spec import ExecutorSpec, Resources
from sweep.locations import StorageLocation, TrackingLocation
from sweep.tracking.hub import HubAddress
from sweep.workers import WorkerPool, spawn_workers


@dataclass(frozen=True)
class LocalWorkers:
    workers: int
    gpus: tuple[str, ...]  # one CUDA_VISIBLE_DEVICES per worker; empty: each inherits this process's
    on_this_machine: bool = True

    def start(self, name: str, *, storage: StorageLocation, tracking: TrackingLocation, target: int,
              hub: HubAddress | None = None) -> WorkerPool:
        return spawn_workers(name, self.workers, storage=storage, tracking=tracking, target=target, gpus=self.gpus,
                             hub=hub)

    def close(self) -> None:
        return None


def local_workers(spec: ExecutorSpec, resources: Resources, environ: Mapping[str, str] | None = None
                  ) -> LocalWorkers | None:
    """The worker processes for ``spec``; None for one worker (the trials run in the sweep's own process).
    More GPU demand than visible devices is refused here, before anything is written."""
    devices, source = visible_gpus(environ) if resources.gpus else ([], "")
    gpus = assign_gpus(spec.count, resources.gpus, devices, source)
    return LocalWorkers(spec.count, tuple(gpus)) if spec.count > 1 else None
