"""Worker processes for `sweep run --jobs N`: N `sweep worker` processes on this machine.

Processes, not threads: the trainer holds the GIL and MLflow keeps its active run per thread. Each
worker is the same `sweep worker` a teammate starts on another machine, so one machine and many
machines share one code path. Secrets travel in the environment, never in argv (visible in `ps`).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass

STORAGE_ENV = "SWEEP_STORAGE"  # read by `sweep worker --storage`
STOP_SECONDS = 60.0  # a worker stops at its next epoch; this is only a bound for a stuck one


@dataclass
class WorkerPool:
    processes: list[subprocess.Popen[bytes]]

    def alive(self) -> int:
        return sum(process.poll() is None for process in self.processes)

    def stop(self) -> None:
        """Ask every worker to stop as on Ctrl-C (the terminal may have sent it already: harmless)."""
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)

    def wait(self) -> list[int]:
        codes = []
        for process in self.processes:
            try:
                codes.append(process.wait(timeout=STOP_SECONDS))
            except subprocess.TimeoutExpired:
                process.kill()
                codes.append(process.wait())
        return codes


def spawn_workers(name: str, jobs: int, *, storage: str, tracking_uri: str | None, target: int) -> WorkerPool:
    environment = {**os.environ, STORAGE_ENV: storage}
    if tracking_uri is not None:
        environment["MLFLOW_TRACKING_URI"] = tracking_uri
    command = [sys.executable, "-m", "sweep.cli", "worker", name, "--trials", str(target), "--quiet",
               "--no-finalize"]
    processes = [subprocess.Popen(command, env=environment, stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
                 for _ in range(jobs)]
    return WorkerPool(processes)
