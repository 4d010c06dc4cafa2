"""Whether a process of this machine is alive: the one answer the trial gate's dead-worker check, `sweep ls`'s
look at a running sweep and the tracking store's draft tidying share."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from pathlib import Path


def process_alive(pid: int) -> bool:
    """True for a running process (ours or someone else's). A zombie, killed but not yet reaped by its parent
    (PID 1 can take a second), has finished: it holds no trial and writes no file, so it counts as dead."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # no /proc (not Linux), or it ended just now
        return True
    # "pid (name) state ...": the name may hold spaces and parentheses, the state follows the last ')'
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


def worker_alive(worker: str | None) -> bool | None:
    """Whether the worker ("host:pid") that runs a trial is alive; None when it ran on another machine."""
    owner_host, _, pid = str(worker or "").rpartition(":")
    if owner_host != socket.gethostname() or not pid.isdigit():
        return None
    return process_alive(int(pid))


# set by the batch schedulers and CI services whose job's end ends every process the job started
JOB_ENVIRONMENT = ("SLURM_JOB_ID", "PBS_JOBID", "LSB_JOBID", "CI")


def ends_with_its_job(environment: Mapping[str, str] | None = None) -> bool:
    """Whether this process runs where its end ends everything it leaves behind: a batch job (Slurm, PBS, LSF), a
    CI job, or a container whose main process it is (or whose init started it). `sweep run` then waits for its
    background publisher's work instead of leaving it to a process that would be killed with the job."""
    environment = os.environ if environment is None else environment
    if any(environment.get(name, "").strip().lower() not in ("", "0", "false") for name in JOB_ENVIRONMENT):
        return True
    return os.getpid() == 1 or os.getppid() == 1
