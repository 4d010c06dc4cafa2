"""The function-trainer contender of bench/overhead.py: the built-in contender's toy model, written as a user's
``fit(trial)`` (`trainer: {function: bench.function_trainer:fit}`).

It does what the built-in sentiment trainer does for a trial of the bench (no pruner there): train the
bundled-corpus classifier with the trial's settings, log every epoch's metrics as curves, log all six
settings as params and the model as model.json, and return the final metrics. The data is loaded and split
once per sweep, like the built-in trainer does (``data.cache_clear()`` before each sweep keeps it so).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

from sweep import Trial
from trainer import Split, TrainConfig, load_corpus, split, train

FIT = "bench.function_trainer:fit"  # the trainer: reference of the contender
TRAIN_CALL = "bench.function_trainer:train"  # what the bench times as trainer seconds, as for the built-in one


@functools.cache
def data(seed: int) -> Split:
    return split(load_corpus(), seed)


def fit(trial: Trial) -> dict[str, float]:
    config = TrainConfig.from_mapping(trial.params)
    trial.log_params(config.to_dict())  # every setting, tuned, fixed or default, as the built-in trainer logs

    def on_epoch(epoch: int, metrics: Mapping[str, float]) -> None:
        trial.log_metrics(metrics, step=epoch)

    result = train(config, data(config.seed), on_epoch)
    model = trial.workdir / "model.json"
    model.write_text(result.model.to_json(), encoding="utf-8")
    trial.log_artifact(model)
    return dict(result.metrics)
