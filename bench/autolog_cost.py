"""What MLflow's autologging costs a scikit-learn trial, and what `log_models: false` saves.

    python bench/autolog_cost.py [--quick] [--trials 6] [--keep]

The scikit-learn example (examples/sklearn/train.py: gradient boosting on the breast cancer dataset, with
configs/sklearn.yaml's space and seed) swept three times, each a real `sweep run` subprocess in a fresh temporary
folder (embedded stores), one trial at a time, the trainer's `mlflow:` set to:

- `off`: the fit alone (the trial's process never imports mlflow);
- `{autolog: {log_models: false}}`: params, training metrics and the dataset autologged, no model;
- `autolog`: the same plus the fitted model, logged in every trial.

Read back from the journal: each trial's wall time (Optuna's start to complete) and, for the two autolog runs,
its time inside MLflow (the `sweep.mlflow_time` trial attribute the summary adds up). Printed per run: the median
over trials 2..N (the first trial of a process also imports mlflow and sets autologging up), the first trial
apart, the sweep's wall time, and the summary's own "MLflow logging inside fit" line. `--quick` (3 trials) is
the smoke test.
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

if not __package__:  # `python bench/autolog_cost.py`: bench/ is on sys.path, where bench/trainer.py shadows the trainer
    _bench = Path(__file__).resolve().parent
    sys.path[:] = [str(_bench.parent), *(entry for entry in sys.path if Path(entry or ".").resolve() != _bench)]

os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"

from bench.common import child_env, load, versions

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_CONFIG = ROOT / "configs" / "sklearn.yaml"
EXAMPLE_FIT = f"{ROOT / 'examples' / 'sklearn' / 'train.py'}:fit"
STUDY = "autolog"
MODES = {  # label -> the trainer's mlflow: setting
    "off": "off",
    "autolog, log_models: false": {"autolog": {"log_models": False}},
    "autolog": "autolog",
}


@dataclass(frozen=True)
class Run:
    label: str
    trial_seconds: list[float]  # each trial's wall time, in trial order
    mlflow_seconds: list[float | None]  # each trial's time inside MLflow (None: not clocked, mlflow: off)
    wall: float  # the `sweep run` subprocess
    summary_line: str | None  # the summary's "MLflow logging inside fit" line


def sweep_config(folder: Path, mode: object, trials: int) -> Path:
    import yaml

    document = yaml.safe_load(EXAMPLE_CONFIG.read_text(encoding="utf-8"))
    document["trainer"] = {"function": EXAMPLE_FIT, "mlflow": mode}
    document["trials"] = trials
    path = folder / "sweep.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


def read_trials(journal: Path) -> tuple[list[float], list[float | None]]:
    import optuna
    from optuna.storages.journal import JournalFileBackend

    from sweep.study.attrs import TrialAttrs

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = optuna.storages.JournalStorage(JournalFileBackend(str(journal)))
    study = optuna.load_study(study_name=STUDY, storage=storage)
    trials = sorted((t for t in study.get_trials(deepcopy=False) if t.state.is_finished()), key=lambda t: t.number)
    walls = [(t.datetime_complete - t.datetime_start).total_seconds() for t in trials]  # type: ignore[operator]
    spent = [TrialAttrs.read(t).mlflow_time for t in trials]
    return walls, [time.seconds if time is not None else None for time in spent]


def run(label: str, mode: object, trials: int, keep: bool) -> Run:
    folder = Path(tempfile.mkdtemp(prefix="sweep-autolog-"))
    try:
        sweep_config(folder, mode, trials)
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "sweep.cli", "run", "--config", "sweep.yaml", "--name", STUDY],
                              cwd=folder, env=child_env(), capture_output=True, text=True, stdin=subprocess.DEVNULL,
                              check=False)
        wall = time.perf_counter() - started
        if done.returncode != 0:
            raise SystemExit(f"sweep run ({label}) in {folder} exited {done.returncode}: {done.stderr.strip()[-2000:]}")
        walls, spent = read_trials(folder / "sweep.journal")
        line = next((line for line in done.stdout.splitlines() if line.startswith("MLflow logging inside fit")), None)
        return Run(label, walls, spent, wall, line)
    finally:
        if keep:
            print(f"  kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)


def describe(result: Run) -> str:
    later = result.trial_seconds[1:] or result.trial_seconds
    text = (f"[{result.label}] {len(result.trial_seconds)} trials: median trial {statistics.median(later):.2f} s "
            f"(trials 2-{len(result.trial_seconds)})")
    spent = [seconds for seconds in result.mlflow_seconds[1:] or result.mlflow_seconds if seconds is not None]
    if spent:
        text += f", of which inside MLflow {statistics.median(spent):.2f} s"
    return text + f"; first trial {result.trial_seconds[0]:.2f} s; `sweep run` wall {result.wall:.1f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 trials per run: the smoke test")
    parser.add_argument("--trials", type=int, default=6, help="trials per run (default 6)")
    parser.add_argument("--keep", action="store_true", help="keep each run's folder")
    args = parser.parse_args()
    trials = 3 if args.quick else args.trials
    if trials < 2:
        raise SystemExit("--trials: at least 2 (the first trial of a process is reported apart)")
    print(f"machine: {os.cpu_count()} CPUs; at the start: {load()}")
    print(f"versions: {versions(('mlflow', 'scikit-learn', 'optuna'))}")
    print(f"trials: {EXAMPLE_FIT} (configs/sklearn.yaml's space), one at a time")
    results = [run(label, mode, trials, args.keep) for label, mode in MODES.items()]
    print("\nSUMMARY")
    for result in results:
        print(describe(result))
    off = statistics.median(results[0].trial_seconds[1:])
    for result in results[1:]:
        print(f"[{result.label}] median trial / off: {statistics.median(result.trial_seconds[1:]) / off:.1f}x")
    for result in results[1:]:
        print(f"[{result.label}] summary: {result.summary_line or '(no MLflow logging line)'}")
    print(f"at the end: {load()}")


if __name__ == "__main__":
    main()
