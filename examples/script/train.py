"""A standalone training script, swept as a command: logistic regression by gradient descent on offline data.

    python train.py --lr 0.1 --l2 0.001 --epochs 200 --out model.npz

It reports its validation loss every epoch with one line on stdout (`sweep: step=... val_loss=...`), so the
sweep can prune it while it runs, and its final metrics at the end. Nothing here knows about MLflow or
Optuna; `from sweep.report import report` only prints that line (a script without sweep installed can
print it itself).
"""

from __future__ import annotations

import argparse

import numpy as np

try:
    from sweep.report import report
except ImportError:  # the line format is all there is to it
    def report(step: int | None = None, **metrics: float) -> None:
        words = ([] if step is None else [f"step={step}"]) + [f"{k}={v!r}" for k, v in metrics.items()]
        print("sweep: " + " ".join(words), flush=True)


def make_data(seed: int = 0, samples: int = 600, features: int = 20) -> tuple[np.ndarray, ...]:
    """Two overlapping Gaussian classes, generated (no download), split 2/3 train, 1/3 validation."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, samples)
    centres = rng.normal(0, 1, (2, features)) * 0.35
    points = centres[labels] + rng.normal(0, 1, (samples, features))
    cut = samples * 2 // 3
    return points[:cut], labels[:cut], points[cut:], labels[cut:]


def loss_and_accuracy(weights: np.ndarray, bias: float, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    p = 1 / (1 + np.exp(-(x @ weights + bias)))
    loss = -np.mean(y * np.log(p + 1e-12) + (1 - y) * np.log(1 - p + 1e-12))
    return float(loss), float(np.mean((p > 0.5) == y))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lr", type=float, required=True)
    parser.add_argument("--l2", type=float, default=0.0)
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--out", default="model.npz")
    args = parser.parse_args()

    x_train, y_train, x_val, y_val = make_data()
    weights, bias = np.zeros(x_train.shape[1]), 0.0
    for epoch in range(1, args.epochs + 1):
        p = 1 / (1 + np.exp(-(x_train @ weights + bias)))
        weights -= args.lr * (x_train.T @ (p - y_train) / len(y_train) + args.l2 * weights)
        bias -= args.lr * float(np.mean(p - y_train))
        val_loss, val_accuracy = loss_and_accuracy(weights, bias, x_val, y_val)
        report(step=epoch, val_loss=val_loss, val_accuracy=val_accuracy)

    np.savez(args.out, weights=weights, bias=bias)
    report(val_loss=val_loss, val_accuracy=val_accuracy)  # no step: the final result


if __name__ == "__main__":
    main()
