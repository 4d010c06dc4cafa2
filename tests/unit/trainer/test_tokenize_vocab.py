"""The tokenizer and the vocabulary: what a document's features are made of."""

from tests.unit.trainer.helpers import corpus_of
from trainer import TrainConfig, tokenize, train
from trainer.data import Split


def test_tokenize_lowercases_every_word():
    assert tokenize("Great MOVIE, GrEaT Cast") == ["great", "movie", "great", "cast"]


def test_tokenize_keeps_apostrophes_inside_words():
    assert tokenize("Don't miss it; it's the director's best") == [
        "don't", "miss", "it", "it's", "the", "director's", "best",
    ]


def test_tokenize_drops_punctuation_and_keeps_digits():
    assert tokenize("Wow...amazing!!! 10/10 (really) -- a must-see?") == [
        "wow", "amazing", "10", "10", "really", "a", "must", "see",
    ]


def test_tokenize_of_text_without_words_is_empty():
    assert tokenize("") == []
    assert tokenize("?!... -- :)", ngrams=2) == []


def test_tokenize_defaults_to_single_words():
    assert tokenize("not good at all") == tokenize("not good at all", ngrams=1) == ["not", "good", "at", "all"]


def test_tokenize_with_ngrams_2_appends_adjacent_word_pairs():
    assert tokenize("Not GOOD at all.", ngrams=2) == [
        "not", "good", "at", "all", "not good", "good at", "at all",
    ]


def test_tokenize_with_ngrams_2_of_one_word_has_no_pairs():
    assert tokenize("fine!", ngrams=2) == ["fine"]


def _split(train_texts, val_texts=("zzz zzz zzz", "yyy"), test_texts=("zzz", "xxx")):
    labels = [i % 2 for i in range(len(train_texts))]
    return Split(corpus_of(list(train_texts), labels), corpus_of(list(val_texts), [1, 0]),
                 corpus_of(list(test_texts), [1, 0]))


def test_vocabulary_ranks_by_document_frequency_not_count():
    # "b" occurs 4 times but in one document; "a" once in each of three documents
    data = _split(["b b b b a", "a c", "c a", "d"])
    assert data.ranked_vocabulary(1) == ["a", "c", "b", "d"]


def test_vocabulary_ties_are_broken_alphabetically():
    data = _split(["pear apple", "mango kiwi", "fig", "banana"])
    assert data.ranked_vocabulary(1) == ["apple", "banana", "fig", "kiwi", "mango", "pear"]


def test_vocabulary_comes_from_the_train_split_only():
    data = _split(["good film", "bad film"], val_texts=("unseen unseen", "unseen"), test_texts=("other", "other"))
    ranked = data.ranked_vocabulary(1)
    assert ranked == ["film", "bad", "good"]
    assert "unseen" not in ranked and "other" not in ranked


def test_vocabulary_with_ngrams_2_ranks_word_pairs_too():
    data = _split(["not good", "not good at all", "good"])
    assert data.ranked_vocabulary(2) == ["good", "not", "not good", "all", "at", "at all", "good at"]


def test_vocab_size_keeps_the_most_frequent_tokens():
    data = _split(["b b b b a", "a c", "c a", "d"])
    result = train(TrainConfig(vocab_size=2, epochs=1), data)
    assert result.model.vocabulary == ("a", "c")
    assert result.vocab_size == 2
    assert result.model.weights.shape == (2,)


def test_vocab_size_above_the_distinct_tokens_keeps_them_all():
    data = _split(["b b b b a", "a c", "c a", "d"])
    result = train(TrainConfig(vocab_size=1000, epochs=1), data)
    assert result.model.vocabulary == ("a", "c", "b", "d")
    assert result.vocab_size == 4
