"""`sweep run` and the commands that read a sweep, driven in-process (tests/support/inprocess.py) on a real
journal storage and a real MLflow SQLite store: the records one sweep leaves, pruned and failed trials, an
unreachable server, a name taken, a timeout. Signals and kills stay subprocess tests (tests/e2e/test_sweep_e2e.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sweep.ranking import rank_key
from sweep.train_cli import app as train_app
from tests.support import e2e, inprocess
from tests.support.stores import copy_mlflow_db

pytestmark = pytest.mark.slow  # whole sweeps, in-process, on real stores


@pytest.fixture(scope="module")
def twenty(tmp_path_factory: pytest.TempPathFactory, mlflow_template: Path) -> Path:
    """One finished 20-trial sweep shared by the read-only checks below."""
    folder = tmp_path_factory.mktemp("twenty")
    copy_mlflow_db(mlflow_template, folder)
    e2e.write_config(folder, "trials: 20\npruner: {name: median, startup_trials: 3}\n" + e2e.FAST_SPACE)
    result = inprocess.sweep(folder, "run", "--config", "sweep.yaml", "--name", "twenty")
    assert result.returncode == 0, result.stderr
    return folder


def test_twenty_trials_give_one_parent_and_twenty_linked_children(twenty: Path):
    parent, children = e2e.runs(twenty)
    assert parent.info.run_name == "twenty"
    assert [int(r.data.tags["sweep.trial"]) for r in children] == list(range(20))
    for child in children:
        assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert child.data.tags["sweep.name"] == "twenty"
        pruned = " (pruned)" if child.data.tags["sweep.state"] == "pruned" else ""  # readable apart from failures
        assert child.info.run_name == f"trial-{child.data.tags['sweep.trial']}{pruned}"
        assert child.info.status in ("FINISHED", "KILLED")
        assert {"lr", "epochs", "vocab_size", "l2", "ngrams", "seed"} <= set(child.data.params)
    assert parent.info.status == "FINISHED"


def test_study_and_runs_link_both_ways(twenty: Path):
    parent, children = e2e.runs(twenty)
    study = e2e.study(twenty, "twenty")
    assert study.user_attrs["sweep.parent_run_id"] == parent.info.run_id
    by_number = {int(r.data.tags["sweep.trial"]): r.info.run_id for r in children}
    # a trial told before MLflow had made its run (the sweep's first ones) is linked by the study (run_ids)
    linked = study.user_attrs.get("sweep.run_ids") or {}
    for trial in study.trials:
        assert (linked.get(str(trial.number)) or trial.user_attrs.get("sweep.run_id")) == by_number[trial.number]


def test_parent_best_is_best_finished_child_and_its_model(twenty: Path):
    parent, children = e2e.runs(twenty)
    finished = [r for r in children if r.info.status == "FINISHED"]
    winner = min(finished, key=lambda r: rank_key(r.data.metrics["val_accuracy"], r.data.metrics,
                                                    int(r.data.tags["sweep.trial"]), metric="val_accuracy",
                                                    direction="maximize"))
    assert parent.data.tags["best.trial"] == winner.data.tags["sweep.trial"]
    assert parent.data.tags["best.run_id"] == winner.info.run_id
    assert parent.data.metrics["best_val_accuracy"] == winner.data.metrics["val_accuracy"]
    for name in ("lr", "epochs", "vocab_size"):
        assert parent.data.tags[f"best.{name}"] == winner.data.params[name]
    best_model = e2e.artifact_bytes(twenty, parent.info.run_id, "best/model.json")
    assert best_model == e2e.artifact_bytes(twenty, winner.info.run_id, "model.json")


def test_child_runs_carry_curves_stepped_by_epoch(twenty: Path):
    _, children = e2e.runs(twenty)
    client = e2e.mlflow_client(twenty)
    child = next(r for r in children if r.info.status == "FINISHED")
    history = client.get_metric_history(child.info.run_id, "val_loss")
    steps = [m.step for m in history]
    assert steps == sorted(steps) and len(steps) > 3
    assert steps[-1] == int(child.data.params["epochs"])
    assert len(steps) <= 120


def test_sweep_best_agrees_with_parent_and_reproduces_with_train(twenty: Path, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch):
    parent, _ = e2e.runs(twenty)
    shown = inprocess.sweep(twenty, "best", "--format", "json")
    assert shown.returncode == 0, shown.stderr
    best = json.loads(shown.stdout)
    assert set(best) == {"sweep", "trial", "params", "metrics", "parent_run_id", "run_id", "model_uri",
                         "pyfunc_model_uri", "registered_model", "trainer"}
    assert best["trainer"] == "sentiment"
    assert best["pyfunc_model_uri"] == f"runs:/{parent.info.run_id}/twenty-best" and best["registered_model"] is None
    assert best["parent_run_id"] == parent.info.run_id
    assert str(best["trial"]) == parent.data.tags["best.trial"]
    assert best["model_uri"] == f"runs:/{best['run_id']}/model.json"

    as_yaml = inprocess.sweep(twenty, "best", "--format", "yaml")
    (tmp_path / "best.yaml").write_text(as_yaml.stdout, encoding="utf-8")
    monkeypatch.chdir(tmp_path)  # `train` run where the settings file is, as a user runs it
    trained = CliRunner().invoke(train_app, ["--config", "best.yaml", "--out", "again.json"], prog_name="train")
    assert trained.exit_code == 0, trained.output
    assert f"val_accuracy: {best['metrics']['val_accuracy']:.3f}" in trained.stdout
    # deterministic training: the same settings on the same split give the very same model file
    assert (tmp_path / "again.json").read_bytes() == e2e.artifact_bytes(twenty, best["run_id"], "model.json")


def test_ls_and_show_list_the_sweep(twenty: Path):
    listed = inprocess.sweep(twenty, "ls")
    assert listed.returncode == 0
    assert "twenty" in listed.stdout and "finished" in listed.stdout and "20/20" in listed.stdout
    shown = inprocess.sweep(twenty, "show", "twenty", "--top", "3")
    assert shown.returncode == 0
    rows = [line for line in shown.stdout.splitlines()[2:] if line.strip()]
    assert len(rows) == 3


def test_existing_name_without_resume_is_refused(twenty: Path):
    result = inprocess.sweep(twenty, "run", "--name", "twenty", "--trials", "1")
    assert result.returncode == 2
    assert "exists already" in result.stderr and "--resume" in result.stderr


@pytest.mark.usefixtures("mlflow_db")
def test_pruned_and_failed_trials_end_killed_and_failed(tmp_path: Path):
    e2e.write_config(tmp_path, """
trials: 14
sampler: {name: random, seed: 3}
pruner: {name: median, startup_trials: 2}
space:
  lr: {type: categorical, choices: [0.001, 1.0, 1000000.0]}
  epochs: {type: int, low: 60, high: 80}
""")
    result = inprocess.sweep(tmp_path, "run", "--config", "sweep.yaml", "--name", "mixed")
    assert result.returncode == 0, result.stderr
    study = e2e.study(tmp_path, "mixed")
    states = {t.number: t.state.name for t in study.trials}
    assert {"COMPLETE", "PRUNED", "FAIL"} <= set(states.values()), states
    _, children = e2e.runs(tmp_path)
    client = e2e.mlflow_client(tmp_path)
    expected = {"COMPLETE": "FINISHED", "PRUNED": "KILLED", "FAIL": "FAILED"}
    for child in children:
        number = int(child.data.tags["sweep.trial"])
        assert child.info.status == expected[states[number]]
        if states[number] == "FAIL":
            assert "DivergenceError" in child.data.tags["error"]
            traceback = e2e.artifact_bytes(tmp_path, child.info.run_id, "traceback.txt").decode()
            assert "Traceback" in traceback
        if states[number] == "PRUNED":
            assert client.get_metric_history(child.info.run_id, "val_accuracy"), "a pruned run keeps its curve"


@pytest.mark.usefixtures("mlflow_db")
def test_all_trials_failing_exits_nonzero_with_a_summary(tmp_path: Path):
    e2e.write_config(tmp_path, "trials: 3\nspace:\n  lr: {type: categorical, choices: [1000000.0]}\n")
    result = inprocess.sweep(tmp_path, "run", "--config", "sweep.yaml", "--name", "doomed")
    assert result.returncode == 1
    assert "all 3 trials failed" in result.stderr and "DivergenceError" in result.stderr
    parent, children = e2e.runs(tmp_path)
    assert parent.info.status == "FAILED"
    assert [c.info.status for c in children] == ["FAILED"] * 3


def test_unreachable_tracking_server_fails_before_any_trial(tmp_path: Path):
    port = e2e.free_port()
    result = inprocess.sweep(tmp_path, "run", "--trials", "2", "--tracking-uri", f"http://127.0.0.1:{port}")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "cannot reach the MLflow tracking server" in result.stderr
    listed = inprocess.sweep(tmp_path, "ls")
    assert "no sweeps yet" in listed.stdout


@pytest.mark.usefixtures("mlflow_db")
def test_timeout_stops_starting_trials_and_finishes_cleanly(tmp_path: Path):
    # the clock starts when the first trial can start, so however slow the start-up, trials run; the
    # sweep ends by its timeout (its status says so), never by reaching a target no machine reaches
    e2e.write_config(tmp_path, "trials: 500\npruner: {name: none}\n" + e2e.SLOW_SPACE)
    result = inprocess.sweep(tmp_path, "run", "--config", "sweep.yaml", "--name", "short", "--timeout", "3")
    assert result.returncode == 0, result.stderr
    assert "sweep short timeout:" in result.stdout, result.stdout
    parent, children = e2e.runs(tmp_path)
    assert 1 <= len(children) < 500
    assert parent.info.status == "FINISHED"
    assert all(c.info.status == "FINISHED" for c in children)
    listed = inprocess.sweep(tmp_path, "ls")
    assert "timeout" in listed.stdout.splitlines()[1], listed.stdout  # not "interrupted": nobody stopped it
