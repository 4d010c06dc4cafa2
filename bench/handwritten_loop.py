"""The loop a user writes by hand with MLflow and Optuna, on the same trainer, space and stores as `sweep run`:
bench/whole.py's other contender.

    python bench/handwritten_loop.py --config sweep.yaml --trials 50

In the working folder: an Optuna journal file (`sweep.journal`) and MLflow's default store (`sqlite:///mlflow.db`),
as `sweep run` uses them. The settings come from the sweep config (space, fixed settings, sampler seed, metric and
direction), so that both contenders train the same models: a fresh `sweep run` proposes what plain Optuna proposes
with the seed. It logs less than `sweep run`: a parent run, one nested child run per trial with its params and
final metrics, and the best params and value on the parent (no curves, plots or model).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

if not __package__:  # `python bench/handwritten_loop.py`: bench/trainer.py must not shadow the trainer package
    _bench = Path(__file__).resolve().parent
    sys.path[:] = [str(_bench.parent), *(entry for entry in sys.path if Path(entry or ".").resolve() != _bench)]

import mlflow
import optuna
import yaml
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend

from trainer import TrainConfig, load_corpus, split, train


def suggest(trial: optuna.Trial, space: dict[str, dict[str, Any]]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for name, spec in space.items():
        if spec["type"] == "float":
            params[name] = trial.suggest_float(name, spec["low"], spec["high"], log=spec.get("log", False))
        elif spec["type"] == "int":
            params[name] = trial.suggest_int(name, spec["low"], spec["high"], log=spec.get("log", False))
        else:
            params[name] = trial.suggest_categorical(name, spec["choices"])
    return params


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--trials", type=int, required=True)
    args = parser.parse_args()
    config = yaml.safe_load(args.config.read_text(encoding="utf-8"))
    metric, direction = config["objective"]["metric"], config["objective"]["direction"]
    fixed, space = config.get("fixed", {}), config["space"]
    data = split(load_corpus(), int(fixed.get("seed", 0)))

    mlflow.set_tracking_uri("sqlite:///mlflow.db")
    mlflow.set_experiment(config.get("experiment", "sentiment"))
    storage = JournalStorage(JournalFileBackend("sweep.journal"))
    study = optuna.create_study(study_name="handwritten", storage=storage, direction=direction,
                                sampler=optuna.samplers.TPESampler(seed=config["sampler"]["seed"]))
    training = 0.0
    with mlflow.start_run(run_name="handwritten"):

        def objective(trial: optuna.Trial) -> float:
            nonlocal training
            with mlflow.start_run(nested=True, run_name=f"trial-{trial.number}"):
                params = suggest(trial, space)
                mlflow.log_params(params)
                started = time.perf_counter()
                result = train(TrainConfig.from_mapping({**fixed, **params}), data)
                training += time.perf_counter() - started
                mlflow.log_metrics(result.metrics)
            return result.metrics[metric]

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study.optimize(objective, n_trials=args.trials)
        mlflow.log_params({f"best_{name}": value for name, value in study.best_params.items()})
        mlflow.log_metric(f"best_{metric}", study.best_value)
    print(f"best {metric} {study.best_value:.6f} in trial {study.best_trial.number} ({training:.1f}s training)")


if __name__ == "__main__":
    main()
