"""Trials per second of `sweep run --jobs 1` and `--jobs 2`, on the embedded stores and on PostgreSQL.

    python bench/parallel.py [--trials 40] [--skip-postgres]

Each run is a real `sweep run` subprocess in a fresh folder (journal file + MLflow SQLite), or with
`--storage postgresql://...` on a fresh database. Throughput is taken from the study itself: trials
finished per second between the first trial's start and the last trial's end, so process start-up and
store creation are left out. The trainer setting takes >= 50 ms per trial (printed).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SPACE = """
trials: {trials}
pruner: {{name: none}}
sampler: {{name: random, seed: 0}}
fixed: {{seed: 0, l2: 0.0001, ngrams: 2}}
space:
  lr: {{type: float, low: 0.3, high: 1.0, log: true}}
  epochs: {{type: int, low: {low}, high: {high}}}
  vocab_size: {{type: int, low: 4000, high: 5000}}
"""


def one_training_ms(epochs: int) -> float:
    from trainer import TrainConfig, load_corpus, split, train

    data = split(load_corpus(), 0)
    train(TrainConfig(lr=0.5, epochs=epochs, vocab_size=4500, ngrams=2), data)  # warm the tokenizer cache
    times = []
    for _ in range(5):
        started = time.perf_counter()
        train(TrainConfig(lr=0.5, epochs=epochs, vocab_size=4500, ngrams=2), data)
        times.append(time.perf_counter() - started)
    return sorted(times)[2] * 1000


def throughput(folder: Path, storage: str | None, name: str) -> float:
    import optuna

    from sweep.study import open_storage

    study = optuna.load_study(study_name=name, storage=open_storage(storage or str(folder / "sweep.journal"),
                                                                     create=False))
    trials = [t for t in study.get_trials(deepcopy=False) if t.state.is_finished()]
    first = min(t.datetime_start for t in trials)
    last = max(t.datetime_complete for t in trials)
    return len(trials) / (last - first).total_seconds()


def run(jobs: int, trials: int, storage: str | None, epochs: tuple[int, int]) -> float:
    folder = Path(tempfile.mkdtemp(prefix=f"sweep-parallel-{jobs}-"))
    (folder / "sweep.yaml").write_text(SPACE.format(trials=trials, low=epochs[0], high=epochs[1]), encoding="utf-8")
    command = [sys.executable, "-m", "sweep.cli", "run", "--config", "sweep.yaml", "--name", "bench",
               "--jobs", str(jobs)]
    if storage is not None:
        command += ["--storage", storage]
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    env.pop("MLFLOW_TRACKING_URI", None)
    done = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"sweep run --jobs {jobs} failed: {done.stderr.strip()}")
    return throughput(folder, storage, "bench")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--epochs", type=int, nargs=2, default=(300, 330), metavar=("LOW", "HIGH"),
                        help="the trial length: 300-330 epochs take ~50 ms here")
    parser.add_argument("--skip-postgres", action="store_true")
    args = parser.parse_args()
    epochs = tuple(args.epochs)
    print(f"one training at this setting: {one_training_ms(sum(epochs) // 2):.0f} ms "
          f"(epochs {epochs[0]}-{epochs[1]}; target >= 50 ms)")
    lines = []
    for label, postgres in (("embedded (journal + MLflow SQLite)", False),
                            ("PostgreSQL storage + MLflow SQLite", True))[: 1 if args.skip_postgres else 2]:
        rates = {}
        for jobs in (1, 2):
            if postgres:
                from tests.support import pg

                with pg.database() as url:
                    rates[jobs] = run(jobs, args.trials, url, epochs)
            else:
                rates[jobs] = run(jobs, args.trials, None, epochs)
            print(f"{label}: --jobs {jobs}: {rates[jobs]:.2f} trials/s ({args.trials} trials)", flush=True)
        line = (f"{label}, ~{one_training_ms(sum(epochs) // 2):.0f} ms trials: --jobs 2 / --jobs 1 = "
                f"{rates[2] / rates[1]:.2f}x ({rates[1]:.2f} -> {rates[2]:.2f} trials/s; target >= 1.8x)")
        print(line)
        lines.append(line)
    print("\nSUMMARY")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
