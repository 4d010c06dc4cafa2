"""This machine's GPUs for `--jobs N` without Ray: each worker process gets its own CUDA_VISIBLE_DEVICES.

The devices are the sweep process's CUDA_VISIBLE_DEVICES when it is set (so `CUDA_VISIBLE_DEVICES=2,3
sweep run --jobs 2` uses those two), else every NVIDIA GPU the driver lists under /proc. Workers take
them round-robin: with a fraction of a GPU per trial, two workers share a device only once every
device has one.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from sweep.errors import SweepConfigError

GPU_ENV = "CUDA_VISIBLE_DEVICES"
NVIDIA_GPUS = Path("/proc/driver/nvidia/gpus")  # one folder per GPU the NVIDIA driver sees


def visible_gpus(environ: Mapping[str, str] | None = None, listing: Path = NVIDIA_GPUS) -> tuple[list[str], str]:
    """The devices workers may use, and where they were read from (for an error message)."""
    environment = os.environ if environ is None else environ
    value = environment.get(GPU_ENV)
    if value is not None:
        devices: list[str] = []
        for device in (part.strip() for part in value.split(",")):
            if not device or device.startswith("-"):
                break  # CUDA ignores the devices after an invalid one ("-1" hides them all)
            devices.append(device)
        return devices, f"{GPU_ENV}={value}"
    try:
        count = sum(1 for _ in listing.iterdir())
    except OSError:
        count = 0
    return [str(number) for number in range(count)], f"{count} in {listing}"


def assign_gpus(workers: int, gpus: float, devices: Sequence[str], source: str = "") -> list[str]:
    """One CUDA_VISIBLE_DEVICES value per worker asking ``gpus`` each ([] when it asks for none).

    Whole GPUs: each worker its own block of devices. A fraction: worker k gets device k mod n, and
    a device takes at most 1/gpus workers. More demand than devices is refused (SweepConfigError).
    """
    if gpus <= 0:
        return []
    if gpus >= 1:
        per_worker = int(gpus)
        needed = workers * per_worker
        if needed > len(devices):
            raise over_demand(workers, gpus, needed, devices, source)
        return [",".join(devices[k * per_worker:(k + 1) * per_worker]) for k in range(workers)]
    sharing = math.floor(1 / gpus + 1e-9)  # workers one device holds
    needed = math.ceil(workers / sharing)
    if needed > len(devices):
        raise over_demand(workers, gpus, needed, devices, source)
    return [devices[k % len(devices)] for k in range(workers)]


def over_demand(workers: int, gpus: float, needed: int, devices: Sequence[str], source: str) -> SweepConfigError:
    seen = f"{len(devices)} visible" + (f" ({source})" if source else "")
    return SweepConfigError(f"resources.gpus: {workers} worker{'s' if workers != 1 else ''} x {gpus:g} GPU need "
                            f"{needed} GPU{'s' if needed != 1 else ''}, {seen}; lower --jobs or resources.gpus, "
                            f"or set {GPU_ENV} to the devices to use")
