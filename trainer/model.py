"""The model: vocabulary + logistic-regression weights + bias + metadata, saved as plain JSON."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from trainer.data import tokenize
from trainer.errors import ModelFileError, ModelFileNotFoundError
from trainer.features import SparseBinary, featurize

SCHEMA_VERSION = 1
MODEL_KIND = "sweep.bag-of-words-logistic-regression"
MAX_MODEL_BYTES = 256 * 1024 * 1024  # far above any real vocabulary; refuses a runaway file before parsing
WEIGHT_BYTES = 8  # a float64 weight


def parameter_bytes(vocabulary: Sequence[str]) -> int:
    """What a model of this vocabulary holds: one float64 weight per entry and the bias, and the entries' UTF-8
    text. Known before training (a sweep can weigh accuracy against it at every epoch), unlike the JSON's size."""
    return WEIGHT_BYTES * (len(vocabulary) + 1) + sum(len(token.encode("utf-8")) for token in vocabulary)


@dataclass(frozen=True)
class Model:
    vocabulary: tuple[str, ...]
    weights: np.ndarray
    bias: float
    ngrams: int = 1
    metadata: dict[str, Any] = field(default_factory=dict)

    def index(self) -> dict[str, int]:
        return {token: i for i, token in enumerate(self.vocabulary)}

    @property
    def parameter_bytes(self) -> int:
        return parameter_bytes(self.vocabulary)

    def logits(self, features: SparseBinary) -> np.ndarray:
        return features.dot(self.weights) + self.bias

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Probability that each text is positive."""
        features = featurize([tokenize(text, self.ngrams) for text in texts], self.index())
        return sigmoid(self.logits(features))

    def predict(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(labels, probabilities of the positive class); label 1 = positive."""
        proba = self.predict_proba(texts)
        return (proba >= 0.5).astype(np.int8), proba

    def to_json(self) -> str:
        document = {
            "schema_version": SCHEMA_VERSION,
            "kind": MODEL_KIND,
            "ngrams": self.ngrams,
            "bias": float(self.bias),
            "vocabulary": list(self.vocabulary),
            "weights": [float(w) for w in self.weights],
            "metadata": self.metadata,
        }
        return json.dumps(document, ensure_ascii=False, separators=(",", ":"))

    def save(self, path: str | Path) -> Path:
        target = Path(path)
        target.write_text(self.to_json(), encoding="utf-8")
        return target

    @classmethod
    def from_json(cls, text: str, source: str = "model") -> Model:
        try:
            document = json.loads(text)
        except json.JSONDecodeError as error:
            raise ModelFileError(f"{source}: not a model file (invalid JSON: {error.msg})") from error
        except (ValueError, RecursionError) as error:  # an int of 5,000 digits; thousands of nested brackets
            raise ModelFileError(f"{source}: not a model file (invalid JSON: a number too long or nesting "
                                 f"too deep)") from error
        if not isinstance(document, dict) or document.get("kind") != MODEL_KIND:
            raise ModelFileError(f"{source}: not a sweep model file (kind is not {MODEL_KIND!r})")
        if document.get("schema_version") != SCHEMA_VERSION:
            raise ModelFileError(
                f"{source}: model schema version {document.get('schema_version')!r} is not supported "
                f"(this version reads {SCHEMA_VERSION}); retrain the model"
            )
        vocabulary, weights = document.get("vocabulary"), document.get("weights")
        bias, ngrams = document.get("bias"), document.get("ngrams")
        metadata = document.get("metadata", {})
        if not (isinstance(vocabulary, list) and all(isinstance(t, str) for t in vocabulary)):
            raise ModelFileError(f"{source}: 'vocabulary' must be a list of strings")
        if not (isinstance(weights, list) and len(weights) == len(vocabulary)
                and all(_is_finite_number(w) for w in weights)):
            raise ModelFileError(f"{source}: 'weights' must be finite numbers, one per vocabulary entry")
        if not _is_finite_number(bias) or ngrams not in (1, 2) or not isinstance(metadata, dict):
            raise ModelFileError(f"{source}: 'bias', 'ngrams' or 'metadata' is malformed")
        return cls(tuple(vocabulary), np.asarray(weights, dtype=np.float64), float(bias), ngrams, metadata)

    @classmethod
    def load(cls, path: str | Path) -> Model:
        """Read a model file; JSON only, so loading can never run code."""
        file = Path(path)
        try:
            size = file.stat().st_size
            if size > MAX_MODEL_BYTES:
                raise ModelFileError(f"{file}: {size} bytes is larger than the {MAX_MODEL_BYTES} allowed")
            text = file.read_text(encoding="utf-8")
        except FileNotFoundError as error:
            raise ModelFileNotFoundError(f"{file}: no such model file") from error
        except (OSError, UnicodeDecodeError) as error:
            raise ModelFileError(f"{file}: cannot read model file ({error})") from error
        return cls.from_json(text, str(file))


def sigmoid(z: np.ndarray) -> np.ndarray:
    return np.exp(-np.logaddexp(0.0, -z))


def _is_finite_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
