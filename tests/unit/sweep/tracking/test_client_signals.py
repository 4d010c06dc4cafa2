"""The tracking process is started with SIGINT and SIGTERM held back: the child inherits them blocked, and a
signal sent meanwhile still reaches the sweep once the child is started."""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time

from sweep.tracking.transport import signals_held


def test_a_signal_sent_inside_is_delivered_after_the_block_not_lost():
    seen: list[str] = []

    def mine(_signum, _frame):
        seen.append("handled")

    before = signal.signal(signal.SIGTERM, mine)
    try:
        with signals_held():
            os.kill(os.getpid(), signal.SIGTERM)
            seen.append("still inside")
        assert seen == ["still inside", "handled"]
        assert signal.SIGTERM not in signal.pthread_sigmask(signal.SIG_BLOCK, [])
    finally:
        signal.signal(signal.SIGTERM, before)


def test_with_another_thread_running_the_signal_still_waits_for_the_end_of_the_block():
    # the kernel may hand a process-directed signal to any thread that does not block it
    seen: list[str] = []
    stop = threading.Event()
    bystander = threading.Thread(target=stop.wait)
    bystander.start()

    def mine(_signum, _frame):
        seen.append("handled")

    before = signal.signal(signal.SIGTERM, mine)
    try:
        with signals_held():
            for _ in range(3):
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(0.05)  # time for a bystander's delivery to reach the main thread's handler
            seen.append("still inside")
        assert seen == ["still inside", "handled"]
        assert signal.getsignal(signal.SIGTERM) is mine
    finally:
        signal.signal(signal.SIGTERM, before)
        stop.set()
        bystander.join()


def report_blocked_signals(out) -> None:
    out.put(sorted(int(number) for number in signal.pthread_sigmask(signal.SIG_BLOCK, [])))


def test_a_process_spawned_inside_starts_with_both_signals_blocked():
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    child = context.Process(target=report_blocked_signals, args=(out,))
    with signals_held():
        child.start()
    try:
        blocked = out.get(timeout=60)
    finally:
        child.join(timeout=60)
    assert int(signal.SIGINT) in blocked and int(signal.SIGTERM) in blocked
