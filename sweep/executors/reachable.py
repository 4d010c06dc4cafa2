"""Whether a Ray cluster's nodes can reach the sweep's stores: files on this machine only serve nodes on it."""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Collection, Mapping

from sweep.errors import SweepConfigError
from sweep.locations import StorageLocation, TrackingLocation

RAY_ADDRESS_ENV = "RAY_ADDRESS"  # Ray's own: where ray.init() connects when no address is given
THIS_MACHINE = ("auto", "local")  # Ray's words for a cluster started on this machine
LOOPBACK = ("localhost", "::1", "0.0.0.0")
LOCAL_TRACKING_SCHEMES = ("sqlite", "file")


def cluster_address(address: str | None, environ: Mapping[str, str] | None = None) -> str | None:
    """The address Ray will connect to: the one given, else RAY_ADDRESS (None: a cluster on this machine)."""
    environment = os.environ if environ is None else environ
    return address or environment.get(RAY_ADDRESS_ENV) or None


def this_machine() -> set[str]:
    """This machine's names and addresses, as a Ray address may name it."""
    names = {socket.gethostname()}
    with contextlib.suppress(OSError):
        names.update(socket.gethostbyname_ex(socket.gethostname())[2])
    return {name.lower() for name in names if name}


def address_host(address: str) -> str:
    """The host of a Ray address: ``ray://10.0.0.5:10001`` -> ``10.0.0.5``; ``[::1]:6379`` -> ``::1``."""
    rest = address.strip().split("://", 1)[-1].split("/", 1)[0]
    if rest.startswith("["):
        return rest[1:].split("]", 1)[0].lower()
    return (rest.rsplit(":", 1)[0] if rest.count(":") == 1 else rest).lower()


def on_this_machine(address: str | None, here: Collection[str] | None = None) -> bool:
    """Whether a Ray address names this machine (absent, auto, loopback, or its own name or address)."""
    if address is None or address.strip().lower() in THIS_MACHINE:
        return True
    host = address_host(address)
    if host in LOOPBACK or host.startswith("127."):
        return True
    return host in (this_machine() if here is None else here)


def local_tracking(tracking: TrackingLocation) -> bool:
    """An MLflow store in a file or folder of this machine (not a tracking server, not Databricks)."""
    scheme = tracking.scheme
    return scheme in LOCAL_TRACKING_SCHEMES or (not scheme and not tracking.url.path.startswith("databricks"))


def check_reachable(where: str, storage: StorageLocation, tracking: TrackingLocation) -> None:
    """Refuse stores in files of this machine for a cluster whose nodes run elsewhere (``where`` names it)."""
    if storage.local_file is not None:
        raise SweepConfigError(f"storage: {storage} is a file on this machine, which the nodes of {where} cannot "
                               f"reach; give --storage postgresql://USER@HOST/DB (a database every node reaches)")
    if local_tracking(tracking):
        raise SweepConfigError(f"tracking: {tracking} is a store on this machine, which the nodes of {where} cannot "
                               f"reach; give --tracking-uri http://HOST:5000 (an MLflow server every node reaches)")
