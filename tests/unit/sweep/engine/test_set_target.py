"""`sweep set NAME --trials M` on a running sweep: its loop reads the new target before its next trial, so a lower
target ends the sweep cleanly (the running trial finishes, none is cut short) and a higher one lets it go on.
The sweep runs on a thread of the test (real journal, real MLflow store); its trainer holds trial 1 until the
test releases it, so the change lands while a trial runs."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sweep import cli
from sweep.config import load_config
from sweep.engine import run_sweep
from sweep.states import LoopEnd
from sweep.study import configure_optuna
from tests.support import e2e, inprocess

HELD = '''
import pathlib
import time


def fit(trial):
    x = trial.suggest_float("x", 0.0, 1.0)
    folder = pathlib.Path(trial.params["folder"])
    if trial.number == 1:  # held until the test has changed the target
        (folder / "holding").touch()
        while not (folder / "release").exists():
            time.sleep(0.01)
    return x
'''
WAIT_SECONDS = 60  # for the held trial to start: a bound on a broken run, not a timing figure


def start_sweep(folder: Path, trials: int) -> tuple[threading.Thread, dict[str, object]]:
    (folder / "held.py").write_text(HELD, encoding="utf-8")
    e2e.write_config(folder, "trainer: {function: held.py:fit}\nobjective: {direction: maximize}\n"
                             f"pruner: {{name: none}}\nfixed: {{folder: {str(folder)!r}}}\n")
    config = load_config(folder / "sweep.yaml", {"trials": trials, "name": "held",
                                                 "tracking_uri": f"sqlite:///{folder / 'mlflow.db'}",
                                                 "storage": str(folder / "sweep.journal")})
    configure_optuna()
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            outcome["summary"] = run_sweep(config, resume=False, listener=inprocess.RecordingListener(),
                                           parts=inprocess.in_process_parts())
        except BaseException as error:  # handed to the test's thread
            outcome["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    deadline = time.monotonic() + WAIT_SECONDS
    while not (folder / "holding").exists():
        assert thread.is_alive() and time.monotonic() < deadline, outcome.get("error", "trial 1 never started")
        time.sleep(0.01)
    return thread, outcome


def set_trials(folder: Path, trials: int) -> str:
    result = CliRunner().invoke(cli.app, ["set", "held", "--trials", str(trials), "--storage",
                                          str(folder / "sweep.journal")], prog_name="sweep")
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.mark.slow
@pytest.mark.usefixtures("mlflow_db")
@pytest.mark.parametrize(("first", "changed", "ran"), [(10, 3, 3), (10, 1, 2), (2, 4, 4)],
                         ids=["lowered", "below-the-count", "raised"])
def test_a_running_sweep_follows_its_new_target_without_cutting_a_trial_short(tmp_path: Path, first: int,
                                                                              changed: int, ran: int):
    thread, outcome = start_sweep(tmp_path, first)
    said = set_trials(tmp_path, changed)
    assert f"sweep held: target {first} -> {changed} trials (2 counted, 1 running)" in said, said
    (tmp_path / "release").touch()
    thread.join()
    assert "error" not in outcome, outcome.get("error")
    summary = outcome["summary"]
    assert summary.status is LoopEnd.FINISHED and summary.counts.finished == ran  # type: ignore[attr-defined]
    trials = e2e.study(tmp_path, "held").trials
    assert [t.state.name for t in trials] == ["COMPLETE"] * ran, "the held trial ended as usual"
    parent, _ = e2e.runs(tmp_path, experiment="sweep")
    assert parent.info.status == "FINISHED" and parent.data.tags["sweep.target"] == str(changed)
    listed = inprocess.sweep(tmp_path, "ls")
    assert f"{ran}/{changed}" in listed.stdout, listed.stdout


def test_set_without_a_setting_or_on_a_missing_sweep_is_refused(tmp_path: Path):
    (tmp_path / "sweep.journal").touch()
    nothing = inprocess.sweep(tmp_path, "set", "held")
    assert nothing.returncode == 2 and "give --trials M" in nothing.stderr
    missing = inprocess.sweep(tmp_path, "set", "held", "--trials", "3")
    assert missing.returncode != 0 and "no sweep named 'held'" in missing.stderr, missing.stderr
    zero = inprocess.sweep(tmp_path, "set", "held", "--trials", "0")
    assert zero.returncode == 2 and "--trials: must be an integer from 1" in zero.stderr


@pytest.mark.slow
@pytest.mark.usefixtures("mlflow_db")
def test_a_sweep_no_process_runs_takes_its_new_target_on_resume(tmp_path: Path):
    (tmp_path / "release").touch()  # no trial is held
    (tmp_path / "held.py").write_text(HELD, encoding="utf-8")
    e2e.write_config(tmp_path, "trainer: {function: held.py:fit}\nobjective: {direction: maximize}\n"
                               f"pruner: {{name: none}}\nfixed: {{folder: {str(tmp_path)!r}}}\n")
    assert inprocess.sweep(tmp_path, "run", "--config", "sweep.yaml", "--name", "held", "--trials", "2").returncode == 0
    said = set_trials(tmp_path, 4)
    assert "target 2 -> 4 trials (2 counted); `sweep run --resume --name held` runs it to the new target" in said
    resumed = inprocess.sweep(tmp_path, "run", "--resume", "--name", "held")
    assert resumed.returncode == 0, resumed.stderr
    assert len(e2e.study(tmp_path, "held").trials) == 4
