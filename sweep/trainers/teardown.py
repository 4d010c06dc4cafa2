"""Stopping a command trainer's processes: the trial's own teardown, and the watchdog for a sweep that dies.

``stop`` ends every process of a trial's command (SIGTERM, then SIGKILL after a grace period). Run as a file
(`python -I teardown.py`), this module is the watchdog of one sweep process: when that process dies (even
by kill -9), it stops the commands still running. It imports nothing of sweep, so the watchdog starts in a
few milliseconds and has nothing that can fail.

The watchdog reads lines from its stdin, the write end of which only the sweep process holds:
`expect TOKEN` just before a trial's command starts (a sweep killed before it could tell the command's
group leaves the command known by its token), `add PGID TOKEN` once it has started, `remove PGID TOKEN`
when it has ended. End of input means
the sweep process is gone (or done): every command still registered gets SIGTERM, then SIGKILL. A process
is the command's when it is in the command's process group, or when its environment carries the trial's
token (a daemon that made a session of its own still inherited that).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time

TOKEN_VARIABLE = "SWEEP_TRIAL_TOKEN"
GRACE_SECONDS = 2.0  # the sweep is gone: a command gets this long to exit on SIGTERM before SIGKILL


def processes() -> dict[int, tuple[int, str]]:
    """pid -> (process group, state letter) of every process, from /proc."""
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (status := process_status(int(entry))) is not None:
            found[int(entry)] = status
    return found


def process_status(pid: int) -> tuple[int, str] | None:
    """(process group, state letter) of one process from /proc/<pid>/stat, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
    except OSError:
        return None
    fields = stat[stat.rfind(b")") + 2:].split()  # the name, in parentheses, may hold spaces
    return int(fields[2]), fields[0].decode()


def carries(pid: int, token: str) -> bool:
    """Whether the process's environment holds the trial's token (readable for our own processes only)."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as handle:
            return f"{TOKEN_VARIABLE}={token}".encode() in handle.read().split(b"\0")
    except OSError:
        return False


def members(group: int, token: str) -> set[int]:
    """The live processes of a trial's command: its process group, and any that carry its token. Group 0
    stands for a command whose group was never told (only its token is known)."""
    if not os.path.isdir("/proc"):  # no /proc: the group is all that can be seen
        if not group:
            return set()
        try:
            os.killpg(group, 0)
        except OSError:
            return set()
        return {-group}
    own = os.getpid()
    found = set()
    for pid, (pgrp, state) in processes().items():
        if state in ("Z", "X") or pid == own:
            continue
        if (group and pgrp == group) or carries(pid, token):
            found.add(pid)
    return found


def alive(pids: set[int]) -> set[int]:
    """Those of ``pids`` still running (a zombie has ended: its parent or init reaps it)."""
    left = set()
    for pid in pids:
        if pid < 0:
            try:
                os.killpg(-pid, 0)
                left.add(pid)
            except OSError:
                pass
            continue
        status = process_status(pid)
        if status is not None and status[1] not in ("Z", "X"):
            left.add(pid)
    return left


def send(group: int, pids: set[int], signum: int) -> None:
    if group:  # os.killpg(0, ...) would signal the caller's own group
        with contextlib.suppress(OSError):
            os.killpg(group, signum)
    for pid in pids:
        with contextlib.suppress(OSError):
            os.kill(pid, signum) if pid > 0 else os.killpg(-pid, signum)


def stop(group: int, token: str, grace: float) -> int:
    """SIGTERM to the command's processes, SIGKILL to those left after ``grace`` seconds; returns how many
    processes there were. A KeyboardInterrupt during the grace (a second Ctrl-C) kills at once."""
    if group:
        with contextlib.suppress(OSError):
            os.killpg(group, signal.SIGTERM)  # the group at once; looking through /proc for the rest takes longer
    pids = members(group, token)
    if not pids:
        return 0
    try:
        send(group, pids, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while alive(pids) and time.monotonic() < deadline:
            time.sleep(0.01)
    except KeyboardInterrupt:
        kill(group, token, pids)
        raise
    if alive(pids):
        kill(group, token, pids)
    return len(pids)


def kill(group: int, token: str, pids: set[int]) -> None:
    """SIGKILL, again until nothing is left: a process forked meanwhile is caught by the second look."""
    for _ in range(50):
        everyone = alive(pids) | members(group, token)
        if not everyone:
            return
        send(group, everyone, signal.SIGKILL)
        pids = everyone
        time.sleep(0.02)


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the sweep decides when its commands stop, not the terminal
    watched: dict[tuple[int, str], None] = {}
    for line in sys.stdin:
        words = line.split()
        if len(words) == 2 and words[0] == "expect":
            watched[(0, words[1])] = None
        elif len(words) == 3 and words[0] == "add":
            watched.pop((0, words[2]), None)
            watched[(int(words[1]), words[2])] = None
        elif len(words) == 3 and words[0] == "remove":
            watched.pop((0, words[2]), None)
            watched.pop((int(words[1]), words[2]), None)
    for group, token in watched:
        stop(group, token, GRACE_SECONDS)


if __name__ == "__main__":
    main()
