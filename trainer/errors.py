"""The trainer's exceptions: one root, a subclass per kind of failure a caller may handle.

The exit code each gets from `train` and `sweep` is set in sweep/errors.py (the trainer cannot import it).
"""

from __future__ import annotations


class TrainerError(Exception):
    """Root of every error the trainer raises on purpose."""


class ConfigError(TrainerError, ValueError):
    """A hyperparameter is out of range; the message names the field and the allowed values."""


class ConfigFileNotFoundError(ConfigError, FileNotFoundError):
    """The settings file named does not exist."""


class DataError(TrainerError, ValueError):
    """A data file cannot be used; the message names the file (and line) and what to fix."""


class DataFileNotFoundError(DataError, FileNotFoundError):
    """The data file named does not exist."""


class DivergenceError(TrainerError, ArithmeticError):
    """The loss became non-finite or exploded past DIVERGED_LOSS: the learning rate is too high.

    Raised instead of returning NaN weights. ``epoch`` is the 1-based epoch where it happened.
    """

    def __init__(self, epoch: int, lr: float) -> None:
        super().__init__(
            f"training diverged at epoch {epoch}: the loss exploded with lr={lr:g}; lower --lr"
        )
        self.epoch = epoch
        self.lr = lr


class ModelFileError(TrainerError, ValueError):
    """A model file is missing, malformed, too large or of an unknown schema version."""


class ModelFileNotFoundError(ModelFileError, FileNotFoundError):
    """The model file named does not exist."""
