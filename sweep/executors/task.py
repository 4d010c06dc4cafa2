"""What one Ray task runs on its node: a `sweep worker` process, until it ends or the task is cancelled.

A process, not the loop in the task's own process: the worker is then exactly what `sweep run --jobs`
starts (its signal handling, its tracking process, its exit codes), and Ray's worker process, which
runs other tasks after this one, keeps nothing of the sweep. The process dies with the task's process
(`--parent-pid`), so a node or task that Ray loses leaves a RUNNING trial that the heartbeat (or the
host:pid check) fails and retries, never a second worker on the same trials.

This module imports nothing of Ray: the task is this plain function, sent by reference.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from sweep.workers import INTERRUPTED_CODE, STOP_SECONDS, error_line

POLL_SECONDS = 0.2  # how often the task looks at its worker: Ray's cancel lands between two looks


def run_worker_process(arguments: Sequence[str], environment: Mapping[str, str], folder: str | None
                       ) -> tuple[int, str | None]:
    """Run `sweep worker` with ``arguments`` on this node; returns its exit code and, when it ended on an
    error, its error line. ``environment`` goes over the node's own (where the stores are, credentials);
    the worker runs in ``folder`` when the node has it (the sweep's folder, on one machine or a shared
    file system). Ray's cancel (a KeyboardInterrupt here) stops the worker as Ctrl-C would."""
    handle, name = tempfile.mkstemp(prefix="sweep-worker-", suffix=".stderr")
    stderr_path = Path(name)
    try:
        with os.fdopen(handle, "wb") as stderr:
            command = [sys.executable, "-m", "sweep.cli", "worker", *arguments, "--parent-pid", str(os.getpid())]
            child = subprocess.Popen(command, env={**os.environ, **environment}, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True,
                                     cwd=folder if folder and os.path.isdir(folder) else None)
            try:
                code = _wait(child, None)
            except KeyboardInterrupt:  # ray.cancel: the worker ends its trial at the next epoch, as on Ctrl-C
                child.send_signal(signal.SIGTERM)
                code = _wait(child, STOP_SECONDS)
        return code, error_line(stderr_path) if code not in (0, INTERRUPTED_CODE) else None
    finally:
        stderr_path.unlink(missing_ok=True)


def _wait(child: subprocess.Popen[bytes], bound: float | None) -> int:
    """The child's exit code; polled, not waited on, so Ray's KeyboardInterrupt can land meanwhile. Past
    ``bound`` seconds it is killed."""
    deadline = None if bound is None else time.monotonic() + bound
    while (code := child.poll()) is None:
        if deadline is not None and time.monotonic() > deadline:
            child.kill()
            return child.wait()
        time.sleep(POLL_SECONDS)
    return code
