"""Benchmark the core trainer: epoch speed against scipy CSR, peak memory, and accuracy against scikit-learn.

    python bench/trainer.py            # 50,000 documents x 50,000-word vocabulary, then the bundled-corpus grid
    python bench/trainer.py --quick    # 5,000 x 5,000 and a smaller grid: a smoke test in seconds

Prints figures only; it asserts nothing (targets are printed beside the figures). scipy and scikit-learn are
benchmark-only dependencies (the `bench` extra), imported here and nowhere in the trainer.
"""

from __future__ import annotations

import argparse
import itertools
import math
import resource
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

# `python bench/trainer.py` puts bench/ first on sys.path, where this file would shadow the trainer package
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != Path(__file__).resolve().parent]

from trainer import Corpus, Split, TrainConfig, load_corpus, split, train  # noqa: E402
from trainer.features import SparseBinary, featurize  # noqa: E402

# -- settings ------------------------------------------------------------------------------------------------
FULL_SIZE = 50_000  # documents, and words in the synthetic vocabulary
QUICK_SIZE = 5_000  # --quick: both ten times smaller
DOC_TOKENS = (50, 150)  # tokens per synthetic document, uniform (inclusive)
ZIPF_EXPONENT = 1.0  # word k is drawn with probability ~ 1 / (k + 1) ** ZIPF_EXPONENT, as in natural text
SENTIMENT_WORDS = 0.05  # share of the vocabulary that moves the label (the rest is noise)
LABEL_NOISE = 1.0  # standard deviation of the noise added to a document's sentiment score
SPEED_EPOCHS = 20  # epochs of the speed run
SPEED_LR = 0.25  # stable here: words found in nearly every document make the loss steep along their sum
PRODUCT_REPEATS = 15  # repeats of each sparse product; the median is reported
TARGET_RATIO = 3.0  # epoch time / scipy's two products
TARGET_RSS_MIB = 1024.0
TARGET_GAP_POINTS = 2.0  # test accuracy, trainer vs scikit-learn, in percentage points

FULL_GRID = {
    "lr": [0.25, 0.5, 1.0, 2.0],
    "epochs": [100, 300, 1000],  # one run per other setting: validation accuracy read at each via on_epoch
    "vocab_size": [500, 1000, 2000, 5000],
    "ngrams": [1, 2],
    "l2": [0.0, 1e-4, 1e-3],
}
QUICK_GRID = {"lr": [0.5, 2.0], "epochs": [100, 300], "vocab_size": [1000, 5000], "ngrams": [1, 2], "l2": [0.0, 1e-4]}
SKLEARN_C = [float(c) for c in np.logspace(-2, 3, 16)]  # inverse L2 strength, chosen on validation accuracy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_SIZE:,} x {QUICK_SIZE:,} and a small grid")
    args = parser.parse_args()
    size = QUICK_SIZE if args.quick else FULL_SIZE
    speed(size)
    print(f"peak RSS: {peak_rss_mib():.0f} MiB (target <= {TARGET_RSS_MIB:.0f} MiB)")
    accuracy(QUICK_GRID if args.quick else FULL_GRID)


# -- part 1: speed and memory on a large synthetic corpus ------------------------------------------------------


def synthetic_corpus(n_docs: int, n_words: int, seed: int = 0) -> Corpus:
    """Texts of made-up words "w<k>" with Zipf-like frequencies; the label is the sign of a noisy score
    summed over a random subset of sentiment words, cut at the median so the classes are balanced."""
    rng = np.random.default_rng(seed)
    ranks = np.arange(1, n_words + 1, dtype=np.float64)
    probability = ranks**-ZIPF_EXPONENT
    probability /= probability.sum()
    lengths = rng.integers(DOC_TOKENS[0], DOC_TOKENS[1] + 1, size=n_docs)
    ids = rng.choice(n_words, size=int(lengths.sum()), p=probability)
    starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))

    polarity = np.zeros(n_words)
    sentiment = rng.choice(np.arange(50, n_words), size=int(n_words * SENTIMENT_WORDS), replace=False)
    polarity[sentiment] = rng.normal(size=sentiment.size)  # the 50 commonest words carry no sentiment
    score = np.add.reduceat(polarity[ids], starts) + rng.normal(scale=LABEL_NOISE, size=n_docs)
    labels = (score > np.median(score)).astype(np.int8)

    words = np.array([f"w{k}" for k in range(n_words)], dtype=object)
    texts = tuple(" ".join(words[ids[start:start + length]]) for start, length in zip(starts, lengths))
    return Corpus(texts, labels, f"synthetic {n_docs} x {n_words}")


def to_csr(features: SparseBinary) -> Any:
    """The same 0/1 matrix as scipy CSR (col_ids are grouped by row, sorted within a row)."""
    import scipy.sparse

    lengths = np.bincount(features.row_ids, minlength=features.n_rows)
    indptr = np.concatenate(([0], np.cumsum(lengths)))
    data = np.ones(features.nnz, dtype=np.float64)
    return scipy.sparse.csr_matrix((data, features.col_ids, indptr), shape=(features.n_rows, features.n_cols))


def median_seconds(action: Callable[[], object], repeats: int = PRODUCT_REPEATS) -> float:
    action()  # warm-up
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def speed(size: int) -> None:
    started = time.perf_counter()
    corpus = synthetic_corpus(size, size)
    print(f"synthetic corpus: {len(corpus):,} documents, {size:,}-word vocabulary, "
          f"{int(corpus.labels.sum()):,} positive (generated in {time.perf_counter() - started:.1f} s)")

    # -- split, tokenize, rank: memoised inside the Split, so train() below does not repeat them ----------------
    started = time.perf_counter()
    parts = split(corpus, seed=0)
    parts.ranked_vocabulary(1)
    print(f"split + tokenize + rank vocabulary: {time.perf_counter() - started:.1f} s "
          f"(train={len(parts.train):,} validation={len(parts.val):,} test={len(parts.test):,})")

    # -- featurization, as train() does it, to report its cost and keep the matrix for scipy ---------------------
    config = TrainConfig(lr=SPEED_LR, epochs=SPEED_EPOCHS, vocab_size=size, l2=1e-4)
    started = time.perf_counter()
    index = {token: i for i, token in enumerate(parts.ranked_vocabulary(1)[: config.vocab_size])}
    x_train, _, _ = (featurize(docs, index) for docs in parts.tokens(1))
    print(f"features: {x_train.n_rows:,} x {x_train.n_cols:,} train matrix, {x_train.nnz:,} non-zeros; "
          f"built in {time.perf_counter() - started:.2f} s (all three splits)")

    # -- the training loop, timed by on_epoch timestamps at the middle and the last epoch, best of two runs -----
    half = config.epochs // 2
    epoch_seconds = math.inf
    for _ in range(2):
        stamps: dict[int, float] = {}
        result = train(config, parts, lambda epoch, metrics, stamps=stamps: stamps.__setitem__(
            epoch, time.perf_counter()), eval_every=half)
        epoch_seconds = min(epoch_seconds, (stamps[config.epochs] - stamps[half]) / (config.epochs - half))
    print(f"trainer: {config.epochs} epochs (lr {config.lr:g}) in {result.seconds:.2f} s with featurization; "
          f"train accuracy {result.metrics['train_accuracy']:.3f}, validation {result.metrics['val_accuracy']:.3f}")
    print(f"trainer seconds per epoch: {epoch_seconds:.4f} s [on_epoch timestamps: (t(epoch {config.epochs}) - "
          f"t(epoch {half})) / {config.epochs - half}, best of 2; excludes featurization, includes one evaluation]")

    # -- the same two products: the trainer's kernels, then scipy CSR on the same matrix ------------------------
    rng = np.random.default_rng(1)
    weights, values = rng.normal(size=x_train.n_cols), rng.normal(size=x_train.n_rows)
    csr = to_csr(x_train)
    csr_t = csr.T.tocsr()  # both layouts kept, as SparseBinary keeps both
    assert np.allclose(csr @ weights, x_train.dot(weights)) and np.allclose(csr_t @ values, x_train.t_dot(values))
    own = median_seconds(lambda: x_train.dot(weights)), median_seconds(lambda: x_train.t_dot(values))
    scipy_ = median_seconds(lambda: csr @ weights), median_seconds(lambda: csr_t @ values)
    print(f"trainer products: X.w {own[0]:.4f} s + X^T.g {own[1]:.4f} s = {sum(own):.4f} s")
    print(f"scipy CSR products: X.w {scipy_[0]:.4f} s + X^T.g {scipy_[1]:.4f} s = {sum(scipy_):.4f} s")
    print(f"ratio trainer epoch / scipy two products: {epoch_seconds / sum(scipy_):.2f}x "
          f"(target <= {TARGET_RATIO:g}x; products alone {sum(own) / sum(scipy_):.2f}x)")


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


# -- part 2: grid search on the bundled corpus, beside scikit-learn ------------------------------------------


@dataclass(frozen=True)
class Trial:
    config: TrainConfig
    val_accuracy: float
    val_loss: float


def grid_search(parts: Split, grid: dict[str, list[Any]]) -> list[Trial]:
    """Every combination; epochs are read off one run per other setting through the on_epoch callback."""
    trials = []
    checkpoints = sorted(grid["epochs"])
    step = int(np.gcd.reduce(checkpoints))
    for lr, vocab_size, ngrams, l2 in itertools.product(grid["lr"], grid["vocab_size"], grid["ngrams"], grid["l2"]):
        seen: dict[int, dict[str, float]] = {}
        config = TrainConfig(lr=lr, epochs=checkpoints[-1], vocab_size=vocab_size, ngrams=ngrams, l2=l2)
        train(config, parts, lambda epoch, metrics, seen=seen: seen.__setitem__(epoch, dict(metrics)),
              eval_every=step)
        for epochs in checkpoints:
            trials.append(Trial(TrainConfig(lr=lr, epochs=epochs, vocab_size=vocab_size, ngrams=ngrams, l2=l2),
                                seen[epochs]["val_accuracy"], seen[epochs]["val_loss"]))
    return trials


def sklearn_baseline(parts: Split, vocabulary: Sequence[str], ngrams: int) -> tuple[float, float, float]:
    """LogisticRegression on the same binary features; C chosen on validation accuracy. (C, val, test)."""
    from sklearn.linear_model import LogisticRegression

    index = {token: i for i, token in enumerate(vocabulary)}
    x_train, x_val, x_test = (to_csr(featurize(docs, index)) for docs in parts.tokens(ngrams))
    y_train, y_val, y_test = (part.labels for part in (parts.train, parts.val, parts.test))
    best: tuple[float, float, Any] | None = None
    for c in SKLEARN_C:
        model = LogisticRegression(C=c, max_iter=10_000).fit(x_train, y_train)
        val = float(model.score(x_val, y_val))
        if best is None or val > best[1]:
            best = (c, val, model)
    assert best is not None
    c, val, model = best
    return c, val, float(model.score(x_test, y_test))


def accuracy(grid: dict[str, list[Any]]) -> None:
    parts = split(load_corpus(), seed=0)
    started = time.perf_counter()
    trials = grid_search(parts, grid)
    best = min(trials, key=lambda trial: (-trial.val_accuracy, trial.val_loss))
    result = train(best.config, parts)
    assert result.metrics["val_accuracy"] == best.val_accuracy  # the callback saw the same model
    settings = " ".join(f"{name}={value}" for name, value in best.config.to_dict().items() if name != "seed")
    seconds = time.perf_counter() - started
    print(f"grid search (bundled corpus, split seed 0): {len(trials)} settings in {seconds:.1f} s")
    print(f"best settings: {settings}")
    print(f"trainer: validation accuracy {result.metrics['val_accuracy']:.3f}, "
          f"test accuracy {result.metrics['test_accuracy']:.3f} (vocabulary {result.vocab_size})")

    c, val, test = sklearn_baseline(parts, result.model.vocabulary, best.config.ngrams)
    print(f"scikit-learn LogisticRegression (C={c:.3g}, same features): "
          f"validation accuracy {val:.3f}, test accuracy {test:.3f}")
    gap = 100 * (test - result.metrics["test_accuracy"])
    print(f"test accuracy gap, scikit-learn minus trainer: {gap:+.1f} points (target <= {TARGET_GAP_POINTS:g})")


if __name__ == "__main__":
    main()
