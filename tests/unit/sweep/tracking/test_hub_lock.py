"""The host hub's lock file: the hub that ends removes it while holding it, and a worker that was waiting on that
file then holds the lock at the path, the one the next worker takes, not the removed file."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from sweep.tracking.host_hub import HubPlace, locked

WAIT_SECONDS = 60  # a thread reaching flock: generous for a loaded machine


def waiting_on(inode: int) -> bool:
    """Some process waits for an flock on the file ``inode`` (/proc/locks marks a waiter with "->")."""
    for line in Path("/proc/locks").read_text().splitlines():
        fields = line.split()
        if len(fields) > 6 and fields[1] == "->" and fields[2] == "FLOCK" and fields[6].endswith(f":{inode}"):
            return True
    return False


def test_a_worker_waiting_on_the_lock_of_a_hub_that_ends_then_holds_the_lock_at_the_path(tmp_path: Path):
    place = HubPlace.of(tmp_path, "hub")
    seen: dict[str, int | None] = {}

    def join() -> None:
        with locked(place) as lock:
            seen["held"] = os.fstat(lock.fileno()).st_ino
            seen["at_path"] = place.lock.stat().st_ino if place.lock.exists() else None

    with locked(place) as ending:  # the hub that ends
        removed = os.fstat(ending.fileno()).st_ino
        worker = threading.Thread(target=join)
        worker.start()
        deadline = time.monotonic() + WAIT_SECONDS
        while not waiting_on(removed):  # the worker opened the file that is about to be removed, and waits on it
            assert time.monotonic() < deadline, "the worker never waited for the lock"
            time.sleep(0.01)
        place.lock.unlink()
    worker.join(timeout=WAIT_SECONDS)
    assert not worker.is_alive()
    assert seen["at_path"] is not None and seen["held"] == seen["at_path"]  # the lock others take, not the removed one


def test_the_lock_is_taken_and_let_go_of(tmp_path: Path):
    place = HubPlace.of(tmp_path, "hub")
    with locked(place):
        assert place.lock.exists()
    with locked(place):  # let go of: taken again at once
        pass
