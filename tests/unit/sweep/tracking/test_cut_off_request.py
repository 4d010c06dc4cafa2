"""The tracking process of a sweep killed halfway through sending it a request (a large trial record, while the
tracking process was still importing MLflow and the pipe was full) ends instead of waiting for the rest forever.
A real spawned tracking process; the sweep's death is its writing end closing after half a message."""

from __future__ import annotations

import multiprocessing
import os
import struct
import time

import pytest

from sweep.tracking.server import serve

pytestmark = pytest.mark.slow  # a tracking process importing MLflow

ENDS_WITHIN_SECONDS = 120.0  # MLflow's import on a loaded machine, then the end: a bound, never a timing


def test_a_request_cut_off_by_the_sweeps_death_ends_the_tracking_process():
    context = multiprocessing.get_context("spawn")
    requests, replies = context.Queue(), context.Queue()
    # parent_pid: this process, alive all along, so only the cut-off request can end the loop
    tracking = context.Process(target=serve, args=(requests, replies, os.getpid()), daemon=True)
    tracking.start()
    writer = requests._writer  # what the sweep's queue writes through: half of a 100 kB message, then its death
    os.write(writer.fileno(), struct.pack("!i", 100_000) + b"\x80" * 10)
    writer.close()
    deadline = time.monotonic() + ENDS_WITHIN_SECONDS
    while tracking.is_alive() and time.monotonic() < deadline:
        tracking.join(timeout=0.5)
    alive = tracking.is_alive()
    if alive:
        tracking.kill()
    assert not alive, "the tracking process still waits for the rest of the request"
