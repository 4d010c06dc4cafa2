"""Fault harness: interrupt real sweeps at many points with SIGINT, SIGTERM and SIGKILL, resume, and check
that nothing was lost, duplicated or left running.

Each case starts `sweep run` in its own folder, signals it after a delay taken from a spread that covers
start-up, trials, MLflow logging and finalisation, then resumes (or starts again when the kill came
before the sweep existed) until it finishes. The interrupted runs are processes, three at a time: their
timing shifts with the load, which only spreads the kill points further; the resumes, which no signal
reaches, run in-process one after the other (tests/support/inprocess.py).
"""

from __future__ import annotations

import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from sweep.ranking import rank_key
from tests.support import e2e, inprocess

pytestmark = pytest.mark.slow

TRIALS = 2
POINTS = 5  # kill points per signal: about one per phase below (the load shifts them anyway)
DELAYS = [0.4 + i * 0.675 for i in range(POINTS)]  # 0.4 s .. 3.1 s: start-up, trials, logging, the end
CONFIG = f"trials: {TRIALS}\npruner: {{name: none}}\n" + """
space:
  lr: {type: float, low: 0.2, high: 2.0, log: true}
  epochs: {type: int, low: 500, high: 800}
  vocab_size: {type: int, low: 300, high: 1500}
"""


def interrupt_case(root: Path, signum: int, delay: float) -> Path:
    """A `sweep run` process in a folder of its own, signalled ``delay`` seconds after its start."""
    folder = root / f"{signal.Signals(signum).name}-{delay:.2f}"
    folder.mkdir()
    e2e.write_config(folder, CONFIG)
    process = e2e.start_sweep(folder, "run", "--config", "sweep.yaml", "--name", "faulty")
    time.sleep(delay)  # the kill point itself, not a wait for readiness
    process.send_signal(signum)
    process.communicate(timeout=120)
    return folder


def finish_case(folder: Path) -> tuple[str, Path]:
    """Resume until done (or start again when the kill came before the sweep existed), in this process: only the
    interrupted run needs a process of its own. (A stop during a resume's own start-up is not tested here.)"""
    for _ in range(3):
        resumed = inprocess.sweep(folder, "run", "--resume", "--name", "faulty")
        if resumed.returncode == 0:
            return "resumed", folder
        if "no sweep named" in resumed.stderr or "no sweeps yet" in resumed.stderr:  # killed before it existed
            fresh = inprocess.sweep(folder, "run", "--config", "sweep.yaml", "--name", "faulty")
            assert fresh.returncode == 0, fresh.stderr
            return "restarted", folder
    raise AssertionError(f"{folder.name}: could not finish: {resumed.stderr}")


def check_invariants(folder: Path) -> None:
    trials = e2e.study(folder, "faulty").trials
    assert len(trials) == TRIALS and all(t.state.is_finished() for t in trials), \
        f"{folder.name}: {[t.state.name for t in trials]}"
    client = e2e.mlflow_client(folder)
    parent, children = e2e.runs(folder)
    numbers = sorted(int(c.data.tags["sweep.trial"]) for c in children)
    assert numbers == list(range(TRIALS)), f"{folder.name}: child runs for trials {numbers}"
    assert not [r for r in [parent, *children] if r.info.status == "RUNNING"], f"{folder.name}: a run is RUNNING"
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    if not complete:
        return
    best = min(complete, key=lambda t: rank_key(t.value, t.user_attrs.get("sweep.metrics", {}), t.number,
                                                 metric="val_accuracy", direction="maximize"))
    assert parent.data.tags["best.trial"] == str(best.number), folder.name
    best_run = next(c for c in children if int(c.data.tags["sweep.trial"]) == best.number)
    assert client.get_run(best_run.info.run_id).data.metrics["val_accuracy"] == best.value
    parent_model = e2e.artifact_bytes(folder, parent.info.run_id, "best/model.json")
    assert parent_model == e2e.artifact_bytes(folder, best_run.info.run_id, "model.json"), folder.name


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL], ids=["SIGINT", "SIGTERM",
                                                                                         "SIGKILL"])
def test_interrupted_anywhere_and_resumed_loses_nothing(tmp_path: Path, signum: int):
    with ThreadPoolExecutor(max_workers=3) as pool:
        interrupted = list(pool.map(lambda delay: interrupt_case(tmp_path, signum, delay), DELAYS))
    outcomes = [finish_case(folder) for folder in interrupted]  # one at a time: in-process runs share a cwd
    for _, folder in outcomes:
        check_invariants(folder)
