"""Property tests: broken data files never crash the trainer's loader.

`load_corpus` either returns a corpus or raises a DataError whose message is one line naming the
file. The data strategies here are shared with tests/unit/sweep/test_bad_input_properties.py and
tests/unit/sweep/test_train_cli_properties.py (what `train` does with broken files).
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from tests.unit.trainer.helpers import assert_one_line, csv_text, jsonl_text, synthetic_rows
from trainer.data import load_corpus, split, tokenize
from trainer.errors import DataError

BOUNDED = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MANY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
EXTENSIONS = (".csv", ".tsv", ".jsonl")
LABEL_WORDS = {"0", "1", "pos", "neg", "positive", "negative", "true", "false"}
VALID_ROWS = synthetic_rows(10)  # 10 per class: enough to split 70/15/15 with both classes everywhere

JSON_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=10))
JSON_GARBAGE = st.recursive(JSON_SCALARS, lambda children: st.lists(children, max_size=4)
                            | st.dictionaries(st.text(max_size=8), children, max_size=4), max_leaves=10)


# -- strategies: broken data files ------------------------------------------------------------------

def rows_text(rows: list[tuple[str, object]], ext: str, header: tuple[str, str] = ("text", "label")) -> str:
    if ext == ".jsonl":
        return jsonl_text(rows, header)
    return csv_text(rows, header, delimiter="," if ext == ".csv" else "\t")


@st.composite
def broken_data(draw) -> tuple[str, bytes]:
    """A data file with one thing wrong: (file name, content). Some draws may still be valid by chance;
    callers check with assume_invalid_data before running anything that would train."""
    ext = draw(st.sampled_from(EXTENSIONS))
    rows = list(VALID_ROWS)
    problem = draw(st.sampled_from(["empty", "binary", "encoding", "missing-column", "ragged", "one-class",
                                    "unknown-label", "huge-line", "too-few", "header-only", "json-garbage",
                                    "deep-json", "huge-number", "text-not-string", "unknown-extension"]))
    name = f"data{ext}"
    if problem == "empty":
        return name, draw(st.text(" \t\r\n\ufeff", max_size=10)).encode()
    if problem == "binary":
        return name, draw(st.binary(min_size=1, max_size=300))
    if problem == "encoding":
        encoding = draw(st.sampled_from(["utf-16", "utf-32", "latin-1", "cp1252"]))
        rows[0] = (rows[0][0] + " caf\u00e9 na\u00efve", rows[0][1])
        return name, rows_text(rows, ext).encode(encoding)
    if problem == "missing-column":
        header = draw(st.sampled_from([("txt", "label"), ("text", "labels"), ("Text", "Label"), ("label", "x")]))
        return name, rows_text(rows, ext, header).encode()
    if problem == "one-class":
        label = draw(st.sampled_from([0, 1, "pos", "NEG", "true", " False "]))
        return name, rows_text([(text, label) for text, _ in rows], ext).encode()
    if problem == "unknown-label":
        label = draw(st.one_of(st.text(max_size=8), st.integers(), st.floats(), st.none()))
        assume(str(label).strip().lower() not in LABEL_WORDS)
        rows[draw(st.integers(0, len(rows) - 1))] = ("some text", label)
        return name, rows_text(rows, ext).encode()
    if problem == "huge-line":
        huge = draw(st.sampled_from(["a", "word ", "\u00e9", ","])) * 140_000
        if ext == ".jsonl":
            return name, (rows_text(rows, ext) + huge + "\n").encode()
        rows[3] = (huge, rows[3][1])
        return name, rows_text(rows, ext).encode()
    if problem == "too-few":
        return name, rows_text(synthetic_rows(draw(st.integers(1, 4))), ext).encode()
    if problem == "header-only":
        return name, rows_text([], ext).encode() if ext != ".jsonl" else b"\n\n"
    if problem == "ragged":
        if ext == ".jsonl":
            line = draw(st.sampled_from(['{"text": "a"', '["a", 1]', '"a"', "1", "null", '{"text": "a", 1}']))
            return name, (rows_text(rows, ext) + line + "\n").encode()
        delimiter = "," if ext == ".csv" else "\t"
        extra = draw(st.lists(st.sampled_from(["x", "1", ""]), min_size=1, max_size=3))
        ragged = draw(st.sampled_from([["only one field"], ["a", "1", *extra]]))
        return name, (rows_text(rows, ext) + delimiter.join(ragged) + "\n").encode()
    if problem == "json-garbage":
        junk = json.dumps(draw(JSON_GARBAGE.filter(lambda value: not isinstance(value, dict))))
        return "data.jsonl", (rows_text(rows, ".jsonl") + junk + "\n").encode()
    if problem == "deep-json":
        depth = draw(st.integers(2_000, 200_000))
        return "data.jsonl", (rows_text(rows, ".jsonl") + draw(st.sampled_from(["[", '{"a":'])) * depth
                              + "\n").encode()
    if problem == "huge-number":
        digits = draw(st.integers(4_301, 20_000))
        return "data.jsonl", (rows_text(rows, ".jsonl") + '{"text": "a", "label": ' + "1" * digits + "}\n").encode()
    if problem == "text-not-string":
        value = draw(JSON_GARBAGE.filter(lambda value: not isinstance(value, str)))
        return "data.jsonl", (rows_text(rows, ".jsonl") + json.dumps({"text": value, "label": 1}) + "\n").encode()
    other = draw(st.sampled_from(["data.txt", "data", "data.json", "data.csv.gz", "data.xlsx"]))
    return other, rows_text(rows, ".csv").encode()


def assume_invalid_data(path: Path) -> None:
    """Generated data that happens to load and split would train a model: skip it before running."""
    try:
        split(load_corpus(path), 0)
    except Exception:  # a DataError is expected; anything else the CLI must also turn into one line
        return
    assume(False)


# -- the loader itself ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("bad-data")


@contextlib.contextmanager
def workdir(base: Path):
    """A fresh, empty working folder for one example; the old one is restored and the folder removed."""
    folder = Path(tempfile.mkdtemp(dir=base))
    previous = os.getcwd()
    os.chdir(folder)
    try:
        yield folder
    finally:
        os.chdir(previous)
        shutil.rmtree(folder, ignore_errors=True)


def load_or_data_error(path: Path) -> None:
    """load_corpus + split either succeed or raise one DataError, one line, naming the file."""
    try:
        split(load_corpus(path), 0)
    except DataError as error:
        assert_one_line(str(error))
        assert str(path) in str(error)


@MANY
@given(case=broken_data())
@example(case=("data.jsonl", b'{"text": "a", "label": ' + b"1" * 5000 + b"}\n"))
@example(case=("data.jsonl", b"[" * 100_000 + b"\n"))
@example(case=("data.jsonl", b'{"a":' * 100_000 + b"\n"))
def test_load_corpus_of_a_broken_file_raises_one_line_data_error(base, case):
    name, content = case
    with workdir(base) as folder:
        (folder / name).write_bytes(content)
        load_or_data_error(folder / name)


@MANY
@given(ext=st.sampled_from(EXTENSIONS), content=st.one_of(st.binary(max_size=400),
                                                         st.text(max_size=200).map(str.encode)))
def test_load_corpus_of_any_bytes_returns_a_corpus_or_raises_one_line_data_error(base, ext, content):
    with workdir(base) as folder:
        (folder / f"any{ext}").write_bytes(content)
        load_or_data_error(folder / f"any{ext}")


# NUL is refused on purpose (test_data.py checks that), so the texts that must survive exclude it
TEXTS = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",), exclude_characters="\x00"), min_size=1,
                max_size=40)


@BOUNDED
@given(ext=st.sampled_from(EXTENSIONS), texts=st.lists(TEXTS, min_size=12, max_size=20))
def test_load_corpus_keeps_any_text_exactly_in_every_format(base, ext, texts):
    """Quotes, delimiters, newlines and odd Unicode inside a text survive the file format unchanged."""
    assume(all(text.strip() for text in texts))  # a row of blanks is skipped on purpose
    assume(any(tokenize(text) for text in texts))  # a file without a single word is refused on purpose
    labels = [i % 2 for i in range(len(texts))]
    rows = list(zip(texts, labels))
    if ext == ".jsonl":
        content = jsonl_text(rows)
    else:  # as spreadsheets write it: \r\n line ends, so a field holding a lone \r is quoted
        buffer = io.StringIO()
        writer = csv.writer(buffer, delimiter="," if ext == ".csv" else "\t", lineterminator="\r\n")
        writer.writerows([("text", "label"), *rows])
        content = buffer.getvalue()
    with workdir(base) as folder:
        path = folder / f"rows{ext}"
        path.write_text(content, encoding="utf-8", newline="")
        corpus = load_corpus(path)
    assert list(corpus.texts) == texts
    assert corpus.labels.tolist() == labels
