"""Gradient boosting on scikit-learn's breast cancer dataset, swept by `sweep` with MLflow autolog.

`fit(trial)` is all `sweep` needs: the config's `space:` arrives in ``trial.params``, ``max_depth`` is
suggested here (define-by-run, as in an Optuna objective), and with ``mlflow: autolog`` scikit-learn's
autologging records each trial's params, training metrics and fitted model in the trial's child run.
The data ships inside scikit-learn: nothing is downloaded.
"""

from __future__ import annotations

from typing import Any

from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.metrics import accuracy_score, log_loss
from sklearn.model_selection import train_test_split

VALIDATION_FRACTION = 0.25  # of the 569 rows: ~140 to select on
SPLIT_SEED = 0  # the same validation rows in every trial, so trials compare


def fit(trial: Any) -> dict[str, float]:
    features, labels = load_breast_cancer(return_X_y=True, as_frame=True)  # a DataFrame: named columns
    x_train, x_val, y_train, y_val = train_test_split(features, labels, test_size=VALIDATION_FRACTION,
                                                      random_state=SPLIT_SEED, stratify=labels)
    model = GradientBoostingClassifier(
        n_estimators=trial.params["n_estimators"],
        learning_rate=trial.params["learning_rate"],
        max_depth=trial.suggest_int("max_depth", 1, 4),
        random_state=trial.params.get("seed", 0),
    )
    model.fit(x_train, y_train)  # autolog: params, training metrics and the model go to the child run
    probabilities = model.predict_proba(x_val)[:, 1]
    return {"val_accuracy": float(accuracy_score(y_val, probabilities > 0.5)),
            "val_loss": float(log_loss(y_val, probabilities))}
