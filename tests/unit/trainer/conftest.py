"""Shared fixtures for the trainer tests: small synthetic data files under tmp_path, tiny splits."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.unit.trainer.helpers import corpus_of, csv_text, synthetic_rows
from trainer.data import Corpus, Split, load_corpus, split


@pytest.fixture
def write_file(tmp_path: Path) -> Callable[[str, str | bytes], Path]:
    """write_file("name.csv", text_or_bytes) -> the path, under tmp_path."""

    def write(name: str, content: str | bytes) -> Path:
        path = tmp_path / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8", newline="")
        return path

    return write


@pytest.fixture
def synthetic_csv(write_file: Callable[[str, str | bytes], Path]) -> Path:
    """A 60-example balanced CSV (42/8/10 after the split): enough to train in milliseconds."""
    return write_file("reviews.csv", csv_text(synthetic_rows(30)))


@pytest.fixture
def synthetic_split(synthetic_csv: Path) -> Split:
    return split(load_corpus(synthetic_csv), seed=0)


@pytest.fixture
def tiny_split() -> Split:
    """A hand-made split: 8 training documents, one with no vocabulary word at all."""
    train = corpus_of(
        ["good fun film", "good good great", "great acting", "fun plot twist",
         "bad film", "awful bad plot", "boring acting", "!!!"],
        [1, 1, 1, 1, 0, 0, 0, 0],
    )
    val = corpus_of(["good film", "bad plot"], [1, 0])
    test = corpus_of(["great fun", "awful boring"], [1, 0])
    return Split(train, val, test)


@pytest.fixture(scope="session")
def bundled_corpus() -> Corpus:
    return load_corpus()


@pytest.fixture(scope="session")
def bundled_split(bundled_corpus: Corpus) -> Split:
    return split(bundled_corpus, seed=0)
