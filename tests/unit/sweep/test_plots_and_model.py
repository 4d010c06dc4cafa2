"""The plots, the pyfunc model and its registered version that a sweep leaves on its parent run, with `sweep`
driven in-process (tests/support/inprocess.py), on the session's `shipped` sweep (tests/support/shipped.py).
What needs a fresh interpreter (a model loaded where sweep cannot be imported, predict without importing
mlflow) stays in tests/e2e/test_plots_and_model_e2e.py."""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.support import e2e, inprocess
from tests.support.shipped import TEXTS, best_model

pytestmark = pytest.mark.slow  # whole sweeps, in-process, on real stores

PLOTS = ["NOTES.txt", "optimization_history.svg", "parallel_coordinate.svg", "param_importances.svg", "slice.svg"]


@contextmanager
def tracking_uri(uri: str) -> Iterator[None]:
    """MLflow's process-wide tracking URI for one block (runs:/ URIs resolve through it), then as it was."""
    import mlflow

    previous = mlflow.get_tracking_uri() if mlflow.is_tracking_uri_set() else None
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(previous)


def test_plots_are_svg_documents_on_the_parent_run(shipped: tuple[Path, str]):
    folder, output = shipped
    parent, _ = e2e.runs(folder)
    assert e2e.artifact_names(folder, parent.info.run_id, "plots") == PLOTS
    for name in PLOTS[1:]:
        root = ElementTree.fromstring(e2e.artifact_bytes(folder, parent.info.run_id, f"plots/{name}"))
        assert root.tag == "{http://www.w3.org/2000/svg}svg" and root.get("width") == "1000", name
    assert parent.data.tags["sweep.plots_skipped"] == "none"
    assert "plots:          4 under plots/ on the parent run" in output


def test_register_creates_a_version_of_the_parents_model(shipped: tuple[Path, str]):
    folder, output = shipped
    parent, _ = e2e.runs(folder)
    versions = e2e.mlflow_client(folder).search_model_versions("name = 'sentiment-best'")
    assert [(str(v.version), v.run_id) for v in versions] == [("1", parent.info.run_id)]
    assert versions[0].source == f"models:/{parent.data.tags['best.model_id']}"
    assert "registered:     models:/sentiment-best/1" in output


def test_sweep_best_shows_the_model_uri_and_registered_version(shipped: tuple[Path, str]):
    folder, _ = shipped
    parent, _ = e2e.runs(folder)
    as_json = json.loads(inprocess.sweep(folder, "best", "--format", "json").stdout)
    assert as_json["pyfunc_model_uri"] == f"runs:/{parent.info.run_id}/shipped-best"
    assert as_json["registered_model"] == "models:/sentiment-best/1"
    text = inprocess.sweep(folder, "best").stdout
    assert f"pyfunc:     runs:/{parent.info.run_id}/shipped-best" in text
    assert "registered: models:/sentiment-best/1" in text


def test_sweep_predict_prints_label_probability_and_text(shipped: tuple[Path, str]):
    folder, _ = shipped
    labels, probabilities = best_model(folder).predict(TEXTS)
    expected = [f"{'positive' if label else 'negative'}\t{p:.3f}\t{text}"
                for text, label, p in zip(TEXTS, labels.tolist(), probabilities.tolist())]
    given = inprocess.sweep(folder, "predict", "--name", "shipped", *TEXTS)
    assert given.returncode == 0, given.stderr
    assert given.stdout.splitlines() == expected
    (folder / "texts.txt").write_text("\n".join(TEXTS) + "\n\n", encoding="utf-8")
    from_file = inprocess.sweep(folder, "predict", "--file", "texts.txt")
    assert from_file.returncode == 0, from_file.stderr
    assert from_file.stdout.splitlines() == expected


def test_sweep_predict_without_texts_exits_2_with_one_line(shipped: tuple[Path, str]):
    folder, _ = shipped
    result = inprocess.sweep(folder, "predict")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "--file" in result.stderr


def test_an_invalid_register_name_exits_2_before_anything_is_written(tmp_path: Path):
    result = inprocess.sweep(tmp_path, "run", "--trials", "1", "--register", "no spaces please")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "--register" in result.stderr
    assert not (tmp_path / "sweep.journal").exists() and not (tmp_path / "mlflow.db").exists()


@pytest.mark.usefixtures("mlflow_db")
def test_a_one_trial_sweep_skips_the_comparison_plots_with_a_note(tmp_path: Path):
    e2e.write_config(tmp_path, "trials: 1\npruner: {name: none}\n" + e2e.FAST_SPACE)
    result = inprocess.sweep(tmp_path, "run", "--config", "sweep.yaml", "--name", "single")
    assert result.returncode == 0, result.stderr
    parent, _ = e2e.runs(tmp_path)
    assert e2e.artifact_names(tmp_path, parent.info.run_id, "plots") == ["NOTES.txt", "optimization_history.svg"]
    notes = e2e.artifact_bytes(tmp_path, parent.info.run_id, "plots/NOTES.txt").decode()
    assert "skipped: slice: needs 2 completed trials, the sweep has 1" in notes
    assert "param_importances" in parent.data.tags["sweep.plots_skipped"]
    assert "skipped param_importances, parallel_coordinate, slice" in result.stdout


@pytest.mark.usefixtures("mlflow_db")
def test_extending_a_sweep_replaces_its_plots_and_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    e2e.write_config(tmp_path, "trials: 2\npruner: {name: none}\nsampler: {name: random, seed: 1}\n" + e2e.FAST_SPACE)
    first = inprocess.sweep(tmp_path, "run", "--config", "sweep.yaml", "--name", "grown")
    assert first.returncode == 0, first.stderr
    parent, _ = e2e.runs(tmp_path)
    run_id = parent.info.run_id
    history = e2e.artifact_bytes(tmp_path, run_id, "plots/optimization_history.svg")
    for name in ("optimization_history.png", "mine.png"):  # as an older sweep drew them, and a user's own picture
        (tmp_path / name).write_bytes(b"\x89PNG")
        e2e.mlflow_client(tmp_path).log_artifact(run_id, str(tmp_path / name), "plots")

    extended = inprocess.sweep(tmp_path, "run", "--resume", "--name", "grown", "--trials", "8")
    assert extended.returncode == 0, extended.stderr
    parent, _ = e2e.runs(tmp_path)
    assert e2e.artifact_names(tmp_path, run_id, "plots") == sorted([*PLOTS, "mine.png"])  # the old history is gone
    assert e2e.artifact_bytes(tmp_path, run_id, "plots/optimization_history.svg") != history
    assert parent.data.tags["best.model_trial"] == parent.data.tags["best.trial"]
    # runs:/<parent>/grown-best is the newest model of that name: the one that holds today's best trial
    import mlflow

    monkeypatch.setattr(sys, "path", list(sys.path))  # loading puts the model's code folder first on sys.path
    with tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}"):
        loaded = mlflow.pyfunc.load_model(f"runs:/{run_id}/grown-best")
    assert loaded.metadata.model_id == parent.data.tags["best.model_id"]
