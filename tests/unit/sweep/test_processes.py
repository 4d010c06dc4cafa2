"""Whether a process of this machine is alive (a zombie, killed, not yet reaped, has finished), and whether a process
runs where its end ends what it leaves behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from sweep.processes import ends_with_its_job, process_alive


def test_a_running_process_is_alive_and_a_reaped_one_is_not():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert process_alive(child.pid)
    finally:
        child.kill()
        child.wait()
    assert not process_alive(child.pid)
    assert process_alive(os.getpid())


def test_a_killed_process_its_parent_has_not_reaped_yet_counts_as_dead():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        child.send_signal(signal.SIGKILL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # until the kernel has made it a zombie (we do not reap it yet)
            with open(f"/proc/{child.pid}/stat") as stat:
                if stat.read().rpartition(")")[2].split()[0] == "Z":
                    break
            time.sleep(0.01)
        else:
            raise AssertionError("the killed child never became a zombie")
        assert not process_alive(child.pid)
    finally:
        child.wait()


@pytest.mark.parametrize("variable", ["SLURM_JOB_ID", "PBS_JOBID", "LSB_JOBID", "CI"])
def test_a_batch_or_ci_job_ends_what_it_leaves_behind(variable: str):
    assert ends_with_its_job({variable: "1" if variable != "CI" else "true"})


@pytest.mark.skipif(os.getppid() == 1 or os.getpid() == 1, reason="this test process is a container's main one")
@pytest.mark.parametrize("environment", [{}, {"CI": "false"}, {"CI": "0"}, {"SLURM_JOB_ID": ""}])
def test_a_terminal_or_a_service_outlives_its_commands(environment: dict[str, str]):
    assert not ends_with_its_job(environment)
