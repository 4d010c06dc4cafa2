"""The built-in trainer: numpy bag-of-words sentiment, reached through `Trial` like any user's function.

Its settings come from ``trial.params``; the validation metrics of up to CURVE_POINTS epochs per trial are logged as
curves, and the objective is reported to the pruner at log-spaced checkpoint epochs. Validation runs at those
epochs only: on the bundled corpus it is a sizeable share of a training step.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from importlib.metadata import version
from pathlib import Path

import numpy as np

import trainer
from sweep.records import ModelPublishing, PyfuncRecipe
from sweep.trainers.base import TrialOutcome
from sweep.trial import Trial, TrialPruned
from trainer import Split, TrainConfig, load_corpus, parameter_bytes, split, train

CURVE_POINTS = 100  # at most this many points per learning curve: long runs stay cheap to log
CHECKPOINTS_PER_DECADE = 4  # pruner reports at 1, 2, 3, 6, 10, 18, 32, 56, 100, ... epochs

# the best model, published as a pyfunc model: sweep/pyfunc_model.py over the best trial's model.json
PYFUNC_MODEL_FILE = Path(__file__).resolve().parent.parent / "pyfunc_model.py"  # logged "as code"
MODEL_ARTIFACT = "model_json"  # the name sweep/pyfunc_model.py finds model.json under (its MODEL_ARTIFACT)
INPUT_EXAMPLE = ("a warm, funny and beautifully acted film", "dull, predictable and far too long")
OUTPUT_EXAMPLE = {"label": [1, 0], "probability": [0.93, 0.08]}  # the model's columns and types for such texts
RETRAIN = "sweep best --name {name} --format yaml > best.yaml && train --config best.yaml"


def checkpoint_epochs(limit: int) -> list[int]:
    """Log-spaced epochs, the same for every trial, so a pruner compares trials at equal steps.

    Optuna's pruners compare intermediate values reported at the same step. A per-trial schedule
    (every epochs/10) would put trials of different lengths on different steps and never prune.
    """
    epochs: list[int] = []
    k = 0
    while True:
        epoch = round(10 ** (k / CHECKPOINTS_PER_DECADE))
        if epoch > limit:
            return epochs
        if not epochs or epoch != epochs[-1]:
            epochs.append(epoch)
        k += 1


def load_split(source: str, *, text_column: str, label_column: str, fixed: Mapping[str, object]) -> Split:
    """The sweep's data (``source``: a file, or "bundled"), split the way every trial sees it: by the split seed
    among the ``fixed`` trainer settings."""
    corpus = load_corpus(source, text_column=text_column, label_column=label_column)
    return split(corpus, TrainConfig.from_mapping(dict(fixed)).seed)


def data_fingerprint(data: Split) -> str:
    """Content hashes of the train, validation and test parts: the same data, split the same way."""
    return ":".join(part.fingerprint() for part in (data.train, data.val, data.test))[:50]


def pyfunc_recipe() -> PyfuncRecipe:
    """The built-in trainer's best model as a pyfunc model: sweep/pyfunc_model.py with the trainer package's
    sources (numpy only: no corpus, no caches, and no `train` CLI, which needs typer) and model.json."""
    sources = Path(trainer.__file__).resolve().parent
    code = {f"trainer/{source.name}": str(source) for source in sorted(sources.glob("*.py")) if source.name != "cli.py"}
    return PyfuncRecipe(str(PYFUNC_MODEL_FILE), code, MODEL_ARTIFACT, {"text": list(INPUT_EXAMPLE)},
                        {name: list(values) for name, values in OUTPUT_EXAMPLE.items()},
                        (f"numpy=={np.__version__}", f"pandas=={version('pandas')}"), RETRAIN)


class SentimentTrainer:
    """`trainer: sentiment` (the default): the sweep's data is loaded once, before any store is touched."""

    def __init__(self, data: Split, metric: str, *, prunes: bool, data_fingerprint: str,
                 more_objectives: Sequence[str] = ()) -> None:
        self.data, self.metric, self.prunes, self.fingerprint = data, metric, prunes, data_fingerprint
        self.more_objectives = tuple(more_objectives)  # with several objectives, each is reported to the pruner

    def provenance(self) -> dict[str, str]:
        return {"data.fingerprint": self.fingerprint}

    @staticmethod
    def mlflow_seconds() -> None:
        return None  # the built-in trainer never calls MLflow

    @staticmethod
    def model_publishing() -> ModelPublishing:
        """Its trials' model.json, the best one published as a pyfunc model (`sweep predict` labels texts with it)."""
        return ModelPublishing(pyfunc_recipe())

    def close(self) -> None:
        return None  # it holds only the sweep's data

    def run(self, trial: Trial) -> TrialOutcome:
        """Train with the trial's settings; raises TrialPruned when its pruner says so, and TrialInterrupted
        at the first curve point or checkpoint epoch after Ctrl-C or SIGTERM."""
        train_config = TrainConfig.from_mapping(trial.params)
        trial.params.update(train_config.to_dict())  # every trainer setting, tuned or fixed or default
        curve_every = max(1, math.ceil(train_config.epochs / CURVE_POINTS))
        checkpoints = set(checkpoint_epochs(train_config.epochs)) if self.prunes else set()
        model_bytes = parameter_bytes(self.data.ranked_vocabulary(train_config.ngrams)[: train_config.vocab_size])
        started = time.perf_counter()

        def on_epoch(epoch: int, metrics: Mapping[str, float]) -> None:
            trial.checkpoint(epoch)
            trial.log_metrics(metrics, step=epoch)
            if epoch in checkpoints:
                if self.more_objectives:  # every objective at this epoch: the costs so far are known too
                    costs = {"model_bytes": float(model_bytes), "train_seconds": time.perf_counter() - started}
                    now = {**metrics, **costs}
                    trial.report(step=epoch, **{name: now[name] for name in (self.metric, *self.more_objectives)})
                else:
                    trial.report(metrics[self.metric], epoch)
                if trial.should_prune():
                    raise TrialPruned(f"pruned at epoch {epoch}")

        curve = range(curve_every, train_config.epochs + 1, curve_every)
        # validation only where a curve point or the pruner needs it; Ctrl-C is seen at those epochs too
        result = train(train_config, self.data, on_epoch, eval_epochs={*curve, *checkpoints})
        final = {**result.metrics, "model_bytes": float(result.model.parameter_bytes), "train_seconds": result.seconds}
        return TrialOutcome(final[self.metric], final, result.model.to_json())
