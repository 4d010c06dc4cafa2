"""The whole process: `sweep run --trials N` against the loop a user writes by hand with MLflow and Optuna.

    python bench/whole.py [--trials 50] [--pairs 5] [--code PATH] [--quick] [--keep]

Both contenders are real processes started from here, each in a fresh folder on the same stores (an Optuna journal
file and MLflow's `sqlite:///mlflow.db`), with the same trainer, space, fixed settings and TPE seed: the default
`sweep/sentiment.yaml` with `pruner: none` (the hand-written loop does not prune), so both train the same models.
Each folder starts with a copy of one MLflow database migrated before anything is timed, so neither pays MLflow's
schema migration. The pairs are interleaved (sweep, hand-written, sweep, ...) so that the machine's load hits both.

What it prints: per run the wall time until the command returned (the user's wait) and the CPU time of the whole
process tree (the process and every process it started: sweep's tracking process and its background publisher,
which writes the plots, the model and the parent's end after `sweep run` returns, included: this script adopts
the orphaned publisher and waits for it, and prints when it ended), the best value each found; then the medians
and the ratios sweep / hand-written. Target (issue 24): ≤ 0.9x wall and ≤ 1.1x CPU, busy or quiet. `--code PATH` runs
another checkout's `sweep` (the before figure); `--quick` (6 trials, one pair) checks that it runs.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

if not __package__:  # `python bench/whole.py`: bench/ is on sys.path, where bench/trainer.py shadows the trainer
    _bench = Path(__file__).resolve().parent
    sys.path[:] = [str(_bench.parent), *(entry for entry in sys.path if Path(entry or ".").resolve() != _bench)]

import yaml

from bench.common import check_code, child_env, code_env, last_line, load, tool

TRIALS = 50
PAIRS = 5
QUICK_TRIALS = 6
TARGET_WALL = 0.9
TARGET_CPU = 1.1
HANDWRITTEN = Path(__file__).resolve().parent / "handwritten_loop.py"
DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "sweep" / "sentiment.yaml"


PR_SET_CHILD_SUBREAPER = 36  # Linux prctl: orphans of our descendants become our children, to be waited for


@dataclass
class Run:
    contender: str
    wall: float  # until the command returned
    cpu: float
    outcome: str  # the best value found, or why the run failed
    ended: float = 0.0  # until its last process ended (a background publisher)

    @property
    def ok(self) -> bool:
        return not self.outcome.startswith("failed")


def write_config(folder: Path, trials: int) -> Path:
    document = yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8"))
    document["trials"] = trials
    document["pruner"] = {"name": "none"}
    path = folder / "sweep.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


def migrated_database(root: Path) -> Path:
    """An MLflow database with this MLflow's schema, made once: every run's folder starts with a copy."""
    path = root / "template.db"
    subprocess.run([sys.executable, "-c", "import mlflow; mlflow.MlflowClient(f'sqlite:///{__import__(\"sys\").argv[1]}')"
                    ".search_experiments()", str(path)], env=child_env(), check=True, capture_output=True)
    return path


def timed(contender: str, command: list[str], folder: Path, env: dict[str, str]) -> Run:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    wait_for_orphans()
    ended = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if done.returncode != 0:
        return Run(contender, wall, cpu, f"failed (exit {done.returncode}): {last_line(done.stderr)}", ended)
    finished = [line for line in done.stdout.splitlines() if " finished: " in line or line.startswith("best ")]
    return Run(contender, wall, cpu, finished[0] if finished else last_line(done.stdout), ended)


def adopt_orphans() -> bool:
    """Make this process the one that inherits its descendants' orphans (Linux), so that their CPU is counted."""
    try:
        return ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def wait_for_orphans() -> None:
    """Wait for every adopted process: their CPU joins RUSAGE_CHILDREN once they are waited for."""
    while True:
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            return


def one_run(contender: str, root: Path, index: int, trials: int, template: Path, code: Path | None) -> Run:
    folder = root / f"{contender}-{index}"
    folder.mkdir()
    shutil.copyfile(template, folder / "mlflow.db")
    config = write_config(folder, trials)
    if contender == "sweep":
        env = code_env(code) if code is not None else child_env()
        # the console script a user runs; with --code, PYTHONPATH makes it import the other checkout's sweep
        command = [tool("sweep") or "sweep", "run", "--config", str(config), "--trials", str(trials)]
        return timed(contender, command, folder, env)
    return timed(contender, [sys.executable, str(HANDWRITTEN), "--config", str(config), "--trials", str(trials)],
                 folder, child_env())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=TRIALS)
    parser.add_argument("--pairs", type=int, default=PAIRS)
    parser.add_argument("--code", type=Path, help="run this checkout's sweep (the before figure)")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_TRIALS} trials, one pair: a smoke test")
    parser.add_argument("--keep", action="store_true", help="keep the runs' folders")
    args = parser.parse_args()
    trials, pairs = (QUICK_TRIALS, 1) if args.quick else (args.trials, args.pairs)
    print(f"whole process: `sweep run --trials {trials}` vs the hand-written MLflow + Optuna loop, {pairs} pairs; "
          f"{load()}")
    if args.code is not None:
        print(check_code(args.code))
    if not adopt_orphans():
        print("note: cannot adopt orphaned processes here (not Linux?): a background publisher's CPU is not counted")
    root = Path(tempfile.mkdtemp(prefix="sweep-bench-whole-"))
    try:
        template = migrated_database(root)
        runs: list[Run] = []
        for index in range(pairs):
            for contender in ("sweep", "handwritten"):
                run = one_run(contender, root, index, trials, template, args.code)
                runs.append(run)
                print(f"  {contender:<11} pair {index + 1}: wall {run.wall:6.2f} s  CPU {run.cpu:6.2f} s  "
                      f"(last process ended at {run.ended:6.2f} s)  {run.outcome}", flush=True)
        report(runs)
        print(f"at the end: {load()}")
    finally:
        if args.keep:
            print(f"kept: {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


def report(runs: list[Run]) -> None:
    failed = [run for run in runs if not run.ok]
    if failed:
        print(f"FAILED: {len(failed)} run(s); no ratio printed")
        return
    medians = {contender: (statistics.median(run.wall for run in runs if run.contender == contender),
                           statistics.median(run.cpu for run in runs if run.contender == contender))
               for contender in ("sweep", "handwritten")}
    (sweep_wall, sweep_cpu), (hand_wall, hand_cpu) = medians["sweep"], medians["handwritten"]
    wall_ratio, cpu_ratio = sweep_wall / hand_wall, sweep_cpu / hand_cpu
    pairs = [(a.wall / b.wall) for a, b in zip(runs[::2], runs[1::2], strict=True)]
    print("SUMMARY")
    print(f"  median wall: sweep {sweep_wall:.2f} s, hand-written {hand_wall:.2f} s -> {wall_ratio:.2f}x "
          f"(target <= {TARGET_WALL}x; per pair {min(pairs):.2f}-{max(pairs):.2f}x)")
    print(f"  median CPU:  sweep {sweep_cpu:.2f} s, hand-written {hand_cpu:.2f} s -> {cpu_ratio:.2f}x "
          f"(target <= {TARGET_CPU}x; every process of each, sweep's background publisher included)")
    ended = statistics.median(run.ended for run in runs if run.contender == "sweep")
    print(f"  median until sweep's last process ended (its background publisher): {ended:.2f} s")


if __name__ == "__main__":
    main()
