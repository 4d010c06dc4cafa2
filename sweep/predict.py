"""`sweep predict`: a sweep's best model, fetched from the sweep's MLflow store, applied to texts (the built-in
trainer) or to the rows of a CSV file (a function trainer's model, loaded as a pyfunc model)."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sweep.constraints import Bound
from sweep.errors import NotFoundError, SweepConfigError
from sweep.queries import Best, best, tracking_of


@dataclass(frozen=True)
class Prediction:
    text: str
    label: int  # 1 = positive
    probability: float  # of the positive class


def predict(texts: list[str], *, storage: str | None, name: str | None, tracking_uri: str | None,
            pick: tuple[Bound, ...] = ()) -> list[Prediction]:
    """The best trial's model.json (the same trial `sweep best` names, with ``pick`` as `sweep best --pick`),
    applied to ``texts``.

    The model file is read from the trial's child run: exactly the model that scored the best
    validation result, whatever the parent run was last told.
    """
    check_texts(texts)
    winner = best(storage, name, pick)
    if winner.model_uri is None or winner.trial.run_id is None:
        raise NotFoundError(f"the best trial of sweep {winner.sweep.name!r} has no MLflow run to take its "
                            f"model from; `sweep sync {winner.sweep.name}` rebuilds it")
    from sweep.tracking.artifacts import read_local_artifact_text
    from trainer import Model

    tracking = tracking_of(winner.sweep, tracking_uri)
    model_json = read_local_artifact_text(winner.trial.run_id, "model.json", tracking.secret_url)
    if model_json is None:  # not on this machine's disk: MLflow fetches it (importing it costs seconds)
        from sweep.tracking.artifacts import ArtifactMissingError, read_artifact_text

        try:
            model_json = read_artifact_text(winner.model_uri, tracking.explicit)
        except ArtifactMissingError:
            name = winner.sweep.name
            raise NotFoundError(f"the best trial {winner.trial.number} of sweep {name!r} has no model.json in MLflow "
                                f"(a run rebuilt by `sweep sync` has none: the model lived only in the trial's "
                                f"process); to get it: sweep best --name {name} --format yaml > best.yaml && "
                                f"train --config best.yaml") from None
    model = Model.from_json(model_json, winner.model_uri)
    labels, probabilities = model.predict(texts)
    return [Prediction(text, int(label), float(p)) for text, label, p in zip(texts, labels, probabilities)]


def check_texts(texts: list[str]) -> None:
    """Texts to label: at least one, none empty (checked before any store is read)."""
    if not texts:
        raise SweepConfigError("no texts to label; pass them as arguments, or one per line with --file")
    if any(not text.strip() for text in texts):
        raise SweepConfigError("an empty text has nothing to label; pass texts with words in them")


def read_texts(path: str) -> list[str]:
    """One text per non-blank line of a UTF-8 file, or of standard input for "-"."""
    try:
        content = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NotFoundError(f"{path}: no such file; check --file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise SweepConfigError(f"{path}: cannot read it as UTF-8 text ({error})") from None
    return [line.strip() for line in content.splitlines() if line.strip()]


@dataclass(frozen=True)
class TablePredictions:
    columns: list[str]  # the model's output columns ("prediction" for a plain array)
    rows: list[list[Any]]


def predict_file(path: str, winner: Best, *, tracking_uri: str | None) -> TablePredictions:
    """The rows of the CSV file at ``path`` through the parent's best model of ``winner``'s sweep (its
    best.model_uri: the model the best trial logged), loaded as a pyfunc model."""
    if winner.builtin:
        raise SweepConfigError("a built-in trainer's sweep labels texts: pass them as arguments, or one per line "
                               "with --file")  # not reached from the CLI, which reads such a file as texts
    model_uri = model_of(winner)
    rows = read_table(path)
    from sweep.tracking.models import predict_rows

    output = predict_rows(model_uri, tracking_of(winner.sweep, tracking_uri).explicit, rows, path)
    return as_table(output)


def model_of(winner: Best) -> str:
    """The best model's URI; a best trial that logged none (or a sweep not ended yet) is refused in one line."""
    if winner.model_uri is None:
        raise NotFoundError(f"the best trial {winner.trial.number} of sweep {winner.sweep.name!r} logged no MLflow "
                            f"model (or the sweep has not ended); log one from fit with trainer mlflow: autolog, or "
                            f"mlflow.<flavor>.log_model under mlflow: active")
    return winner.model_uri


def read_table(path: str) -> Any:
    """A CSV file (or standard input for "-") as a pandas DataFrame, its header naming the columns."""
    import pandas as pd

    source: Any = sys.stdin if path == "-" else path
    try:
        frame = pd.read_csv(source)
    except FileNotFoundError:
        raise NotFoundError(f"{path}: no such file; check --file") from None
    except (OSError, UnicodeDecodeError, ValueError) as error:  # pandas' ParserError and EmptyDataError too
        reason = " ".join(str(error).split())
        raise SweepConfigError(f"{path}: cannot read it as a CSV file with a header row ({reason})") from None
    if frame.empty:
        raise SweepConfigError(f"{path}: no rows under the header; give one row per example")
    return frame


def as_table(output: Any) -> TablePredictions:
    """A DataFrame, Series, array or list of predictions as named columns and rows of plain values."""
    import numpy as np
    import pandas as pd

    if isinstance(output, pd.DataFrame):
        frame = output
    elif isinstance(output, pd.Series):
        frame = output.to_frame(name=str(output.name) if output.name is not None else "prediction")
    else:
        values = np.asarray(output)
        frame = (pd.DataFrame({"prediction": values}) if values.ndim == 1
                 else pd.DataFrame(values, columns=[f"prediction_{i}" for i in range(values.shape[1])]))
    return TablePredictions([str(column) for column in frame.columns], frame.to_numpy().tolist())
