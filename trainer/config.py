"""TrainConfig: the trainer's hyperparameters, validated once in the constructor."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trainer.errors import ConfigError, ConfigFileNotFoundError

MAX_EPOCHS = 100_000  # the bundled corpus converges in hundreds; more is a typo that would train for days
MAX_VOCAB_SIZE = 10_000_000  # weights are vocab_size floats; beyond this a typo allocates without limit


@dataclass(frozen=True)
class TrainConfig:
    """Hyperparameters of one training run. Every default is safe for the bundled corpus."""

    lr: float = 0.5  # gradient-descent step size; too high diverges, too low never learns
    epochs: int = 300  # full passes over the training split
    vocab_size: int = 2000  # keep the N most frequent tokens (unigrams and n-grams) of the train split
    l2: float = 1e-4  # L2 penalty on the weights (not the bias); 0 disables it
    ngrams: int = 1  # 1 = single words; 2 adds word pairs, which can see "not good"
    seed: int = 0  # seeds the train/validation/test split; training itself is deterministic

    def __post_init__(self) -> None:
        _check_number("lr", self.lr, float)
        _check_number("epochs", self.epochs, int)
        _check_number("vocab_size", self.vocab_size, int)
        _check_number("l2", self.l2, float)
        _check_number("ngrams", self.ngrams, int)
        _check_number("seed", self.seed, int)
        if not self.lr > 0:
            raise ConfigError(f"lr must be > 0, got {self.lr!r}")
        if not 1 <= self.epochs <= MAX_EPOCHS:
            raise ConfigError(f"epochs must be between 1 and {MAX_EPOCHS:,}, got {_shown(self.epochs)}")
        if not 1 <= self.vocab_size <= MAX_VOCAB_SIZE:
            raise ConfigError(f"vocab_size must be between 1 and {MAX_VOCAB_SIZE:,}, got {_shown(self.vocab_size)}")
        if self.l2 < 0:
            raise ConfigError(f"l2 must be >= 0, got {self.l2!r}")
        if self.ngrams not in (1, 2):
            raise ConfigError(f"ngrams must be 1 or 2, got {self.ngrams!r}")
        if self.seed < 0:
            raise ConfigError(f"seed must be >= 0, got {self.seed!r}")

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(field.name for field in dataclasses.fields(cls))

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> TrainConfig:
        """Build from a dict (a YAML/JSON file, a trial's params); unknown keys are refused by name."""
        unknown = sorted(set(values) - set(cls.field_names()))
        if unknown:
            raise ConfigError(
                f"unknown setting {unknown[0]!r}; expected one of: {', '.join(cls.field_names())}"
            )
        return cls(**{name: _coerce(name, value) for name, value in values.items()})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _coerce(name: str, value: Any) -> Any:
    """Accept ints for float fields and integral floats (2000.0) for int fields, as YAML and Optuna give."""
    expected = {field.name: field.type for field in dataclasses.fields(TrainConfig)}[name]
    if expected == "int" and isinstance(value, float) and value.is_integer():
        return int(value)
    if expected == "float" and isinstance(value, int) and not isinstance(value, bool):
        try:
            return float(value)
        except OverflowError:  # an int of hundreds of digits
            raise ConfigError(f"{name} must be finite, got an integer too large for a float") from None
    return value


def _shown(value: int) -> str:
    """An integer in a one-line message: one of thousands of digits is not printed whole."""
    return repr(value) if value.bit_length() < 200 else "an integer of over 60 digits"


def _check_number(name: str, value: Any, kind: type) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is int:
        ok = ok and isinstance(value, int)
    if not ok:
        raise ConfigError(f"{name} must be {'an integer' if kind is int else 'a number'}, got {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{name} must be finite, got {value!r}")


DATA_KEYS = ("data", "text_column", "label_column")  # where the examples come from, beside the hyperparameters


def read_settings_file(path: str | Path) -> dict[str, Any]:
    """A YAML or JSON mapping of TrainConfig fields and DATA_KEYS, as `sweep best --format yaml` writes.

    Returns the raw mapping (validated for unknown keys); the caller overlays its flags, then builds
    TrainConfig, so one file can be reused with a different --epochs.
    """
    import yaml  # only `train --config` needs it

    file = Path(path)
    try:
        values = yaml.safe_load(file.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise ConfigFileNotFoundError(f"{file}: no such config file") from error
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{file}: cannot read config file ({error})") from error
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{file}{where}: not valid YAML/JSON; fix the syntax") from error
    except (ValueError, OverflowError, RecursionError) as error:  # 2001-02-30, an int of 5,000 digits, [[[[...
        raise ConfigError(f"{file}: not valid YAML/JSON (an impossible value or nesting too deep); "
                          f"fix the file") from error
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise ConfigError(f"{file}: expected a mapping of settings, got {type(values).__name__}")
    allowed = (*TrainConfig.field_names(), *DATA_KEYS)
    unknown = sorted(str(key) for key in values if key not in allowed)
    if unknown:
        raise ConfigError(f"{file}: unknown setting {unknown[0]!r}; expected one of: {', '.join(allowed)}")
    return values
