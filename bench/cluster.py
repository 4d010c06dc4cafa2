"""Trials per second of `sweep run --on ray --workers 1, 2` against `--jobs 1, 2` on this machine: Ray's overhead.

    python bench/cluster.py [--quick] [--trials-short 40] [--trials-long 8]

Each run is a real `sweep run` subprocess in a fresh folder (journal file + MLflow SQLite), with a function
trainer that only sleeps (~50 ms and ~1 s trials), so the figures are the orchestration's, not a model's.
`--on ray` runs start their own local Ray instance (no address): its start is left out, as is every
worker's, because throughput is read from the study: trials finished per second between the first
trial's start and the last trial's end. Per trial and worker, wall time = workers / throughput; its part
above the sleep is the overhead, and Ray's overhead per trial is the --on ray figure minus the --jobs one.
`--quick` runs the ~50 ms trials only, 12 of them.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import SLEEPER_CONFIG, SLEEPER_TRAINER  # noqa: E402


def throughput(folder: Path) -> float:
    import optuna

    from sweep.study import open_storage

    study = optuna.load_study(study_name="bench", storage=open_storage(str(folder / "sweep.journal"), create=False))
    trials = [t for t in study.get_trials(deepcopy=False) if t.state.is_finished()]
    first = min(t.datetime_start for t in trials)
    last = max(t.datetime_complete for t in trials)
    return len(trials) / (last - first).total_seconds()


def run(where: list[str], trials: int, pause: float) -> float:
    folder = Path(tempfile.mkdtemp(prefix="sweep-cluster-"))
    (folder / "sleeper.py").write_text(SLEEPER_TRAINER, encoding="utf-8")
    (folder / "sweep.yaml").write_text(SLEEPER_CONFIG.format(trials=trials, pause=pause), encoding="utf-8")
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "RAY_USAGE_STATS_ENABLED": "0"}
    for name in ("MLFLOW_TRACKING_URI", "RAY_ADDRESS", "SWEEP_STORAGE"):
        env.pop(name, None)
    done = subprocess.run([sys.executable, "-m", "sweep.cli", "run", "--config", "sweep.yaml", "--name", "bench",
                           *where], cwd=folder, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"sweep run {' '.join(where)} failed: {done.stderr.strip()}")
    return throughput(folder)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="~50 ms trials only, 12 of them")
    parser.add_argument("--trials-short", type=int, default=40, help="trials of ~50 ms")
    parser.add_argument("--trials-long", type=int, default=8, help="trials of ~1 s")
    args = parser.parse_args()
    lengths = [(0.05, 12)] if args.quick else [(0.05, args.trials_short), (1.0, args.trials_long)]
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (other sessions add noise)")
    lines = []
    for pause, trials in lengths:
        per_trial: dict[tuple[str, int], float] = {}
        for workers in (1, 2):
            for label, where in (("--jobs", ["--jobs", str(workers)]),
                                 ("--on ray --workers", ["--on", "ray", "--workers", str(workers)])):
                rate = run(where, trials, pause)
                per_trial[label, workers] = workers / rate
                print(f"{pause * 1000:.0f} ms trials, {label} {workers}: {rate:.2f} trials/s ({trials} trials; "
                      f"{(workers / rate - pause) * 1000:.0f} ms overhead per trial and worker)", flush=True)
            ray_overhead = (per_trial["--on ray --workers", workers] - per_trial["--jobs", workers]) * 1000
            lines.append(f"{pause * 1000:.0f} ms trials, {workers} worker{'s' if workers > 1 else ''}: "
                         f"--jobs {workers / per_trial['--jobs', workers]:.2f} trials/s, --on ray "
                         f"{workers / per_trial['--on ray --workers', workers]:.2f} trials/s; Ray's overhead "
                         f"{ray_overhead:+.0f} ms per trial and worker")
    print("\nSUMMARY")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
