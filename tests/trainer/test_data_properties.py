"""Property tests: broken data files, settings files and model files never crash the trainer.

`load_corpus` either returns a corpus or raises a DataError whose message is one line naming the
file; `train --data FILE` exits 2 (1 when the file does not exist) with exactly one `error:` line and
writes no model.json; `train predict` with a malformed or oversized model.json exits non-zero with one
line. The data strategies here are shared with tests/sweep/test_bad_input_properties.py.
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

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import trainer.model
from tests.trainer.helpers import assert_one_line, csv_text, jsonl_text, synthetic_rows
from trainer.cli import app
from trainer.config import DATA_KEYS, TrainConfig, read_settings_file
from trainer.data import load_corpus, split
from trainer.errors import DataError, TrainerError
from trainer.model import Model

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


TEXTS = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=40)


@BOUNDED
@given(ext=st.sampled_from(EXTENSIONS), texts=st.lists(TEXTS, min_size=12, max_size=20))
def test_load_corpus_keeps_any_text_exactly_in_every_format(base, ext, texts):
    """Quotes, delimiters, newlines and odd Unicode inside a text survive the file format unchanged."""
    assume(all(text.strip() for text in texts))  # a row of blanks is skipped on purpose
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


# -- `train --data` ---------------------------------------------------------------------------------

def invoke(*args: str):
    return CliRunner().invoke(app, list(args))


def error_line(result, *codes: int) -> str:
    """The one stderr line of a cleanly failed command: the expected exit code, no traceback."""
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code in codes, (result.exit_code, result.stderr, result.stdout)
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    assert result.stderr.startswith("error: "), result.stderr
    assert result.stderr.endswith("\n") and result.stderr.count("\n") == 1, f"not one line: {result.stderr!r}"
    return result.stderr[:-1]


@BOUNDED
@given(case=broken_data())
def test_train_with_bad_data_exits_2_with_one_line_and_writes_no_model(base, case):
    name, content = case
    with workdir(base) as folder:
        (folder / name).write_bytes(content)
        assume_invalid_data(folder / name)
        line = error_line(invoke("--data", name, "--epochs", "1"), 2)
        assert name in line
        assert os.listdir(folder) == [name]


def test_train_with_missing_data_file_exits_1_and_writes_no_model(base):
    with workdir(base) as folder:
        line = error_line(invoke("--data", "missing.csv", "--epochs", "1"), 1)
        assert "missing.csv" in line
        assert os.listdir(folder) == []


SETTINGS_NOISE = st.one_of(
    st.text(st.one_of(st.sampled_from(list(":{}[]-,#&*!|>'\"%@`? \t\n")), st.characters(codec="utf-8")),
            max_size=60),
    JSON_GARBAGE.map(lambda value: yaml.safe_dump(value, sort_keys=False)),
    st.dictionaries(st.sampled_from([*TrainConfig.field_names(), "text_column", "label_column", "dropout"]),
                    JSON_GARBAGE, min_size=1, max_size=3).map(lambda value: yaml.safe_dump(value, sort_keys=False)),
)


@BOUNDED
@given(text=SETTINGS_NOISE)
@example(text="lr: " + "1" * 400 + "\n")
@example(text="[" * 1500)
def test_train_with_a_broken_settings_file_exits_2_with_one_line_and_writes_no_model(base, text):
    with workdir(base) as folder:
        (folder / "settings.yaml").write_text(text, encoding="utf-8")
        try:  # mirror the CLI: flags over the file, data keys aside; a valid result would train, so skip it
            values = {**read_settings_file(folder / "settings.yaml"), "epochs": 1}
            TrainConfig.from_mapping({key: value for key, value in values.items() if key not in DATA_KEYS})
        except Exception:  # a ConfigError is expected; anything else the CLI must also turn into one line
            pass
        else:
            assume(False)
        line = error_line(invoke("--config", "settings.yaml", "--epochs", "1"), 2)
        assert "settings.yaml" in line or "must be" in line or "unknown setting" in line
        assert os.listdir(folder) == ["settings.yaml"]


# -- `train predict` with a broken model file -------------------------------------------------------

def valid_model_document() -> dict:
    model = Model(("good", "bad", "not good"), np.array([1.0, -1.0, -2.0]), 0.1, ngrams=2, metadata={"a": 1})
    return json.loads(model.to_json())


@st.composite
def broken_models(draw) -> bytes:
    kind = draw(st.sampled_from(["text", "json", "binary", "mutated", "missing-key", "deep", "huge-number",
                                 "not-utf8"]))
    if kind == "text":
        return draw(st.text(max_size=200)).encode()
    if kind == "json":
        return json.dumps(draw(JSON_GARBAGE)).encode()
    if kind == "binary":
        return draw(st.binary(min_size=1, max_size=200))
    if kind == "deep":
        return (draw(st.sampled_from(["[", '{"a":'])) * draw(st.integers(2_000, 100_000))).encode()
    if kind == "huge-number":
        document = valid_model_document()
        text = json.dumps(document).replace('"bias": 0.1', '"bias": ' + "9" * draw(st.integers(4_301, 9_000)))
        return text.encode()
    if kind == "not-utf8":
        return json.dumps(valid_model_document(), ensure_ascii=False).encode(draw(st.sampled_from(["utf-16",
                                                                                                    "utf-32"])))
    document = valid_model_document()
    key = draw(st.sampled_from(sorted(document)))
    if kind == "missing-key":
        del document[key]
    else:
        document[key] = draw(JSON_GARBAGE)
    return json.dumps(document).encode()


@BOUNDED
@given(content=broken_models())
def test_predict_with_a_malformed_model_file_exits_2_with_one_line(base, content):
    with workdir(base) as folder:
        (folder / "model.json").write_bytes(content)
        try:
            Model.load(folder / "model.json")
            loads = True
        except TrainerError:
            loads = False
        result = invoke("predict", "model.json", "a good film")
        if loads:  # mutated into something still readable (e.g. other metadata): it must simply work
            assert result.exit_code == 0, (result.exception, result.stderr)
            return
        line = error_line(result, 2)
        assert "model.json" in line
        assert result.stdout == ""
        assert os.listdir(folder) == ["model.json"]


@BOUNDED
@given(below=st.integers(min_value=1, max_value=10_000))
def test_predict_with_a_model_file_over_the_size_limit_exits_2_with_one_line(base, below):
    with workdir(base) as folder:
        (folder / "model.json").write_text(json.dumps(valid_model_document()), encoding="utf-8")
        limit = max(0, (folder / "model.json").stat().st_size - below)
        patch = pytest.MonkeyPatch()
        patch.setattr(trainer.model, "MAX_MODEL_BYTES", limit)
        try:
            line = error_line(invoke("predict", "model.json", "a good film"), 2)
        finally:
            patch.undo()
        assert "model.json" in line and "larger than" in line


def test_predict_with_a_missing_model_file_exits_1_with_one_line(base):
    with workdir(base) as folder:
        line = error_line(invoke("predict", "nothere.json", "a good film"), 1)
        assert "nothere.json" in line
        assert os.listdir(folder) == []
