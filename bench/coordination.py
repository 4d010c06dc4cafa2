"""The coordination plane's ceiling: trial starts per second with many workers whose trials only sleep.

    python bench/coordination.py                        # 16, 32, 64 workers through PostgreSQL, the proxy, Redis
    python bench/coordination.py --quick                # 16 workers, a short window: the smoke test
    python bench/coordination.py --workers 64 --backends grpc --profile

Each worker is a process running the product's trial loop (sweep.engine.loop.TrialLoop: the trial gate, the
census, Optuna's ask and tell, dead-worker checks, the heartbeat) on one shared study, with a trainer that
sleeps --trial-seconds and returns a number. MLflow is left out: the product has no switch to turn tracking
off, and with it 64 workers would each start a tracking process (twice the processes on a 2-core machine) and
write to one MLflow store, which measures that store rather than the plane. The loop's recorder here is a
stand-in that records nothing (the loop hands records to the tracking process without waiting for them,
except the child run id, which a trainer that never asks for it does not wait for).

The backends: PostgreSQL straight (RDBStorage, advisory-lock gate, heartbeats), `sweep storage-proxy` serving
a PostgreSQL database (grpc://) or a journal file on the proxy's disk (grpc-journal), where the proxy decides
each start in one call (sweep/study/served.py, no gate), and a journal in Redis (Redis lock gate).

A run: all workers set up (imports, storage, study), then start together; the config's timeout stops new
trials after --seconds. Trial starts per second = trials whose start the storage recorded inside the window
(its first fifth is warm-up, left out) / the window's length. Printed beside it: the bound the trainer alone
sets (workers / trial seconds), the machine's CPU use in the window (2 cores here: a CPU-bound plane shows
~100%), the proxy's own CPU use, and per trial where a worker's time went (waiting for and holding the gate,
the census, ask, tell, the dead-worker check, or the start the proxy decided). Asserts nothing; the target
(>= 200 starts/s for one backend) is printed beside the figures.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

if not __package__:  # `python bench/coordination.py`: bench/ is on sys.path, where bench/trainer.py shadows it
    _bench = Path(__file__).resolve().parent
    sys.path[:] = [str(_bench.parent), *(entry for entry in sys.path if Path(entry or ".").resolve() != _bench)]

from bench.common import child_env, load, timed_calls, versions

# -- settings ------------------------------------------------------------------------------------------------
WORKERS = (16, 32, 64)
QUICK_WORKERS = (16,)
SECONDS = 20.0  # the window in which workers start trials
QUICK_SECONDS = 8.0
WARMUP_SHARE = 0.2  # the window's first fifth is left out of the rate
TRIAL_SECONDS = 0.1  # the trainer's sleep: 64 workers could start 640 trials/s if the plane kept up
TARGET_STARTS = 200.0  # trial starts per second, for at least one backend (1,000 workers with 5 s trials)
BACKENDS = ("postgres", "grpc", "grpc-journal", "redis")
POSTGRES = os.environ.get("SWEEP_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS = os.environ.get("SWEEP_BENCH_REDIS", "redis://127.0.0.1:6379/0")
SETUP_SECONDS = 600.0  # 64 workers importing optuna on 2 cores take a while to be ready
PROFILE_TOP = 20

# what each worker times, per trial: (target, meaning)
PARTS = {
    "gate": ("sweep.study.sharing:TrialGate._acquire", "waiting for the gate (reading others' writes meanwhile)"),
    "census": ("sweep.study.census:Tally.look", "census (inside the gate)"),
    "ask": ("sweep.study.sweep_study:ask_new", "a new trial (inside the gate; a waiting retry takes Optuna's ask)"),
    # behind `sweep storage-proxy` the tell's writes go with the next start (in "start" below)
    "tell": ("sweep.study.sweep_study:tell_without_reading_back", "Optuna's tell"),
    "dead": ("sweep.study.sweep_study:fail_dead_trials", "dead-worker check"),
    "next": ("sweep.engine.loop:TrialLoop._next_trial", "gate wait + hold (count, ask, mark worker)"),
    # behind `sweep storage-proxy` the proxy decides starts (sweep/study/served.py) and the gate is not taken
    "start": ("sweep.study.sweep_study:SweepStudy.start_served",
              "a start the proxy decides (the last tell's writes, census, decision, ask)"),
}


# -- one worker (a process of its own) -------------------------------------------------------------------------


class NullRecorder:
    """The loop's recorder, recording nothing: MLflow is not part of the plane measured here."""

    experiment_id: str | None = None

    def send(self, request: Any) -> None:
        return None

    def call(self, request: Any) -> Any:
        return None

    def run_id(self, number: int) -> str | None:
        return None


class NullListener:
    def sweep_opening(self, _name: str, _target: int, _resumed: bool) -> None:
        return None  # the stores' opening is timed from sweep_started

    def sweep_started(self, start: Any) -> None:
        return None

    def trial_finished(self, update: Any) -> None:
        return None

    def finishing(self) -> None:
        return None

    def stopping(self) -> None:
        return None


class SleepTrainer:
    """A trainer whose trial costs no CPU: the Trial already drew its params (the sampler ran)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def run(self, trial: Any) -> Any:
        from sweep.trainers.base import TrialOutcome

        time.sleep(self.seconds)
        value = random.random()
        return TrialOutcome(value=value, metrics={"val_accuracy": value})

    def provenance(self) -> dict[str, str]:
        return {}

    def mlflow_seconds(self) -> None:
        return None

    def model_publishing(self) -> Any:
        from sweep.records import TRIAL_LOGGED_MODEL

        return TRIAL_LOGGED_MODEL

    def close(self) -> None:
        return None


def bench_config(seconds: float, sampler: str) -> Any:
    from sweep.config import SweepConfig
    from sweep.space import FloatRange, IntRange

    return SweepConfig(space={"lr": FloatRange(0.01, 1.0, log=True), "epochs": IntRange(1, 10)}, sampler=sampler,
                       pruner="none", trials=10**6, timeout=seconds, seed=None)


def run_worker(storage: str, name: str, folder: Path, index: int, seconds: float, trial_seconds: float,
               sampler: str, profile: bool) -> None:
    """Set up, say so (ready-N), wait for the go file, run the loop until the timeout, write result-N.json."""
    import optuna

    from sweep.engine.loop import StopSignal, TrialLoop
    from sweep.locations import StorageLocation
    from sweep.study.sharing import TrialGate
    from sweep.study.storage import configure_optuna, make_pruner, make_sampler, open_storage
    from sweep.study.sweep_study import SweepStudy

    configure_optuna()
    config = bench_config(seconds, sampler)
    location = StorageLocation.parse(storage)
    result: dict[str, Any] = {"trials": 0, "parts": {}, "error": None}
    try:
        backing = open_storage(location, create=False)
        study = SweepStudy(optuna.load_study(study_name=name, storage=backing, sampler=make_sampler(config),
                                             pruner=make_pruner(config)), config)
        gate = TrialGate(location, backing, name)
        loop = TrialLoop(study, config, SleepTrainer(trial_seconds), NullRecorder(),  # type: ignore[arg-type]
                         NullListener(), time.perf_counter(), StopSignal(), gate, folder / "workdirs")
        (folder / f"ready-{index}").touch()
        while not (folder / "go").exists():
            time.sleep(0.005)
        with contextlib.ExitStack() as timers:
            calls = {part: timers.enter_context(timed_calls(target)) for part, (target, _) in PARTS.items()}
            profiler = None
            if profile:
                import cProfile

                profiler = cProfile.Profile()
                profiler.enable()
            loop.run()
            if profiler is not None:
                profiler.disable()
                profiler.dump_stats(str(folder / f"profile-{index}"))
        gate.close()
        result["trials"] = loop.trials_run
        result["parts"] = {part: sum(seconds for _, seconds in found) for part, found in calls.items()}
        result["calls"] = {part: len(found) for part, found in calls.items()}
    except Exception as error:  # the bench reports a worker's failure (too many connections, say) as a figure
        result["error"] = f"{type(error).__name__}: {str(error).strip().splitlines()[0] if str(error).strip() else ''}"
        (folder / f"ready-{index}").touch()
    (folder / f"result-{index}.json").write_text(json.dumps(result), encoding="utf-8")


# -- backends ------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database, dropped after; yields its URL."""
    import psycopg

    name = f"sweep_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(POSTGRES, autocommit=True, connect_timeout=3) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield POSTGRES.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(POSTGRES, autocommit=True, connect_timeout=3) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def storage_proxy(storage: str, folder: Path) -> Iterator[tuple[str, int]]:
    """`sweep storage-proxy` serving ``storage``: (its grpc:// URL, its pid); stopped after."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = (folder / "proxy.log").open("w")
    process = subprocess.Popen([sys.executable, "-m", "sweep.cli", "storage-proxy", "--storage", storage,
                                "--port", str(port)], stdout=subprocess.PIPE, stderr=log, text=True,
                               env=child_env(), cwd=folder)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if "listening" not in line:
            raise RuntimeError(f"sweep storage-proxy did not start: {line} (see {log.name})")
        yield f"grpc://127.0.0.1:{port}", process.pid
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@contextlib.contextmanager
def redis_journal() -> Iterator[str]:
    """A journal in Redis under a key prefix of its own; its keys deleted after."""
    import redis

    prefix = f"sweep-bench-{uuid.uuid4().hex[:10]}"
    redis.Redis.from_url(REDIS, socket_connect_timeout=3).ping()
    try:
        yield f"{REDIS}?prefix={prefix}"
    finally:
        client = redis.Redis.from_url(REDIS)
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        for start in range(0, len(keys), 1000):
            client.delete(*keys[start:start + 1000])


@contextlib.contextmanager
def backend(kind: str, folder: Path) -> Iterator[tuple[str, int | None]]:
    """The storage URL of a fresh store of ``kind``, and the pid of its proxy (grpc only)."""
    if kind == "postgres":
        with postgres_database() as url:
            yield url, None
    elif kind == "grpc":
        with postgres_database() as url, storage_proxy(url, folder) as (proxy_url, pid):
            yield proxy_url, pid
    elif kind == "grpc-journal":  # the proxy over a journal file on its own disk: no database round trips
        journal = folder / f"proxy-{uuid.uuid4().hex[:8]}.journal"
        with storage_proxy(str(journal), folder) as (proxy_url, pid):
            yield proxy_url, pid
    elif kind == "redis":
        with redis_journal() as url:
            yield url, None
    else:
        raise SystemExit(f"unknown backend {kind!r}; use {', '.join(BACKENDS)}")


# -- measuring -----------------------------------------------------------------------------------------------


def cpu_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    fields = [int(value) for value in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


def redis_server_pid() -> int | None:
    """The local redis-server's pid (its CPU use is a figure), None when it is elsewhere."""
    import redis

    try:
        pid = int(redis.Redis.from_url(REDIS).info("server")["process_id"])
    except (redis.RedisError, KeyError, ValueError):
        return None
    return pid if Path(f"/proc/{pid}").exists() else None


def process_seconds(pid: int | None) -> float:
    """CPU seconds (user + system) a process has used; 0 without one."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Result:
    backend: str
    workers: int
    starts_per_second: float
    started: int  # trials started in the whole window
    failed_workers: list[str]
    cpu_busy: float  # share of the machine's CPU in the window
    worker_cpu_ms: float  # CPU time of the worker processes in the window / trials started in it
    server_cpu_ms: float  # CPU time of the proxy (grpc) or redis-server (redis) in the window / trials started
    proxy_cpu: float  # cores the proxy process used in the window
    parts_ms: dict[str, float]  # per trial started, averaged over the workers

    @property
    def hold_ms(self) -> float:
        """The gated part of a trial start (count, ask, mark the worker): one worker at a time."""
        return max(0.0, self.parts_ms["next"] - self.parts_ms["gate"])


def measure(kind: str, storage: str, proxy_pid: int | None, workers: int, args: argparse.Namespace,
            folder: Path) -> Result:
    import optuna

    from sweep.locations import StorageLocation
    from sweep.study.starting import create_study
    from sweep.study.storage import configure_optuna, open_storage

    configure_optuna()
    name = f"bench{workers}"
    create_study(open_storage(StorageLocation.parse(storage)), bench_config(args.seconds, args.sampler), name)
    run_folder = folder / f"{kind}-{workers}"
    run_folder.mkdir()
    root = Path(__file__).resolve().parent.parent
    env = child_env(PYTHONPATH=os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]))
    processes = [subprocess.Popen([sys.executable, "-m", "bench.coordination", "--worker", storage, name,
                                   str(run_folder), str(index), "--seconds", str(args.seconds), "--trial-seconds",
                                   str(args.trial_seconds), "--sampler", args.sampler]
                                  + (["--profile"] if args.profile and index == 0 else []),
                                  cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                 for index in range(workers)]
    try:
        deadline = time.monotonic() + SETUP_SECONDS
        while sum((run_folder / f"ready-{index}").exists() for index in range(workers)) < workers:
            if time.monotonic() > deadline or any(process.poll() not in (None, 0) for process in processes):
                break
            time.sleep(0.2)
        busy_before, total_before = cpu_ticks()
        proxy_before = process_seconds(proxy_pid)
        server = proxy_pid or (redis_server_pid() if kind == "redis" else None)
        server_before = process_seconds(server)
        workers_before = sum(process_seconds(process.pid) for process in processes)
        go = datetime.now()
        (run_folder / "go").touch()
        time.sleep(args.seconds)
        busy_after, total_after = cpu_ticks()
        proxy_after = process_seconds(proxy_pid)
        server_after = process_seconds(server)
        workers_after = sum(process_seconds(process.pid) for process in processes)
        for process in processes:
            process.wait(timeout=120 + args.trial_seconds)
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    results = [json.loads(path.read_text()) for path in sorted(run_folder.glob("result-*.json"))]
    failed = sorted({result["error"] for result in results if result["error"]}
                    | {f"a worker ended with exit code {process.returncode}: "
                       f"{(process.stderr.read() if process.stderr else '').strip().splitlines()[-1:]}"
                       for process in processes if process.returncode != 0})
    study = optuna.load_study(study_name=name, storage=open_storage(StorageLocation.parse(storage)))
    starts = sorted((trial.datetime_start - go).total_seconds() for trial in study.get_trials(deepcopy=False)
                    if trial.datetime_start is not None)
    warm = args.seconds * WARMUP_SHARE
    inside = [start for start in starts if warm <= start <= args.seconds]
    trials = sum(result["trials"] for result in results) or 1
    parts = {part: 1000 * sum(result["parts"].get(part, 0.0) for result in results) / trials for part in PARTS}
    if args.profile:
        print_profile(run_folder / "profile-0")
    busy_share = (busy_after - busy_before) / max(1, total_after - total_before)
    window_starts = sum(1 for start in starts if 0 <= start <= args.seconds) or 1
    return Result(kind, workers, len(inside) / (args.seconds - warm), len(starts), failed, busy_share,
                  1000 * (workers_after - workers_before) / window_starts,
                  1000 * (server_after - server_before) / window_starts,
                  (proxy_after - proxy_before) / args.seconds, parts)


def print_profile(path: Path) -> None:
    import pstats

    if not path.exists():
        return
    print(f"  cProfile of worker 0 (top {PROFILE_TOP} by own time):")
    pstats.Stats(str(path)).strip_dirs().sort_stats("tottime").print_stats(PROFILE_TOP)


def show(result: Result, trial_seconds: float) -> None:
    bound = result.workers / trial_seconds
    proxy = f", proxy {result.proxy_cpu:.2f} cores" if result.backend.startswith("grpc") else ""
    print(f"{result.backend:<9} {result.workers:>3} workers: {result.starts_per_second:7.1f} trial starts/s "
          f"(trainer bound {bound:.0f}/s; {result.started} started; CPU {100 * result.cpu_busy:.0f}%{proxy})")
    print("          per trial, ms: " + ", ".join(f"{part} {value:.1f}" for part, value in result.parts_ms.items()))
    server = {"grpc": "the proxy", "grpc-journal": "the proxy", "redis": "redis-server"}.get(result.backend)
    served = (f"; {server} {result.server_cpu_ms:.1f} ms CPU per start (one core allows "
              f"{1000 / max(result.server_cpu_ms, 1e-3):.0f}/s)") if server else ""
    held = (f"gate held {result.hold_ms:.1f} ms per start (the gate alone allows {1000 / result.hold_ms:.0f}/s)"
            if result.hold_ms > 0 else "the gate not taken (the proxy decides the starts)")
    print(f"          {held}; workers {result.worker_cpu_ms:.1f} ms CPU per start{served}")
    for failure in result.failed_workers:
        print(f"          worker failure: {failure}")


def stop_on_sigterm(_signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="16 workers, a short window: the smoke test")
    parser.add_argument("--workers", help="comma-separated worker counts [16,32,64]")
    parser.add_argument("--backends", default=",".join(BACKENDS), help="postgres,grpc,redis")
    parser.add_argument("--seconds", type=float, help="the window in which trials start [20; 8 with --quick]")
    parser.add_argument("--trial-seconds", type=float, default=TRIAL_SECONDS, help="the trainer's sleep")
    parser.add_argument("--sampler", default="random", help="random (the plane alone) or tpe")
    parser.add_argument("--profile", action="store_true", help="cProfile worker 0 and print where its time went")
    parser.add_argument("--worker", nargs=4, metavar=("STORAGE", "NAME", "FOLDER", "INDEX"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.seconds = args.seconds or (QUICK_SECONDS if args.quick else SECONDS)
    if args.worker:
        storage, name, folder, index = args.worker
        run_worker(storage, name, Path(folder), int(index), args.seconds, args.trial_seconds, args.sampler,
                   args.profile)
        return
    os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
    signal.signal(signal.SIGTERM, stop_on_sigterm)  # a script's own handler: cleanup runs as on Ctrl-C
    counts = [int(value) for value in args.workers.split(",")] if args.workers else \
        list(QUICK_WORKERS if args.quick else WORKERS)
    print(f"coordination plane: {versions(('optuna', 'redis', 'grpcio', 'psycopg'))}; {os.cpu_count()} cores, "
          f"{load()}")
    print(f"trainer sleeps {args.trial_seconds} s, sampler {args.sampler}, window {args.seconds:.0f} s "
          f"(first {100 * WARMUP_SHARE:.0f}% left out); target >= {TARGET_STARTS:.0f} trial starts/s for one backend")
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="sweep-coordination-") as scratch:
        for kind in args.backends.split(","):
            for workers in counts:
                try:
                    with backend(kind, Path(scratch)) as (storage, proxy_pid):
                        result = measure(kind, storage, proxy_pid, workers, args, Path(scratch))
                except Exception as error:  # an unreachable backend is a line, the others still run
                    print(f"{kind:<9} {workers:>3} workers: not measured: {type(error).__name__}: "
                          f"{str(error).strip().splitlines()[0] if str(error).strip() else ''}")
                    continue
                show(result, args.trial_seconds)
                results.append(result)
    print("SUMMARY")
    best = max(results, key=lambda found: found.starts_per_second, default=None)
    for result in results:
        print(f"  {result.backend}/{result.workers}: {result.starts_per_second:.1f} starts/s"
              + (f" ({len(result.failed_workers)} kinds of worker failure)" if result.failed_workers else ""))
    if best is not None:
        verdict = "met" if best.starts_per_second >= TARGET_STARTS else "missed"
        print(f"  best: {best.backend} with {best.workers} workers, {best.starts_per_second:.1f} starts/s; "
              f"target {TARGET_STARTS:.0f}/s {verdict}")


if __name__ == "__main__":
    main()
