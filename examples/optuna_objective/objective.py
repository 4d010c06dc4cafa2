"""A plain Optuna objective, written the way an Optuna user writes it: `sweep` runs it unchanged.

The search space is conditional (define-by-run): the objective first picks a model family, then suggests
that family's own parameters. Every epoch it reports the validation accuracy, and stops when the pruner
says so. The data is scikit-learn's handwritten digits, which ship inside scikit-learn (no download).

    sweep run --config configs/optuna_objective.yaml      # every trial a child run in MLflow
    python examples/optuna_objective/objective.py         # the same objective with Optuna alone
"""

from __future__ import annotations

import functools

import numpy as np
import optuna
from sklearn.datasets import load_digits
from sklearn.linear_model import SGDClassifier
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import StandardScaler

EPOCHS = 10  # passes over the training set; the pruner may stop a trial after any of them


@functools.cache  # every trial of a process shares one split
def digits() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    features, labels = load_digits(return_X_y=True)
    x_train, x_valid, y_train, y_valid = train_test_split(features, labels, test_size=0.25, stratify=labels,
                                                          random_state=0)
    scaler = StandardScaler().fit(x_train)
    return scaler.transform(x_train), scaler.transform(x_valid), y_train, y_valid


def objective(trial: optuna.Trial) -> float:
    x_train, x_valid, y_train, y_valid = digits()

    # the family first, then parameters that only that family has
    family = trial.suggest_categorical("model", ["linear", "mlp"])
    if family == "linear":
        model = SGDClassifier(
            loss=trial.suggest_categorical("linear_loss", ["hinge", "log_loss", "modified_huber"]),
            alpha=trial.suggest_float("linear_alpha", 1e-6, 1e-1, log=True),
            random_state=0,
        )
    else:
        model = MLPClassifier(
            hidden_layer_sizes=(trial.suggest_int("mlp_units", 8, 128, log=True),),
            learning_rate_init=trial.suggest_float("mlp_lr", 1e-4, 1e-1, log=True),
            random_state=0,
        )

    # one epoch at a time, so the pruner can stop a poor trial early
    accuracy = 0.0
    for epoch in range(EPOCHS):
        model.partial_fit(x_train, y_train, classes=np.arange(10))
        accuracy = model.score(x_valid, y_valid)
        trial.report(accuracy, epoch)
        if trial.should_prune():
            raise optuna.TrialPruned()
    return accuracy


if __name__ == "__main__":
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=0),
                                pruner=optuna.pruners.MedianPruner(n_startup_trials=3))
    study.optimize(objective, n_trials=30)
    print(f"best accuracy {study.best_value:.4f} with {study.best_params}")
