"""Benchmark sweep's per-trial overhead against hand-written MLflow + Optuna loops, on one machine.

    python bench/overhead.py                  # 50 trials of (s) (a) (b) (c), 1,000-trial (s), `sweep best`, pruning
    python bench/overhead.py --quick          # 10 trials, no 1,000-trial sweep, no pruning part: a smoke test
    python bench/overhead.py --profile 200    # cProfile one 200-trial in-process (s) run; top entries, then exit

Every contender runs the same trainer call, train(TrainConfig(...), split), on the bundled corpus with the
same small search space, TPE seed 0, no pruning, and a fresh temporary folder so every store starts empty:

    (s)  sweep: run_sweep in-process (journal file + MLflow SQLite through the tracking process), and
         `sweep run` as a real subprocess (wall time only)
    (f)  the same, with the same trainer call written as a user's fit(trial) function trainer
         (bench/function_trainer.py), once with `mlflow: off` and once with `mlflow: active`
    (a)  MLflow's hyperparameter-tuning guide: a parent run, one `mlflow.start_run(nested=True)` per trial,
         log_params + log_metrics, an in-memory Optuna study
    (b)  optuna-integration's MLflowCallback (nested child runs under a parent) with a SQLite Optuna study
    (c)  mlflow.optuna.MlflowStorage: MLflow runs are the Optuna storage

Overhead per trial = (wall - seconds inside train()) / trials. "Total" includes store creation and, for (s),
the start-up of the tracking process (spawn + `import mlflow`); "steady" runs from the end of the first trial
to the end of the sweep: (wall after trial 1 - trainer seconds of trials 2..N) / (N - 1).
Prints figures only, and a SUMMARY block at the end; it asserts nothing (targets are printed beside figures).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if not __package__:  # `python bench/overhead.py`: bench/ is on sys.path, where bench/trainer.py shadows the trainer
    _bench = Path(__file__).resolve().parent
    sys.path[:] = [str(_bench.parent), *(entry for entry in sys.path if Path(entry or ".").resolve() != _bench)]

from bench import function_trainer
from bench.common import (
    FIXED,
    METRIC,
    SAMPLER_SEED,
    SPACE,
    TARGET_BEST_SECONDS,
    TRAINER_CALL,
    child_env,
    describe_space,
    last_line,
    load,
    ms,
    sqlite_uri,
    sweep_yaml,
    tool,
    trainer_calls,
    versions,
    working_folder,
)
from trainer import Split, TrainConfig, TrainResult, load_corpus, split, train

# The spawned tracking process of (s) re-imports this file as __mp_main__: only light imports at the top
# (mlflow, optuna and optuna-integration are imported inside the functions that use them).

# -- settings ------------------------------------------------------------------------------------------------
TRIALS = 50
QUICK_TRIALS = 10
REPEATS = 3  # runs of (s), (a), (b) at --trials, interleaved; the median steady overhead is reported
TRIALS_LARGE = 1000
WINDOW = 100  # trials per window of the 1,000-trial sweep (first and last)
SAMPLER_ASKS = 20  # asks timed on the finished 1,000-trial study
BEST_RUNS = 5  # `sweep best` subprocess runs; the median is reported
PRUNING_SEEDS = 5
PRUNING_TRIALS = 30
TRAINER_REPEATS = 30  # trainings per point of the trainer timing; the median is reported
PROFILE_TOP = 15

TARGET_STEADY_MS = 10.0  # (s) steady overhead per trial at 50 trials
TARGET_LARGE_FACTOR = 2.0  # ... and at most this multiple of it at 1,000 trials
TARGET_PRUNED_EPOCHS = 0.5  # epochs(pruned) / epochs(unpruned)
TARGET_FUNCTION_SPREAD = 0.10  # (f)'s steady overhead within this fraction of (s)'s
TARGET_CALLBACK_FACTOR = 3.0  # (b) MLflowCallback's steady overhead at least this multiple of (s)'s and (f)'s

FUNCTION_MODES = {"f": "off", "fa": "active"}  # contender -> trainer.mlflow of the function trainer

LOGGED = {
    "s": "params (6 trainer settings), final metrics (6), per-epoch curves, model.json; parent: config, best, counts",
    "f": "the same as (s), through trial.log_params / log_metrics(step=epoch) / log_artifact(model.json)",
    "fa": "the same as (f); the child run is also MLflow's active run in the trial's process while fit runs",
    "a": "params (3 tuned) + final metrics (6) per child run; best params on the parent",
    "b": "params (3 tuned) + objective value + final metrics (6) + Optuna tags per child run",
    "c": "params (3 tuned) + objective value + final metrics (6); the runs are the Optuna storage",
}
LABELS = {
    "s": "(s) sweep, run_sweep in-process",
    "f": "(f) sweep, fit(trial) function trainer",
    "fa": "(f) with mlflow: active",
    "a": "(a) MLflow guide: nested start_run loop",
    "b": "(b) optuna-integration MLflowCallback",
    "c": "(c) mlflow.optuna.MlflowStorage",
}

SUMMARY: list[str] = []  # every figure, printed again at the end
STEADY_AT_TRIALS: list[float] = []  # (s)'s steady overhead at --trials, the yardstick of the 1,000-trial sweep
LOOP_AT_TRIALS: list[float] = []  # ... and the same without the wait after the last trial


def main() -> None:
    os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"  # the script's own process and the tracking process it spawns
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=None, help=f"trials per contender [default: {TRIALS}]")
    parser.add_argument("--quick", action="store_true",
                        help=f"{QUICK_TRIALS} trials, one repeat, no 1,000-trial sweep, no pruning part")
    parser.add_argument("--repeats", type=int, default=None, help=f"runs of (s) (a) (b) [default: {REPEATS}]")
    parser.add_argument("--trials-large", type=int, default=TRIALS_LARGE, help="trials of the large (s) sweep; 0 skips")
    parser.add_argument("--pruning-seeds", type=int, default=PRUNING_SEEDS, help="0 skips the pruning part")
    parser.add_argument("--pruning-trials", type=int, default=PRUNING_TRIALS)
    parser.add_argument("--skip-mlflow-storage", action="store_true", help="skip (c), the slowest contender")
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="only profile one N-trial in-process (s) run with cProfile")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folders (their path is printed)")
    parser.add_argument("--command-trials", type=int, default=None,
                        help="trials of the command-trainer contender [default: 30, 5 with --quick]; 0 skips")
    args = parser.parse_args()
    trials = args.trials or (QUICK_TRIALS if args.quick else TRIALS)
    repeats = args.repeats or (1 if args.quick else REPEATS)
    if trials < 2:
        parser.error("--trials must be >= 2 (the steady figure leaves the first trial out)")

    root = Path(tempfile.mkdtemp(prefix="sweep-bench-"))
    try:
        data = split(load_corpus(), FIXED["seed"])
        if args.profile:
            profile(args.profile, root)
            return
        print(f"machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, "
              f"{versions(('optuna', 'mlflow', 'optuna-integration', 'numpy'))}; {load()}")
        print(f"space: {describe_space()}; fixed {FIXED}; TPE seed {SAMPLER_SEED}; no pruning; objective {METRIC}")
        trainer_timing(data)
        if not args.quick:
            trainer_under_tracking(data, root)
        warm_up(root)
        last_s = compare(trials, repeats, data, root, skip_c=args.skip_mlflow_storage)
        large_folder = None
        if not args.quick and args.trials_large > 0:
            large_folder = large(args.trials_large, root)
        best_latency(large_folder or last_s)
        if not args.quick and args.pruning_seeds > 0:
            pruning(args.pruning_seeds, args.pruning_trials, root)
        else:
            print("\n== pruning saving: skipped (--quick or --pruning-seeds 0)")
            SUMMARY.append("pruning saving: skipped")
        command_trials = args.command_trials if args.command_trials is not None else (5 if args.quick else 30)
        if command_trials > 0:  # the command trainer: bench/command_overhead.py
            from bench.command_overhead import command_contender

            print("\n== command trainer")
            for line in command_contender(command_trials):
                print(line)
                SUMMARY.append(line)
        SUMMARY.append(f"at the end: {load()} (other processes on this machine add noise to every figure)")
        print("\nSUMMARY")
        for line in SUMMARY:
            print(line)
    finally:
        if args.keep:
            print(f"temporary folders kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


# -- shared pieces ---------------------------------------------------------------------------------------------


def suggest(trial: Any) -> dict[str, Any]:
    """The baselines' suggest calls: the same names, bounds, scales and order as sweep's config."""
    params: dict[str, Any] = {}
    for name, spec in SPACE.items():
        if spec["type"] == "float":
            params[name] = trial.suggest_float(name, spec["low"], spec["high"], log=spec.get("log", False))
        else:
            params[name] = trial.suggest_int(name, spec["low"], spec["high"], log=spec.get("log", False))
    return params


def fresh_folder(root: Path, name: str) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    return folder


class Clock:
    """Per-trial trainer seconds and end-of-trial timestamps of a baseline."""

    def __init__(self) -> None:
        self.trainer: list[float] = []
        self.ends: list[float] = []

    def train(self, params: dict[str, Any], data: Split) -> TrainResult:
        config = TrainConfig(**{**FIXED, **params})
        started = time.perf_counter()
        result = train(config, data)
        self.trainer.append(time.perf_counter() - started)
        return result

    def mark(self, _study: Any, _trial: Any) -> None:  # an Optuna callback: runs after the trial is told
        self.ends.append(time.perf_counter())


@dataclass
class Result:
    key: str
    trials: int
    wall: float  # whole run: store creation (and for (s) the tracking process start-up) included
    trainer: float  # seconds inside train()
    steady_wall: float  # end of the first trial -> end of the run
    steady_trainer: float  # trainer seconds of trials 2..N
    best: float | None
    notes: list[str] = field(default_factory=list)
    loop: float | None = None  # (s) only: steady overhead per trial up to the last trial_finished (no end wait)
    end_wait: float | None = None  # (s) only: last trial_finished -> run_sweep returned

    @property
    def overhead(self) -> float:
        return (self.wall - self.trainer) / self.trials

    @property
    def steady(self) -> float:
        return (self.steady_wall - self.steady_trainer) / (self.trials - 1)


def from_clock(key: str, trials: int, started: float, ended: float, clock: Clock, best: float | None) -> Result:
    return Result(key, trials, ended - started, sum(clock.trainer), ended - clock.ends[0], sum(clock.trainer[1:]),
                  best)


def trainer_timing(data: Split) -> None:
    """One training at the corners and centre of the space (the median of repeated calls)."""
    points = {
        "smallest": {name: spec["low"] for name, spec in SPACE.items()},
        "centre": {"lr": 0.5, "epochs": 5, "vocab_size": 225},
        "largest": {name: spec["high"] for name, spec in SPACE.items()},
    }
    curves: dict[str, list[tuple[int, float]]] = {}

    def on_epoch(epoch: int, metrics: Any) -> None:  # what sweep's objective does with every epoch: keep curves
        for name, value in metrics.items():
            curves.setdefault(name, []).append((epoch, value))

    figures = []
    cases = [(label, params, None) for label, params in points.items()]
    cases.append(("centre with an on_epoch curve callback, as (s) calls it", points["centre"], on_epoch))
    for label, params, callback in cases:
        config = TrainConfig(**{**FIXED, **params})
        train(config, data, callback)
        times = []
        for _ in range(TRAINER_REPEATS):
            curves.clear()
            started = time.perf_counter()
            train(config, data, callback)
            times.append(time.perf_counter() - started)
        figures.append(f"{label} {ms(statistics.median(times))}")
    line = f"one training (bundled corpus, median of {TRAINER_REPEATS}): {', '.join(figures)}"
    print(line)
    print("  (the floor is featurizing the 1,800 reviews on every call, ~4 ms here; a ~2 ms trainer is not "
          "reachable with this corpus, and trainer time is subtracted from every figure anyway)")
    SUMMARY.append(line)


def _mlflow_writer(uri: str, ready: Any, stop: Any) -> None:
    """A process that writes MLflow runs to SQLite in a loop, like sweep's tracking process does."""
    import logging

    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    client = MlflowClient(uri)
    experiment = client.create_experiment("writer")
    ready.set()
    while not stop.is_set():
        run = client.create_run(experiment)
        stamp = int(time.time() * 1000)
        client.log_batch(run.info.run_id, params=[Param("lr", "0.5")],
                         metrics=[Metric("val_loss", 0.5, stamp, step) for step in range(8)])
        client.set_terminated(run.info.run_id)


def trainer_under_tracking(data: Split, root: Path) -> None:
    """One training (the space's centre) alone, then while another process writes MLflow runs to SQLite."""
    import multiprocessing

    config = TrainConfig(**{**FIXED, "lr": 0.5, "epochs": 5, "vocab_size": 225})

    def median_training() -> float:
        times = []
        for _ in range(TRAINER_REPEATS * 3):
            started = time.perf_counter()
            train(config, data)
            times.append(time.perf_counter() - started)
        return statistics.median(times)

    idle = median_training()
    context = multiprocessing.get_context("spawn")
    ready, stop = context.Event(), context.Event()
    folder = fresh_folder(root, "writer")
    writer = context.Process(target=_mlflow_writer, args=(sqlite_uri(folder / "mlflow.db"), ready, stop),
                             daemon=True)
    with working_folder(folder):
        writer.start()
    try:
        while not ready.wait(0.5):
            if not writer.is_alive():
                print("trainer beside an MLflow writer: skipped (the writer process did not start)")
                return
        busy = median_training()
    finally:
        stop.set()
        writer.join(30)
    line = (f"one training (centre) alone {ms(idle)}, while another process writes MLflow runs to SQLite "
            f"{ms(busy)} (median of {TRAINER_REPEATS * 3})")
    print(line)
    SUMMARY.append(line)


def warm_up(root: Path) -> None:
    """Import mlflow/optuna/optuna-integration and create one throwaway MLflow SQLite store, untimed, so the
    first baseline does not pay one-off imports the others skip."""
    started = time.perf_counter()
    import logging

    import mlflow
    import optuna

    for name in ("mlflow", "alembic"):  # "Creating initial MLflow database tables..." on every new store
        logging.getLogger(name).setLevel(logging.WARNING)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with contextlib.suppress(ImportError):
        import optuna_integration.mlflow  # noqa: F401
    import sweep.engine.run  # noqa: F401

    folder = fresh_folder(root, "warm-up")
    with working_folder(folder):
        mlflow.set_tracking_uri(sqlite_uri(folder / "mlflow.db"))
        mlflow.set_experiment("warm-up")
        with mlflow.start_run():
            mlflow.log_param("x", 1)
    print(f"warm-up (imports + one MLflow SQLite store, not timed): {time.perf_counter() - started:.1f} s")


# -- (s): sweep ------------------------------------------------------------------------------------------------


class Listener:
    """A no-op progress listener that keeps timestamps."""

    def __init__(self) -> None:
        self.started: float | None = None
        self.ends: list[float] = []

    def sweep_opening(self, _name: str, _target: int, _resumed: bool) -> None:
        return None  # the stores' opening is timed from sweep_started

    def sweep_started(self, _start: Any) -> None:
        self.started = time.perf_counter()

    def trial_finished(self, _update: Any) -> None:
        self.ends.append(time.perf_counter())

    def finishing(self) -> None:
        return None

    def stopping(self) -> None:
        return None


@dataclass
class SweepRun:
    summary: Any
    listener: Listener
    trainer_times: list[float]
    call_started: float  # perf_counter when run_sweep was called
    call_ended: float  # ... and when it returned

    @property
    def wall(self) -> float:
        return self.call_ended - self.call_started

    @property
    def start_up(self) -> float:
        """run_sweep called -> sweep_started: stores opened, tracking process spawned, mlflow imported there."""
        return (self.listener.started or self.call_started) - self.call_started

    @property
    def drain(self) -> float:
        """Last trial_finished -> run_sweep returned: the tracking process empties its queue, the parent closes."""
        return self.call_ended - self.listener.ends[-1]


def sweep_in_process(trials: int, folder: Path, *, config_overrides: dict[str, Any] | None = None,
                     config_path: Path | None = None, trainer_call: str = TRAINER_CALL) -> SweepRun:
    from sweep.config import load_config
    from sweep.engine import run_sweep

    config = load_config(config_path or sweep_yaml(trials, folder), {"trials": trials, **(config_overrides or {})})
    listener = Listener()
    with working_folder(folder), trainer_calls(trainer_call) as times:
        started = time.perf_counter()
        summary = run_sweep(config, resume=False, listener=listener)
        ended = time.perf_counter()
    return SweepRun(summary, listener, list(times), started, ended)


def run_s(trials: int, root: Path, index: int, *, key: str = "s") -> tuple[Result, Path]:
    """run_sweep in a fresh folder; it loads and splits the bundled corpus itself, as the baselines do.
    ``key`` "f" or "fa": the function trainer of bench/function_trainer.py instead of the built-in one."""
    folder = fresh_folder(root, f"{key}-{trials}-{index}")
    if key in FUNCTION_MODES:
        config = sweep_yaml(trials, folder, trainer={"function": function_trainer.FIT, "mlflow": FUNCTION_MODES[key]})
        function_trainer.data.cache_clear()  # loaded once per sweep, as the built-in trainer loads its data
        run = sweep_in_process(trials, folder, config_path=config, trainer_call=function_trainer.TRAIN_CALL)
    else:
        run = sweep_in_process(trials, folder)
    summary, ends = run.summary, run.listener.ends
    if len(run.trainer_times) == trials:
        steady_trainer = sum(run.trainer_times[1:])
        wrapped = function_trainer.TRAIN_CALL if key in FUNCTION_MODES else TRAINER_CALL
        source = f"per-trial trainer times from a wrapper around {wrapped}"
    else:
        steady_trainer = summary.trainer_seconds * (trials - 1) / trials
        source = "trainer time of trials 2..N estimated as (N-1)/N of summary.trainer_seconds"
    best = summary.best.value if summary.best is not None else None
    result = Result(key, trials, summary.elapsed, summary.trainer_seconds, run.call_ended - ends[0], steady_trainer,
                    best)
    result.loop = (ends[-1] - ends[0] - steady_trainer) / (trials - 1)
    result.end_wait = run.drain
    result.notes = [f"start-up until sweep_started (stores, tracking process spawn + import mlflow, parent run): "
                    f"{run.start_up:.2f} s; after the last trial until run_sweep returned: {run.drain:.2f} s",
                    f"steady figure: {source}",
                    f"steady without the wait after the last trial (end of trial 1 -> end of trial N): "
                    f"{ms(result.loop)}/trial"]
    if run.trainer_times:
        result.notes.append(f"wrapper trainer sum {sum(run.trainer_times):.3f} s vs summary.trainer_seconds "
                            f"{summary.trainer_seconds:.3f} s")
    return result, folder


def run_s_subprocess(trials: int, root: Path) -> float | str:
    """`sweep run --trials N --config FILE` in a fresh folder: wall time of the whole command."""
    executable = tool("sweep")
    if executable is None:
        return "skipped: no `sweep` console script found"
    folder = fresh_folder(root, f"s-subprocess-{trials}")
    config = sweep_yaml(trials, folder)
    started = time.perf_counter()
    done = subprocess.run([executable, "run", "--trials", str(trials), "--config", str(config)], cwd=folder,
                          env=child_env(), capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        return f"failed (exit {done.returncode}): {last_line(done.stderr)}"
    return wall


# -- (a), (b), (c): the baselines ------------------------------------------------------------------------------


def run_a(trials: int, data: Split, root: Path, index: int) -> Result:
    """MLflow's hyperparameter-tuning guide: a parent run, a nested child run per trial, an in-memory study."""
    import mlflow
    import optuna

    folder = fresh_folder(root, f"a-{trials}-{index}")
    clock = Clock()
    with working_folder(folder):
        started = time.perf_counter()
        mlflow.set_tracking_uri(sqlite_uri(folder / "mlflow.db"))
        mlflow.set_experiment("bench-a")
        with mlflow.start_run(run_name="sweep-a"):

            def objective(trial: optuna.Trial) -> float:
                with mlflow.start_run(nested=True, run_name=f"trial-{trial.number}"):
                    params = suggest(trial)
                    result = clock.train(params, data)
                    mlflow.log_params(params)
                    mlflow.log_metrics(result.metrics)
                return result.metrics[METRIC]

            study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=SAMPLER_SEED))
            study.optimize(objective, n_trials=trials, callbacks=[clock.mark])
            mlflow.log_params({f"best_{name}": value for name, value in study.best_params.items()})
            mlflow.log_metric(f"best_{METRIC}", study.best_value)
        ended = time.perf_counter()
    return from_clock("a", trials, started, ended, clock, study.best_value)


def run_b(trials: int, data: Split, root: Path, index: int) -> Result | str:
    """optuna-integration's MLflowCallback, nested child runs under a parent, a SQLite Optuna study."""
    import warnings

    import mlflow
    import optuna

    try:
        from optuna_integration.mlflow import MLflowCallback
    except ImportError:
        return "skipped: optuna-integration is not installed (pip install 'sweep[bench]')"
    folder = fresh_folder(root, f"b-{trials}-{index}")
    clock = Clock()
    with working_folder(folder), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        started = time.perf_counter()
        uri = sqlite_uri(folder / "mlflow.db")
        mlflow.set_tracking_uri(uri)
        mlflow.set_experiment("bench-b")
        callback = MLflowCallback(tracking_uri=uri, metric_name="objective", create_experiment=False,
                                  mlflow_kwargs={"nested": True})

        @callback.track_in_mlflow()  # opens the trial's child run around the objective: final metrics go in it
        def objective(trial: optuna.Trial) -> float:
            params = suggest(trial)
            result = clock.train(params, data)
            mlflow.log_metrics(result.metrics)
            return result.metrics[METRIC]

        with mlflow.start_run(run_name="sweep-b"):
            study = optuna.create_study(study_name="bench-b", storage=sqlite_uri(folder / "optuna.db"),
                                        direction="maximize", sampler=optuna.samplers.TPESampler(seed=SAMPLER_SEED))
            study.optimize(objective, n_trials=trials, callbacks=[callback, clock.mark])
        ended = time.perf_counter()
    result = from_clock("b", trials, started, ended, clock, study.best_value)
    deprecated = sorted({str(w.message).split(". ")[0] for w in caught if "deprecated" in str(w.message)})
    result.notes = [f"warning: {message}" for message in deprecated]
    return result


def run_c(trials: int, data: Split, root: Path) -> Result | str:
    """mlflow.optuna.MlflowStorage: every trial is an MLflow run and the runs are the study."""
    import mlflow
    import optuna
    from mlflow import MlflowClient
    from mlflow.entities import Metric

    try:
        from mlflow.optuna import MlflowStorage
    except ImportError as error:
        return f"skipped: this MLflow has no mlflow.optuna.MlflowStorage ({error})"
    folder = fresh_folder(root, f"c-{trials}")
    clock = Clock()
    with working_folder(folder):
        started = time.perf_counter()
        uri = sqlite_uri(folder / "mlflow.db")
        mlflow.set_tracking_uri(uri)  # MlflowStorage builds its MlflowClient() from the global tracking URI
        client = MlflowClient(uri)
        storage = MlflowStorage(experiment_id=client.create_experiment("bench-c"))

        def objective(trial: optuna.Trial) -> float:
            params = suggest(trial)  # the storage logs them as the trial run's params
            result = clock.train(params, data)
            stamp = int(time.time() * 1000)
            run_id = trial._trial_id  # the trial's MLflow run
            client.log_batch(run_id, metrics=[Metric(name, value, stamp, 0) for name, value in result.metrics.items()])
            return result.metrics[METRIC]

        try:
            study = optuna.create_study(study_name="bench-c", storage=storage, direction="maximize",
                                        sampler=optuna.samplers.TPESampler(seed=SAMPLER_SEED))
            study.optimize(objective, n_trials=trials, callbacks=[clock.mark])
            best = study.best_value
            storage.flush_all_batches()
        finally:
            stop = getattr(storage, "_stop_event", None)
            if stop is not None:
                stop.set()  # its background flush thread
        ended = time.perf_counter()
    return from_clock("c", trials, started, ended, clock, best)


# -- part 1: the comparison at --trials ------------------------------------------------------------------------


def compare(trials: int, repeats: int, data: Split, root: Path, *, skip_c: bool) -> Path:
    print(f"\n== overhead at {trials} trials ({repeats} run(s) each of (s), (f) off and active, (a), (b), "
          f"interleaved; (c) once)")
    runs: dict[str, list[Result]] = {"s": [], "f": [], "fa": [], "a": [], "b": []}
    skipped: dict[str, str] = {}
    last_s = root
    for index in range(repeats):
        result, last_s = run_s(trials, root, index)
        runs["s"].append(result)
        report(result)
        for key in FUNCTION_MODES:
            runs[key].append(run_s(trials, root, index, key=key)[0])
            report(runs[key][-1])
        runs["a"].append(run_a(trials, data, root, index))
        report(runs["a"][-1])
        b = run_b(trials, data, root, index)
        if isinstance(b, str):
            skipped["b"] = b
        else:
            runs["b"].append(b)
            report(b)
    if skip_c:
        skipped["c"] = "skipped: --skip-mlflow-storage"
    else:
        c = run_c(trials, data, root)
        if isinstance(c, str):
            skipped["c"] = c
        else:
            runs["c"] = [c]
            report(c)
    subprocess_wall = run_s_subprocess(trials, root)

    chosen = {key: median_run(results) for key, results in runs.items() if results}
    s = chosen["s"]
    print(f"\n-- at {trials} trials: median run of each (by steady overhead)")
    for key in ("s", "a", "b", "c"):
        if key in skipped:
            print(f"{LABELS[key]}: {skipped[key]}")
            SUMMARY.append(f"{LABELS[key]}: {skipped[key]}")
            continue
        result = chosen[key]
        spread = ""
        if len(runs[key]) > 1:
            steadies = sorted(ms(r.steady) for r in runs[key])
            spread = f" (steady over runs: {', '.join(steadies)})"
        line = (f"{LABELS[key]}, {trials} trials: total wall {result.wall:.2f} s, trainer {result.trainer:.3f} s, "
                f"overhead {ms(result.overhead)}/trial incl. start-up, steady {ms(result.steady)}/trial{spread}")
        print(line)
        SUMMARY.append(line)
        if key != "s":
            ratio = (f"ratio {key}/(s) overhead: {result.overhead / s.overhead:.2f}x incl. start-up, "
                     f"{result.steady / s.steady:.2f}x steady")
            print("  " + ratio)
            SUMMARY.append(f"{LABELS[key]}: {ratio}")
        print(f"  logs: {LOGGED[key]}")
    for key in ("a", "b", "c"):
        SUMMARY.append(f"{LABELS[key]} logs: {LOGGED[key]} (less than (s))")
    function_trainer_figures(trials, runs, chosen)
    a = chosen["a"]
    slower = (s.trainer - a.trainer) / trials
    line = (f"(s) trainer time {ms(s.trainer / trials)}/trial vs (a) {ms(a.trainer / trials)}/trial: "
            f"{ms(slower)}/trial more inside train(), counted as trainer time, not as overhead above")
    print(line)
    print(f"  likely why: the tracking process writes MLflow SQLite while the next trial trains, on a "
          f"{os.cpu_count()}-CPU machine (compare 'while another process writes' above); the curve callback alone "
          f"costs ~0.1 ms (the trainer line)")
    SUMMARY.append(line)
    line = (f"(s) steady overhead counting that slowdown as overhead too: {ms(s.steady + slower)}/trial "
            f"(vs (a) {ms(a.steady)}/trial)")
    print(line)
    SUMMARY.append(line)
    line = (f"(s) steady overhead at {trials} trials: {ms(s.steady)}/trial (target <= {TARGET_STEADY_MS:.0f} ms at "
            f"50 trials)")
    print(line)
    SUMMARY.append(line)
    if s.loop is not None and s.end_wait is not None:
        line = (f"(s) of which the wait after the last trial until run_sweep returns: {s.end_wait:.2f} s = "
                f"{ms(s.end_wait / (trials - 1))}/trial; steady without it (end of trial 1 -> end of trial N): "
                f"{ms(s.loop)}/trial")
        print(line)
        SUMMARY.append(line)
        LOOP_AT_TRIALS.append(s.loop)
    bests = ", ".join(f"{key} {chosen[key].best:.4f}" for key in chosen if chosen[key].best is not None)
    print(f"best {METRIC} (the same TPE seed and space should propose the same trials): {bests}")
    if isinstance(subprocess_wall, float):
        line = (f"(s) `sweep run --trials {trials} --config FILE` as a subprocess: wall {subprocess_wall:.2f} s "
                f"(informational: interpreter start-up, imports, tracking process, stores, trials)")
    else:
        line = f"(s) `sweep run` subprocess: {subprocess_wall}"
    print(line)
    SUMMARY.append(line)
    STEADY_AT_TRIALS.append(s.steady)
    return last_s


def function_trainer_figures(trials: int, runs: dict[str, list[Result]], chosen: dict[str, Result]) -> None:
    """(f) beside (s): the same trainer call as a user's fit(trial); and what `mlflow: active` adds to it."""
    s, f, active = chosen["s"], chosen["f"], chosen["fa"]
    print(f"\n-- the function trainer at {trials} trials: median run of each (by steady overhead)")
    for key in FUNCTION_MODES:
        result = chosen[key]
        spread = ""
        if len(runs[key]) > 1:
            spread = f" (steady over runs: {', '.join(sorted(ms(r.steady) for r in runs[key]))})"
        line = (f"{LABELS[key]}, {trials} trials: total wall {result.wall:.2f} s, trainer {result.trainer:.3f} s, "
                f"overhead {ms(result.overhead)}/trial incl. start-up, steady {ms(result.steady)}/trial{spread}")
        print(line)
        print(f"  logs: {LOGGED[key]}")
        SUMMARY.append(line)
    line = (f"per-trial steady overhead, built-in vs function trainer: (s) {ms(s.steady)}, (f) {ms(f.steady)}: "
            f"(f)/(s) {f.steady / s.steady:.2f}x (target within {TARGET_FUNCTION_SPREAD:.0%}: "
            f"{1 - TARGET_FUNCTION_SPREAD:.2f}x..{1 + TARGET_FUNCTION_SPREAD:.2f}x); incl. start-up (s) "
            f"{ms(s.overhead)}, (f) {ms(f.overhead)}")
    print(line)
    SUMMARY.append(line)
    if s.loop is not None and f.loop is not None:
        line = (f"per-trial steady overhead without the wait after the last trial (end of trial 1 -> end of trial N): "
                f"(s) {ms(s.loop)}, (f) {ms(f.loop)}: (f)/(s) {f.loop / s.loop:.2f}x")
        print(line)
        SUMMARY.append(line)
    if "b" in chosen:
        b = chosen["b"]
        line = (f"(b) MLflowCallback / (f) function trainer, steady overhead: {b.steady / f.steady:.2f}x "
                f"(target >= {TARGET_CALLBACK_FACTOR:.0f}x; (b)/(s) {b.steady / s.steady:.2f}x)")
    else:
        line = "(b) MLflowCallback / (f) function trainer: skipped (no (b) run)"
    print(line)
    SUMMARY.append(line)
    line = (f"mlflow: active adds {ms(active.steady - f.steady)}/trial steady to (f) ({ms(active.steady)} vs "
            f"{ms(f.steady)}), {ms(active.overhead - f.overhead)}/trial incl. start-up (import mlflow in the "
            f"trial's process, the child run made active around each fit)")
    print(line)
    SUMMARY.append(line)


def median_run(results: list[Result]) -> Result:
    ranked = sorted(results, key=lambda r: r.steady)
    return ranked[(len(ranked) - 1) // 2]


def report(result: Result) -> None:
    print(f"{LABELS[result.key]}: wall {result.wall:.2f} s, trainer {result.trainer:.3f} s "
          f"({ms(result.trainer / result.trials)}/trial), overhead {ms(result.overhead)}/trial incl. start-up, "
          f"steady {ms(result.steady)}/trial")
    for note in result.notes:
        print(f"  {note}")


# -- part 2: (s) at 1,000 trials -------------------------------------------------------------------------------


def large(trials: int, root: Path) -> Path:
    print(f"\n== (s) at {trials:,} trials (one run, in-process)")
    folder = fresh_folder(root, f"s-large-{trials}")
    run = sweep_in_process(trials, folder)
    summary, listener = run.summary, run.listener
    ends = listener.ends
    average_trainer = summary.trainer_seconds / trials
    overall = (summary.elapsed - summary.trainer_seconds) / trials
    line = (f"(s) {trials:,} trials: total wall {summary.elapsed:.1f} s, trainer {summary.trainer_seconds:.2f} s, "
            f"overhead {ms(overall)}/trial incl. start-up")
    print(line)
    SUMMARY.append(line)
    window = min(WINDOW, trials // 2)
    first_start = listener.started if listener.started is not None else ends[0]
    spans = {f"1-{window}": (first_start, ends[window - 1], 0, window),
             f"{trials - window + 1}-{trials}": (ends[trials - window - 1], ends[-1], trials - window, trials)}
    print(f"windows: wall per trial from the listener's trial_finished timestamps (window 1 starts at "
          f"sweep_started); the listener has no trainer time, so the summary's average trainer time per trial "
          f"({ms(average_trainer)}) is shown, and the window's own trainer time from the wrapper around "
          f"sweep.trainers.sentiment.train where available")
    late_overhead = None
    for label, (begin, end, low, high) in spans.items():
        per_trial = (end - begin) / window
        text = f"(s) trials {label}: wall {ms(per_trial)}/trial, average trainer {ms(average_trainer)}/trial"
        if len(run.trainer_times) == trials:
            window_trainer = sum(run.trainer_times[low:high]) / window
            late_overhead = per_trial - window_trainer
            text += f", window trainer {ms(window_trainer)}/trial -> overhead {ms(per_trial - window_trainer)}/trial"
        else:
            late_overhead = per_trial - average_trainer
            text += f" -> overhead ~{ms(per_trial - average_trainer)}/trial"
        print(text)
        SUMMARY.append(text)
    print(f"start-up until sweep_started {run.start_up:.2f} s; after the last trial until run_sweep returned "
          f"{run.drain:.2f} s (the tracking process drains its queue)")
    if len(run.trainer_times) == trials:
        steady_trainer = sum(run.trainer_times[1:])
    else:
        steady_trainer = summary.trainer_seconds * (trials - 1) / trials
    steady = (run.call_ended - ends[0] - steady_trainer) / (trials - 1)
    line = f"(s) {trials:,} trials: steady overhead {ms(steady)}/trial (end of trial 1 -> end of run_sweep)"
    print(line)
    SUMMARY.append(line)
    if STEADY_AT_TRIALS:
        base = STEADY_AT_TRIALS[-1]
        line = (f"(s) steady overhead at {trials:,} trials / at the compared trial count ({ms(base)}): "
                f"{steady / base:.2f}x (target <= {TARGET_LARGE_FACTOR:.0f}x)")
        print(line)
        SUMMARY.append(line)
    if LOOP_AT_TRIALS and late_overhead is not None:
        base = LOOP_AT_TRIALS[-1]
        line = (f"(s) overhead of the last {window} trials at {trials:,} / steady without the end wait at the compared "
                f"trial count ({ms(base)}): {late_overhead / base:.2f}x (like for like: both leave the end wait out)")
        print(line)
        SUMMARY.append(line)
    sampler_cost(folder, summary.name)
    return folder


def sampler_cost(folder: Path, name: str) -> None:
    """TPE's ask + the same suggests on the finished study, with Optuna directly: what the sampler alone costs."""
    import optuna
    from optuna.storages import InMemoryStorage

    from sweep.study import open_storage

    scratch = folder / "sampler-copy.journal"
    shutil.copyfile(folder / "sweep.journal", scratch)  # asks add RUNNING trials: never to the sweep's own journal
    journal = open_storage(str(scratch), create=False)  # the storage class (s) uses
    memory = InMemoryStorage()
    optuna.copy_study(from_study_name=name, from_storage=journal, to_storage=memory, to_study_name=name)
    finished = len(optuna.load_study(study_name=name, storage=journal).get_trials(deepcopy=False))
    for label, storage in (("journal file storage, as (s) uses it", journal), ("in-memory copy: TPE alone", memory)):
        study = optuna.load_study(study_name=name, storage=storage,
                                  sampler=optuna.samplers.TPESampler(seed=SAMPLER_SEED))
        times = []
        for _ in range(SAMPLER_ASKS):
            started = time.perf_counter()
            trial = study.ask()
            suggest(trial)
            times.append(time.perf_counter() - started)
        line = (f"sampler cost at {finished:,} trials ({label}): ask + {len(SPACE)} suggests "
                f"{ms(statistics.median(times))} median of {SAMPLER_ASKS}")
        print(line)
        SUMMARY.append(line)


# -- part 3: reading a finished sweep --------------------------------------------------------------------------


def best_latency(folder: Path) -> None:
    import optuna

    from sweep.study import open_storage

    journal = folder / "sweep.journal"
    study_name = optuna.get_all_study_summaries(open_storage(str(journal), create=False))[0].study_name
    study = optuna.load_study(study_name=study_name, storage=open_storage(str(journal), create=False))
    count = len(study.get_trials(deepcopy=False))
    experiment_id = study.user_attrs.get("sweep.experiment_id")
    print(f"\n== reading the {count:,}-trial sweep")
    executable = tool("sweep")
    if executable is None:
        line = "`sweep best` latency: skipped (no `sweep` console script)"
    else:
        times = []
        failure = None
        for _ in range(BEST_RUNS):
            started = time.perf_counter()
            done = subprocess.run([executable, "best"], cwd=folder, env=child_env(), capture_output=True, text=True,
                                  check=False)
            times.append(time.perf_counter() - started)
            if done.returncode != 0:
                failure = f"exit {done.returncode}: {last_line(done.stderr)}"
        line = (f"`sweep best` on the {count:,}-trial sweep: median wall {statistics.median(times):.2f} s of "
                f"{BEST_RUNS} subprocess runs (target <= {TARGET_BEST_SECONDS} s)")
        if failure:
            line += f" FAILED ({failure})"
    print(line)
    SUMMARY.append(line)

    optuna_cli = tool("optuna")
    if optuna_cli is None:
        line = "`optuna best-trial`: skipped (no optuna console script)"
    else:
        command = [optuna_cli, "best-trial", "--study-name", study_name, "--storage", str(journal),
                   "--storage-class", "JournalFileBackend", "-f", "json"]
        line = timed_reference("`optuna best-trial --storage <journal> --storage-class JournalFileBackend`", command,
                               folder)
    print(line)
    SUMMARY.append(line)

    mlflow_cli = tool("mlflow")
    if mlflow_cli is None or experiment_id is None:
        line = "`mlflow runs list`: skipped (no mlflow console script or no experiment id in the study)"
    else:
        line = timed_reference(f"`mlflow runs list --experiment-id {experiment_id}`",
                               [mlflow_cli, "runs", "list", "--experiment-id", str(experiment_id)], folder,
                               MLFLOW_TRACKING_URI=sqlite_uri(folder / "mlflow.db"))
    print(line)
    SUMMARY.append(line)


def timed_reference(label: str, command: list[str], folder: Path, **env: str) -> str:
    started = time.perf_counter()
    done = subprocess.run(command, cwd=folder, env=child_env(**env), capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        return f"{label}: skipped, it failed (exit {done.returncode}): {last_line(done.stderr)}"
    return f"{label} (reference, once): wall {wall:.2f} s"


# -- part 4: what pruning saves --------------------------------------------------------------------------------


def pruning(seeds: int, trials: int, root: Path) -> None:
    """(s) with the default sentiment.yaml space, median pruner vs none, one sampler seed at a time.

    Epochs trained per trial come from the study: a PRUNED trial stopped at its last reported step (the
    pruner is asked right after each report); a COMPLETE trial ran its `epochs` param; a FAIL (diverged)
    trial ran to the epoch its error names.
    """
    print(f"\n== pruning saving: default sentiment.yaml space, {trials} trials, sampler seeds 0..{seeds - 1}, "
          f"pruner median vs none")
    print("epochs per trial from the study: PRUNED = max step of its intermediate values, COMPLETE = its epochs "
          "param, FAIL = the epoch named in 'training diverged at epoch N'")
    ratios, differences = [], []
    for seed in range(seeds):
        figures = {}
        for pruner in ("median", "none"):
            folder = fresh_folder(root, f"pruning-{seed}-{pruner}")
            run = sweep_in_process(trials, folder, config_path=default_config(folder),
                                   config_overrides={"seed": seed, "pruner": pruner,
                                                     "tracking_uri": sqlite_uri(folder / "mlflow.db")})
            epochs, counts = epochs_trained(folder, run.summary.name)
            best = run.summary.best.value if run.summary.best is not None else float("nan")
            figures[pruner] = (epochs, best)
            print(f"seed {seed} pruner {pruner:<6}: {epochs:,} epochs trained, best {METRIC} {best:.4f}, "
                  f"{counts}, wall {run.wall:.1f} s, trainer {run.summary.trainer_seconds:.1f} s")
        ratio = figures["median"][0] / figures["none"][0]
        difference = figures["median"][1] - figures["none"][1]
        ratios.append(ratio)
        differences.append(difference)
        print(f"seed {seed}: epochs pruned/unpruned {ratio:.0%}, best {METRIC} difference (pruned - unpruned) "
              f"{difference * 100:+.1f} points")
    line = (f"pruning: epochs(median pruner)/epochs(no pruner) averaged over {seeds} seeds at {trials} trials: "
            f"{statistics.mean(ratios):.0%} (target <= {TARGET_PRUNED_EPOCHS:.0%})")
    print(line)
    SUMMARY.append(line)
    line = (f"pruning: best {METRIC} difference (pruned - unpruned), mean over seeds: "
            f"{statistics.mean(differences) * 100:+.1f} points (per seed: "
            f"{', '.join(f'{d * 100:+.1f}' for d in differences)})")
    print(line)
    SUMMARY.append(line)


def default_config(folder: Path) -> Path:
    from sweep.config import default_config_text

    path = folder / "sentiment.yaml"
    path.write_text(default_config_text(), encoding="utf-8")
    return path


def epochs_trained(folder: Path, name: str) -> tuple[int, str]:
    import optuna
    from optuna.trial import TrialState

    from sweep.study import open_storage

    study = optuna.load_study(study_name=name, storage=open_storage(str(folder / "sweep.journal"), create=False))
    total = 0
    states: dict[str, int] = {}
    for trial in study.get_trials(deepcopy=False):
        states[trial.state.name.lower()] = states.get(trial.state.name.lower(), 0) + 1
        if trial.state == TrialState.PRUNED and trial.intermediate_values:
            total += max(trial.intermediate_values)
        elif trial.state == TrialState.FAIL:
            found = re.search(r"diverged at epoch (\d+)", str(trial.user_attrs.get("sweep.error", "")))
            total += int(found.group(1)) if found else int(trial.params.get("epochs", 0))
        else:
            total += int(trial.params.get("epochs", 0))
    return total, ", ".join(f"{count} {state}" for state, count in sorted(states.items()))


# -- --profile: where (s)'s per-trial time goes ----------------------------------------------------------------


def profile(trials: int, root: Path) -> None:
    import cProfile
    import io
    import pstats

    warm_up(root)
    folder = fresh_folder(root, f"profile-{trials}")
    from sweep.config import load_config
    from sweep.engine import run_sweep

    config = load_config(sweep_yaml(trials, folder), {"trials": trials})
    profiler = cProfile.Profile()
    with working_folder(folder):
        profiler.enable()
        summary = run_sweep(config, resume=False, listener=Listener())
        profiler.disable()
    print(f"(s) {trials} trials under cProfile (main process only): wall {summary.elapsed:.2f} s, trainer "
          f"{summary.trainer_seconds:.2f} s")
    for order in ("cumulative", "tottime"):
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).strip_dirs().sort_stats(order).print_stats(PROFILE_TOP)
        text = out.getvalue()
        print(f"\n-- top {PROFILE_TOP} by {order}")
        print(text[text.index("   ncalls"):].rstrip() if "   ncalls" in text else text.rstrip())


if __name__ == "__main__":
    main()
