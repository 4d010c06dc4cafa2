"""What `sweep run` asks of an executor: start the workers on a sweep, then watch them as a pool."""

from __future__ import annotations

from typing import Protocol

from sweep.locations import StorageLocation, TrackingLocation
from sweep.tracking.hub import HubAddress


class Pool(Protocol):
    """The running workers of one sweep (worker processes, or Ray tasks running them)."""

    def release(self) -> None:
        """Let the workers, started held, onto the study (a no-op once released)."""
        ...

    def alive(self) -> int:
        """How many have not ended yet."""
        ...

    def settle(self, timeout: float) -> None:
        """Block until one of them ends, or ``timeout`` seconds have passed."""
        ...

    def stop(self) -> None:
        """Ask each to stop as on Ctrl-C: its trial ends at the next epoch, the sweep stays resumable."""
        ...

    def wait(self) -> list[int]:
        """Their exit codes, once they have ended (a stuck one is killed after a bound)."""
        ...

    def failures(self) -> list[str]:
        """One line per distinct error a worker ended on (read after wait())."""
        ...

    def close(self) -> None:
        """Release what the pool holds (files); the workers have ended."""
        ...


class Executor(Protocol):
    """Where a sweep's workers run: each runs `sweep worker`'s pull-based loop on the sweep's study."""

    workers: int
    on_this_machine: bool  # its workers can reach this machine's tracking hub (worker processes; not Ray tasks)

    def start(self, name: str, *, storage: StorageLocation, tracking: TrackingLocation, target: int,
              hub: HubAddress | None = None) -> Pool:
        """Start the workers, held: they touch no store until the pool's release() (started while the study is being
        created, the worker processes here import what they need meanwhile); with ``hub``, they send their records
        to the sweep's tracking process there."""
        ...

    def close(self) -> None:
        """Let go of what the executor holds (a Ray connection); the pool has ended."""
        ...
