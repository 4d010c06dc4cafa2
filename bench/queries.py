"""Reading a large sweep: `sweep best`, `sweep ls` and `sweep show --top K` on a 10,000-trial study.

    python bench/queries.py                          # 10,000 trials; journal file and SQLite
    python bench/queries.py --trials 2000 --postgres # also a fresh PostgreSQL database (tests/support/pg.py's server)
    python bench/queries.py --quick                  # 500 trials: the smoke run

The study is built cheaply, without training anything: Optuna's own JournalStorage writes it through a backend
that keeps the log in memory (the same lines a sweep writes: create, three params, the worker, run id and metrics
attributes, the state), then the log is written to a journal file in one go. For an RDB storage every trial is
copied in with one create_new_trial(template) call. The study carries the attributes `sweep run` writes
(sweep/study/attrs.py), so the commands read it as a finished sweep.

Each command runs as a subprocess (a fresh interpreter, as a user runs it), 3 times; the medians are printed:
- wall: the subprocess from start to exit;
- own: measured inside it from the first line of the script to the command's return: the interpreter's start-up
  is left out, every import the command needs (typer, optuna, sweep) is in;
- cpu: the subprocess's CPU time (user + system, start-up included): on a machine shared with other work, the
  figure that moves least with the load;
- whether the command imported mlflow (it must not: `import mlflow` alone takes seconds), and optuna (a journal
  file, SQLite and PostgreSQL are read without it).
Before the journal's figures, one `sweep best` with no summary beside the journal: the first read, which folds
the whole journal and writes the summary the next reads start from.
Target: each command under 0.5 s at 10,000 trials. Prints figures only, asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if not __package__:  # `python bench/queries.py`: bench/ is on sys.path, where bench/trainer.py shadows the trainer
    _bench = Path(__file__).resolve().parent
    sys.path[:] = [str(_bench.parent), *(entry for entry in sys.path if Path(entry or ".").resolve() != _bench)]

from bench.common import child_env, last_line, load, sweep_yaml, versions

# -- settings ------------------------------------------------------------------------------------------------
TRIALS = 10_000
QUICK_TRIALS = 500
RUNS = 3  # subprocess runs per command; the median is printed
TOP = 10  # `sweep show --top`
TARGET_SECONDS = 0.5
NAME = "big-sweep"
POSTGRES_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"  # the local server's maintenance database

# Runs one command in a fresh interpreter and reports its own time (from the script's first line, so the
# interpreter's start-up is left out) and whether mlflow was imported, as the last line of stderr.
RUNNER = """
import time
started = time.perf_counter()
import sys
sys.argv = ["sweep", *{args!r}]
from sweep.cli import main
try:
    main()
except SystemExit as stop:
    code = stop.code
else:
    code = 0
print(f"BENCH {{time.perf_counter() - started:.4f}} {{time.process_time():.4f}} {{'mlflow' in sys.modules}} "
      f"{{'optuna' in sys.modules}} {{code}}", file=sys.stderr)
"""


def main() -> None:
    os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=None, help=f"trials in the study [default: {TRIALS}]")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_TRIALS} trials")
    parser.add_argument("--postgres", action="store_true", help="also a fresh database on the local PostgreSQL")
    parser.add_argument("--skip-sqlite", action="store_true", help="journal file only (and PostgreSQL if asked)")
    args = parser.parse_args()
    trials = args.trials or (QUICK_TRIALS if args.quick else TRIALS)
    root = Path(tempfile.mkdtemp(prefix="sweep-queries-"))
    summary: list[str] = []
    database = None
    try:
        print(f"machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, {versions()}; {load()}")
        started = time.perf_counter()
        journal = build_journal(root, trials)
        summary.append(f"journal file: {trials:,} trials built in {time.perf_counter() - started:.1f} s "
                       f"({journal.stat().st_size / 1e6:.1f} MB)")
        print(summary[-1])
        stores = [("journal", str(journal))]
        if not args.skip_sqlite:
            stores.append(("sqlite", f"sqlite:///{root / 'optuna.db'}"))
        if args.postgres:
            database = fresh_postgres()
            stores.append(("postgresql", database))
        for label, url in stores[1:]:
            started = time.perf_counter()
            copy_into(journal, url)
            summary.append(f"{label}: {trials:,} trials copied in {time.perf_counter() - started:.1f} s")
            print(summary[-1])
        for label, url in stores:
            print(f"\n== {label}: {trials:,} trials")
            if label == "journal":  # the first read folds the whole journal and writes its summary beside it
                journal.with_name(journal.name + ".summary").unlink(missing_ok=True)
                first = time_command(["best", "--name", NAME, "--storage", url], root, runs=1)
                summary.append(f"[{label}] first read, no summary yet: {first}")
                print(summary[-1])
            for command in (["best", "--name", NAME], ["ls"], ["show", NAME, "--top", str(TOP)]):
                line = f"[{label}] {time_command([*command, '--storage', url], root)}"
                print(line)
                summary.append(line)
        print("\nSUMMARY")
        for line in [*summary, f"at the end: {load()} (other processes on this machine add noise)"]:
            print(line)
    finally:
        shutil.rmtree(root, ignore_errors=True)
        if database is not None:
            drop_postgres(database)


# -- building the study --------------------------------------------------------------------------------------


def build_journal(root: Path, trials: int) -> Path:
    """A finished sweep of ``trials`` trials in root/sweep.journal, written by Optuna's JournalStorage."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import BaseJournalBackend

    from sweep.config import load_config
    from sweep.study.attrs import SweepAttrs, TrialAttrs

    class InMemoryLog(BaseJournalBackend):
        def __init__(self) -> None:
            self.logs: list[dict[str, Any]] = []

        def read_logs(self, log_number_from: int) -> list[dict[str, Any]]:
            return self.logs[log_number_from:]

        def append_logs(self, logs: list[dict[str, Any]]) -> None:
            self.logs.extend(logs)

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    config = load_config(sweep_yaml(trials, root, sampler="random"), {"trials": trials}).replace(name=NAME)
    log = InMemoryLog()
    study = optuna.create_study(study_name=NAME, storage=JournalStorage(log), direction=config.direction,
                                sampler=optuna.samplers.RandomSampler(seed=0))
    SweepAttrs(config=config.to_yaml(), token="0" * 32, parent_run_id="f" * 32, experiment=config.experiment,
               experiment_id="1", tracking_uri=config.tracking_uri, tracking_uri_has_secret=False,
               metric=config.metric, direction=config.direction, target=trials, status="finished",
               created="2026-01-01T00:00:00.000+00:00").write(study)
    rng = random.Random(0)
    for number in range(trials):
        trial = study.ask()
        trial.suggest_float("lr", 0.05, 5.0, log=True)
        trial.suggest_int("epochs", 3, 8)
        trial.suggest_int("vocab_size", 50, 400)
        TrialAttrs(worker="bench-host:1").write(trial)
        accuracy = round(rng.uniform(0.5, 0.9), 4)  # few distinct values: ties, as small validation sets give
        metrics = {"val_accuracy": accuracy, "val_loss": rng.uniform(0.2, 0.7), "train_loss": rng.uniform(0.1, 0.6)}
        TrialAttrs(run_id=f"{number:032x}", metrics=metrics).write(trial)
        study.tell(trial, accuracy)
    path = root / "sweep.journal"
    with path.open("w", encoding="utf-8") as file:
        for entry in log.logs:
            file.write(json.dumps(entry, separators=(",", ":")) + "\n")
    return path


def copy_into(journal: Path, url: str) -> None:
    """The journal's study, trial by trial, into the RDB storage at ``url`` (one transaction per trial)."""
    import optuna
    from sqlalchemy import event

    from sweep.study.storage import open_storage

    source = optuna.load_study(study_name=NAME, storage=open_storage(str(journal), create=False))
    storage = open_storage(url)
    # only for building: commits without waiting for the disk (the commands then read a normal database)
    pragma = "PRAGMA synchronous=OFF" if url.startswith("sqlite") else "SET synchronous_commit TO OFF"
    event.listen(storage.engine, "connect", lambda connection, _record: connection.cursor().execute(pragma))
    storage.engine.dispose()
    target = optuna.create_study(study_name=NAME, storage=storage, direction="maximize")
    for key, value in source.user_attrs.items():
        target.set_user_attr(key, value)
    target.add_trials(source.get_trials(deepcopy=False))


def fresh_postgres() -> str:
    """A new database on the local PostgreSQL server (127.0.0.1:5432, user postgres, trust)."""
    import psycopg

    name = f"sweep_queries_{os.getpid()}"
    with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}"')
        connection.execute(f'CREATE DATABASE "{name}"')
    return f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"


def drop_postgres(url: str) -> None:
    """The database fresh_postgres made, dropped (its connections ended first: the copy's engine may hold one)."""
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# -- timing the commands -------------------------------------------------------------------------------------


def time_command(args: list[str], folder: Path, runs: int = RUNS) -> str:
    walls, owns, cpus, imported, optuna_imported, failure = [], [], [], False, False, None
    shown = " ".join(arg if "://" not in arg and "/" not in arg else "<store>" for arg in args)
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", RUNNER.format(args=args)], cwd=folder, env=child_env(),
                              capture_output=True, text=True, check=False)
        walls.append(time.perf_counter() - started)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        report = [line for line in done.stderr.splitlines() if line.startswith("BENCH ")]
        if not report:
            failure = last_line(done.stderr)
            continue
        _, own, _own_cpu, mlflow, optuna, code = report[-1].split()
        owns.append(float(own))
        imported = imported or mlflow == "True"
        optuna_imported = optuna_imported or optuna == "True"
        if code != "0":
            failure = f"exit {code}: {last_line(done.stderr.replace(report[-1], ''))}"
    own_text = f"{statistics.median(owns):.2f} s" if owns else "n/a"
    text = (f"`sweep {shown}`: own {own_text}, wall {statistics.median(walls):.2f} s, cpu "
            f"{statistics.median(cpus):.2f} s ({f'medians of {runs}' if runs > 1 else 'one run'}; "
            f"target < {TARGET_SECONDS} s); mlflow imported: {'yes' if imported else 'no'}, optuna: "
            f"{'yes' if optuna_imported else 'no'}")
    return text + (f" FAILED ({failure})" if failure else "")


if __name__ == "__main__":
    main()
