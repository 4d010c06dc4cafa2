"""Helpers shared by the trainer tests: synthetic rows, file contents, hand-made corpora."""

from __future__ import annotations

import csv
import io
import json
import random

import numpy as np

from trainer.data import Corpus

POSITIVE_WORDS = ("great", "fun", "loved", "brilliant", "moving", "superb")
NEGATIVE_WORDS = ("awful", "boring", "hated", "dull", "mess", "tedious")
NEUTRAL_WORDS = ("film", "plot", "actor", "scene", "movie", "story", "score", "ending")


def synthetic_rows(n_per_class: int, seed: int = 0) -> list[tuple[str, int]]:
    """Unique, learnable review-like texts: two words of their class, three neutral words, an id."""
    rng = random.Random(seed)
    rows = []
    for i in range(n_per_class):
        for label, words in ((1, POSITIVE_WORDS), (0, NEGATIVE_WORDS)):
            tokens = [*rng.sample(words, 2), *rng.sample(NEUTRAL_WORDS, 3), f"id{label}n{i}"]
            rng.shuffle(tokens)
            rows.append((" ".join(tokens), label))
    return rows


def csv_text(rows: list[tuple[str, object]], header: tuple[str, str] = ("text", "label"),
             delimiter: str = ",") -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def jsonl_text(rows: list[tuple[str, object]], header: tuple[str, str] = ("text", "label")) -> str:
    return "".join(json.dumps({header[0]: text, header[1]: label}) + "\n" for text, label in rows)


def corpus_of(texts: list[str], labels: list[int], source: str = "test") -> Corpus:
    return Corpus(tuple(texts), np.asarray(labels, dtype=np.int8), source)


def assert_one_line(message: str) -> None:
    assert message.strip(), "the error message is empty"
    assert "\n" not in message.strip(), f"expected a one-line message, got {message!r}"
