"""Separate hosts on one machine, for tests: network namespaces on a bridge, one per worker host.

The machine's own (root) namespace is the services host: it holds the bridge address SERVICES, where the
tests' MLflow server listens and where a relay (socat) forwards PostgreSQL, which listens on loopback only.
A worker host is a namespace with a veth pair to the bridge and an address of its own; its processes
see only their own working folder (the other hosts' folders are covered by an empty tmpfs in their
mount namespace). Cutting a host's link is `ip link set <its bridge-side veth> down`.
Needs root, `ip` and `socat`; Host.skip_reason() says what is missing.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

SUBNET = "10.213.{}.{}"
SERVICES_SUFFIX = 1


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=30)


def skip_reason() -> str | None:
    """Why namespaces cannot be made here, or None."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    for tool in ("ip", "socat", "unshare", "mount"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    probe = f"swprobe{os.getpid() % 100000}"
    try:
        ip("netns", "add", probe)
    except (subprocess.CalledProcessError, OSError) as error:
        return f"`ip netns add` fails here: {getattr(error, 'stderr', error)}".strip()
    ip("netns", "del", probe)
    return None


@dataclass(frozen=True)
class Host:
    name: str  # the namespace
    address: str
    link: str  # the bridge-side end of its veth pair: down = the host is cut off
    folder: Path

    def command(self, args: list[str], hidden: list[Path]) -> list[str]:
        """``args`` run on this host, with the other hosts' folders hidden."""
        mounts = " && ".join(f"mount -t tmpfs tmpfs {folder}" for folder in hidden) or "true"
        return ["ip", "netns", "exec", self.name, "unshare", "--mount", "--propagation", "private",
                "sh", "-c", f'{mounts} && cd {self.folder} && exec "$@"', "sh", *args]

    def cut(self) -> None:
        ip("link", "set", self.link, "down")


@dataclass(frozen=True)
class Network:
    services: str  # the services host's address, as the worker hosts reach it
    hosts: list[Host]

    def hidden_from(self, host: Host) -> list[Path]:
        return [other.folder for other in self.hosts if other is not host]


@contextmanager
def network(root: Path, names: list[str]) -> Iterator[Network]:
    """A bridge with the services address and one namespace per name; all removed on exit."""
    tag = f"{os.getpid() % 10000}"
    bridge = f"swbr{tag}"
    octet = 100 + os.getpid() % 100  # a subnet per test process: two test runs must not share one
    services = SUBNET.format(octet, SERVICES_SUFFIX)
    made: list[str] = []
    try:
        ip("link", "add", bridge, "type", "bridge")
        made.append(f"link:{bridge}")
        ip("addr", "add", f"{services}/24", "dev", bridge)
        ip("link", "set", bridge, "up")
        hosts = []
        for index, name in enumerate(names):
            namespace, outside, inside = f"sw{name}{tag}", f"sw{name}{tag}o", f"sw{name}{tag}i"
            ip("netns", "add", namespace)
            made.append(f"netns:{namespace}")
            ip("link", "add", outside, "type", "veth", "peer", "name", inside)
            made.append(f"link:{outside}")
            ip("link", "set", outside, "master", bridge, "up")
            ip("link", "set", inside, "netns", namespace)
            address = SUBNET.format(octet, 10 + index)
            ip("-n", namespace, "addr", "add", f"{address}/24", "dev", inside)
            ip("-n", namespace, "link", "set", inside, "up")
            ip("-n", namespace, "link", "set", "lo", "up")
            folder = root / f"host-{name}"
            folder.mkdir()
            hosts.append(Host(namespace, address, outside, folder))
        yield Network(services, hosts)
    finally:
        for item in reversed(made):
            kind, name = item.split(":", 1)
            subprocess.run(["ip", *(["netns", "del"] if kind == "netns" else ["link", "del"]), name],
                           capture_output=True, timeout=30)


@contextmanager
def relay(listen: str, port: int, target: str) -> Iterator[subprocess.Popen[bytes]]:
    """socat forwarding ``listen:port`` to ``target`` (host:port) until the block ends (or it is stopped)."""
    process = subprocess.Popen(["socat", f"TCP-LISTEN:{port},bind={listen},fork,reuseaddr", f"TCP:{target}"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        yield process
    finally:
        stop_relay(process)


def stop_relay(process: subprocess.Popen[bytes]) -> None:
    """The relay and the children it forked per connection (one to a cut host would linger)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=10)
