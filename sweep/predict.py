"""`sweep predict`: label texts with a sweep's best model, fetched from the sweep's MLflow store."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from sweep.errors import NotFoundError, SweepConfigError
from sweep.report import best, tracking_uri_of


@dataclass(frozen=True)
class Prediction:
    text: str
    label: int  # 1 = positive
    probability: float  # of the positive class


def predict(texts: list[str], *, storage: str | None, name: str | None, tracking_uri: str | None) -> list[Prediction]:
    """The best trial's model.json (the same trial `sweep best` names), applied to ``texts``.

    The model file is read from the trial's child run: exactly the model that scored the best
    validation result, whatever the parent run was last told.
    """
    if not texts:
        raise SweepConfigError("no texts to label; pass them as arguments, or one per line with --file")
    winner = best(storage, name)
    if winner.model_uri is None:
        raise NotFoundError(f"the best trial of sweep {winner.sweep.name!r} has no MLflow run to take its "
                            f"model from; `sweep sync {winner.sweep.name}` rebuilds it")
    from sweep.tracking import read_artifact_text  # imports mlflow (~2 s): only predict needs the store
    from trainer import Model

    model = Model.from_json(read_artifact_text(winner.model_uri, tracking_uri_of(winner.sweep, tracking_uri)),
                            winner.model_uri)
    labels, probabilities = model.predict(texts)
    return [Prediction(text, int(label), float(p)) for text, label, p in zip(texts, labels, probabilities)]


def read_texts(path: str) -> list[str]:
    """One text per non-blank line of a UTF-8 file, or of standard input for "-"."""
    try:
        content = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NotFoundError(f"{path}: no such file; check --file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise SweepConfigError(f"{path}: cannot read it as UTF-8 text ({error})") from None
    return [line.strip() for line in content.splitlines() if line.strip()]
