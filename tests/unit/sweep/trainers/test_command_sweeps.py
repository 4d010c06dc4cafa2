"""Commands swept by `sweep run` driven in-process (tests/support/inprocess.py): the examples as CI runs them,
each trial's command a real process, real stores. `--jobs 2` still starts two real `sweep worker` processes.
What needs the sweep in a process of its own (Ctrl-C, kill -9) is tests/e2e/test_command_trainer_e2e.py."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from sweep.trainers.teardown import TOKEN_VARIABLE
from tests.support import e2e, inprocess

pytestmark = pytest.mark.slow  # each test runs a whole sweep and its commands on real stores

EXAMPLES = Path(__file__).resolve().parents[4] / "examples"


def trial_processes(folder: Path) -> list[int]:
    """Processes that carry a trial's token and work under ``folder``: a command of this test's sweep, or
    anything it started, still running (other tests' commands may run at the same time)."""
    found = []
    for entry in os.listdir("/proc"):
        try:
            environ = Path(f"/proc/{entry}/environ").read_bytes() if entry.isdigit() else b""
            state = Path(f"/proc/{entry}/stat").read_bytes().rsplit(b")", 1)[1].split()[0] if environ else b"Z"
            cwd = os.readlink(f"/proc/{entry}/cwd") if environ else ""
        except OSError:
            continue
        if f"{TOKEN_VARIABLE}=".encode() in environ and state != b"Z" and cwd.startswith(str(folder)):
            found.append(int(entry))
    return found


@pytest.mark.usefixtures("mlflow_db")
def test_the_script_example_prunes_into_killed_runs_with_curves_and_keeps_the_best_workdir(tmp_path: Path):
    result = inprocess.sweep(tmp_path, "run", "--config", str(EXAMPLES / "script" / "sweep.yaml"), "--trials", "8",
                             "--name", "script")
    assert result.returncode == 0, result.stderr
    _, children = e2e.runs(tmp_path, "sweep")
    pruned = [run for run in children if run.data.tags["sweep.state"] == "pruned"]
    assert pruned, "no trial was pruned"
    client = e2e.mlflow_client(tmp_path)
    for run in pruned:
        assert run.info.status == "KILLED"
        steps = [point.step for point in client.get_metric_history(run.info.run_id, "val_loss")]
        assert steps and steps == sorted(steps) and max(steps) < 100  # its curve, up to where it was stopped
    complete = [run for run in children if run.data.tags["sweep.state"] == "complete"]
    assert all(len(client.get_metric_history(run.info.run_id, "val_loss")) >= 100 for run in complete)
    assert "command.stdout.txt" in e2e.artifact_names(tmp_path, complete[0].info.run_id, "")
    best = e2e.study(tmp_path, "script").best_trial.number
    kept = sorted(path.name for path in (tmp_path / "sweeps" / "script").iterdir())
    assert kept == [f"trial-{best}"] and (tmp_path / "sweeps" / "script" / kept[0] / "model.npz").is_file()
    assert trial_processes(tmp_path) == []


@pytest.mark.usefixtures("mlflow_db")
def test_an_awk_command_sweeps_with_two_jobs(tmp_path: Path):
    result = inprocess.sweep(tmp_path, "run", "--config", str(EXAMPLES / "awk" / "sweep.yaml"), "--jobs", "2",
                             "--name", "awk")
    assert result.returncode == 0, result.stderr
    trials = e2e.finished(e2e.study(tmp_path, "awk").get_trials())
    assert len(trials) == 10 and all(t.state.name == "COMPLETE" for t in trials)
    for trial in trials:
        assert trial.value == pytest.approx((trial.params["x"] - 1) ** 2 + (trial.params["y"] + 2) ** 2, abs=1e-5)


SECRETS = {"token": "tok-5ec4et-9931", "password": "hunter2-pw!", "url": "db-pa55word"}


@pytest.mark.usefixtures("mlflow_db")
def test_secrets_a_command_prints_reach_no_file_the_sweep_writes(tmp_path: Path):
    """A command printing its environment (as a debugging user does) must not copy the tracking password, a
    token or a URL's password into the journal, the error tag, traceback.txt or command.stderr.txt."""
    printing = ('echo "uri=$MLFLOW_TRACKING_URI token=$MY_API_TOKEN pw=$MLFLOW_TRACKING_PASSWORD db=$DB_URL"; '
                'echo "token=$MY_API_TOKEN db=$DB_URL pw=$MLFLOW_TRACKING_PASSWORD" >&2; '
                'if [ "$SWEEP_TRIAL" = 1 ]; then exit 3; fi; echo "sweep: value={x}"')
    e2e.write_config(tmp_path, f"trainer: {{command: '{printing}', shell: true}}\n"
                               "objective: {direction: maximize}\npruner: {name: none}\n"
                               "space:\n  x: {type: float, low: 0.0, high: 1.0}\n")
    secrets = {"MLFLOW_TRACKING_PASSWORD": SECRETS["password"], "MY_API_TOKEN": SECRETS["token"],
               "DB_URL": f"postgresql://me:{SECRETS['url']}@db/x"}  # the environment: where secrets belong
    result = inprocess.sweep(tmp_path, "run", "--config", "sweep.yaml", "--name", "leaky", "--trials", "3",
                             environment=secrets)
    assert result.returncode == 0, result.stderr
    trials = {t.number: t for t in e2e.study(tmp_path, "leaky").trials}
    assert trials[1].state.name == "FAIL" and "***" in trials[1].user_attrs["sweep.error"]
    written = [path for path in tmp_path.rglob("*") if path.is_file()]
    assert any(path.name == "command.stderr.txt" for path in written)
    for path in written:
        content = path.read_bytes()
        for secret in SECRETS.values():
            assert secret.encode() not in content, f"{secret!r} is in {path.relative_to(tmp_path)}"
    for text in (result.stdout, result.stderr):
        assert not [secret for secret in SECRETS.values() if secret in text]


@pytest.mark.usefixtures("mlflow_db")
def test_a_trial_folder_that_is_a_symbolic_link_is_refused_not_followed(tmp_path: Path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "sweeps" / "linked").mkdir(parents=True)
    (tmp_path / "sweeps" / "linked" / "trial-0").symlink_to(elsewhere)
    e2e.write_config(tmp_path, "trainer: {command: 'echo out > result.txt; echo \"sweep: value={x}\"', shell: true}\n"
                               "objective: {direction: maximize}\npruner: {name: none}\n"
                               "space:\n  x: {type: float, low: 0.0, high: 1.0}\n")
    result = inprocess.sweep(tmp_path, "run", "--config", "sweep.yaml", "--name", "linked", "--trials", "2")
    assert result.returncode == 0, result.stderr
    trials = {t.number: t for t in e2e.study(tmp_path, "linked").trials}
    assert trials[0].state.name == "FAIL" and "is a symbolic link" in trials[0].user_attrs["sweep.error"]
    assert trials[1].state.name == "COMPLETE"
    assert list(elsewhere.iterdir()) == [], "the sweep wrote through the link"


SET_EXPERIMENT = '''
import sys

import mlflow

mlflow.set_experiment("mine")  # as a script run on its own would
with mlflow.start_run():
    mlflow.log_metric("val_loss", float(sys.argv[1]))
print(f"sweep: val_loss={sys.argv[1]}")
'''


@pytest.mark.usefixtures("mlflow_db")
def test_a_script_calling_set_experiment_fails_its_first_trial_saying_what_to_remove_and_the_sweep_stops(
        tmp_path: Path):
    (tmp_path / "script.py").write_text(SET_EXPERIMENT, encoding="utf-8")
    e2e.write_config(tmp_path, f'trainer: {{command: "{sys.executable} script.py {{x}}"}}\n'
                               "objective: {metric: val_loss, direction: minimize}\npruner: {name: none}\n"
                               "space:\n  x: {type: float, low: 0.0, high: 1.0}\n")
    result = inprocess.sweep(tmp_path, "run", "--config", "sweep.yaml", "--name", "exp", "--trials", "6")
    assert result.returncode == 1
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith("error: trial failed with: exit code 1: the command calls mlflow.set_experiment(...)")
    assert "remove that call" in error and error.endswith("every trial would fail the same way")
    assert len(e2e.study(tmp_path, "exp").trials) == 1  # not all six
