"""The team stack for tests: a real S3 endpoint (moto's standalone server), an `mlflow server` in either
artifact mode, optionally behind MLflow's basic auth. Every process started here is stopped on exit.

S3 credentials reach clients through the environment only (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY,
MLFLOW_S3_ENDPOINT_URL), as a data scientist's shell would have them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.e2e import free_port

S3_KEY_ID = "AKIATEAMSWEEPTEST01"
S3_SECRET = "team-s3-secret-Zq81vX"  # a distinctive value: the credential tests grep every output for it
BUCKET = "team-artifacts"
ADMIN_PASSWORD = "admin-pw-Kx72mQ"  # basic-auth's admin, set by the fixture (MLflow ships none)
# what docs/team-server.md has data scientists export: downloads stream through a proxying server, never presigned S3
PROXIED_DOWNLOADS = {"MLFLOW_ENABLE_PROXY_MULTIPART_DOWNLOAD": "false"}
MEMBER = "alice"  # a team member, made by the admin: what a data scientist signs in as
MEMBER_PASSWORD = "alice-pw-Jq39zT"


@dataclass(frozen=True)
class S3:
    """A running S3 endpoint and the environment a client needs to reach it."""

    endpoint: str
    bucket: str = BUCKET
    process: subprocess.Popen[bytes] | None = None  # None: not started here

    @property
    def env(self) -> dict[str, str]:
        return {"MLFLOW_S3_ENDPOINT_URL": self.endpoint, "AWS_ACCESS_KEY_ID": S3_KEY_ID,
                "AWS_SECRET_ACCESS_KEY": S3_SECRET, "AWS_DEFAULT_REGION": "us-east-1"}

    def client(self):  # a boto3 client: the tests read the bucket straight, not through MLflow
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=S3_KEY_ID,
                            aws_secret_access_key=S3_SECRET, region_name="us-east-1")

    def keys(self, prefix: str = "") -> list[str]:
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        return sorted(item["Key"] for page in pages for item in page.get("Contents", []))

    def read(self, key: str) -> bytes:
        return self.client().get_object(Bucket=self.bucket, Key=key)["Body"].read()


@dataclass
class Server:
    """A running `mlflow server`: its URL, the environment its clients need, its process and log."""

    url: str
    client_env: dict[str, str]
    process: subprocess.Popen[bytes]
    log: Path
    command: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Stack:
    """The session's S3 endpoint and its servers by artifact mode, each with basic auth and MEMBER made."""

    s3: S3
    servers: dict[str, Server]

    def member_env(self, mode: str, password: str = MEMBER_PASSWORD) -> dict[str, str]:
        """What a data scientist exports for ``mode`` (S3 variables only in the direct mode)."""
        return {**self.servers[mode].client_env, "MLFLOW_TRACKING_USERNAME": MEMBER,
                "MLFLOW_TRACKING_PASSWORD": password, **PROXIED_DOWNLOADS}


def admin_env() -> dict[str, str]:
    return {"MLFLOW_TRACKING_USERNAME": "admin", "MLFLOW_TRACKING_PASSWORD": ADMIN_PASSWORD}


def wait_until_up(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout  # a loaded CI machine can take minutes to import mlflow
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return  # it answers (basic auth says 401 to an anonymous probe)
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not start: see {log}") from None
            time.sleep(0.3)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def s3_server(folder: Path, *, host: str = "127.0.0.1", bucket: str | None = BUCKET,
              unchecked_requests: int | None = None) -> Iterator[S3]:
    """moto's S3 server on a free port with ``bucket`` made (unless None); stopped on exit. With
    ``unchecked_requests``, only that many requests go unchecked, then every key must be one moto's IAM made."""
    port = free_port()
    log = folder / f"moto-{port}.log"
    env = dict(os.environ)
    if unchecked_requests is not None:
        env["INITIAL_NO_AUTH_ACTION_COUNT"] = str(unchecked_requests)
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", host, "-p", str(port)],
                                   stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        endpoint = f"http://{host}:{port}"
        wait_until_up(endpoint, process, log, timeout=60)
        s3 = S3(endpoint, bucket or BUCKET, process)
        if bucket is not None:
            s3.client().create_bucket(Bucket=bucket)
        yield s3
    finally:
        stop(process)


def mlflow_server_command(backend: str, mode: str, s3: S3, *, host: str, port: int, auth: bool) -> list[str]:
    """docs/team-server.md's `mlflow server` line for one artifact mode: "proxied" or "direct"."""
    artifacts = (["--serve-artifacts", "--artifacts-destination", f"s3://{s3.bucket}/mlflow"] if mode == "proxied"
                 else ["--no-serve-artifacts", "--default-artifact-root", f"s3://{s3.bucket}/mlflow"])
    return [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", backend, *artifacts,
            *(["--app-name", "basic-auth"] if auth else []),
            "--host", host, "--port", str(port), "--workers", "1"]


def auth_config(users: Path) -> str:
    """The basic-auth app's settings, as docs/team-server.md's: every signed-in user may write every experiment."""
    return ("[mlflow]\ndefault_permission = EDIT\n"
            f"database_uri = sqlite:///{users}\n"
            "admin_username = admin\n"
            "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
            "auth_cache_ttl_seconds = 60\n")


@contextmanager
def mlflow_server(folder: Path, backend: str, mode: str, s3: S3, *, host: str = "127.0.0.1",
                  auth: bool = False) -> Iterator[Server]:
    """`mlflow server` with S3 artifacts in ``mode``; with ``auth``, basic auth whose admin password is
    ADMIN_PASSWORD. Clients get the S3 environment only in the direct mode (proxied needs none)."""
    port = free_port()
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / f"mlflow-server-{port}.log"
    # the server's job runner (GenAI scoring) is no part of a sweep: off, it costs no processes
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
           **s3.env}
    env.pop("MLFLOW_TRACKING_URI", None)
    if auth:  # the auth app keeps its users in its own database, beside the server's folder
        config = folder / f"basic-auth-{port}.ini"
        config.write_text(auth_config(folder / f"basic-auth-{port}.db"), encoding="utf-8")
        env["MLFLOW_AUTH_ADMIN_PASSWORD"] = ADMIN_PASSWORD  # read once, when the admin user is created
        env["MLFLOW_AUTH_CONFIG_PATH"] = str(config)
        env["MLFLOW_FLASK_SERVER_SECRET_KEY"] = "team-csrf-key"  # the auth app refuses to start without one
    command = mlflow_server_command(backend, mode, s3, host=host, port=port, auth=auth)
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=folder)
    try:
        url = f"http://{host}:{port}"
        wait_until_up(f"{url}/health", process, log)
        client_env = {"MLFLOW_TRACKING_URI": url}
        if mode == "direct":
            client_env.update(s3.env)
        yield Server(url, client_env, process, log, command)
    finally:
        stop(process)


def create_user(url: str, username: str, password: str) -> None:
    """A basic-auth user, made by the admin through the auth app's REST API (as docs/team-server.md does with curl)."""
    import base64
    import json

    token = base64.b64encode(f"admin:{ADMIN_PASSWORD}".encode()).decode()
    request = urllib.request.Request(f"{url}/api/2.0/mlflow/users/create", method="POST",
                                     data=json.dumps({"username": username, "password": password}).encode(),
                                     headers={"Content-Type": "application/json", "Authorization": f"Basic {token}"})
    with urllib.request.urlopen(request, timeout=30):
        pass
