"""The background publisher's lock, held by a real process: named while it is held, waited for, freed however
the holder ends (its end, a kill)."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from sweep.locations import StorageLocation
from sweep.publisher_lock import hold, holder, lock_path, name_holder, release, wait_until_free

HOLDER = """
import sys
from pathlib import Path
from sweep.locations import StorageLocation
from sweep.publisher_lock import hold, name_holder, release
path = Path(sys.argv[1])
descriptor = hold(path)
name_holder(descriptor, 4242)
print("held", flush=True)
sys.stdin.readline()
release(descriptor, path)
"""


@pytest.fixture
def held(tmp_path: Path):
    """A process holding the lock at tmp_path/held.lock until its stdin is closed."""
    path = tmp_path / "held.lock"
    process = subprocess.Popen([sys.executable, "-c", HOLDER, str(path)], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None and process.stdout.readline() == "held\n"
    yield path, process
    if process.poll() is None:
        process.kill()
    process.wait()


def test_the_lock_is_named_after_the_storage_and_the_sweep_in_the_temporary_folder(tmp_path: Path, monkeypatch):
    first = lock_path(StorageLocation.parse("/data/sweep.journal"), "a")
    assert first == lock_path(StorageLocation.parse("/data/sweep.journal"), "a")
    others = {lock_path(StorageLocation.parse("/data/sweep.journal"), "b"),
              lock_path(StorageLocation.parse("/other/sweep.journal"), "a"),
              lock_path(StorageLocation.parse("postgresql://u:secret@db/sweeps"), "a")}
    assert len({first, *others}) == 4
    assert first.name.startswith("sweep-publishing-") and first.suffix == ".lock"
    # a relative journal is the file it names from here: one in another folder is another sweep's
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    monkeypatch.chdir(tmp_path / "one")
    in_one = lock_path(StorageLocation.parse("sweep.journal"), "a")
    assert in_one == lock_path(StorageLocation.parse(str(tmp_path / "one" / "sweep.journal")), "a")
    monkeypatch.chdir(tmp_path / "two")
    assert lock_path(StorageLocation.parse("sweep.journal"), "a") != in_one


def test_a_free_lock_has_no_holder_and_is_not_waited_for(tmp_path: Path):
    path = tmp_path / "free.lock"
    assert holder(path) is None and wait_until_free(path) is False
    descriptor = hold(path)
    name_holder(descriptor, 99)
    release(descriptor, path)
    assert not path.exists() and holder(path) is None and wait_until_free(path) is False


def test_a_held_lock_names_its_holder_and_a_second_holder_waits_for_the_first(held):
    path, process = held
    assert holder(path) == 4242
    taken: list[int] = []
    second = threading.Thread(target=lambda: taken.append(hold(path)))
    second.start()
    second.join(timeout=0.5)
    assert second.is_alive() and not taken and holder(path) == 4242  # still the first's
    assert process.stdin is not None
    process.stdin.close()
    second.join(timeout=60)
    assert not second.is_alive() and taken
    release(taken[0], path)


def test_a_waiter_is_told_the_holder_and_returns_when_it_lets_go(held):
    path, process = held
    told: list[int] = []
    waiting = threading.Event()
    waited: list[bool] = []

    def on_wait(pid: int) -> None:
        told.append(pid)
        waiting.set()

    waiter = threading.Thread(target=lambda: waited.append(wait_until_free(path, on_wait)))
    waiter.start()
    assert waiting.wait(timeout=60)
    assert process.stdin is not None
    process.stdin.close()  # the holder releases and ends
    waiter.join(timeout=60)
    assert not waiter.is_alive() and waited == [True] and told == [4242]
    assert process.wait(timeout=60) == 0 and holder(path) is None


def test_a_killed_holder_frees_the_lock(held):
    path, process = held
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    assert path.exists() and holder(path) is None  # its file stays; nobody holds it
    assert wait_until_free(path) is False
