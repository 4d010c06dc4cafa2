"""Property tests: whatever broken file `train` is given, it fails cleanly and writes no model.

`train --data FILE` exits 2 (1 when the file does not exist) with exactly one `error:` line and
writes no model.json; so does `train --config` with a broken settings file; `train predict` with a
malformed or oversized model.json exits 2 with one line. The data strategies are the trainer's own
(tests/unit/trainer/test_data_properties.py).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import assume, example, given
from hypothesis import strategies as st
from typer.testing import CliRunner

import trainer.model
from sweep.train_cli import app
from tests.unit.trainer.test_data_properties import BOUNDED, JSON_GARBAGE, assume_invalid_data, broken_data
from trainer.config import DATA_KEYS, TrainConfig, read_settings_file
from trainer.errors import TrainerError
from trainer.model import Model


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("bad-train-input")


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


def test_train_with_a_settings_file_nested_too_deeply_exits_2_with_one_line_and_writes_no_model(base):
    with workdir(base) as folder:  # PyYAML takes seconds to reach its recursion limit: once, without the guard
        (folder / "settings.yaml").write_text("[" * 1000, encoding="utf-8")  # past Python's recursion limit
        line = error_line(invoke("--config", "settings.yaml", "--epochs", "1"), 2)
        assert "settings.yaml" in line
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
