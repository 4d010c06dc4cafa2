"""One tracking process per machine for the `sweep worker`s of one sweep started there by hand: the first worker
starts it, in a session of its own; the next ones find it; it ends by itself once no worker has used it for
LINGER_SECONDS, after ending the runs of any worker that died. (A `sweep run --jobs` worker uses its sweep's
tracking process; a Ray task's keeps its own, as Ray may end what a task leaves running.)

Where it listens: a socket in a folder only this user can enter (`$XDG_RUNTIME_DIR/sweep-hubs-<uid>`, else the
temporary folder's), named by a digest of what the workers must share for their records to go to one place:
the user, the storage, the sweep, the working folder (a relative MLflow URI is resolved there), the network
namespace (a host, as the MLflow server sees it) and the MLFLOW_* and AWS_* settings (credentials, endpoints).
Its key is in a file beside it (mode 0600). A worker joins under a lock file, so that two workers starting
together start one hub, and a hub ending meanwhile is never joined.

The hub process imports mlflow when its first worker connects, as a worker's own tracking process would.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import secrets
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

from sweep.tracking.hub import HubAddress, HubTransport
from sweep.tracking.retry import RetryPolicy

if TYPE_CHECKING:
    from sweep.records import SweepIdentity
    from sweep.tracking.tracker import SweepTracker

LINGER_SECONDS = 10.0  # an idle hub waits this long for another worker before it ends
START_SECONDS = 60.0  # the hub process listening: an interpreter start and a few imports, on a loaded machine
SOCKET_PATH_BYTES = 108  # Linux's limit for a socket's path (sun_path), its final NUL included
SHARED_PREFIXES = ("MLFLOW_", "AWS_")  # settings of the tracking store a hub's writes use: its workers share them


@dataclass(frozen=True)
class HubPlace:
    """The files of one sweep's hub on this machine."""

    socket: Path
    key: Path
    lock: Path

    @classmethod
    def of(cls, home: Path, digest: str) -> HubPlace:
        return cls(home / f"{digest}.sock", home / f"{digest}.key", home / f"{digest}.lock")


def private_home() -> Path | None:
    """This user's folder of hubs, created 0700; None when it cannot be made private (then each worker tracks on its
    own: a socket others can reach would hand them the sweep's key exchange)."""
    base = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    home = Path(base) / f"sweep-hubs-{os.getuid()}"
    try:
        home.mkdir(mode=0o700, exist_ok=True)
        facts = home.lstat()
    except OSError:
        return None
    if not stat.S_ISDIR(facts.st_mode) or facts.st_uid != os.getuid() or facts.st_mode & 0o077:
        return None
    return home


def hub_place(storage_secret: str, name: str) -> HubPlace | None:
    """Where the hub of this worker's sweep lives on this machine (see the module docstring)."""
    home = private_home()
    if home is None:
        return None
    try:
        namespace = str(os.stat("/proc/self/ns/net").st_ino)
    except OSError:
        namespace = ""
    settings = sorted(f"{key}={value}" for key, value in os.environ.items() if key.startswith(SHARED_PREFIXES))
    facts = [str(os.getuid()), storage_secret, name, os.getcwd(), namespace, *settings]
    place = HubPlace.of(home, hashlib.sha256("\0".join(facts).encode()).hexdigest()[:32])
    return place if len(os.fsencode(place.socket)) < SOCKET_PATH_BYTES else None


def join_hub(place: HubPlace) -> HubTransport | None:
    """A connection to the sweep's hub on this machine, started first when there is none; None when it cannot be
    reached (the worker then tracks through a process of its own)."""
    try:
        with locked(place):
            joined = reach(place)
            if joined is not None:
                return joined
            hub = start_hub(place)
            deadline = time.monotonic() + START_SECONDS
            while time.monotonic() < deadline and hub.poll() is None:
                joined = reach(place)
                if joined is not None:
                    return joined
                time.sleep(0.02)  # polling for the hub's key file: nothing signals it
    except OSError:
        return None
    return None


@contextlib.contextmanager
def locked(place: HubPlace) -> Iterator[IO[str]]:
    """The hub's lock held (yields the open lock file). The hub that ends removes the file while it holds it, so a
    holder that opened that file before holds nothing anyone else sees: it opens the file at the path again."""
    while True:
        with open(place.lock, "a") as lock:  # held open for flock
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not same_file(lock, place.lock):
                continue  # closed, which lets go of the removed file's lock
            try:
                yield lock
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
            return


def same_file(opened: IO[str], path: Path) -> bool:
    """``opened`` is the file at ``path`` now (not one removed, or replaced, since it was opened)."""
    try:
        return os.path.samestat(os.fstat(opened.fileno()), path.stat())
    except FileNotFoundError:
        return False


def reach(place: HubPlace) -> HubTransport | None:
    try:
        key = place.key.read_bytes()
        return HubTransport.connect(HubAddress(str(place.socket), key))
    except Exception:  # no hub, a stale socket, or a key that changed: not this one
        return None


def start_hub(place: HubPlace) -> subprocess.Popen[bytes]:
    """The hub process, in a session of its own: it outlives the worker that starts it, serves the others."""
    with contextlib.suppress(FileNotFoundError):
        place.key.unlink()  # a hub killed with kill -9 left its key: the new one writes its own
    return subprocess.Popen([sys.executable, "-m", "sweep.tracking.host_hub", str(place.socket), str(place.key),
                             str(place.lock)], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)


def open_tracker_later(identity: SweepIdentity) -> SweepTracker:
    """The sessions' tracker factory: mlflow is imported when the first worker connects, not before the hub listens."""
    from sweep.tracking.tracker import open_tracker

    return open_tracker(identity)


def serve_hub(place: HubPlace) -> None:
    """The hub process: listen, write the key, serve workers, and end after LINGER_SECONDS without one."""
    from sweep.tracking.hub import Hub
    from sweep.tracking.server import exit_at_once, prepare_tracking_process

    prepare_tracking_process()  # it ends by itself, once its workers have ended
    with contextlib.suppress(FileNotFoundError):
        place.socket.unlink()  # a stale one of a killed hub: the starter holds the lock
    key = secrets.token_bytes(32)
    hub = Hub(HubAddress(str(place.socket), key), open_tracker_later, RetryPolicy.from_environment())
    draft = place.key.with_name(f".{place.key.name}.{os.getpid()}")
    draft.touch(mode=0o600)
    draft.write_bytes(key)
    draft.replace(place.key)  # whole or absent: a worker reads it only once the hub listens
    while True:
        time.sleep(1.0)
        if hub.idle_seconds() < LINGER_SECONDS:
            continue
        with locked(place):  # no worker is joining: none finds a hub that is ending
            if hub.idle_seconds() < LINGER_SECONDS:
                continue
            with contextlib.suppress(FileNotFoundError):
                place.key.unlink()
            place.socket.unlink(missing_ok=True)
            place.lock.unlink()  # while held: a worker waiting on it opens a new one (locked)
            break
    hub.close(timeout=None)
    exit_at_once()  # every write is committed: the interpreter's teardown of mlflow's modules would only cost CPU


if __name__ == "__main__":
    serve_hub(HubPlace(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])))
