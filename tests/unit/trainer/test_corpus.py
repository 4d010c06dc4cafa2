"""The bundled corpus: big enough, balanced, no duplicates; and the settings of a run matter on it."""

from trainer import TrainConfig, train
from trainer.data import Corpus, Split


def test_bundled_corpus_has_at_least_1000_texts(bundled_corpus: Corpus):
    assert len(bundled_corpus) >= 1000
    assert all(isinstance(text, str) and text.strip() for text in bundled_corpus.texts)


def test_bundled_corpus_is_balanced(bundled_corpus: Corpus):
    assert set(bundled_corpus.labels.tolist()) == {0, 1}
    assert int(bundled_corpus.labels.sum()) * 2 == len(bundled_corpus)


def test_bundled_corpus_has_no_duplicate_texts(bundled_corpus: Corpus):
    assert len(set(bundled_corpus.texts)) == len(bundled_corpus)
    normalised = {" ".join(text.lower().split()) for text in bundled_corpus.texts}
    assert len(normalised) == len(bundled_corpus)


def test_bundled_corpus_split_sizes(bundled_split: Split, bundled_corpus: Corpus):
    sizes = bundled_split.sizes
    assert sum(sizes.values()) == len(bundled_corpus)
    assert sizes == {"n_train": 1260, "n_val": 270, "n_test": 270}


def test_settings_matter_good_settings_beat_a_tiny_vocabulary(bundled_split: Split):
    good = train(TrainConfig(lr=0.5, epochs=300), bundled_split).metrics["val_accuracy"]
    poor = train(TrainConfig(lr=0.5, epochs=300, vocab_size=10), bundled_split).metrics["val_accuracy"]
    assert 0.75 <= good < 0.99, "good settings learn, but the corpus is not trivially separable"
    assert poor <= 0.62, "ten words are close to chance"
    assert good - poor >= 0.15
