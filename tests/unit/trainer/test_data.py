"""Loading a user's CSV/TSV/JSONL, and a one-line error naming the file (and line) for every bad input."""

import json
import re

import numpy as np
import pytest

from tests.unit.trainer.helpers import assert_one_line, csv_text, jsonl_text, synthetic_rows
from trainer import DataError, load_corpus, split
from trainer.errors import DataFileNotFoundError

ROWS = [("a great film", 1), ("a dull film", 0), ("loved it", 1), ("hated it", 0)]


def _expect_data_error(path, pattern, **kwargs):
    with pytest.raises(DataError, match=pattern) as caught:
        load_corpus(path, **kwargs)
    assert_one_line(str(caught.value))
    assert str(caught.value).startswith(str(path))
    return str(caught.value)


# -- formats and columns --------------------------------------------------------------------------


def test_csv_is_loaded_with_texts_labels_and_source(write_file):
    path = write_file("reviews.csv", csv_text(ROWS))
    corpus = load_corpus(path)
    assert corpus.texts == tuple(text for text, _ in ROWS)
    assert corpus.labels.tolist() == [1, 0, 1, 0]
    assert corpus.labels.dtype == np.int8
    assert corpus.source == str(path)
    assert len(corpus) == 4


@pytest.mark.parametrize("suffix", [".tsv", ".tab", ".TSV"])
def test_tsv_is_split_on_tabs_not_commas(write_file, suffix):
    rows = [("good, really good", 1), ("bad, really bad", 0)]
    corpus = load_corpus(write_file(f"reviews{suffix}", csv_text(rows, delimiter="\t")))
    assert corpus.texts == ("good, really good", "bad, really bad")
    assert corpus.labels.tolist() == [1, 0]


@pytest.mark.parametrize("suffix", [".jsonl", ".ndjson"])
def test_jsonl_is_one_object_per_line_and_blank_lines_are_skipped(write_file, suffix):
    content = jsonl_text(ROWS[:2]) + "\n   \n" + jsonl_text(ROWS[2:])
    corpus = load_corpus(write_file(f"reviews{suffix}", content))
    assert corpus.texts == tuple(text for text, _ in ROWS)
    assert corpus.labels.tolist() == [1, 0, 1, 0]


def test_jsonl_text_may_contain_unicode_line_separators(write_file):
    rows = [("one\u2028two", 1), ("three\x85four", 0)]
    content = "".join(json.dumps({"text": t, "label": y}, ensure_ascii=False) + "\n" for t, y in rows)
    assert load_corpus(write_file("reviews.jsonl", content)).texts == ("one\u2028two", "three\x85four")


def test_jsonl_with_windows_line_endings_is_loaded(write_file):
    corpus = load_corpus(write_file("reviews.jsonl", jsonl_text(ROWS).replace("\n", "\r\n")))
    assert corpus.texts == tuple(text for text, _ in ROWS)


@pytest.mark.parametrize(("name", "content"), [
    ("reviews.csv", csv_text(ROWS, header=("review", "sentiment"))),
    ("reviews.tsv", csv_text(ROWS, header=("review", "sentiment"), delimiter="\t")),
    ("reviews.jsonl", jsonl_text(ROWS, header=("review", "sentiment"))),
])
def test_column_names_are_configurable(write_file, name, content):
    corpus = load_corpus(write_file(name, content), text_column="review", label_column="sentiment")
    assert corpus.texts == tuple(text for text, _ in ROWS)
    assert corpus.labels.tolist() == [1, 0, 1, 0]


def test_extra_columns_are_ignored(write_file):
    content = "id,label,text,stars\n1,pos,nice,5\n2,neg,poor,1\n"
    corpus = load_corpus(write_file("reviews.csv", content))
    assert corpus.texts == ("nice", "poor")
    assert corpus.labels.tolist() == [1, 0]


@pytest.mark.parametrize(("raw", "label"), [
    ("1", 1), ("0", 0), (" 1 ", 1),
    ("pos", 1), ("neg", 0), ("POS", 1), ("Neg", 0),
    ("positive", 1), ("negative", 0), ("Positive", 1), ("NEGATIVE", 0),
    ("true", 1), ("false", 0), ("TRUE", 1), ("False", 0),
])  # fmt: skip
def test_labels_are_read_in_any_case(write_file, raw, label):
    other = "0" if label == 1 else "1"
    corpus = load_corpus(write_file("reviews.csv", f"text,label\nfirst,{raw}\nsecond,{other}\n"))
    assert corpus.labels.tolist() == [label, 1 - label]


@pytest.mark.parametrize(("value", "label"), [(1, 1), (0, 0), (True, 1), (False, 0), ("Pos", 1), ("negative", 0)])
def test_jsonl_labels_may_be_numbers_booleans_or_words(write_file, value, label):
    rows = [("first", value), ("second", 1 - label)]
    assert load_corpus(write_file("reviews.jsonl", jsonl_text(rows))).labels.tolist() == [label, 1 - label]


def test_quoted_csv_fields_keep_embedded_newlines_commas_and_quotes(write_file):
    content = 'text,label\n"Great film,\nreally great",1\n"He said ""dull"", and he was right",0\nplain,1\n'
    corpus = load_corpus(write_file("reviews.csv", content))
    assert corpus.texts == ("Great film,\nreally great", 'He said "dull", and he was right', "plain")
    assert corpus.labels.tolist() == [1, 0, 1]


@pytest.mark.parametrize(("name", "content"), [
    ("reviews.csv", csv_text(ROWS)),
    ("reviews.tsv", csv_text(ROWS, delimiter="\t")),
    ("reviews.jsonl", jsonl_text(ROWS)),
])
def test_utf8_byte_order_mark_is_ignored(write_file, name, content):
    corpus = load_corpus(write_file(name, b"\xef\xbb\xbf" + content.encode("utf-8")))
    assert corpus.texts == tuple(text for text, _ in ROWS)


def test_windows_line_endings_in_csv_are_not_part_of_the_values(write_file):
    corpus = load_corpus(write_file("reviews.csv", csv_text(ROWS).replace("\n", "\r\n")))
    assert corpus.texts == tuple(text for text, _ in ROWS)
    assert corpus.labels.tolist() == [1, 0, 1, 0]


def test_non_ascii_text_survives_loading(write_file):
    corpus = load_corpus(write_file("reviews.csv", "text,label\nCafé — très bien ✓,1\n日本語,0\n"))
    assert corpus.texts == ("Café — très bien ✓", "日本語")


def test_blank_csv_rows_are_skipped(write_file):
    corpus = load_corpus(write_file("reviews.csv", "text,label\n\ngood,1\n,\n\nbad,0\n"))
    assert corpus.texts == ("good", "bad")


def test_fingerprint_depends_on_texts_labels_and_order(write_file):
    first = load_corpus(write_file("a.csv", csv_text(ROWS)))
    same = load_corpus(write_file("b.jsonl", jsonl_text(ROWS)))
    flipped = load_corpus(write_file("c.csv", csv_text([(t, 1 - y) for t, y in ROWS])))
    reordered = load_corpus(write_file("d.csv", csv_text(ROWS[::-1])))
    assert first.fingerprint() == same.fingerprint()
    assert len({first.fingerprint(), flipped.fingerprint(), reordered.fingerprint()}) == 3


def test_bundled_is_the_name_of_the_shipped_corpus():
    assert load_corpus("bundled").texts == load_corpus().texts
    assert load_corpus().source == "bundled corpus"


# -- bad data: one line naming the file (and the line) --------------------------------------------


def test_missing_file_names_the_file(tmp_path):
    path = tmp_path / "absent.csv"
    with pytest.raises(DataFileNotFoundError, match=r"no such data file") as caught:
        load_corpus(path)
    assert str(caught.value).startswith(str(path))
    assert isinstance(caught.value, FileNotFoundError)
    assert_one_line(str(caught.value))


@pytest.mark.parametrize(("name", "shown"), [("reviews.txt", "'.txt'"), ("reviews", "'(no extension)'"),
                                             ("reviews.json", "'.json'")])
def test_unknown_extension_names_file_and_extension(write_file, name, shown):
    path = write_file(name, csv_text(ROWS))
    message = _expect_data_error(path, r"unknown data format")
    assert shown in message and ".csv, .tsv or .jsonl" in message


def test_missing_text_column_names_file_line_and_column(write_file):
    path = write_file("reviews.csv", csv_text(ROWS, header=("review", "label")))
    message = _expect_data_error(path, rf"^{path}:2: missing column 'text'")
    assert "['label', 'review']" in message and "--text-column" in message


def test_missing_label_column_in_jsonl_names_file_line_and_column(write_file):
    content = jsonl_text(ROWS[:2]) + json.dumps({"text": "no label here"}) + "\n"
    _expect_data_error(write_file("reviews.jsonl", content), r":3: missing column 'label'")


def test_configured_column_that_is_absent_is_named(write_file):
    path = write_file("reviews.csv", csv_text(ROWS))
    _expect_data_error(path, r":2: missing column 'review'", text_column="review")


@pytest.mark.parametrize("content", ["", "   \n\n  \t\n", b"\xef\xbb\xbf"])
@pytest.mark.parametrize("name", ["reviews.csv", "reviews.jsonl"])
def test_empty_file_names_the_file(write_file, name, content):
    _expect_data_error(write_file(name, content), r"the file is empty")


def test_header_only_file_has_no_data_rows(write_file):
    _expect_data_error(write_file("reviews.csv", "text,label\n"), r"no data rows")


@pytest.mark.parametrize("label", ["1", "neg"])
def test_single_class_is_refused_naming_the_class(write_file, label):
    path = write_file("reviews.csv", csv_text([("a", label), ("b", label), ("c", label)]))
    message = _expect_data_error(path, r"a classifier needs both classes")
    assert ("every example is positive" if label == "1" else "every example is negative") in message


def test_unknown_label_names_file_and_line(write_file):
    path = write_file("reviews.csv", "text,label\ngood,1\nmeh,maybe\nbad,0\n")
    message = _expect_data_error(path, rf"^{path}:3: unknown label 'maybe'")
    assert "0/1, pos/neg, positive/negative or true/false" in message


@pytest.mark.parametrize("value", [2, 0.5, None, "", "yes"])
def test_unknown_jsonl_label_names_file_and_line(write_file, value):
    rows = [("good", 1), ("bad", 0), ("odd", value)]
    _expect_data_error(write_file("reviews.jsonl", jsonl_text(rows)), r":3: unknown label")


def test_invalid_json_line_names_file_and_line(write_file):
    content = jsonl_text(ROWS[:1]) + '{"text": "broken", "label": 1\n' + jsonl_text(ROWS[1:])
    _expect_data_error(write_file("reviews.jsonl", content), r":2: invalid JSON \(.+\); one object per line")


def test_json_line_that_is_not_an_object_names_file_and_line(write_file):
    content = jsonl_text(ROWS[:2]) + '["good", 1]\n'
    _expect_data_error(write_file("reviews.jsonl", content), r":3: expected a JSON object per line, got list")


def test_non_string_text_names_file_and_line(write_file):
    content = jsonl_text(ROWS[:2]) + json.dumps({"text": 42, "label": 1}) + "\n"
    _expect_data_error(write_file("reviews.jsonl", content), r":3: text in column 'text' is not a string")


@pytest.mark.parametrize("name", ["reviews.csv", "reviews.jsonl"])
def test_non_utf8_bytes_name_the_file_and_byte(write_file, name):
    content = b"text,label\ngood,1\n" + "café,0\n".encode("latin-1")
    message = _expect_data_error(write_file(name, content), r"not UTF-8 \(byte \d+\); re-save the file as UTF-8")
    assert f"(byte {content.index(0xE9)})" in message


def test_ragged_csv_row_names_file_line_and_field_counts(write_file):
    path = write_file("reviews.csv", "text,label\ngood,1\nbad, really bad,0\nfine,1\n")
    _expect_data_error(path, rf"^{path}:3: 3 fields where the header has 2; quote fields that contain the delimiter")


def test_short_tsv_row_names_file_and_line(write_file):
    path = write_file("reviews.tsv", "text\tlabel\ngood\t1\nno label here\n")
    _expect_data_error(path, r":3: 1 fields where the header has 2")


def test_unterminated_quote_in_csv_names_file_and_line(write_file):
    path = write_file("reviews.csv", 'text,label\ngood,1\n"bad,0\nworse,0\n')  # the quote swallows the rest
    _expect_data_error(path, rf"^{path}:\d+: 1 fields where the header has 2")


def test_csv_field_over_the_csv_module_limit_names_file_and_line(write_file):
    path = write_file("reviews.csv", "text,label\ngood,1\n" + "x" * 200_000 + ",0\n")
    _expect_data_error(path, rf"^{path}:\d+: malformed CSV \(field larger than field limit")


def test_unreadable_path_is_a_data_error(tmp_path):
    folder = tmp_path / "folder.csv"
    folder.mkdir()
    with pytest.raises(DataError) as caught:
        load_corpus(folder)
    assert str(caught.value).startswith(str(folder))
    assert_one_line(str(caught.value))


def test_split_too_small_to_train_names_the_file_and_class(write_file):
    path = write_file("reviews.csv", csv_text(synthetic_rows(3)))
    corpus = load_corpus(path)
    with pytest.raises(DataError, match=rf"^{path}: too few examples to split \(3 negative\)") as caught:
        split(corpus)
    assert_one_line(str(caught.value))


def test_split_needs_as_many_examples_per_class_as_its_error_says(write_file):
    # the message's minimum is exact: one fewer fails, that many splits with both classes everywhere
    too_few = load_corpus(write_file("five.csv", csv_text(synthetic_rows(5))))
    with pytest.raises(DataError, match=r"each class needs at least (\d+)") as caught:
        split(too_few)
    minimum = int(re.search(r"at least (\d+)", str(caught.value)).group(1))
    enough = split(load_corpus(write_file("min.csv", csv_text(synthetic_rows(minimum)))))
    for part in (enough.train, enough.val, enough.test):
        assert set(part.labels.tolist()) == {0, 1}
    with pytest.raises(DataError):
        split(load_corpus(write_file("fewer.csv", csv_text(synthetic_rows(minimum - 1)))))


def test_nul_byte_names_file_and_line(write_file):
    path = write_file("nul.csv", "text,label\ngood film,1\nbad\x00film,0\n")
    assert ":3: a NUL byte" in _expect_data_error(path, "NUL")


def test_escaped_nul_in_jsonl_text_names_file_and_line(write_file):
    path = write_file("nul.jsonl", '{"text": "good", "label": 1}\n{"text": "ba\\u0000d", "label": 0}\n')
    assert ":2: a NUL character" in _expect_data_error(path, "NUL")


def test_texts_without_any_word_are_refused(write_file):
    path = write_file("empty.csv", "text,label\n,1\n  ,0\n...,1\n!?,0\n")
    _expect_data_error(path, "no text holds a word")
