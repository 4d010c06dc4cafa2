"""Trials per second of `sweep run --jobs 1` and `--jobs 2`, on the embedded stores and on PostgreSQL; with
`--sleeping`, the orchestration's overhead and CPU per trial on 1 s trials that only sleep, `--jobs 1, 2, 4, 8`.

    python bench/parallel.py [--trials 40] [--skip-postgres]
    python bench/parallel.py --sleeping [--quick] [--jobs 1,2,4,8] [--sleep-trials 20,40,200,200] [--pause 1.0] \
        [--code PATH]

Each run is a real `sweep run` subprocess in a fresh folder (journal file + MLflow SQLite), or with
`--storage postgresql://...` on a fresh database. Throughput is taken from the study itself: trials
finished per second between the first trial's start and the last trial's end, so process start-up and
store creation are left out. The trainer setting takes >= 50 ms per trial (printed).

`--sleeping`: one `sweep run --jobs J` subprocess per job count in a fresh folder (embedded stores), a function
trainer that sleeps `--pause` seconds, random sampler, no pruner. Wall time is the subprocess's, start-up and end
included; ideal = trials x pause / jobs; overhead = wall / ideal - 1; CPU is what the subprocess and every process
it waited for used (the workers, the tracking process), as /usr/bin/time counts it: the trials sleep, so all of it
is orchestration. CPU/trial divides it by the trials, start-up and end included; steady CPU/trial is the process
tree's CPU (sampled from /proc) between the first trial's start and the last one's end, per trial run meanwhile.
`--code PATH` runs another checkout's sweep (its commit is printed): the before figure.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import SLEEPER_CONFIG, SLEEPER_TRAINER, check_code, child_env, code_env  # noqa: E402

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


def children_cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
BOOTED = next(float(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
              if line.startswith("btime "))


def process_tree(root: int) -> dict[int, tuple[float, float]]:
    """pid -> (CPU seconds used so far, start time) of ``root`` and every process below it still there (/proc)."""
    parents: dict[int, int] = {}
    seen: dict[int, tuple[float, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended meanwhile
        parents[int(entry.name)] = int(fields[1])
        seen[int(entry.name)] = ((int(fields[11]) + int(fields[12])) / CLOCK_TICKS,
                                 BOOTED + int(fields[19]) / CLOCK_TICKS)
    tree = {}
    for pid, facts in seen.items():
        ancestor = pid
        while ancestor not in (root, 0, 1) and ancestor in parents:
            ancestor = parents[ancestor]
        if ancestor == root:
            tree[pid] = facts
    return tree


class TreeSampler:
    """The process tree's CPU, sampled while it runs (how much it used between two moments), and when each of its
    processes started."""

    def __init__(self, root: int) -> None:
        self.samples: list[tuple[float, float]] = []
        self.started: dict[int, float] = {}
        self._root, self._done = root, threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._done.wait(0.2):
            tree = process_tree(self._root)
            self.samples.append((time.time(), sum(cpu for cpu, _ in tree.values())))
            for pid, (_, started) in tree.items():
                self.started.setdefault(pid, started)

    def stop(self) -> None:
        self._done.set()
        self._thread.join()

    def between(self, first: float, last: float) -> float:
        """CPU seconds used from ``first`` to ``last`` (wall-clock times), from the nearest samples inside."""
        inside = [cpu for at, cpu in self.samples if first <= at <= last]
        return inside[-1] - inside[0] if len(inside) >= 2 else float("nan")


def sleeping_run(jobs: int, trials: int, pause: float, code: Path | None
                 ) -> tuple[float, float, float, float, float | None]:
    """(wall, CPU, seconds from the launch to the first trial's start, CPU per trial while trials ran, the slowest
    worker's seconds from its start to its first trial's start) of one `sweep run --jobs` of sleeping
    trials. CPU per trial while trials ran is the steady cost: start-up and the end left out."""
    import optuna

    from sweep.study import open_storage

    folder = Path(tempfile.mkdtemp(prefix=f"sweep-sleeping-{jobs}-"))
    (folder / "sleeper.py").write_text(SLEEPER_TRAINER, encoding="utf-8")
    (folder / "sweep.yaml").write_text(SLEEPER_CONFIG.format(trials=trials, pause=pause), encoding="utf-8")
    env = code_env(code) if code is not None else child_env()
    cpu_before, launched = children_cpu(), time.time()
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "sweep.cli", "run", "--config", "sweep.yaml", "--name",
                                "bench", "--jobs", str(jobs)], cwd=folder, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    sampler = TreeSampler(process.pid)
    _, err = process.communicate()
    wall = time.perf_counter() - started
    sampler.stop()
    cpu = children_cpu() - cpu_before
    if process.returncode != 0:
        raise SystemExit(f"sweep run --jobs {jobs} failed: {err.strip()}")
    study = optuna.load_study(study_name="bench", storage=open_storage(str(folder / "sweep.journal"), create=False))
    done = [t for t in study.get_trials(deepcopy=False) if t.datetime_start and t.datetime_complete]
    first = min(t.datetime_start.timestamp() for t in done)
    last = max(t.datetime_complete.timestamp() for t in done)
    # the trials that ran inside the window, counted by their share of it: a trial per `pause` per job
    steady = sampler.between(first, last) / max(1.0, (last - first) / pause * jobs)
    firsts: dict[int, float] = {}
    for trial in done:
        pid = int(str(trial.user_attrs.get("sweep.worker", ":0")).rsplit(":", 1)[1])
        firsts[pid] = min(firsts.get(pid, float("inf")), trial.datetime_start.timestamp())
    # `sweep run --jobs` starts its workers held, before the study and parent run exist: a worker can start trials
    # once the parent run is there, so its start counts from its process start or the parent's, whichever is later
    parent_started = parent_run_start(folder, study)
    workers = [at - max(sampler.started[pid], parent_started) for pid, at in firsts.items()
               if pid in sampler.started and pid != process.pid]
    return wall, cpu, first - launched, steady, max(workers) if workers else None


def parent_run_start(folder: Path, study: object) -> float:
    """When the sweep's parent run was created (seconds since the epoch), from its MLflow store in ``folder``."""
    from mlflow import MlflowClient

    from sweep.study.attrs import SweepAttrs

    run_id = SweepAttrs.read(study).parent_run_id
    return MlflowClient(f"sqlite:///{folder / 'mlflow.db'}").get_run(run_id).info.start_time / 1000


def sleeping(args: argparse.Namespace) -> None:
    jobs_list = [int(jobs) for jobs in args.jobs.split(",")]
    counts = [int(trials) for trials in args.sleep_trials.split(",")]
    if args.quick:
        jobs_list, counts, args.pause = [1, 2], [4, 8], 0.2
    if len(counts) != len(jobs_list):
        raise SystemExit("--sleep-trials gives one trial count per --jobs value")
    code = Path(args.code).resolve() if args.code else None
    if code is not None:
        print(check_code(code))
    print(f"load average {os.getloadavg()[0]:.2f} at the start, {os.cpu_count()} cores; "
          f"trials sleep {args.pause:g} s (function trainer, random sampler, no pruner, embedded stores)")
    rows = []
    for jobs, trials in zip(jobs_list, counts):
        wall, cpu, first, steady, worker_start = sleeping_run(jobs, trials, args.pause, code)
        worker = f"{worker_start:>9.1f} s" if worker_start is not None else f"{'-':>11}"
        ideal = trials * args.pause / jobs
        rows.append(f"{jobs:>4} | {trials:>6} | {wall:>6.1f} s | {ideal:>5.1f} s | {(wall / ideal - 1) * 100:>7.0f}% "
                    f"| {cpu:>6.1f} s | {cpu / trials:>9.3f} s | {steady:>14.3f} s | {first:>9.1f} s | {worker}")
        print(f"--jobs {jobs}: {trials} trials, wall {wall:.1f} s, CPU {cpu:.1f} s ({steady:.3f} s per trial while "
              f"trials ran), first trial {first:.1f} s after the launch", flush=True)
    print("\nSUMMARY")
    print("jobs | trials |     wall |   ideal | overhead |      CPU |   CPU/trial | steady CPU/trial | first trial "
          "| worker start")
    print("\n".join(rows))
    print(f"load average {os.getloadavg()[0]:.2f} at the end; targets: overhead <= 20% at --jobs 4 over 200 trials, "
          f"CPU <= 0.1 s per trial at every job count, --jobs 8 no slower than --jobs 4 for the same trials, a worker "
          f"running trials within 1 s of its start (worker start: the slowest worker's, from its process start or the "
          f"parent run's creation, whichever is later, to its first trial)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sleeping", action="store_true", help="the overhead table on trials that only sleep")
    parser.add_argument("--jobs", default="1,2,4,8", help="--sleeping: the job counts")
    parser.add_argument("--sleep-trials", default="20,40,200,200", help="--sleeping: trials per job count")
    parser.add_argument("--pause", type=float, default=1.0, help="--sleeping: seconds each trial sleeps")
    parser.add_argument("--code", help="--sleeping: run this checkout's sweep instead (the before figure)")
    parser.add_argument("--quick", action="store_true", help="--sleeping: --jobs 1,2 with 4 and 8 trials of 0.2 s")
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--epochs", type=int, nargs=2, default=(300, 330), metavar=("LOW", "HIGH"),
                        help="the trial length: 300-330 epochs take ~50 ms here")
    parser.add_argument("--skip-postgres", action="store_true")
    args = parser.parse_args()
    if args.sleeping:
        sleeping(args)
        return
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
