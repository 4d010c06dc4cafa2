"""The `executor:` and `resources:` sections of a sweep config: where the trial loops run, and what one needs.

Parsed and checked here without importing Ray (a config is valid or not whether Ray is installed);
config.py calls these, as it does for `trainer:`.
"""

from __future__ import annotations

import importlib.util
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sweep.errors import SweepConfigError

EXECUTORS = ("local", "ray")  # local: this process, or --jobs worker processes; ray: tasks on a Ray cluster
EXECUTOR_KEYS = {"on", "address", "workers"}
RESOURCE_KEYS = {"cpus", "gpus", "memory", "custom"}
MAX_WORKERS = 10_000  # far beyond any cluster a sweep shares one study with; a typo fails here
# Ray's own names for what cpus/gpus/memory ask for: a custom resource by that name would shadow them
RAY_BUILTIN_RESOURCES = {"CPU", "GPU", "memory", "object_store_memory"}
# SI units are powers of 1000, IEC units powers of 1024, as Kubernetes and Ray's docs read them
MEMORY_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "m": 1000**2, "mb": 1000**2, "g": 1000**3, "gb": 1000**3,
                "t": 1000**4, "tb": 1000**4, "ki": 1024, "kib": 1024, "mi": 1024**2, "mib": 1024**2,
                "gi": 1024**3, "gib": 1024**3, "ti": 1024**4, "tib": 1024**4}
MEMORY_PATTERN = re.compile(r"^\s*(?P<number>\d+(\.\d+)?)\s*(?P<unit>[A-Za-z]*)\s*\Z")
RAY_INSTALL = "pip install 'sweep[ray]'"


@dataclass(frozen=True)
class Resources:
    """What one trial (one worker, running one trial at a time) needs: Ray reserves it per worker, and
    --jobs gives each worker process its share of this machine's GPUs."""

    cpus: float | None = None  # None: Ray's default for a task (one CPU)
    gpus: float = 0  # a fraction below 1 shares a device; above 1, whole devices
    memory: int | None = None  # bytes; None: Ray reserves none
    custom: Mapping[str, float] = field(default_factory=dict)  # the cluster's own resources, e.g. {TPU: 1}

    def __post_init__(self) -> None:
        if self.cpus is not None:
            _positive_number("resources.cpus", self.cpus)
        _positive_number("resources.gpus", self.gpus, allow_zero=True)
        if self.gpus > 1 and self.gpus != int(self.gpus):
            raise SweepConfigError(f"resources.gpus: above 1 it must be a whole number of devices, got {self.gpus!r}; "
                                   f"use a fraction below 1 to share a device")
        if self.memory is not None and (isinstance(self.memory, bool) or not isinstance(self.memory, int)
                                        or self.memory < 1):
            raise SweepConfigError(f"resources.memory: must be a positive number of bytes, got {self.memory!r}")
        if not isinstance(self.custom, Mapping):
            raise SweepConfigError(f"resources.custom: expected a mapping like {{TPU: 1}}, got {self.custom!r}")
        for name, amount in self.custom.items():
            if not isinstance(name, str) or not name.strip():
                raise SweepConfigError(f"resources.custom: {name!r} is not a resource name; use the name the "
                                       f"cluster's nodes were started with (ray start --resources)")
            if name in RAY_BUILTIN_RESOURCES:
                raise SweepConfigError(f"resources.custom.{name}: Ray's own resource; use resources.cpus, "
                                       f"resources.gpus or resources.memory")
            _positive_number(f"resources.custom.{name}", amount)

    def ray_options(self) -> dict[str, Any]:
        """Ray's resource requests for one worker task."""
        options: dict[str, Any] = {"num_cpus": 1 if self.cpus is None else self.cpus}
        if self.gpus:
            options["num_gpus"] = self.gpus
        if self.memory is not None:
            options["memory"] = self.memory
        if self.custom:
            options["resources"] = dict(self.custom)
        return options

    def to_yaml(self) -> dict[str, Any] | None:
        """As a config file writes it; None when nothing is asked for (the section is left out)."""
        out: dict[str, Any] = {}
        if self.cpus is not None:
            out["cpus"] = self.cpus
        if self.gpus:
            out["gpus"] = self.gpus
        if self.memory is not None:
            out["memory"] = self.memory
        if self.custom:
            out["custom"] = dict(self.custom)
        return out or None


@dataclass(frozen=True)
class ExecutorSpec:
    """Where the trial loops run: here (``local``: this process, or ``workers`` processes as --jobs), or
    ``workers`` tasks on a Ray cluster (``ray``) at ``address`` (None: Ray's own resolution, RAY_ADDRESS
    else a cluster started on this machine else a new local instance)."""

    on: str = "local"
    address: str | None = None
    workers: int | None = None  # None: one (with --jobs 1 the trials run in the sweep's own process)

    def __post_init__(self) -> None:
        if self.on not in EXECUTORS:
            raise SweepConfigError(f"executor.on: {self.on!r} is unknown; use local (this machine) or ray")
        if self.address is not None:
            if not isinstance(self.address, str) or not self.address.strip():
                raise SweepConfigError(f"executor.address: must be a Ray address like 10.0.0.5:6379 or auto, got "
                                       f"{self.address!r}")
            if self.on != "ray":
                raise SweepConfigError("executor.address: only for on: ray (a Ray cluster's address); add on: ray "
                                       "or --on ray, or drop the address")
        if self.workers is not None and (isinstance(self.workers, bool) or not isinstance(self.workers, int)
                                         or not 1 <= self.workers <= MAX_WORKERS):
            raise SweepConfigError(f"executor.workers: must be an integer from 1 to {MAX_WORKERS:,}, got "
                                   f"{self.workers!r}")

    @property
    def count(self) -> int:
        return self.workers or 1

    def with_flags(self, *, on: str | None, address: str | None, workers: int | None,
                   jobs: int | None) -> ExecutorSpec:
        """This spec with the command line's flags over it: --on, --address, --workers (Ray tasks) and
        --jobs (worker processes on this machine)."""
        where = on or self.on
        if jobs is not None and where == "ray":
            raise SweepConfigError("--jobs: runs worker processes on this machine; with --on ray give --workers N "
                                   "(Ray tasks)")
        if workers is not None and where != "ray":
            raise SweepConfigError("--workers: counts Ray tasks, for --on ray; on this machine give --jobs N")
        if address is not None and where != "ray":
            raise SweepConfigError("--address: a Ray cluster's address, for --on ray; add --on ray")
        kept_address = self.address if where == self.on else None
        return ExecutorSpec(where, address or kept_address, workers or jobs or self.workers)

    def to_yaml(self) -> dict[str, Any] | None:
        out: dict[str, Any] = {}
        if self.on != "local":
            out["on"] = self.on
        if self.address is not None:
            out["address"] = self.address
        if self.workers is not None:
            out["workers"] = self.workers
        return out or None


def parse_executor(value: Any) -> ExecutorSpec:
    """`executor:` as written (absent, or a mapping of on/address/workers)."""
    if value is None:
        return ExecutorSpec()
    if isinstance(value, Mapping) and True in value and "on" not in value:
        value = {("on" if key is True else key): item for key, item in value.items()}  # YAML 1.1 reads `on` as true
    section = _section("executor", value, EXECUTOR_KEYS)
    return ExecutorSpec(**section)


def parse_resources(value: Any) -> Resources:
    """`resources:` as written (absent, or a mapping of cpus/gpus/memory/custom); memory may carry a unit."""
    if value is None:
        return Resources()
    section = _section("resources", value, RESOURCE_KEYS)
    if "memory" in section:
        section["memory"] = parse_memory(section["memory"])
    if section.get("custom") is None:
        section.pop("custom", None)
    elif isinstance(section["custom"], Mapping):
        section["custom"] = dict(section["custom"])
    return Resources(**section)


def parse_memory(value: Any) -> int:
    """Bytes from 4GB, 512MiB, 1.5G or a plain number of bytes (SI units are powers of 1000, IEC 1024)."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 1:
            raise SweepConfigError(f"resources.memory: must be a positive number of bytes, got {value!r}")
        return value
    match = MEMORY_PATTERN.match(value) if isinstance(value, str) else None
    unit = match["unit"].lower() if match else ""
    if match is None or unit not in MEMORY_UNITS:
        raise SweepConfigError(f"resources.memory: {value!r} is not an amount of memory; write it like 4GB, 512MiB "
                               f"or a number of bytes")
    amount = math.ceil(float(match["number"]) * MEMORY_UNITS[unit])
    if amount < 1:
        raise SweepConfigError(f"resources.memory: must be positive, got {value!r}")
    return amount


def check_executor_packages(spec: ExecutorSpec) -> None:
    """--on ray without Ray installed is refused before anything is written (exit 2)."""
    if spec.on != "ray":
        return
    try:
        found = importlib.util.find_spec("ray") is not None
    except ValueError:  # a module set to None in sys.modules: as good as missing
        found = False
    if not found:
        raise SweepConfigError(f"--on ray needs Ray, which is not installed: {RAY_INSTALL}")


def _section(name: str, value: Any, allowed: set[str]) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise SweepConfigError(f"{name}: expected a mapping, got {value!r}")
    unknown = sorted(str(key) for key in value if key not in allowed)
    if unknown:
        raise SweepConfigError(f"{name}: unknown key {unknown[0]!r}; allowed: {', '.join(sorted(allowed))}")
    return {str(key): item for key, item in value.items()}


def _positive_number(key: str, value: Any, *, allow_zero: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or value < 0 or (value == 0 and not allow_zero):
        raise SweepConfigError(f"{key}: must be a {'non-negative' if allow_zero else 'positive'} number, "
                               f"got {value!r}")
