"""A password in --storage never reaches the terminal, however badly the URL is formed."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from sweep.cli import app
from tests.support import e2e

PASSWORDS = st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Z")), min_size=6, max_size=24)
PORT = e2e.free_port()  # nobody listens there: every connection is refused at once


def _ls_error(url: str) -> str:
    result = CliRunner().invoke(app, ["ls", "--storage", url])
    assert result.exit_code == 1, result.output
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: "), result.stderr
    return result.stderr


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(password=PASSWORDS)
def test_ls_error_never_shows_the_password_of_a_storage_url(password):
    url = "postgresql://postgres:{}@127.0.0.1:" + str(PORT) + "/optuna"
    assume(password not in _ls_error(url.format("benign")))
    assert password not in _ls_error(url.format(password))


@pytest.mark.slow
@pytest.mark.parametrize("password", ["kq7@zz8/wx9y", "kq7@zz8 wx9y", "s3cr'et\"@x7q"],
                         ids=["at-slash", "space", "quotes"])
def test_ls_with_unencoded_password_fails_in_one_line_without_it(tmp_path, password):
    result = e2e.sweep(tmp_path, "ls", "--storage", f"postgresql://postgres:{password}@127.0.0.1:{PORT}/optuna")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "percent-encoded" in result.stderr, result.stderr
    for part in {password, *password.replace("@", " ").replace("/", " ").split()}:  # nor any piece of it
        assert part not in result.stderr, part


# The team stack: a tracking server with MLflow's basic auth, S3 artifacts written by the clients (so they
# hold S3 keys too). Neither the MLflow password nor the S3 secret may show anywhere a sweep leaves a trace.


def _member_env(stack, storage: str, password: str) -> dict[str, str]:
    return {**e2e.env(), **stack.member_env("direct", password), "SWEEP_STORAGE": storage}


@pytest.mark.slow
def test_a_wrong_mlflow_password_is_one_line_at_start_without_retries(team_stack, tmp_path):
    import subprocess

    from tests.support.pg import database

    auth_server = team_stack.servers["direct"]
    refused_before = auth_server.log.read_text(errors="replace").count(" 401")
    e2e.write_config(tmp_path, "trials: 2\n" + e2e.FAST_SPACE)
    with database() as storage:
        result = subprocess.run([*e2e.SWEEP, "run", "--config", "sweep.yaml", "--name", "wrong-pw"], cwd=tmp_path,
                                env=_member_env(team_stack, storage, "wrong-pw-Vb27k"), capture_output=True,
                                text=True, timeout=180)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "refused the sign-in (HTTP 401, user 'alice'" in result.stderr
    assert "MLFLOW_TRACKING_PASSWORD" in result.stderr and "wrong-pw-Vb27k" not in result.stdout + result.stderr
    assert "trial " not in result.stdout
    refused = auth_server.log.read_text(errors="replace").count(" 401") - refused_before
    assert 1 <= refused <= 2, f"{refused} refused requests: the client retried a wrong password"


@pytest.mark.slow
def test_the_mlflow_password_and_s3_secret_reach_no_output_process_list_run_or_artifact(team_stack, monkeypatch,
                                                                                         tmp_path):
    import subprocess
    import time

    from mlflow import MlflowClient

    from tests.support import team
    from tests.support.pg import database

    secrets = (team.MEMBER_PASSWORD, team.S3_SECRET)
    e2e.write_config(tmp_path, "trials: 3\n" + e2e.FAST_SPACE)
    with database() as storage:
        env = _member_env(team_stack, storage, team.MEMBER_PASSWORD)
        process = e2e.SweepProcess([*e2e.SWEEP, "run", "--config", "sweep.yaml", "--name", "signed-in"], cwd=tmp_path,
                                   env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        command_lines: list[str] = []
        while process.poll() is None:  # every process's command line, sampled while the sweep runs
            command_lines.append(subprocess.run(["ps", "-eww", "-o", "args="], capture_output=True, text=True).stdout)
            time.sleep(0.2)
        out, err = process.communicate(timeout=240)
        assert process.returncode == 0, err
        stored = subprocess.run([*e2e.SWEEP, "best", "--name", "signed-in", "--format", "json"], cwd=tmp_path,
                                env=env, capture_output=True, text=True, timeout=120)
        assert stored.returncode == 0, stored.stderr
    assert len(command_lines) > 1 and any("sweep.cli" in lines for lines in command_lines)
    for secret in secrets:
        assert secret not in out + err + stored.stdout, secret
        assert not [lines for lines in command_lines if secret in lines], secret

    for key, value in team.admin_env().items():
        monkeypatch.setenv(key, value)
    client = MlflowClient(team_stack.servers["direct"].url)
    experiment = client.get_experiment_by_name("sentiment")
    found = client.search_runs([experiment.experiment_id], filter_string="tags.`sweep.name` = 'signed-in'")
    assert len(found) == 4  # the parent and three trials
    s3 = team_stack.s3
    artifacts = [s3.read(key) for key in s3.keys(f"mlflow/{experiment.experiment_id}/")]
    assert artifacts
    for secret in secrets:
        for run in found:
            assert secret not in repr(run.data.params) + repr(run.data.tags), (secret, run.info.run_id)
        assert not [data for data in artifacts if secret.encode() in data], secret
