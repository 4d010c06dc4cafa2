"""Worker processes for `sweep run --jobs N`: N `sweep worker` processes on this machine.

Processes, not threads: the trainer holds the GIL and MLflow keeps its active run per thread. Each
worker is the same `sweep worker` a teammate starts on another machine, so one machine and many
machines share one code path. Secrets travel in the environment, never in argv (visible in `ps`).
Each worker's stderr goes to its own anonymous temporary file (no name: it is gone with the last process
holding it, kill -9 included): the parent reads a failed worker's `error:` line from it, and nothing a
worker prints (nor the warning of a killed worker's resource tracker) lands in the middle of the parent's
output. Each worker dies with the parent (--parent-pid), so a killed `sweep run` leaves no worker going on.

Workers start held (--start-fd): each imports what it needs while the sweep's study and parent run are still being
created, then waits on a pipe of its own; release() lets them onto the study, and closing the pipe unreleased ends
them without a trial (the sweep's start failed).
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from sweep.locations import TRACKING_ENV, StorageLocation, TrackingLocation
from sweep.tracking.hub import HubAddress

STORAGE_ENV = "SWEEP_STORAGE"  # read by `sweep worker --storage`
GPU_ENV = "CUDA_VISIBLE_DEVICES"  # which GPUs a worker's trials see
STOP_SECONDS = 60.0  # a worker stops at its next epoch; this is only a bound for a stuck one
INTERRUPTED_CODE = 130  # `sweep worker` stopped by Ctrl-C or SIGTERM (sweep.errors.INTERRUPTED)
ERROR_PREFIX = "error: "  # how `sweep worker` reports an error on stderr, in one line


RELEASE = b"go"  # what a held worker reads before it opens the study; end of file instead: it ends


@dataclass
class WorkerPool:
    processes: list[subprocess.Popen[bytes]]
    stderr_files: list[IO[bytes]]  # anonymous: closing them removes them
    held: list[int] = field(default_factory=list)  # the write ends of the held workers' pipes, until release()
    ended_seen: set[int] = field(default_factory=set)  # the workers settle() has seen ended (by process id)

    def release(self) -> None:
        """Let the held workers onto the study (it exists now, and its parent run)."""
        for pipe in self.held:
            with contextlib.suppress(OSError):  # BrokenPipeError: that worker has ended already; wait() tells how
                os.write(pipe, RELEASE)
        self._let_go()

    def _let_go(self) -> None:
        for pipe in self.held:
            os.close(pipe)
        self.held = []

    def alive(self) -> int:
        return sum(process.poll() is None for process in self.processes)

    def settle(self, timeout: float) -> None:
        """Block until a worker ends or ``timeout`` passes: a process's pidfd is readable once it has ended. One
        that ended since the last call (before this one could watch it) returns at once."""
        ended = {process.pid for process in self.processes if process.poll() is not None}
        if ended - self.ended_seen:
            self.ended_seen |= ended
            return
        if not hasattr(os, "pidfd_open"):  # not Linux
            time.sleep(timeout)
            return
        handles = []
        try:
            for process in self.processes:
                if process.pid not in ended:
                    try:
                        handles.append(os.pidfd_open(process.pid))
                    except OSError:  # it ended just now (ESRCH)
                        return
            if handles:
                select.select(handles, [], [], timeout)
            else:
                time.sleep(timeout)
        finally:
            for handle in handles:
                os.close(handle)

    def stop(self) -> None:
        """Ask every worker to stop as on Ctrl-C (the terminal may have sent it already: harmless); held ones
        end without a trial."""
        self._let_go()
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)

    def wait(self) -> list[int]:
        codes = []
        for process in self.processes:
            try:
                codes.append(process.wait(timeout=STOP_SECONDS))
            except subprocess.TimeoutExpired:
                process.kill()
                codes.append(process.wait())
        return codes

    def failures(self) -> list[str]:
        """One line per distinct failure of a worker that ended on an error (not a stop, not a success):
        its own `error:` line, else how it ended. Read after wait()."""
        found: list[str] = []
        for process, stderr in zip(self.processes, self.stderr_files):
            code = process.poll()
            if code is None or code in (0, INTERRUPTED_CODE):
                continue
            stderr.seek(0)
            line = last_error(stderr.read().decode("utf-8", errors="replace")) or ended_how(code)
            if line not in found:
                found.append(line)
        return found

    def close(self) -> None:
        """Let go of the workers' stderr files (the workers have ended): that removes them. Workers still held (the
        sweep's start failed) end first, without a trial."""
        if self.held:
            self._let_go()
            self.wait()
        for stderr in self.stderr_files:
            stderr.close()


def wait_for_release(pipe: int) -> bool:
    """In a held worker: block until the pool releases it (True) or lets it go (False: end without a trial)."""
    try:
        with os.fdopen(pipe, "rb") as reader:
            return reader.read(len(RELEASE)) == RELEASE
    except OSError:
        return False


def error_line(path: Path) -> str | None:
    """The last `error:` line a worker wrote on stderr, without its prefix; else its last line (a bug's
    traceback ends with the exception); None when it wrote nothing."""
    try:
        return last_error(path.read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return None


def last_error(text: str) -> str | None:
    """As error_line, of a worker's stderr already read."""
    lines = [line.strip() for line in text.splitlines()]
    lines = [line for line in lines if line]
    errors = [line.removeprefix(ERROR_PREFIX) for line in lines if line.startswith(ERROR_PREFIX)]
    return errors[-1] if errors else (lines[-1] if lines else None)


def ended_how(code: int) -> str:
    if code < 0:
        try:
            return f"a worker was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"a worker was killed by signal {-code}"
    return f"a worker ended with exit code {code}"


def spawn_workers(name: str, jobs: int, *, storage: StorageLocation, tracking: TrackingLocation,
                  target: int, gpus: Sequence[str] = (), hub: HubAddress | None = None) -> WorkerPool:
    """``jobs`` workers on the sweep's stores: the storage always named, the tracking URI when the sweep names one
    (else the workers decide as this process did: MLFLOW_TRACKING_URI, then MLflow's default). ``gpus``: each
    worker's CUDA_VISIBLE_DEVICES (empty: they inherit this process's). ``hub``: the sweep's tracking process,
    which records their trials (else each starts its own). They start held: each waits for the pool's release()."""
    environment = {**os.environ, STORAGE_ENV: storage.secret_url, **(hub.environment() if hub else {})}
    if tracking.explicit is not None:
        environment[TRACKING_ENV] = tracking.explicit
    # --parent-pid: killed with this process (kill -9 included), a worker must not go on with the sweep unseen
    command = [sys.executable, "-m", "sweep.cli", "worker", name, "--trials", str(target), "--quiet",
               "--no-finalize", "--parent-pid", str(os.getpid())]
    pool = WorkerPool([], [])
    try:
        for number in range(jobs):
            pool.stderr_files.append(tempfile.TemporaryFile(prefix="sweep-worker-"))  # noqa: SIM115 - closed by close()
            own = {**environment, GPU_ENV: gpus[number]} if gpus else environment
            reader, writer = os.pipe()
            pool.held.append(writer)
            try:
                pool.processes.append(subprocess.Popen([*command, "--start-fd", str(reader)], env=own,
                                                       stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                                                       stderr=pool.stderr_files[-1], pass_fds=(reader,)))
            finally:
                os.close(reader)  # the worker holds its own copy
    except BaseException:
        pool.stop()
        pool.wait()
        pool.close()
        raise
    return pool
