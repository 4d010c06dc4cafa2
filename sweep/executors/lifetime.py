"""A worker process that must not outlive the process that started it (a Ray task, `sweep run --jobs`).

PR_SET_PDEATHSIG fires when the *thread* that started the process ends: workers are started from the thread
that supervises them until they end (the main thread of `sweep run`, the Ray task's)."""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1  # linux/prctl.h: the signal this process gets when its parent dies


def die_with_parent(parent: int) -> bool:
    """Linux: this process is killed (SIGKILL) when its parent dies, as a lost node's processes are.
    Returns False when ``parent`` is no longer this process's parent (it died before the call)."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    return os.getppid() == parent
