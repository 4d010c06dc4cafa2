"""The lock a sweep's background publisher holds while it writes the sweep's end to MLflow.

`sweep run` returns once its study is final; a copy of its tracking process then writes the plots, the best
model and the parent run's end (sweep/tracking/operations.py PublishAndClose). That copy holds this lock from
before `sweep run` returns until it exits, however it exits (the kernel lets go of a dead process's lock). What
would write the same parent run meanwhile waits for it: `sweep sync`, `sweep run --resume`. The lock is a file
of this machine's temporary folder, named after the sweep's storage and name: a command run in another folder
finds it; one run on another machine does not (a team's `sweep sync` there may start before the publisher ends,
which only means writing the same end twice).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from sweep.locations import StorageLocation


def lock_path(storage: StorageLocation, name: str) -> Path:
    """The lock file of sweep ``name`` in ``storage``: a file of this machine by its absolute path (`--storage
    sweep.journal` given in two folders is two sweeps), else the location as sweep shows it (password hidden)."""
    local = storage.local_file
    where = str(local.resolve()) if local is not None else str(storage)
    digest = hashlib.sha256(f"{where}\n{name}".encode()).hexdigest()[:20]
    return Path(tempfile.gettempdir()) / f"sweep-publishing-{digest}.lock"


def hold(path: Path) -> int:
    """Take the lock, once whoever holds it lets go (a look by holder() holds it for an instant; a sweep's earlier
    publisher, for its whole end); returns the open file that holds it. Whoever has a copy of that file (a forked
    process) holds the lock with it until every copy is closed."""
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
    except BaseException:
        os.close(descriptor)
        raise
    return descriptor


def name_holder(descriptor: int, pid: int) -> None:
    """Write the pid of the process that holds the lock into it, for a waiter to name."""
    os.ftruncate(descriptor, 0)
    os.pwrite(descriptor, str(pid).encode(), 0)


def release(descriptor: int, path: Path) -> None:
    """The publisher is done: the file goes (an empty temporary folder stays empty), then the lock."""
    with contextlib.suppress(OSError):
        path.unlink()
    os.close(descriptor)


def holder(path: Path) -> int | None:
    """The pid of the publisher holding the lock (0: not yet written), or None when nobody does."""
    try:
        descriptor = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        return held_by(descriptor)
    finally:
        os.close(descriptor)


def wait_until_free(path: Path, on_wait: Callable[[int], None] | None = None) -> bool:
    """Return once no publisher holds the lock; ``on_wait`` is told the holder's pid (0: not yet written) once,
    before the wait. Returns whether there was anything to wait for. No bound: a publisher that hangs is ended by
    its own watchdog (sweep/tracking/server.py), which lets go of the lock."""
    try:
        descriptor = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        pid = held_by(descriptor)
        if pid is None:
            return False
        if on_wait is not None:
            on_wait(pid)
        fcntl.flock(descriptor, fcntl.LOCK_SH)  # until the publisher's last copy of the lock is closed
        return True
    finally:
        os.close(descriptor)


def held_by(descriptor: int) -> int | None:
    """Of the lock file open as ``descriptor``: the pid written by its holder (0: not yet), None when it is free."""
    try:
        fcntl.flock(descriptor, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        text = os.pread(descriptor, 32, 0).decode(errors="replace").strip()
        return int(text) if text.isdigit() else 0
    fcntl.flock(descriptor, fcntl.LOCK_UN)
    return None
