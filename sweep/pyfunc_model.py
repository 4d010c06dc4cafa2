"""The best model as an MLflow pyfunc model: a small PythonModel over the trainer's model.json.

The built-in trainer's recipe (sweep/trainers/sentiment.py, the only module that names this file) has it
logged "as code" by sweep/tracking/publishing.py: MLflow copies it into the model's folder together with the
trainer's numpy-only sources, and runs it when the model is loaded. So
`mlflow.pyfunc.load_model("runs:/<parent>/model")` and `mlflow models serve` need neither this project
installed nor anything unpickled: the weights stay in plain JSON.
"""

from __future__ import annotations

from typing import Any

import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel
from mlflow.pyfunc.model import PythonModelContext

MODEL_ARTIFACT = "model_json"  # the key of model.json in the pyfunc model's artifacts


class SentimentModel(PythonModel):
    """A DataFrame with a ``text`` column in; ``label`` (1 = positive) and ``probability`` out."""

    def load_context(self, context: PythonModelContext) -> None:
        from trainer.model import Model  # the trainer bundled with the model (or the installed one)

        self.model = Model.load(context.artifacts[MODEL_ARTIFACT])

    def predict(self, context: PythonModelContext, model_input: pd.DataFrame,
                params: dict[str, Any] | None = None) -> pd.DataFrame:
        texts = [str(text) for text in model_input["text"]]
        labels, probabilities = self.model.predict(texts)
        return pd.DataFrame({"label": labels.astype("int64"), "probability": probabilities})


mlflow.models.set_model(SentimentModel())
