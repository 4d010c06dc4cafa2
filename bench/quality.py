"""Search quality with `--jobs`: regret after N trials and the share of distinct settings, for `--jobs 1, 2, 4`.

    python bench/quality.py [--quick] [--trials 50] [--seeds 5] [--jobs 1,2,4] [--code PATH] [--keep]

Every run is a real `sweep run --config sweep.yaml --jobs J --name q` subprocess in a fresh temporary folder
(embedded stores: ./sweep.journal and ./mlflow.db there), TPE with sampler seed S, no pruner, on a function
trainer this script writes into the folder: a rotated, ill-conditioned quadratic over three continuous
settings with a known minimum. The finished trials are read back from the journal with Optuna: regret = best
value - the known minimum; distinct = distinct settings / trials. Per `--jobs`: the median regret over the
seeds, its min-max, the median distinct share and the median wall time. Target: `--jobs 2` and `--jobs 4`
reach a median regret within the spread of `--jobs 1`'s seeds, with 100% distinct settings (the space is
continuous, so a repeat means two processes replayed one sampler sequence).

`--code PATH` runs the sweeps with the `sweep` package of another checkout (PATH goes first on PYTHONPATH;
default: this repository), e.g. a `git worktree` of an earlier commit for a before/after figure.
`--quick` (12 trials, 2 seeds, `--jobs 1,2`) is the smoke test.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if not __package__:  # `python bench/quality.py`: bench/ is on sys.path, where bench/trainer.py shadows the trainer
    _bench = Path(__file__).resolve().parent
    sys.path[:] = [str(_bench.parent), *(entry for entry in sys.path if Path(entry or ".").resolve() != _bench)]

os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"

from bench.common import CODE_ENV, check_code, code_env, load, versions

ROOT = Path(__file__).resolve().parents[1]
STUDY = "q"
NAMES = ("x", "y", "z")
LOW, HIGH = -5.0, 5.0
CENTRE = (1.3, -2.1, 0.7)  # where the minimum lies
OPTIMUM = 0.0  # the objective's value there

OBJECTIVE = f'''"""A rotated, ill-conditioned quadratic: minimum {OPTIMUM} at {CENTRE}."""
import os

CENTRE = {CENTRE!r}
SCALES = (1.0, 4.0, 16.0)  # curvature along each rotated axis
V = (1.0, 2.0, 3.0)  # the rotation is the Householder reflection I - 2 v v^T / v^T v


def value(x, y, z):
    d = (x - CENTRE[0], y - CENTRE[1], z - CENTRE[2])
    along = 2.0 * sum(a * b for a, b in zip(V, d)) / sum(a * a for a in V)
    rotated = [di - along * vi for di, vi in zip(d, V)]
    return {OPTIMUM!r} + sum(s * r * r for s, r in zip(SCALES, rotated))


def fit(trial):
    return value(trial.params["x"], trial.params["y"], trial.params["z"])


if os.environ.get("{CODE_ENV}"):  # the bench's --code: refuse to run on another checkout's sweep
    import sweep

    code = os.path.join(os.path.realpath(os.environ["{CODE_ENV}"]), "")
    if not os.path.realpath(sweep.__file__).startswith(code):
        raise ImportError(f"sweep imported from {{sweep.__file__}}, not from {{code}}")
'''

CONFIG = """experiment: quality
trainer: {{function: objective.py:fit}}
objective: {{direction: minimize}}
trials: {trials}
sampler: {{name: tpe, seed: {seed}}}
pruner: {{name: none}}
space:
""" + "".join(f"  {name}: {{{{type: float, low: {LOW}, high: {HIGH}}}}}\n" for name in NAMES)


@dataclass
class Run:
    jobs: int
    seed: int
    regret: float
    distinct: int
    trials: int
    complete: int
    wall: float

    @property
    def share(self) -> float:
        return self.distinct / self.trials if self.trials else 0.0


def known_minimum() -> float:
    """The objective file's own value at CENTRE: what regret is measured from (checked against OPTIMUM)."""
    namespace: dict[str, Any] = {}
    exec(compile(OBJECTIVE, "objective.py", "exec"), namespace)
    return float(namespace["value"](*CENTRE))


def read_study(journal: Path) -> tuple[float, int, int, int]:
    """(best value, distinct settings, finished trials, complete trials) of the study in ``journal``."""
    import optuna
    from optuna.storages.journal import JournalFileBackend

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = optuna.storages.JournalStorage(JournalFileBackend(str(journal)))
    study = optuna.load_study(study_name=STUDY, storage=storage)
    finished = [t for t in study.get_trials(deepcopy=False) if t.state.is_finished()]
    complete = [t for t in finished if t.state == optuna.trial.TrialState.COMPLETE and t.value is not None]
    if not complete:
        raise SystemExit(f"{journal}: no complete trial")
    distinct = {tuple(sorted(t.params.items())) for t in finished}
    return min(t.value for t in complete), len(distinct), len(finished), len(complete)


def run(code: Path, jobs: int, seed: int, trials: int, optimum: float, keep: bool) -> Run:
    folder = Path(tempfile.mkdtemp(prefix=f"sweep-quality-j{jobs}-s{seed}-"))
    try:
        (folder / "objective.py").write_text(OBJECTIVE, encoding="utf-8")
        (folder / "sweep.yaml").write_text(CONFIG.format(trials=trials, seed=seed), encoding="utf-8")
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "sweep.cli", "run", "--config", "sweep.yaml", "--jobs", str(jobs),
                               "--name", STUDY], cwd=folder, env=code_env(code), capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, check=False)
        wall = time.perf_counter() - started
        if done.returncode != 0:
            raise SystemExit(f"sweep run --jobs {jobs} (seed {seed}) in {folder} exited {done.returncode}: "
                             f"{done.stderr.strip()[-2000:]}")
        best, distinct, finished, complete = read_study(folder / "sweep.journal")
    finally:
        if keep:
            print(f"  kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)
    return Run(jobs, seed, best - optimum, distinct, finished, complete, wall)


def spread_verdict(value: float, low: float, high: float) -> str:
    if value < low:
        return "no, below it (better)"
    if value > high:
        return "no, above it (worse)"
    return "yes"


def report(runs: list[Run], jobs_list: list[int]) -> None:
    by_jobs = {jobs: [r for r in runs if r.jobs == jobs] for jobs in jobs_list}
    print()
    print(f"{'jobs':>4} | {'median regret':>13} | {'regret min-max over seeds':>25} | {'median distinct':>15} | "
          f"{'median wall':>11}")
    for jobs, group in by_jobs.items():
        regrets = [r.regret for r in group]
        spread = f"{min(regrets):.4g} - {max(regrets):.4g}"
        distinct = statistics.median(r.share for r in group) * 100
        wall = statistics.median(r.wall for r in group)
        print(f"{jobs:>4} | {statistics.median(regrets):>13.4g} | {spread:>25} | {distinct:>14.1f}% | {wall:>9.1f} s")
    print()
    if 1 not in by_jobs:
        print("target: no --jobs 1 runs to compare with")
        return
    low, high = min(r.regret for r in by_jobs[1]), max(r.regret for r in by_jobs[1])
    for jobs, group in by_jobs.items():
        if jobs == 1:
            continue
        median = statistics.median(r.regret for r in group)
        fewest = min(group, key=lambda r: r.share)
        all_distinct = all(r.distinct == r.trials for r in group)
        print(f"--jobs {jobs}: median regret {median:.4g} within the --jobs 1 spread {low:.4g} - {high:.4g}: "
              f"{spread_verdict(median, low, high)}; distinct 100% in every seed: {'yes' if all_distinct else 'no'} "
              f"(fewest {fewest.distinct}/{fewest.trials}, seed {fewest.seed}) (target: yes and yes)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="12 trials, 2 seeds, --jobs 1,2: the smoke test")
    parser.add_argument("--trials", type=int, default=50, help="trials per sweep (N)")
    parser.add_argument("--seeds", type=int, default=5, help="sampler seeds 0..SEEDS-1 per --jobs value")
    parser.add_argument("--jobs", default="1,2,4", help="comma-separated --jobs values")
    parser.add_argument("--code", type=Path, default=ROOT,
                        help="the checkout whose sweep package the runs use (default: this repository)")
    parser.add_argument("--keep", action="store_true", help="keep each run's folder")
    args = parser.parse_args()
    trials, seeds, jobs_text = (12, 2, "1,2") if args.quick else (args.trials, args.seeds, args.jobs)
    try:
        jobs_list = [int(part) for part in jobs_text.split(",") if part.strip()]
    except ValueError:
        parser.error(f"--jobs {jobs_text!r}: give numbers separated by commas, e.g. 1,2,4")
    if not jobs_list or min(jobs_list) < 1 or trials < 1 or seeds < 1:
        parser.error("--jobs values, --trials and --seeds must be at least 1")
    code = args.code.resolve()

    optimum = known_minimum()
    if abs(optimum - OPTIMUM) > 1e-12:
        raise SystemExit(f"the objective's value at its centre is {optimum}, not {OPTIMUM}")
    print(f"sweep quality: {trials} trials, TPE seeds 0-{seeds - 1}, --jobs {','.join(map(str, jobs_list))}, "
          f"no pruner")
    print(check_code(code))
    print(f"objective: rotated quadratic over {', '.join(NAMES)} in [{LOW:g}, {HIGH:g}] (float), "
          f"minimum {OPTIMUM:g} at {CENTRE}")
    print(f"{load()} on {os.cpu_count()} cores; {versions()}", flush=True)

    runs = []
    started = time.perf_counter()
    for seed in range(seeds):  # seeds outside, jobs inside: the machine's load hits every --jobs value alike
        for jobs in jobs_list:
            result = run(code, jobs, seed, trials, optimum, args.keep)
            runs.append(result)
            failed = f", {result.trials - result.complete} not complete" if result.complete < result.trials else ""
            print(f"--jobs {jobs} seed {seed}: regret {result.regret:.4g}, distinct {result.distinct}/{result.trials} "
                  f"({result.share * 100:.1f}%){failed}, {result.wall:.1f} s", flush=True)
    report(runs, jobs_list)
    print(f"\ntotal {time.perf_counter() - started:.0f} s; {load()}")


if __name__ == "__main__":
    main()
