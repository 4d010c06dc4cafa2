"""The core trainer: a numpy bag-of-words logistic-regression sentiment classifier.

Numpy only: nothing here imports mlflow or optuna at module level, so `train` starts fast and the
sweep reaches the trainer through one call, ``train(config, data, on_epoch)``.
"""

from trainer.config import TrainConfig
from trainer.data import Corpus, Split, load_corpus, split, tokenize
from trainer.errors import ConfigError, DataError, DivergenceError, ModelFileError, TrainerError
from trainer.model import Model
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
    "split",
    "tokenize",
    "train",
]
