"""The core trainer: a numpy bag-of-words logistic-regression sentiment classifier.

A numpy library: nothing here imports the sweep, mlflow or optuna (tests/trainer/test_imports.py checks
it). The sweep reaches the trainer through one call, ``train(config, data, on_epoch)``; the `train`
command that wraps it is sweep/train_cli.py.
"""

from trainer.config import TrainConfig
from trainer.data import Corpus, Split, load_corpus, split, tokenize
from trainer.errors import ConfigError, DataError, DivergenceError, ModelFileError, TrainerError
from trainer.model import Model, parameter_bytes
from trainer.train import EpochCallback, TrainResult, train

__all__ = [
    "ConfigError",
    "Corpus",
    "DataError",
    "DivergenceError",
    "EpochCallback",
    "Model",
    "ModelFileError",
    "Split",
    "TrainConfig",
    "TrainResult",
    "TrainerError",
    "load_corpus",
    "parameter_bytes",
    "split",
    "tokenize",
    "train",
]
