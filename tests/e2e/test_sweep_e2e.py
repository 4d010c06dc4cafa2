"""End to end: real `sweep` subprocesses on a real journal storage and a real MLflow SQLite store."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest

from sweep.ranking import rank_key
from tests.support import e2e
from tests.support.stores import copy_mlflow_db

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def twenty(tmp_path_factory: pytest.TempPathFactory, mlflow_template: Path) -> Path:
    """One 20-trial sweep shared by the read-only checks below."""
    folder = tmp_path_factory.mktemp("twenty")
    copy_mlflow_db(mlflow_template, folder)
    e2e.write_config(folder, "trials: 20\npruner: {name: median, startup_trials: 3}\n" + e2e.FAST_SPACE)
    result = e2e.sweep(folder, "run", "--config", "sweep.yaml", "--name", "twenty")
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
    for trial in study.trials:
        assert trial.user_attrs["sweep.run_id"] == by_number[trial.number]


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


def test_sweep_best_agrees_with_parent_and_reproduces_with_train(twenty: Path):
    parent, _ = e2e.runs(twenty)
    shown = e2e.sweep(twenty, "best", "--format", "json")
    assert shown.returncode == 0, shown.stderr
    best = json.loads(shown.stdout)
    assert set(best) == {"sweep", "trial", "params", "metrics", "parent_run_id", "run_id", "model_uri",
                         "pyfunc_model_uri", "registered_model", "trainer"}
    assert best["trainer"] == "sentiment"
    assert best["pyfunc_model_uri"] == f"runs:/{parent.info.run_id}/twenty-best" and best["registered_model"] is None
    assert best["parent_run_id"] == parent.info.run_id
    assert str(best["trial"]) == parent.data.tags["best.trial"]
    assert best["model_uri"] == f"runs:/{best['run_id']}/model.json"

    as_yaml = e2e.sweep(twenty, "best", "--format", "yaml")
    (twenty / "best.yaml").write_text(as_yaml.stdout, encoding="utf-8")
    trained = e2e.run([*e2e.TRAIN, "--config", "best.yaml", "--out", "again.json"], twenty)
    assert trained.returncode == 0, trained.stderr
    assert f"val_accuracy: {best['metrics']['val_accuracy']:.3f}" in trained.stdout
    # deterministic training: the same settings on the same split give the very same model file
    assert (twenty / "again.json").read_bytes() == e2e.artifact_bytes(twenty, best["run_id"], "model.json")


def test_ls_and_show_list_the_sweep(twenty: Path):
    listed = e2e.sweep(twenty, "ls")
    assert listed.returncode == 0
    assert "twenty" in listed.stdout and "finished" in listed.stdout and "20/20" in listed.stdout
    shown = e2e.sweep(twenty, "show", "twenty", "--top", "3")
    assert shown.returncode == 0
    rows = [line for line in shown.stdout.splitlines()[2:] if line.strip()]
    assert len(rows) == 3


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
    result = e2e.sweep(tmp_path, "run", "--config", "sweep.yaml", "--name", "mixed")
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
    result = e2e.sweep(tmp_path, "run", "--config", "sweep.yaml", "--name", "doomed")
    assert result.returncode == 1
    assert "all 3 trials failed" in result.stderr and "DivergenceError" in result.stderr
    parent, children = e2e.runs(tmp_path)
    assert parent.info.status == "FAILED"
    assert [c.info.status for c in children] == ["FAILED"] * 3


def test_unreachable_tracking_server_fails_before_any_trial(tmp_path: Path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = e2e.sweep(tmp_path, "run", "--trials", "2", "--tracking-uri", f"http://127.0.0.1:{port}")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "cannot reach the MLflow tracking server" in result.stderr
    listed = e2e.sweep(tmp_path, "ls")
    assert "no sweeps yet" in listed.stdout


def test_existing_name_without_resume_is_refused(twenty: Path):
    result = e2e.sweep(twenty, "run", "--name", "twenty", "--trials", "1")
    assert result.returncode == 2
    assert "exists already" in result.stderr and "--resume" in result.stderr


@pytest.mark.usefixtures("mlflow_db")
def test_timeout_stops_starting_trials_and_finishes_cleanly(tmp_path: Path):
    # the clock starts when the first trial can start, so however slow the start-up, trials run; the
    # sweep ends by its timeout (its status says so), never by reaching a target no machine reaches
    e2e.write_config(tmp_path, "trials: 500\npruner: {name: none}\n" + e2e.SLOW_SPACE)
    result = e2e.sweep(tmp_path, "run", "--config", "sweep.yaml", "--name", "short", "--timeout", "3")
    assert result.returncode == 0, result.stderr
    assert "sweep short timeout:" in result.stdout, result.stdout
    parent, children = e2e.runs(tmp_path)
    assert 1 <= len(children) < 500
    assert parent.info.status == "FINISHED"
    assert all(c.info.status == "FINISHED" for c in children)


@pytest.mark.usefixtures("mlflow_db")
@pytest.mark.parametrize("signum", [e2e.SIGINT, e2e.SIGTERM])
def test_interrupted_sweep_resumes_to_exactly_n_trials(tmp_path: Path, signum: int):
    e2e.write_config(tmp_path, "trials: 4\npruner: {name: none}\n" + e2e.SLOWER_SPACE)
    process = e2e.start_sweep(tmp_path, "run", "--config", "sweep.yaml", "--name", "stopped")
    e2e.wait_for_trials(process, 1)
    time.sleep(0.5)  # inside the second trial, which takes over a second: it is the one interrupted
    code, _, err = e2e.interrupt(process, signum)
    assert code == 130, err
    assert "resume with: sweep run --resume --name stopped" in err
    parent, children = e2e.runs(tmp_path)
    assert parent.info.status == "KILLED"
    assert all(c.info.status != "RUNNING" for c in children)
    assert any(c.info.status == "KILLED" for c in children), "the interrupted trial's run ends KILLED"

    resumed = e2e.sweep(tmp_path, "run", "--resume")
    assert resumed.returncode == 0, resumed.stderr
    trials = e2e.study(tmp_path, "stopped").trials
    assert len(e2e.finished(trials)) == 4 and len(trials) == 4
    parent, children = e2e.runs(tmp_path)
    assert parent.info.status == "FINISHED"
    assert sorted(int(c.data.tags["sweep.trial"]) for c in children) == list(range(4))
    assert all(c.info.status in ("FINISHED", "KILLED") for c in children)


@pytest.mark.usefixtures("mlflow_db")
def test_hard_killed_sweep_resumes_and_fails_the_stale_trial(tmp_path: Path):
    e2e.write_config(tmp_path, "trials: 3\npruner: {name: none}\n" + e2e.SLOWER_SPACE)
    process = e2e.start_sweep(tmp_path, "run", "--config", "sweep.yaml", "--name", "killed")
    e2e.wait_for_trials(process, 1)
    time.sleep(0.5)  # well inside the second trial, which takes over a second
    code, _, _ = e2e.interrupt(process, e2e.SIGKILL)
    assert code == -9
    resumed = e2e.sweep(tmp_path, "run", "--resume", "--name", "killed")
    assert resumed.returncode == 0, resumed.stderr
    trials = e2e.study(tmp_path, "killed").trials
    assert len(e2e.finished(trials)) == 3 and len(trials) == 3
    stale = [t for t in trials if t.state.name == "FAIL"]
    assert len(stale) == 1 and "died" in stale[0].user_attrs["sweep.error"]
    parent, children = e2e.runs(tmp_path)
    assert parent.info.status == "FINISHED"
    assert len(children) == 3 and not any(c.info.status == "RUNNING" for c in children)
    stale_run = next(c for c in children if int(c.data.tags["sweep.trial"]) == stale[0].number)
    assert stale_run.info.status == "FAILED"
