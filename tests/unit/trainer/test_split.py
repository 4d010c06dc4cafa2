"""The stratified, seeded train / validation / test split."""

import pytest

from tests.unit.trainer.helpers import corpus_of, synthetic_rows
from trainer import split
from trainer.data import SPLIT_FRACTIONS


@pytest.fixture
def corpus():
    rows = synthetic_rows(100)
    return corpus_of([text for text, _ in rows], [label for _, label in rows], source="synthetic")


def _texts(parts):
    return [part.texts for part in (parts.train, parts.val, parts.test)]


def test_split_is_deterministic_for_a_seed(corpus):
    assert _texts(split(corpus, seed=5)) == _texts(split(corpus, seed=5))
    assert split(corpus, seed=5).train.labels.tolist() == split(corpus, seed=5).train.labels.tolist()


def test_split_differs_for_another_seed(corpus):
    first, second = split(corpus, seed=0), split(corpus, seed=1)
    for a, b in zip(_texts(first), _texts(second)):
        assert set(a) != set(b)


def test_default_seed_is_zero(corpus):
    assert _texts(split(corpus)) == _texts(split(corpus, seed=0))


def test_split_is_70_15_15_per_class(corpus):
    parts = split(corpus, seed=3)
    assert SPLIT_FRACTIONS == (0.70, 0.15, 0.15)
    assert parts.sizes == {"n_train": 140, "n_val": 30, "n_test": 30}
    for part, expected in zip((parts.train, parts.val, parts.test), (70, 15, 15)):
        assert int(part.labels.sum()) == expected  # positives
        assert int((part.labels == 0).sum()) == expected  # negatives


@pytest.mark.parametrize("seed", [0, 1, 2, 99])
def test_every_part_has_both_classes_no_overlap_and_all_examples_are_used(corpus, seed):
    parts = split(corpus, seed=seed)
    train, val, test = (set(texts) for texts in _texts(parts))
    assert not (train & val) and not (train & test) and not (val & test)
    assert train | val | test == set(corpus.texts)
    assert len(parts.train) + len(parts.val) + len(parts.test) == len(corpus)
    for part in (parts.train, parts.val, parts.test):
        assert set(part.labels.tolist()) == {0, 1}


def test_split_keeps_each_text_with_its_label(corpus):
    truth = dict(zip(corpus.texts, corpus.labels.tolist()))
    parts = split(corpus, seed=7)
    for part in (parts.train, parts.val, parts.test):
        assert all(truth[text] == label for text, label in zip(part.texts, part.labels.tolist()))
        assert part.source == "synthetic"


def test_unbalanced_corpus_is_stratified(corpus):
    rows = synthetic_rows(100)
    unbalanced = corpus_of([t for t, y in rows if y == 1] + [t for t, y in rows if y == 0][:20],
                           [1] * 100 + [0] * 20)
    parts = split(unbalanced, seed=0)
    assert [int(p.labels.sum()) for p in (parts.train, parts.val, parts.test)] == [70, 15, 15]
    assert [int((p.labels == 0).sum()) for p in (parts.train, parts.val, parts.test)] == [14, 3, 3]


def test_roughly_70_15_15_for_an_odd_sized_corpus():
    rows = synthetic_rows(333)
    parts = split(corpus_of([t for t, _ in rows], [y for _, y in rows]), seed=0)
    total = 666
    assert abs(len(parts.train) / total - 0.70) < 0.01
    assert abs(len(parts.val) / total - 0.15) < 0.01
    assert abs(len(parts.test) / total - 0.15) < 0.01
