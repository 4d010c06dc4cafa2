"""The artifact-store probe: where it probes, what it leaves, and how each failure is named in one line."""

from __future__ import annotations

import pytest

from sweep.tracking.artifact_probe import is_local, probe_artifact_store, probe_error


@pytest.mark.parametrize(("location", "local"), [
    ("/srv/mlruns/1", True), ("file:///srv/mlruns/1", True), ("mlruns/1", True),
    ("s3://bucket/mlflow/1", False), ("mlflow-artifacts:/1", False), ("gs://bucket/1", False),
])
def test_only_folders_of_this_machine_are_local(location, local):
    assert is_local(location) is local


def test_a_probe_of_a_folder_writes_reads_and_leaves_nothing(tmp_path):
    assert probe_artifact_store(tmp_path.as_uri()) == "write, read, delete ok"
    assert [path.name for path in tmp_path.rglob("*") if path.is_file()] == []


@pytest.mark.parametrize(("message", "named"), [
    ("An error occurred (NoSuchBucket) when calling the PutObject operation", "the bucket does not exist"),
    ("An error occurred (InvalidAccessKeyId) when calling the PutObject operation", "S3 credentials were refused"),
    ("Unable to locate credentials", "no S3 credentials"),
    ('Could not connect to the endpoint URL: "http://127.0.0.1:9/b/k"', "the S3 endpoint cannot be reached"),
    ("API request to http://mlflow:5000/api/2.0/mlflow-artifacts/artifacts/1/x failed with exception "
     "HTTPConnectionPool(host='mlflow', port=5000): Max retries exceeded (Caused by ResponseError('too many 500 "
     "error responses'))", "could not store it (HTTP 500)"),
    ("API request to endpoint /api/2.0/mlflow-artifacts/artifacts/1 failed with error code 403 != 200",
     "refused this user (HTTP 403)"),
])
def test_each_failure_is_one_line_naming_its_cause(message, named, monkeypatch):
    monkeypatch.setenv("MLFLOW_S3_ENDPOINT_URL", "http://minio:9000")
    error = str(probe_error("s3://bucket/mlflow/1", "write", RuntimeError(message + "\nTraceback follows")))
    assert named in error and "\n" not in error and "Traceback" not in error
    assert error.startswith("artifact store s3://bucket/mlflow/1 (S3 endpoint http://minio:9000): cannot write")


def test_an_unknown_failure_keeps_its_message_with_passwords_hidden():
    error = str(probe_error("gs://bucket/1", "read", OSError("boom at https://u:pw-Xy71@store/x")))
    assert "boom at https://u:***@store/x" in error and "pw-Xy71" not in error


@pytest.mark.parametrize(("failure", "answer"), [
    (TimeoutError("Read timed out. (read timeout=10)"), "the tracking server did not answer in time"),
    (RuntimeError("API request to /api/2.0/mlflow-artifacts failed: too many 500 error responses"),
     "the tracking server answered HTTP 500"),
    (ConnectionResetError("Connection reset by peer at http://127.0.0.1:5000"),
     "the tracking server failed the request"),
])
def test_a_proxied_store_failing_behind_the_server_says_what_the_server_did_and_points_at_its_log(
        failure: Exception, answer: str):
    error = str(probe_error("mlflow-artifacts:/1", "write", failure))
    assert error == ("artifact store mlflow-artifacts:/1 (proxied by the tracking server): cannot write a probe "
                     f"object: {answer}; see the server's log: usually it could not reach its artifact "
                     "destination (bucket, S3 endpoint, credentials)")
