"""Model: JSON save/load round trip, predict(), and every malformed model file refused."""

import json

import numpy as np
import pytest

import trainer.model
from tests.unit.trainer.helpers import assert_one_line
from trainer import Model, ModelFileError, TrainConfig, train
from trainer.data import Split
from trainer.errors import ModelFileNotFoundError
from trainer.model import MODEL_KIND, SCHEMA_VERSION


@pytest.fixture
def model(synthetic_split: Split) -> Model:
    return train(TrainConfig(lr=0.5, epochs=60, ngrams=2), synthetic_split).model


@pytest.fixture
def model_document(model: Model) -> dict:
    return json.loads(model.to_json())


TEXTS = ["great fun film", "awful boring mess", "", "words it never saw", "GREAT, superb; brilliant!", "dull"]


def test_save_then_load_gives_identical_predictions(model: Model, tmp_path):
    path = model.save(tmp_path / "model.json")
    loaded = Model.load(path)
    assert loaded.vocabulary == model.vocabulary
    assert np.array_equal(loaded.weights, model.weights)
    assert loaded.bias == model.bias
    assert loaded.ngrams == model.ngrams == 2
    assert loaded.metadata == model.metadata
    labels, proba = model.predict(TEXTS)
    loaded_labels, loaded_proba = loaded.predict(TEXTS)
    assert np.array_equal(labels, loaded_labels)
    assert np.array_equal(proba, loaded_proba)


def test_resaving_a_loaded_model_is_byte_identical(model: Model, tmp_path):
    first = model.save(tmp_path / "first.json")
    second = Model.load(first).save(tmp_path / "second.json")
    assert first.read_bytes() == second.read_bytes()


def test_model_file_is_plain_json_with_kind_and_schema_version(model: Model, tmp_path):
    document = json.loads(model.save(tmp_path / "model.json").read_text(encoding="utf-8"))
    assert document["kind"] == MODEL_KIND
    assert document["schema_version"] == SCHEMA_VERSION
    assert len(document["weights"]) == len(document["vocabulary"])


def test_predict_returns_labels_and_positive_class_probabilities(model: Model):
    labels, proba = model.predict(TEXTS)
    assert labels.shape == proba.shape == (len(TEXTS),)
    assert set(labels.tolist()) <= {0, 1}
    assert ((proba > 0) & (proba < 1)).all()
    assert np.array_equal(labels, (proba >= 0.5).astype(labels.dtype))
    assert labels[0] == 1 and labels[1] == 0 and labels[4] == 1 and labels[5] == 0
    assert proba[0] > 0.7 and proba[1] < 0.3
    np.testing.assert_array_equal(proba, model.predict_proba(TEXTS))


def test_predict_of_text_without_known_words_is_the_bias_alone(model: Model):
    _, proba = model.predict(["", "words it never saw"])
    expected = 1 / (1 + np.exp(-model.bias))
    np.testing.assert_allclose(proba, [expected, expected], rtol=1e-12)


def test_predict_on_hand_made_weights():
    model = Model(("good", "bad"), np.array([2.0, -3.0]), 0.5)
    labels, proba = model.predict(["good", "bad", "good bad", "neither"])
    np.testing.assert_allclose(proba, 1 / (1 + np.exp(-np.array([2.5, -2.5, -0.5, 0.5]))), rtol=1e-12)
    assert labels.tolist() == [1, 0, 0, 1]


def _write(tmp_path, content, name="model.json"):
    path = tmp_path / name
    if isinstance(content, dict):
        content = json.dumps(content)
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return path


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(kind="something.else"), r"not a sweep model file"),
        (lambda d: d.pop("kind"), r"not a sweep model file"),
        (lambda d: d.update(schema_version=2), r"model schema version 2 is not supported"),
        (lambda d: d.pop("schema_version"), r"model schema version None is not supported"),
        (lambda d: d["weights"].pop(), r"'weights' must be finite numbers, one per vocabulary entry"),
        (lambda d: d["weights"].append(0.0), r"'weights' must be finite numbers"),
        (lambda d: d["weights"].__setitem__(0, "0.1"), r"'weights' must be finite numbers"),
        (lambda d: d["weights"].__setitem__(0, True), r"'weights' must be finite numbers"),
        (lambda d: d["vocabulary"].__setitem__(0, 7), r"'vocabulary' must be a list of strings"),
        (lambda d: d.update(vocabulary="good"), r"'vocabulary' must be a list of strings"),
        (lambda d: d.update(bias=None), r"'bias', 'ngrams' or 'metadata' is malformed"),
        (lambda d: d.update(ngrams=3), r"'bias', 'ngrams' or 'metadata' is malformed"),
        (lambda d: d.update(metadata=[]), r"'bias', 'ngrams' or 'metadata' is malformed"),
    ],
)
def test_malformed_model_file_is_refused_with_model_file_error(model_document, tmp_path, change, message):
    change(model_document)
    path = _write(tmp_path, model_document)
    with pytest.raises(ModelFileError, match=message) as caught:
        Model.load(path)
    assert str(caught.value).startswith(f"{path}: ")
    assert_one_line(str(caught.value))


@pytest.mark.parametrize("bad", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_non_finite_weight_is_refused(model: Model, tmp_path, bad):
    text = model.to_json()
    document = json.loads(text)
    document["weights"][0] = 12345.5
    path = _write(tmp_path, json.dumps(document).replace("12345.5", bad))
    with pytest.raises(ModelFileError, match=r"'weights' must be finite numbers"):
        Model.load(path)


@pytest.mark.parametrize("content", ["", "{", "not json", '{"kind": ', "[1, 2, 3]", "null"])
def test_file_that_is_not_a_json_model_is_refused(tmp_path, content):
    path = _write(tmp_path, content)
    with pytest.raises(ModelFileError, match=rf"^{path}: not a (sweep )?model file") as caught:
        Model.load(path)
    assert_one_line(str(caught.value))


def test_non_utf8_model_file_is_refused(tmp_path):
    path = _write(tmp_path, b'{"kind": "\xff\xfe"}')
    with pytest.raises(ModelFileError, match=rf"^{path}: cannot read model file"):
        Model.load(path)


def test_oversized_model_file_is_refused_before_parsing(model: Model, tmp_path, monkeypatch):
    path = model.save(tmp_path / "model.json")
    monkeypatch.setattr(trainer.model, "MAX_MODEL_BYTES", 100)
    with pytest.raises(ModelFileError, match=r"bytes is larger than the 100 allowed") as caught:
        Model.load(path)
    assert str(caught.value).startswith(f"{path}: {path.stat().st_size} bytes")
    monkeypatch.setattr(trainer.model, "MAX_MODEL_BYTES", path.stat().st_size)
    assert Model.load(path).vocabulary == model.vocabulary  # exactly at the limit is fine


def test_missing_model_file_raises_model_file_not_found_error(tmp_path):
    with pytest.raises(ModelFileNotFoundError, match=r"no such model file") as caught:
        Model.load(tmp_path / "absent.json")
    assert isinstance(caught.value, ModelFileError)
    assert isinstance(caught.value, FileNotFoundError)
    assert_one_line(str(caught.value))
