"""The team stack for real, clients writing artifacts to S3 directly: PostgreSQL, an `mlflow server` with
basic auth (`--default-artifact-root s3://...`), S3 (moto's standalone server). Every artifact of a sweep is
an object in the bucket, none is a local file, another folder predicts, loads the pyfunc model and the
registered version; S3 problems are one line at start.

The server is the session's team_stack (tests/conftest.py). The proxied mode runs in
test_team_hosts_e2e.py (from separate network namespaces, where a client reaching S3 by accident would
show) and in docs/team-server.md's set-up (test_team_readme_e2e.py).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from mlflow import MlflowClient

from tests.support import e2e, team
from tests.support.pg import database

pytestmark = pytest.mark.slow

S3_VARIABLES = ("MLFLOW_S3_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION",
                "AWS_PROFILE", "AWS_SESSION_TOKEN")


def member_env(stack: team.Stack, mode: str, **extra: str) -> dict[str, str]:
    """A data scientist's environment: the server (and S3 only in the direct mode), nothing else of this host's."""
    values = {key: value for key, value in e2e.env().items() if key not in S3_VARIABLES}
    return {**values, **stack.member_env(mode), **extra}


@pytest.fixture
def admin(monkeypatch: pytest.MonkeyPatch) -> None:
    """This process reads the servers as their admin."""
    for key, value in team.admin_env().items():
        monkeypatch.setenv(key, value)


def run(folder: Path, env: dict[str, str], *args: str, timeout: float = 240):
    import subprocess

    return subprocess.run(args, cwd=folder, env=env, capture_output=True, text=True, timeout=timeout)


def test_every_artifact_of_a_sweep_is_a_bucket_object_and_another_folder_predicts_from_it(team_stack, admin,
                                                                                            tmp_path):
    mode = "direct"
    server, s3 = team_stack.servers[mode], team_stack.s3
    name = f"team-{mode}"
    first, second = tmp_path / "host-a", tmp_path / "host-b"
    first.mkdir()
    second.mkdir()
    e2e.write_config(first, "trials: 3\n" + e2e.FAST_SPACE)
    with database() as storage:
        env = member_env(team_stack, mode, SWEEP_STORAGE=storage)
        result = run(first, env, *e2e.SWEEP, "run", "--config", "sweep.yaml", "--name", name, "--register", name)
        assert result.returncode == 0, result.stderr
        assert "models:/" in result.stdout and result.stderr == "", result.stderr

        client = MlflowClient(server.url)
        experiment = client.get_experiment_by_name("sentiment")
        every = client.search_runs([experiment.experiment_id], filter_string=f"tags.`sweep.name` = '{name}'")
        [parent] = [r for r in every if r.data.tags.get("sweep.role") == "parent"]
        children = [r for r in every if r is not parent]
        assert len(children) == 3 and parent.info.status == "FINISHED"
        keys = set(s3.keys("mlflow/"))
        root = f"mlflow/{experiment.experiment_id}"
        for child in children:
            assert f"{root}/{child.info.run_id}/artifacts/model.json" in keys
        parent_files = {key.removeprefix(f"{root}/{parent.info.run_id}/artifacts/") for key in keys
                        if key.startswith(f"{root}/{parent.info.run_id}/")}
        assert {"best/model.json", "sweep.yaml", "plots/optimization_history.svg"} <= parent_files
        model_id = parent.data.tags["best.model_id"]
        assert f"{root}/models/{model_id}/artifacts/MLmodel" in keys  # the pyfunc model
        best_trial = parent.data.tags["best.trial"]
        [best_child] = [r for r in children if r.data.tags["sweep.trial"] == best_trial]
        assert s3.read(f"{root}/{parent.info.run_id}/artifacts/best/model.json") == \
            s3.read(f"{root}/{best_child.info.run_id}/artifacts/model.json")
        assert not [key for key in keys if ".sweep-probe/" in key]  # the start-up probe cleans up after itself
        folders = [first, second, server.log.parent]  # the server's folder: its cwd
        assert not [path for folder in folders for path in folder.rglob("mlruns")], "artifacts written locally"

        # another host: the storage and the server (and S3 in the direct mode), no file of the first host
        predicted = run(second, env, *e2e.SWEEP, "predict", "--name", name, "a warm and funny film")
        assert predicted.returncode == 0, predicted.stderr
        label, probability, text = predicted.stdout.strip().split("\t")
        assert label in {"positive", "negative"} and 0 <= float(probability) <= 1 and text == "a warm and funny film"
        loaded = run(second, env, "python", "-c", (
            "import json, mlflow, pandas as pd\n"
            f"texts = pd.DataFrame({{'text': ['a warm and funny film']}})\n"
            f"a = mlflow.pyfunc.load_model('runs:/{parent.info.run_id}/{name}-best').predict(texts)\n"
            f"b = mlflow.pyfunc.load_model('models:/{name}/1').predict(texts)\n"
            "print(json.dumps([a.to_dict('records'), b.to_dict('records')]))\n"))
        assert loaded.returncode == 0, loaded.stderr
        by_run, by_registry = json.loads(loaded.stdout.strip().splitlines()[-1])
        assert by_run == by_registry and by_run[0]["label"] == int(label == "positive")
        assert not list(second.rglob("mlruns")) and not list(second.rglob("mlflow.db"))


def test_an_unreachable_s3_endpoint_is_named_before_any_trial(team_stack, tmp_path):
    e2e.write_config(tmp_path, "trials: 2\n" + e2e.FAST_SPACE)
    env = member_env(team_stack, "direct", MLFLOW_S3_ENDPOINT_URL=f"http://127.0.0.1:{e2e.free_port()}")
    result = run(tmp_path, env, *e2e.SWEEP, "run", "--config", "sweep.yaml", "--name", "no-s3")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "S3 endpoint cannot be reached" in result.stderr, result.stderr
    assert "MLFLOW_S3_ENDPOINT_URL" in result.stderr and "trial " not in result.stdout
    assert team.S3_SECRET not in result.stderr + result.stdout


def test_a_missing_bucket_is_named_before_any_trial(team_stack, admin, tmp_path):
    client = MlflowClient(team_stack.servers["direct"].url)
    client.create_experiment(f"no-bucket-{os.getpid()}", artifact_location="s3://no-such-bucket/mlflow")
    e2e.write_config(tmp_path, "trials: 2\n" + e2e.FAST_SPACE)
    result = run(tmp_path, member_env(team_stack, "direct"), *e2e.SWEEP, "run", "--config", "sweep.yaml",
                 "--experiment", f"no-bucket-{os.getpid()}")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "the bucket does not exist" in result.stderr, result.stderr
    assert "s3://no-such-bucket/mlflow" in result.stderr and "trial " not in result.stdout


def test_refused_s3_credentials_are_named(tmp_path, monkeypatch):
    """The probe a sweep makes at start, against an S3 endpoint that checks keys (moto with IAM on). The
    right key is only used to write: moto's signature check refuses some reads a real S3 accepts."""
    import boto3
    from botocore.exceptions import ClientError

    from sweep.errors import TrackingError
    from sweep.tracking.artifact_probe import probe_artifact_store

    with team.s3_server(tmp_path, bucket=None, unchecked_requests=10) as s3:
        unchecked = {"endpoint_url": s3.endpoint, "region_name": "us-east-1", "aws_access_key_id": "x",
                     "aws_secret_access_key": "x"}
        boto3.client("s3", **unchecked).create_bucket(Bucket=s3.bucket)
        iam = boto3.client("iam", **unchecked)  # unchecked requests make a user with a key
        iam.create_user(UserName="sweeper")
        iam.put_user_policy(UserName="sweeper", PolicyName="s3", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}))
        key = iam.create_access_key(UserName="sweeper")["AccessKey"]
        for _ in range(10):  # use up what is left of the unchecked requests: from here every key is checked
            try:
                boto3.client("s3", **unchecked).list_buckets()
            except ClientError:
                break
        else:
            raise AssertionError("moto never started checking keys")
        monkeypatch.setenv("MLFLOW_S3_ENDPOINT_URL", s3.endpoint)
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
        boto3.client("s3", endpoint_url=s3.endpoint, region_name="us-east-1", aws_access_key_id=key["AccessKeyId"],
                     aws_secret_access_key=key["SecretAccessKey"]).put_object(Bucket=s3.bucket, Key="k", Body=b"1")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret-Hq28")
        with pytest.raises(TrackingError) as refused:
            probe_artifact_store(f"s3://{s3.bucket}/mlflow/1")
    message = str(refused.value)
    assert "cannot write a probe object: the S3 credentials were refused; check AWS_ACCESS_KEY_ID" in message
    assert "\n" not in message and "not-the-secret-Hq28" not in message
