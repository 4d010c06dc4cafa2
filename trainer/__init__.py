"""The core trainer: a numpy bag-of-words logistic-regression sentiment classifier.

A numpy library: nothing here imports the sweep, mlflow or optuna (tests/trainer/test_imports.py checks
it). The sweep reaches the trainer through one call, ``train(config, data, on_epoch)``; the `train`
command that wraps it is sweep/train_cli.py.

The names below are imported on first use: `sweep` reads trainer.errors and trainer.config in every command,
and only training or data needs numpy.
"""


from __future__ import annotations

import importlib
import sys
import types
from typing import Any

_EXPORTS = {  # name -> the module defining it
    "ConfigError": "trainer.errors",
    "Corpus": "trainer.data",
    "DataError": "trainer.errors",
    "DivergenceError": "trainer.errors",
    "EpochCallback": "trainer.train",
    "Model": "trainer.model",
    "ModelFileError": "trainer.errors",
    "Split": "trainer.data",
    "TrainConfig": "trainer.config",
    "TrainResult": "trainer.train",
    "TrainerError": "trainer.errors",
    "load_corpus": "trainer.data",
    "parameter_bytes": "trainer.model",
    "split": "trainer.data",
    "tokenize": "trainer.data",
    "train": "trainer.train",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'trainer' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


class _Package(types.ModuleType):
    """This package, for one name: ``train`` is the function, as it always was, though trainer.train is also a
    submodule, and importing a submodule sets the package's attribute of its name to the module."""

    @property
    def train(self) -> Any:
        return importlib.import_module("trainer.train").train

    @train.setter
    def train(self, _module: types.ModuleType) -> None:
        pass  # the import system binding the submodule: the name keeps the function


sys.modules[__name__].__class__ = _Package
