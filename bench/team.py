"""Per-trial cost of a sweep against the team stack (an `mlflow server` on PostgreSQL, S3 artifacts, proxied
or direct) beside the embedded default, measured side by side in one run; and how long `sweep doctor` takes.

    python bench/team.py [--trials 30] [--repeats 3] [--quick]

Needs the local PostgreSQL (tests/support/pg.py) and moto's S3 server (`pip install 'moto[server]'`). The
servers start once, before anything is timed. Each repeat runs the three contenders one after the other
(interleaved, so a change in the machine's load hits all three), each a real `sweep run` subprocess in a
fresh folder with a journal-file study, the same space, seed and trials: the trainings are the same,
so the difference between contenders is what the tracking store costs. Per trial: the study's time
from the first trial's start to the last trial's end, divided by the trials, minus the sweep's own
training seconds per trial. Medians over the repeats are printed.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402

from bench.common import FIXED, METRIC, SAMPLER_SEED, SPACE, describe_space, load, versions  # noqa: E402

S3_VARIABLES = ("MLFLOW_S3_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")
TRAINING = re.compile(r" in ([\d.]+)s \(([\d.]+)s training\)")


def environment(extra: dict[str, str]) -> dict[str, str]:
    values = {key: value for key, value in os.environ.items()
              if key not in S3_VARIABLES and key != "MLFLOW_TRACKING_URI"}
    return {**values, "MLFLOW_DISABLE_TELEMETRY": "true", "PYTHONPATH": str(ROOT), **extra}


def per_trial_ms(folder: Path, trials: int, extra: dict[str, str]) -> tuple[float, float, float]:
    """(per-trial ms from the study, training ms per trial, command wall seconds) of one `sweep run`."""
    import optuna

    from sweep.study import open_storage

    document = {"experiment": "bench", "objective": {"metric": METRIC, "direction": "maximize"}, "trials": trials,
                "sampler": {"name": "tpe", "seed": SAMPLER_SEED}, "pruner": {"name": "none"}, "fixed": dict(FIXED),
                "space": SPACE}  # no tracking_uri: the environment's (or the default) decides
    (folder / "sweep.yaml").write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "sweep.cli", "run", "--config", "sweep.yaml", "--name", "bench"],
                          cwd=folder, env=environment(extra), capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"sweep run failed in {folder}: {done.stderr.strip()}")
    found = TRAINING.search(done.stdout)
    if found is None:
        raise SystemExit(f"no training time in the summary: {done.stdout}")
    study = optuna.load_study(study_name="bench", storage=open_storage(str(folder / "sweep.journal"), create=False))
    finished = [t for t in study.get_trials(deepcopy=False) if t.state.is_finished()]
    span = (max(t.datetime_complete for t in finished) - min(t.datetime_start for t in finished)).total_seconds()
    return span / len(finished) * 1000, float(found[2]) / len(finished) * 1000, wall


def doctor_seconds(folder: Path, extra: dict[str, str], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "sweep.cli", "doctor", "bench"], cwd=folder,
                              env=environment(extra), capture_output=True, text=True)
        times.append(time.perf_counter() - started)
        if done.returncode != 0:
            raise SystemExit(f"sweep doctor failed: {done.stdout}{done.stderr}")
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="5 trials, 1 repeat: checks the script runs")
    args = parser.parse_args()
    if args.quick:
        args.trials, args.repeats = 5, 1
    from tests.support import team
    from tests.support.pg import database

    print(f"{versions()}; {describe_space()}; {args.trials} trials x {args.repeats} repeats; {load()}")
    scratch = Path(tempfile.mkdtemp(prefix="sweep-bench-team-"))
    with ExitStack() as stack:
        s3 = stack.enter_context(team.s3_server(scratch))
        contenders: dict[str, dict[str, str]] = {"embedded (journal + sqlite:///mlflow.db, ./mlruns)": {}}
        for mode in ("proxied", "direct"):
            backend = stack.enter_context(database())
            server = stack.enter_context(team.mlflow_server(scratch, backend, mode, s3))
            contenders[f"server on PostgreSQL + S3, {mode}"] = server.client_env
        print(f"servers up; {load()}", flush=True)
        results: dict[str, list[tuple[float, float, float]]] = {name: [] for name in contenders}
        folders: dict[str, Path] = {}
        for repeat in range(args.repeats):
            for index, (name, extra) in enumerate(contenders.items()):
                folder = scratch / f"run-{repeat}-{index}"
                folder.mkdir()
                folders[name] = folder
                results[name].append(per_trial_ms(folder, args.trials, extra))
                print(f"  repeat {repeat + 1}: {name}: {results[name][-1][0]:.1f} ms/trial", flush=True)
        print("\nSUMMARY (medians)")
        base = statistics.median(r[0] - r[1] for r in results[next(iter(contenders))])
        for name, runs in results.items():
            trial = statistics.median(r[0] for r in runs)
            overhead = statistics.median(r[0] - r[1] for r in runs)
            wall = statistics.median(r[2] for r in runs)
            print(f"{name}: {trial:.1f} ms per trial, of which {overhead:.1f} ms is not training "
                  f"({overhead - base:+.1f} ms against embedded); `sweep run` wall {wall:.1f} s")
        for name, extra in contenders.items():
            print(f"sweep doctor bench, {name}: {doctor_seconds(folders[name], extra, 3):.2f} s (median of 3)")
    print(load())


if __name__ == "__main__":
    main()
