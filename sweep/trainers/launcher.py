"""What a trial's command runs under: a subreaper that ends whatever the command left outside its process group.

Run as a file (`python -I -S launcher.py REPORT_FD PROGRAM ARGS...`: the command trainer starts every command so), this
process leads the command's process group and is a child subreaper (Linux PR_SET_CHILD_SUBREAPER). A process
the command started that made a session of its own and cleared its environment (`setsid env -i daemon &`, a
double fork) is re-parented to it, not to init: the group and the trial's token, which the teardown and the
watchdog look for, no longer find such a process, but its parent still does. When the command ends, this
process stops those (SIGTERM, SIGKILL after a grace), reaps them, and exits as the command did. What stays
in the group is the sweep's teardown's to stop and report, as before. It imports nothing of sweep, nor
subprocess: started without site-packages, it costs the trial little more than an interpreter's start-up.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import time

PR_SET_CHILD_SUBREAPER = 36  # linux/prctl.h
GRACE_SECONDS = 2.0  # an escaped process gets this long to exit on SIGTERM before SIGKILL
CANNOT_RUN, NOT_FOUND = 126, 127  # as a shell reports a command it cannot run


def become_subreaper() -> None:
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def children() -> list[int]:
    """This process's children, adopted orphans included (every thread's list, from /proc)."""
    found: list[int] = []
    try:
        for task in os.listdir(f"/proc/{os.getpid()}/task"):
            with open(f"/proc/{os.getpid()}/task/{task}/children") as handle:
                found += [int(pid) for pid in handle.read().split()]
    except OSError:
        pass
    return found


def escaped() -> list[int]:
    """The children outside this process's group: what the teardown's look at the group would miss."""
    own, found = os.getpgrp(), []
    for pid in children():
        try:
            if os.getpgid(pid) != own:
                found.append(pid)
        except OSError:
            continue
    return found


def signal_each(pids: list[int], number: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, number)
        except OSError:
            continue


def reap() -> None:
    """Collect every child that has ended (adopted ones included), without waiting."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def end_escaped() -> int:
    """SIGTERM to the escaped processes, SIGKILL to those left after the grace, until none is left (one that
    dies may hand us its own children); returns how many there were at first."""
    reap()
    first = escaped()
    signal_each(first, signal.SIGTERM)
    deadline = time.monotonic() + GRACE_SECONDS
    while first and escaped() and time.monotonic() < deadline:
        time.sleep(0.01)
        reap()
    for _ in range(100):
        left = escaped()
        if not left:
            break
        signal_each(left, signal.SIGKILL)
        time.sleep(0.01)
        reap()
    return len(first)


def exit_as(code: int) -> None:
    """End this process as the command ended: its exit code, or the signal that killed it."""
    if code < 0:
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
        code = 128 - code  # a signal that does not end a process (SIGCHLD, SIGCONT): the shell's convention
    sys.exit(code)


def start(argv: list[str]) -> int:
    """Fork and exec ``argv``; the child's exit code says when it cannot be run, as a shell's does."""
    pid = os.fork()
    if pid:
        return pid
    try:
        os.execvp(argv[0], argv)  # the handlers set below are reset to the default by the exec
    except OSError as error:
        os.write(2, f"cannot start {argv[0]!r}: {error.strerror}\n".encode())
        os._exit(NOT_FOUND if isinstance(error, FileNotFoundError) else CANNOT_RUN)
    raise AssertionError("unreachable")


def main(report_fd: int, argv: list[str]) -> None:
    """Run ``argv``; then write to ``report_fd`` (the sweep reads it) how many escaped processes were ended."""
    become_subreaper()
    for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # the command, in this group, gets them too:
        signal.signal(number, lambda _signum, _frame: None)  # this process outlives it (a handler, not SIG_IGN:
    pid = start(argv)  # exec resets a handler to the default, it would keep an ignored signal ignored)
    _, status = os.waitpid(pid, 0)
    ended = end_escaped()
    try:
        os.write(report_fd, f"{ended}\n".encode())
        os.close(report_fd)
    except OSError:
        pass
    exit_as(os.waitstatus_to_exitcode(status))


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2:])
