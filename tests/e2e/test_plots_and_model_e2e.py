"""End to end: the sweep's pyfunc model and `sweep predict` in a fresh interpreter, where what is imported is
the subject: the model loads where the sweep package cannot be imported, and predict on a local store never
imports mlflow. The sweep they read is made in-process (its plots, model and registered version are checked
there: tests/unit/sweep/test_plots_and_model.py)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from tests.support import e2e
from tests.support.shipped import TEXTS, best_model

pytestmark = pytest.mark.slow

def test_pyfunc_model_round_trips_and_predicts_like_model_json(shipped: tuple[Path, str]):
    folder, _ = shipped
    parent, _ = e2e.runs(folder)
    # a fresh interpreter in which the sweep package cannot be imported: the model carries what it needs
    loaded = e2e.python_in(folder, textwrap.dedent(f"""
        import json, sys
        sys.modules["sweep"] = None
        import mlflow, pandas as pd
        model = mlflow.pyfunc.load_model("runs:/{parent.info.run_id}/shipped-best")
        out = model.predict(pd.DataFrame({{"text": {TEXTS!r}}}))
        print(json.dumps({{"columns": list(out.columns), "label": out["label"].tolist(),
                          "probability": out["probability"].tolist(),
                          "inputs": [c["name"] for c in model.metadata.get_input_schema().to_dict()]}}))
    """))
    assert loaded.returncode == 0, loaded.stderr
    result = json.loads(loaded.stdout.strip().splitlines()[-1])
    assert result["columns"] == ["label", "probability"] and result["inputs"] == ["text"]
    labels, probabilities = best_model(folder).predict(TEXTS)
    assert result["label"] == labels.tolist()
    assert result["probability"] == pytest.approx(probabilities.tolist())
    assert parent.data.tags["best.model_uri"] == f"runs:/{parent.info.run_id}/shipped-best"
    assert parent.data.tags["best.model_trial"] == parent.data.tags["best.trial"]


def test_sweep_predict_reads_a_local_model_without_importing_mlflow(shipped: tuple[Path, str]):
    folder, _ = shipped
    labels, _ = best_model(folder).predict(TEXTS[:1])
    given = e2e.python_in(folder, textwrap.dedent(f"""
        import sys
        from sweep.cli import app
        try:
            app(["predict", "--name", "shipped", {TEXTS[0]!r}], prog_name="sweep")
        except SystemExit as stop:
            assert not stop.code, stop.code
        assert "mlflow" not in sys.modules, "mlflow was imported"
    """))
    assert given.returncode == 0, given.stderr
    assert given.stdout.startswith("positive" if labels[0] else "negative")
