"""The fault harness for a user's fit(trial): SIGINT, SIGTERM and SIGKILL at points spread over start-up, trials
and the end of a function-trainer sweep, then resume; nothing lost, duplicated or left running.

The same checks as tests/e2e/test_faults.py makes for the built-in trainer, with fewer points: the code
paths after the trainer returns are shared, and that harness covers them densely. SIGTERM is left out:
the sweep handles it exactly as SIGINT (StopSignal), and the built-in harness sends both.
"""

from __future__ import annotations

import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.support import e2e, inprocess

pytestmark = pytest.mark.slow

TRIALS = 3
DELAYS = [0.8, 2.0, 3.2]  # start-up, trials, the end
FIT = '''
import time


def fit(trial):
    x = trial.suggest_float("x", -2.0, 2.0)
    for step in range(1, 5):
        time.sleep(0.1)
        trial.report(step=step, score=-(x * x) * step)
    return {"score": -(x * x), "steps": 4}
'''
CONFIG = f"trials: {TRIALS}\npruner: {{name: none}}\ntrainer: {{function: train.py:fit}}\n" \
         "objective: {metric: score, direction: maximize}\n"


def interrupt_case(root: Path, signum: int, delay: float) -> Path:
    """A `sweep run` process in a folder of its own, signalled ``delay`` seconds after its start."""
    folder = root / f"{signal.Signals(signum).name}-{delay:.2f}"
    folder.mkdir()
    (folder / "train.py").write_text(FIT, encoding="utf-8")
    e2e.write_config(folder, CONFIG)
    process = e2e.start_sweep(folder, "run", "--config", "sweep.yaml", "--name", "faulty")
    time.sleep(delay)  # the kill point itself, not a wait for readiness
    process.send_signal(signum)
    process.communicate(timeout=120)
    return folder


def finish_case(folder: Path) -> Path:
    """Resume until done (or start again when the kill came before the sweep existed), in this process."""
    for _ in range(3):
        resumed = inprocess.sweep(folder, "run", "--resume", "--name", "faulty")
        if resumed.returncode == 0:
            return folder
        if "no sweep named" in resumed.stderr or "no sweeps yet" in resumed.stderr:  # killed before it existed
            fresh = inprocess.sweep(folder, "run", "--config", "sweep.yaml", "--name", "faulty")
            assert fresh.returncode == 0, fresh.stderr
            return folder
    raise AssertionError(f"{folder.name}: could not finish: {resumed.stderr}")


def check_invariants(folder: Path) -> None:
    trials = e2e.study(folder, "faulty").trials
    assert len(trials) == TRIALS and all(t.state.is_finished() for t in trials), \
        f"{folder.name}: {[t.state.name for t in trials]}"
    parent, children = e2e.runs(folder, experiment="sweep")
    assert sorted(int(c.data.tags["sweep.trial"]) for c in children) == list(range(TRIALS)), folder.name
    assert not [r for r in [parent, *children] if r.info.status == "RUNNING"], f"{folder.name}: a run is RUNNING"
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    if not complete:
        return
    best = max(complete, key=lambda t: (t.value, -t.number))
    assert parent.data.tags["best.trial"] == str(best.number), folder.name
    best_run = next(c for c in children if int(c.data.tags["sweep.trial"]) == best.number)
    assert best_run.data.metrics["score"] == best.value
    assert best_run.data.params["x"] == str(best.params["x"])


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "SIGKILL"])
def test_a_function_trainer_interrupted_anywhere_and_resumed_loses_nothing(tmp_path: Path, signum: int):
    with ThreadPoolExecutor(max_workers=3) as pool:
        interrupted = list(pool.map(lambda delay: interrupt_case(tmp_path, signum, delay), DELAYS))
    for folder in [finish_case(folder) for folder in interrupted]:  # one at a time: in-process runs share a cwd
        check_invariants(folder)
