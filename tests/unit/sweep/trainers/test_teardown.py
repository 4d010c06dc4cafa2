"""sweep/trainers/teardown.py run as the real watchdog process: what it stops when its sweep's pipe closes."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid

from sweep.trainers import teardown


def watchdog() -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-I", teardown.__file__], stdin=subprocess.PIPE,
                            start_new_session=True)


def command(token: str) -> subprocess.Popen[bytes]:
    """A command in a session of its own (so not in any group the watchdog was told), carrying ``token``."""
    return subprocess.Popen(["sleep", "60"], env={"PATH": "/usr/bin:/bin", teardown.TOKEN_VARIABLE: token},
                            start_new_session=True)


def ended_within(process: subprocess.Popen[bytes], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    return process.poll() is not None


def close(watcher: subprocess.Popen[bytes], lines: list[str]) -> None:
    """What a sweep killed after writing ``lines`` leaves: the end of the watchdog's input."""
    assert watcher.stdin is not None
    watcher.stdin.write("".join(f"{line}\n" for line in lines).encode())
    watcher.stdin.close()


def test_a_command_the_sweep_was_killed_before_adding_is_stopped_by_its_token():
    token = uuid.uuid4().hex
    watcher, victim = watchdog(), command(token)
    try:
        close(watcher, [f"expect {token}"])  # killed between starting the command and its `add` line
        assert ended_within(victim, 20), "the watchdog left an expected command running"
        assert watcher.wait(timeout=20) == 0
    finally:
        victim.kill()
        watcher.kill()


def test_a_removed_command_is_left_alone_and_the_watchdog_spares_its_own_group():
    token = uuid.uuid4().hex
    watcher, bystander = watchdog(), command(token)
    try:
        close(watcher, [f"expect {token}", f"remove 0 {token}", "expect not-this-one"])
        assert watcher.wait(timeout=20) == 0  # a killpg(0) would have ended the watchdog by a signal
        assert bystander.poll() is None, "a command the sweep removed was stopped"
    finally:
        bystander.kill()
        watcher.kill()
