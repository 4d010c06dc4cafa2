"""`sweep run --on ray`: the workers as Ray tasks, each running `sweep worker` on its node (see task.py).

The only module that imports Ray, and only when a sweep runs on it. Each task asks Ray for one
trial's resources (resources: in the config), so Ray places and packs the workers, and sets the
CUDA_VISIBLE_DEVICES of the GPUs it gave the task. A task whose node or process Ray loses starts again
elsewhere (MAX_RETRIES); the trial it was running is failed and retried by the study's heartbeat.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from sweep.errors import ClusterError, SweepConfigError, first_line
from sweep.executors.reachable import (
    LOOPBACK,
    address_host,
    check_reachable,
    cluster_address,
    on_this_machine,
    this_machine,
)
from sweep.executors.spec import RAY_INSTALL, ExecutorSpec, Resources
from sweep.executors.task import run_worker_process
from sweep.locations import TRACKING_ENV, StorageLocation, TrackingLocation
from sweep.tracking.hub import HubAddress
from sweep.workers import INTERRUPTED_CODE, STOP_SECONDS, STORAGE_ENV, ended_how

MAX_RETRIES = 3  # a task whose node or worker process is lost starts again elsewhere, this many times at most
PROBE_SECONDS = 5.0  # a cluster's GCS answers a TCP connect at once; Ray itself would retry for minutes
FORWARDED_PREFIXES = ("MLFLOW_",)  # the tracking server's URI and credentials reach the workers; nothing else
TASK_NAME = "sweep-worker"  # how the tasks show in `ray list tasks` and the dashboard

log = logging.getLogger(__name__)  # warnings for the user: the CLI shows the "sweep" loggers on stderr


class RayPool:
    """The Ray tasks of one sweep, each running a `sweep worker` process, submitted on release()."""

    def __init__(self, ray: ModuleType, submit: Callable[[], list[Any]]) -> None:
        self._ray, self._submit = ray, submit
        self._refs: list[Any] = []
        self._outcomes: list[tuple[int, str | None]] = []

    def release(self) -> None:
        if not self._refs:
            self._refs = self._submit()

    def _pending(self, timeout: float) -> list[Any]:
        if not self._refs:  # never released: no task was submitted
            return []
        _, pending = self._ray.wait(self._refs, num_returns=len(self._refs), timeout=timeout, fetch_local=False)
        return list(pending)

    def alive(self) -> int:
        return len(self._pending(0))

    def settle(self, timeout: float) -> None:
        pending = self._pending(0)
        if pending:
            self._ray.wait(pending, num_returns=1, timeout=timeout, fetch_local=False)
        else:
            time.sleep(timeout)

    def stop(self) -> None:
        """Ray's cancel raises KeyboardInterrupt in each task, which stops its worker as Ctrl-C would."""
        for ref in self._pending(0):
            self._ray.cancel(ref)

    def wait(self) -> list[int]:
        for ref in self._pending(STOP_SECONDS):
            self._ray.cancel(ref, force=True)  # stuck: its worker process dies with it (task.py)
        self._outcomes = [self._outcome(ref) for ref in self._refs]
        return [code for code, _ in self._outcomes]

    def _outcome(self, ref: Any) -> tuple[int, str | None]:
        from ray.exceptions import GetTimeoutError, RayError, TaskCancelledError

        try:
            code, line = self._ray.get(ref, timeout=STOP_SECONDS)
        except TaskCancelledError:
            return INTERRUPTED_CODE, None
        except GetTimeoutError:
            return 1, "a Ray task did not end after it was cancelled; see `ray list tasks`"
        except RayError as error:  # its node or process lost more than MAX_RETRIES times, say
            return 1, f"a Ray task running a worker was lost: {first_line(error)}"
        return int(code), line

    def failures(self) -> list[str]:
        found: list[str] = []
        for code, line in self._outcomes:
            if code in (0, INTERRUPTED_CODE):
                continue
            shown = line or ended_how(code)
            if shown not in found:
                found.append(shown)
        return found

    def close(self) -> None:
        return None


class RayWorkers:
    """Workers as Ray tasks on a connected cluster; close() disconnects (and stops a local instance Ray
    started for this sweep)."""

    on_this_machine = False  # its tasks run on any node: each worker tracks through a process of its own

    def __init__(self, ray: ModuleType, workers: int, resources: Resources) -> None:
        self._ray, self.workers, self._resources = ray, workers, resources

    def start(self, name: str, *, storage: StorageLocation, tracking: TrackingLocation, target: int,
              hub: HubAddress | None = None) -> RayPool:
        environment = {key: value for key, value in os.environ.items() if key.startswith(FORWARDED_PREFIXES)}
        environment[STORAGE_ENV] = storage.secret_url  # secrets in the task's arguments, never in a command line
        if tracking.explicit is not None:
            environment[TRACKING_ENV] = tracking.explicit
        arguments = [name, "--trials", str(target), "--quiet", "--no-finalize"]
        # SPREAD: the workers land on different nodes where they fit, so a lost node costs fewer of them
        task = self._ray.remote(run_worker_process).options(
            name=TASK_NAME, max_retries=MAX_RETRIES, retry_exceptions=False, scheduling_strategy="SPREAD",
            **self._resources.ray_options())
        folder = str(Path.cwd())
        return RayPool(self._ray, lambda: [task.remote(arguments, environment, folder) for _ in range(self.workers)])

    def close(self) -> None:
        self._ray.shutdown()


def connect(spec: ExecutorSpec, resources: Resources, storage: StorageLocation,
            tracking: TrackingLocation) -> RayWorkers:
    """Connect to the Ray cluster (``spec.address``, else Ray's own resolution) once the stores are known
    to be reachable from its nodes; SweepConfigError (nothing written) when they are not."""
    address = cluster_address(spec.address)
    where = f"the Ray cluster at {address}" if address else "the Ray cluster"
    if not on_this_machine(address):
        check_reachable(where, storage, tracking)
    ray = import_ray()
    _probe(address)
    previous = signal.getsignal(signal.SIGTERM)
    try:
        client = address is not None and "://" in address
        ray.init(address=spec.address, logging_level=logging.ERROR, log_to_driver=False,
                 **({} if client else {"include_dashboard": False}))
    except Exception as error:  # unreachable, refused (Ray's token auth), a version Ray will not mix with
        raise ClusterError(f"cannot connect to {where}: {first_line(error)}; check the address, that the cluster "
                           f"is up (ray status) and runs this Ray version") from None
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)  # ray.init sets its own: a stop must stay the sweep's
    try:
        nodes = [node for node in ray.nodes() if node.get("Alive")]
        here = _this_machine_for_ray()
        elsewhere = sorted({ip for ip in (str(node.get("NodeManagerAddress")) for node in nodes)
                            if not on_this_machine(ip, here)})
        if elsewhere:
            check_reachable(f"{where} (nodes on {', '.join(elsewhere[:3])})", storage, tracking)
        _warn_unless_fits(nodes, resources)
    except BaseException:
        ray.shutdown()
        raise
    return RayWorkers(ray, spec.count, resources)


def import_ray() -> ModuleType:
    try:
        import ray
    except ImportError:
        raise SweepConfigError(f"--on ray needs Ray, which is not installed: {RAY_INSTALL}") from None
    return ray


def _probe(address: str | None) -> None:
    """Refuse at once a cluster address nothing answers at (a typo, a cluster that was stopped), instead of
    Ray's minutes of retries: the one given, or the one Ray would read for a cluster started on this machine."""
    source = "--address or RAY_ADDRESS"
    if address is None or address.strip().lower() == "auto":
        try:
            from ray._private.utils import get_ray_address_file, read_ray_address  # how ray.init finds it
        except ImportError:  # moved in another Ray version: Ray's own retries then
            return
        address, source = read_ray_address(), f"{get_ray_address_file(None)}, the cluster last started here"
    if address is None or address.strip().lower() == "local" or "://" in address:
        return  # a new local instance, or Ray Client (its server answers for itself)
    port = address.strip().rpartition(":")[2]
    if not port.isdigit():
        return  # Ray reports a malformed address itself
    try:
        socket.create_connection((address_host(address), int(port)), timeout=PROBE_SECONDS).close()
    except OSError as error:
        raise ClusterError(f"no Ray cluster answers at {address} (from {source}): {error.strerror or error}; start "
                           f"it (ray start --head), fix the address, or `ray stop` to forget a stopped one") from None


def _this_machine_for_ray() -> set[str]:
    """This machine's addresses, with the one Ray gives its nodes here (the address its outgoing route uses)."""
    here = this_machine() | set(LOOPBACK) | {"127.0.0.1"}
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("10.255.255.255", 1))  # a UDP connect sends nothing: it only picks the route
            here.add(probe.getsockname()[0])
    except OSError:
        pass
    return here


def _warn_unless_fits(nodes: list[Mapping[str, Any]], resources: Resources) -> None:
    """A worker no node can hold waits until one joins (an autoscaler may add it): say so, once."""
    wanted = resources.ray_options()
    needs = {"CPU": wanted["num_cpus"], "GPU": wanted.get("num_gpus", 0), "memory": wanted.get("memory", 0),
             **wanted.get("resources", {})}
    needs = {name: amount for name, amount in needs.items() if amount}
    if any(all(node.get("Resources", {}).get(name, 0) >= amount for name, amount in needs.items()) for node in nodes):
        return
    shown = ", ".join(f"{name} {amount:g}" for name, amount in needs.items())
    log.warning(f"no node of the Ray cluster has what one trial asks for ({shown}): the workers wait until "
                f"such a node joins; lower resources: or add nodes")
