"""Full-batch gradient descent for the bag-of-words logistic regression."""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass

import numpy as np

from trainer.config import TrainConfig
from trainer.data import Split
from trainer.errors import DivergenceError
from trainer.features import featurize
from trainer.model import Model, sigmoid

DIVERGED_LOSS = 50.0
"""A mean log-loss above this means logits wrong by ~e^50: the steps overshoot, it will not come back.

logaddexp keeps the loss finite far past the point of no return, so "not finite" alone would let a
wildly overshooting run finish with useless weights."""

EpochCallback = Callable[[int, Mapping[str, float]], None]
"""on_epoch(epoch, metrics): metrics has train_loss, val_loss, val_accuracy. Raise to stop training."""


@dataclass(frozen=True)
class TrainResult:
    model: Model
    metrics: dict[str, float]  # {train,val,test}_{accuracy,loss} of the final weights
    sizes: dict[str, int]  # n_train, n_val, n_test
    vocab_size: int  # entries actually kept (can be below the config's when the data has fewer tokens)
    epochs: int
    seconds: float


def train(config: TrainConfig, data: Split, on_epoch: EpochCallback | None = None, *,
          eval_every: int = 1, eval_epochs: Collection[int] | None = None) -> TrainResult:
    """Train one model on ``data.train``; ``on_epoch`` sees validation metrics every ``eval_every`` epochs, or
    at the ``eval_epochs`` when given, and after the last epoch. Validation is computed only for those epochs:
    on a small corpus it is a sizeable share of a step. Raises DivergenceError when the loss stops
    being finite."""
    started = time.perf_counter()
    evaluated = {*(eval_epochs if eval_epochs is not None else range(eval_every, config.epochs + 1, eval_every)),
                 config.epochs}

    # -- features: the config's vocabulary over each split ---------------------------------------
    vocabulary = tuple(data.ranked_vocabulary(config.ngrams)[: config.vocab_size])
    index = {token: i for i, token in enumerate(vocabulary)}
    train_docs, val_docs, test_docs = data.tokens(config.ngrams)
    x_train, x_val, x_test = (featurize(docs, index) for docs in (train_docs, val_docs, test_docs))
    y_train, y_val, y_test = (part.labels.astype(np.float64) for part in (data.train, data.val, data.test))

    # -- gradient descent on mean log-loss + l2/2 * |w|^2, from zero weights (deterministic) ------
    weights = np.zeros(len(vocabulary))
    bias = 0.0
    n = x_train.n_rows
    logits = x_train.dot(weights) + bias
    for epoch in range(1, config.epochs + 1):
        residual = (sigmoid(logits) - y_train) / n
        weights -= config.lr * (x_train.t_dot(residual) + config.l2 * weights)
        bias -= config.lr * float(residual.sum())
        # the forward pass after the step gives this epoch's loss and the next epoch's gradient: one X.w
        logits = x_train.dot(weights) + bias
        train_loss = _log_loss(logits, y_train)
        if not train_loss <= DIVERGED_LOSS:  # also true for NaN
            raise DivergenceError(epoch, config.lr)

        # -- report: the callback may raise (a pruner) to stop here -------------------------------
        if on_epoch is not None and epoch in evaluated:
            val_logits = x_val.dot(weights) + bias
            val_loss = _log_loss(val_logits, y_val)
            if not np.isfinite(val_loss):
                raise DivergenceError(epoch, config.lr)
            on_epoch(epoch, {"train_loss": train_loss, "val_loss": val_loss,
                             "val_accuracy": _accuracy(val_logits, y_val)})

    # -- final evaluation ----------------------------------------------------------------------------
    metrics: dict[str, float] = {}
    for name, features, labels in (("train", x_train, y_train), ("val", x_val, y_val), ("test", x_test, y_test)):
        logits = features.dot(weights) + bias
        metrics[f"{name}_loss"] = _log_loss(logits, labels)
        metrics[f"{name}_accuracy"] = _accuracy(logits, labels)
    if not all(np.isfinite(value) for value in metrics.values()) or not metrics["train_loss"] <= DIVERGED_LOSS:
        raise DivergenceError(config.epochs, config.lr)
    model = Model(vocabulary, weights, bias, config.ngrams,
                  metadata={"config": config.to_dict(), "metrics": metrics, **data.sizes})
    return TrainResult(model, metrics, data.sizes, len(vocabulary), config.epochs,
                       time.perf_counter() - started)


def _log_loss(logits: np.ndarray, labels: np.ndarray) -> float:
    # log(1 + e^z) - y*z is the log-loss written to stay finite for large |z|
    return float(np.mean(np.logaddexp(0.0, logits) - labels * logits))


def _accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean((logits >= 0.0) == (labels == 1.0)))

