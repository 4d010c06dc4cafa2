"""Several objectives: what pruning on several curves saves, the front it finds, and the cost of the front at scale.

    python bench/pareto.py [--quick] [--trials 40] [--seeds 5] [--front-trials 1000] [--figure FILE] [--keep]

1. Pruning. For each sampler seed S, two real `sweep run` subprocesses of the built-in trainer in fresh temporary
   folders (embedded stores), objectives val_accuracy (max) and model_bytes (min), TPE seed S, the default space:
   one with `pruner: median` (each objective against its own median, docs/config.md), one with `pruner: none`.
   Read back from the journal: the epochs trained (a complete trial's `epochs`; a pruned trial's last reported
   epoch), the front (feasible complete trials no other dominates) and its hypervolume against one reference
   point for both runs of a seed (accuracy 0.5, the largest model_bytes either run saw). Per seed and in median:
   epochs with and without pruning, the saving, and both hypervolumes (higher is better; equal means the same
   front quality). `--figure FILE` draws seed 0's two fronts on one plot (PNG).
2. The front at scale. A study of `--front-trials` complete two-objective trials (random values, in memory): the
   time SweepStudy.front() takes (the parent's front.trials and pareto.json) and the time Optuna's Pareto-front
   plot takes to draw as the parent's PNG.

`--quick` (8 trials, 1 seed, a 200-trial front) is the smoke test.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

if not __package__:  # `python bench/pareto.py`: bench/ is on sys.path, where bench/trainer.py shadows the trainer
    _bench = Path(__file__).resolve().parent
    sys.path[:] = [str(_bench.parent), *(entry for entry in sys.path if Path(entry or ".").resolve() != _bench)]

os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"

from bench.common import child_env, load, versions

STUDY = "p"
ACCURACY_FLOOR = 0.5  # the hypervolume's reference accuracy: a coin flip on the balanced bundled reviews
CONFIG = """objective:
  - {{metric: val_accuracy, direction: maximize}}
  - {{metric: model_bytes, direction: minimize}}
trials: {trials}
sampler: {{name: tpe, seed: {seed}}}
pruner: {{name: {pruner}, startup_trials: 5}}
fixed: {{seed: 0, l2: 0.0001}}
space:
  lr: {{type: float, low: 0.01, high: 20.0, log: true}}
  epochs: {{type: int, low: 5, high: 500, log: true}}
  vocab_size: {{type: int, low: 10, high: 5000, log: true}}
  ngrams: {{type: categorical, choices: [1, 2]}}
"""


@dataclass(frozen=True)
class Run:
    seed: int
    pruner: str
    epochs: int  # trained over all trials
    pruned: int
    front: list[tuple[float, float]]  # (val_accuracy, model_bytes) of each member
    wall: float


def read_run(journal: Path, seed: int, pruner: str, wall: float) -> Run:
    import optuna
    from optuna.storages.journal import JournalFileBackend

    from sweep.ranking import pareto_front
    from sweep.study.objective_pruning import reported_steps

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = optuna.storages.JournalStorage(JournalFileBackend(str(journal)))
    study = optuna.load_study(study_name=STUDY, storage=storage)
    trials = [t for t in study.get_trials(deepcopy=False) if t.state.is_finished()]
    epochs = pruned = 0
    for trial in trials:
        if trial.state == optuna.trial.TrialState.PRUNED:
            pruned += 1
            epochs += max(reported_steps(trial), default=0)
        else:
            epochs += int(trial.params["epochs"])
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE and t.values]
    members = set(pareto_front([(t.number, [-t.values[0], t.values[1]]) for t in complete]))
    front = sorted((t.values[0], t.values[1]) for t in complete if t.number in members)
    return Run(seed, pruner, epochs, pruned, front, wall)


def run(seed: int, pruner: str, trials: int, keep: bool) -> Run:
    folder = Path(tempfile.mkdtemp(prefix=f"sweep-pareto-{pruner}-s{seed}-"))
    try:
        (folder / "sweep.yaml").write_text(CONFIG.format(trials=trials, seed=seed, pruner=pruner), encoding="utf-8")
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "sweep.cli", "run", "--config", "sweep.yaml", "--name", STUDY,
                               ], cwd=folder, env=child_env(), capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, check=False)
        wall = time.perf_counter() - started
        if done.returncode != 0:
            raise SystemExit(f"sweep run (pruner {pruner}, seed {seed}) in {folder} exited {done.returncode}: "
                             f"{done.stderr.strip()[-2000:]}")
        return read_run(folder / "sweep.journal", seed, pruner, wall)
    finally:
        if keep:
            print(f"  kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)


def hypervolume(front: list[tuple[float, float]], reference_bytes: float) -> float:
    """The area the front dominates between it and (ACCURACY_FLOOR, reference_bytes): accuracy up, bytes down."""
    area, right = 0.0, reference_bytes
    for accuracy, size in sorted(front, key=lambda point: -point[0]):  # most accurate (and largest) first
        if accuracy <= ACCURACY_FLOOR or size >= right:
            continue
        area += (accuracy - ACCURACY_FLOOR) * (right - size)
        right = size
    return area


def draw(pair: tuple[Run, Run], figure: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    axes = plt.figure(figsize=(8, 5)).gca()
    for result, marker in zip(pair, ("o", "x"), strict=True):
        axes.plot([size for _, size in result.front], [accuracy for accuracy, _ in result.front], marker=marker,
                  linestyle="-", drawstyle="steps-post",
                  label=f"pruner {result.pruner}: {result.epochs:,} epochs, {len(result.front)} on the front")
    axes.set_xscale("log")
    axes.set_xlabel("model_bytes (min)")
    axes.set_ylabel("val_accuracy (max)")
    axes.set_title(f"Pareto fronts, seed {pair[0].seed}: median pruning on both objectives vs none")
    axes.legend()
    axes.figure.savefig(figure, dpi=80, bbox_inches="tight")
    print(f"figure: {figure}")


def pruning_figures(trials: int, seeds: int, figure: Path | None, keep: bool) -> None:
    print(f"pruning on several curves: built-in trainer, {trials} trials, TPE seeds 0..{seeds - 1}")
    print(f"{'seed':>4} | {'epochs median':>13} | {'epochs none':>11} | {'saved':>6} | {'pruned':>6} | "
          f"{'hypervolume median':>18} | {'hypervolume none':>16} | {'ratio':>5} | {'wall median / none':>18}")
    savings, ratios = [], []
    for seed in range(seeds):
        pruned, plain = run(seed, "median", trials, keep), run(seed, "none", trials, keep)
        reference = max(size for result in (pruned, plain) for _, size in result.front) * 1.1
        volumes = hypervolume(pruned.front, reference), hypervolume(plain.front, reference)
        saved = 1 - pruned.epochs / plain.epochs
        ratio = volumes[0] / volumes[1] if volumes[1] else float("nan")
        savings.append(saved)
        ratios.append(ratio)
        print(f"{seed:>4} | {pruned.epochs:>13,} | {plain.epochs:>11,} | {saved:>5.0%} | {pruned.pruned:>6} | "
              f"{volumes[0]:>18.4g} | {volumes[1]:>16.4g} | {ratio:>5.2f} | "
              f"{pruned.wall:>7.1f} s / {plain.wall:>5.1f} s")
        if figure is not None and seed == 0:
            draw((pruned, plain), figure)
    print(f"median epochs saved: {statistics.median(savings):.0%}; median hypervolume ratio (pruned / none): "
          f"{statistics.median(ratios):.2f} (1.00: a front as good with fewer epochs)")


def front_figures(count: int) -> None:
    import optuna

    from sweep.config import Objective, load_config
    from sweep.study.plots import study_plots
    from sweep.study.sweep_study import SweepStudy

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    config = load_config().replace(more_objectives=(Objective("model_bytes", "minimize"),))
    study = optuna.create_study(directions=["maximize", "minimize"])
    draw_values = random.Random(0)
    distribution = optuna.distributions.FloatDistribution(0.0, 1.0)
    study.add_trials([optuna.trial.create_trial(params={"x": draw_values.random()}, distributions={"x": distribution},
                                                values=[draw_values.random(), draw_values.random() * 1e5])
                      for _ in range(count)])
    started = time.perf_counter()
    front = SweepStudy(study, config).front()
    front_seconds = time.perf_counter() - started
    made = study_plots(study)
    print(f"the front at {count:,} trials: {len(front)} members in {front_seconds * 1000:.0f} ms "
          f"(SweepStudy.front); all plots {made.seconds:.2f} s, pareto_front.svg made: "
          f"{'pareto_front.svg' in made.images}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="8 trials, 1 seed, a 200-trial front: the smoke test")
    parser.add_argument("--trials", type=int, default=40, help="trials per sweep")
    parser.add_argument("--seeds", type=int, default=5, help="sampler seeds 0..SEEDS-1")
    parser.add_argument("--front-trials", type=int, default=1000, help="complete trials of the front timing")
    parser.add_argument("--figure", type=Path, default=None, help="draw seed 0's two fronts into this PNG")
    parser.add_argument("--keep", action="store_true", help="keep each run's folder")
    args = parser.parse_args()
    trials, seeds, front_trials = (8, 1, 200) if args.quick else (args.trials, args.seeds, args.front_trials)
    print(f"{versions()}; {load()}")
    pruning_figures(trials, seeds, args.figure, args.keep)
    front_figures(front_trials)
    print(load())


if __name__ == "__main__":
    main()
