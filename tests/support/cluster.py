"""A Ray cluster on this machine for tests: a head and a second node, each a `ray start --block` process.

Every process of the cluster is a descendant of those two, so it is stopped by process id (never by
name: other Ray instances on the machine are not ours). The second node has its own loopback address,
so the sweep's driver always attaches to the head, and killing the node is a node lost mid-sweep.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.support import e2e

RAY = [sys.executable, "-m", "ray.scripts.scripts"]
STARTED = "Ray runtime started"  # what `ray start` prints once its node is up
ENVIRONMENT = {
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_AUTH_MODE": "disabled",  # a token per machine is for clusters people share, not a test's
    "RAY_health_check_period_ms": "1000",  # a lost node is noticed in seconds, not tens of them
    "RAY_health_check_failure_threshold": "3",
    "MLFLOW_DISABLE_TELEMETRY": "true",
}


def cluster_env() -> dict[str, str]:
    values = {**os.environ, **ENVIRONMENT}
    for name in ("MLFLOW_TRACKING_URI", "RAY_ADDRESS", "SWEEP_STORAGE"):
        values.pop(name, None)
    return values


def descendants(root: int) -> list[int]:
    """``root`` and every process below it, read from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    found, queue = [], [root]
    while queue:
        pid = queue.pop()
        found.append(pid)
        queue.extend(children.get(pid, []))
    return found


def kill_tree(process: subprocess.Popen[bytes]) -> None:
    for pid in descendants(process.pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    process.wait(timeout=30)


@dataclass
class RayCluster:
    folder: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="ray-", dir="/tmp")))
    port: int = field(default_factory=e2e.free_port)
    head: subprocess.Popen[bytes] | None = None
    node: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = self.folder / f"{name}.log"
        with log.open("wb") as output:
            process = subprocess.Popen([*RAY, "start", "--block", "--disable-usage-stats", *args], env=cluster_env(),
                                       stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                       start_new_session=True)
        deadline = time.monotonic() + 120  # a loaded machine starts a node in tens of seconds
        while STARTED not in log.read_text(errors="replace"):
            if process.poll() is not None or time.monotonic() > deadline:
                kill_tree(process)
                raise RuntimeError(f"ray start ({name}) failed: {log.read_text(errors='replace')[-2000:]}")
            time.sleep(0.2)
        return process

    def start(self) -> None:
        # two fake GPUs on the head: Ray hands them out and sets CUDA_VISIBLE_DEVICES without any GPU present
        self.head = self._start("head", "--head", f"--port={self.port}", "--num-cpus=2", "--num-gpus=2",
                                "--include-dashboard=false", f"--temp-dir={self.folder}")
        self.add_node()

    def add_node(self) -> None:
        if self.node is None or self.node.poll() is not None:
            self.node = self._start("node", f"--address={self.address}", "--node-ip-address=127.0.0.2",
                                    "--num-cpus=1")

    def node_pids(self) -> set[int]:
        assert self.node is not None
        return set(descendants(self.node.pid))

    def kill_node(self) -> None:
        """The second node lost as a machine is: every one of its processes SIGKILLed at once."""
        assert self.node is not None
        kill_tree(self.node)

    def stop(self) -> None:
        for process in (self.node, self.head):
            if process is not None:
                kill_tree(process)
        shutil.rmtree(self.folder, ignore_errors=True)
