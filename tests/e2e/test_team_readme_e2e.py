"""docs/team-server.md, "Set up a team server", run block by block: every command in it is one this test runs.

The first block (the site's values) is replaced by this machine's: the local PostgreSQL, a moto S3 endpoint,
a free port. Each `...` placeholder gets a value. Two shells: the admin's (steps 1-5, on the server's
folder) and a data scientist's (steps 6-8, on a folder of its own, with the S3 variables only in the
direct mode). Exports carry from block to block within a shell; a `mlflow server` block runs in the
background until the leg ends. `sweep` runs this source tree (the console script may point elsewhere).
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.support import e2e, team
from tests.support.pg import ADMIN_URL, require_postgres

pytestmark = pytest.mark.slow

TEAM_SERVER_DOC = Path(__file__).resolve().parents[2] / "docs" / "team-server.md"
ALICE_PASSWORD = "alice-readme-pw-Tn48"
PLACEHOLDERS = {"AWS_ACCESS_KEY_ID": team.S3_KEY_ID, "AWS_SECRET_ACCESS_KEY": team.S3_SECRET,
                "MLFLOW_AUTH_ADMIN_PASSWORD": team.ADMIN_PASSWORD, "MLFLOW_FLASK_SERVER_SECRET_KEY": "readme-csrf",
                "MLFLOW_TRACKING_PASSWORD": ALICE_PASSWORD}


def section_blocks() -> list[str]:
    text = TEAM_SERVER_DOC.read_text(encoding="utf-8")  # the page is the section
    return re.findall(r"```bash\n(.*?)```", text, re.DOTALL)


def fill(block: str) -> str:
    """The block with every `NAME=...` and `"password": "..."` given a value."""
    block = re.sub(r"\b(\w+)=\.\.\.", lambda match: f"{match[1]}={shlex.quote(PLACEHOLDERS[match[1]])}", block)
    block = block.replace('"password": "..."', f'"password": "{ALICE_PASSWORD}"')
    assert "..." not in block, block
    return block


class Shell:
    """One person's shell: a folder, and the exports of the blocks run so far."""

    def __init__(self, folder: Path, bin_folder: Path) -> None:
        folder.mkdir()
        self.folder = folder
        self.saved = folder / ".exports"
        base = {key: value for key, value in e2e.env().items()
                if not key.startswith(("AWS_", "MLFLOW_", "SWEEP_", "PG"))}
        # one server worker process, as every other server of the suite runs (tests/support/team.py): the page's
        # `mlflow server` line leaves MLflow's default of 4, each importing mlflow and building the auth app, which
        # on 2 loaded cores kept the server from answering for most of a minute; the blocks are run as written
        base.update({"MLFLOW_DISABLE_TELEMETRY": "true", "MLFLOW_WORKERS": "1", "PATH": f"{bin_folder}:{base['PATH']}"})
        self.base = base
        self.saved.write_text("", encoding="utf-8")

    def script(self, block: str) -> str:
        return f"set -euo pipefail\nsource {shlex.quote(str(self.saved))}\n{block}\nexport -p > {self.saved}\n"

    def run(self, block: str, *, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(["bash", "-c", self.script(fill(block))], cwd=self.folder, env=self.base,
                                capture_output=True, text=True, timeout=timeout)
        assert result.returncode == 0, f"{block}\nstdout: {result.stdout}\nstderr: {result.stderr}"
        return result

    @contextmanager
    def background(self, block: str, url: str) -> Iterator[subprocess.Popen[bytes]]:
        """A long-running block (a server): started, waited for at ``url``, stopped at the end."""
        log = self.folder / "server.log"
        command = f"set -euo pipefail\nsource {shlex.quote(str(self.saved))}\nexec {fill(block).strip()}\n"
        with log.open("wb") as out:
            process = subprocess.Popen(["bash", "-c", command], cwd=self.folder, env=self.base, stdout=out,
                                       stderr=subprocess.STDOUT)
        try:
            team.wait_until_up(url, process, log)
            yield process
        finally:
            team.stop(process)


def site_values(s3: team.S3, port: int) -> str:
    suffix = uuid.uuid4().hex[:8]
    return (f"export DB_HOST=127.0.0.1 DB_USER=postgres OPTUNA_DB=sweep_readme_optuna_{suffix} "
            f"MLFLOW_DB=sweep_readme_mlflow_{suffix}\n"
            f"export MLFLOW_HOST=127.0.0.1 MLFLOW_PORT={port}\n"
            f"export BUCKET={s3.bucket} S3_ENDPOINT={s3.endpoint}\n")


def drop_databases(shell: Shell) -> None:
    names = re.findall(r"(?:OPTUNA_DB|MLFLOW_DB)='?(\w+)", shell.saved.read_text(encoding="utf-8"))
    import psycopg

    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        for name in names:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def sweep_command(tmp_path: Path) -> Path:
    folder = tmp_path / "bin"
    folder.mkdir()
    shim = folder / "sweep"
    source_tree = Path(__file__).resolve().parents[2]
    tree = shlex.quote(str(source_tree))
    shim.write_text(f"#!/bin/sh\nPYTHONPATH={tree} exec {sys.executable} -m sweep.cli \"$@\"\n", encoding="utf-8")
    shim.chmod(0o755)
    mlflow = folder / "mlflow"  # the same interpreter's mlflow as the tests'
    mlflow.write_text(f"#!/bin/sh\nexec {sys.executable} -m mlflow \"$@\"\n", encoding="utf-8")
    mlflow.chmod(0o755)
    return folder


@pytest.mark.parametrize("mode", ["proxied", "direct"])  # two tests: xdist runs them side by side
def test_the_team_server_section_runs_top_to_bottom_in_each_artifact_mode(tmp_path, sweep_command, mode):
    require_postgres()
    blocks = section_blocks()
    assert len(blocks) == 10, "the test below runs the section's blocks by position: update it with docs/team-server.md"
    values, databases, bucket, auth, proxied, direct, user, exports, doctor, sweep = blocks
    assert values.startswith("export DB_HOST=") and "--serve-artifacts" in proxied and "--no-serve" in direct
    s3_exports = bucket.splitlines()[0]
    assert s3_exports.startswith("export MLFLOW_S3_ENDPOINT_URL=")
    server_block = proxied if mode == "proxied" else direct
    with team.s3_server(tmp_path, bucket=None) as s3_endpoint:  # docs/team-server.md's step 2 makes the bucket
        s3 = team.S3(s3_endpoint.endpoint, "team-readme")
        port = e2e.free_port()
        admin = Shell(tmp_path / f"{mode}-server", sweep_command)
        scientist = Shell(tmp_path / f"{mode}-host", sweep_command)
        site = site_values(s3, port)
        try:
            admin.run(site)
            admin.run(databases)
            admin.run(bucket)  # each mode on an S3 endpoint of its own: the page's step 2 makes the bucket
            admin.run(auth)
            with admin.background(server_block, f"http://127.0.0.1:{port}/health"):
                admin.run(user)
                scientist.run(site)
                if mode == "direct":
                    scientist.run(s3_exports)
                scientist.run(exports)
                checked = scientist.run(doctor)
                assert checked.stdout.count("✓") == 4, checked.stdout
                if mode == "proxied":
                    assert team.S3_SECRET not in scientist.saved.read_text(encoding="utf-8")
                    e2e.write_config(scientist.folder, "trials: 4\n" + e2e.FAST_SPACE, "my-sweep.yaml")
                    swept = scientist.run(sweep)
                    assert "sweep team-sweep finished: 4 trials" in swept.stdout, swept.stdout
                    assert swept.stdout.count("✓") == 4, swept.stdout  # the doctor given the sweep
                    assert any(key.endswith("/artifacts/best/model.json") for key in s3.keys("mlflow/"))
                assert ALICE_PASSWORD not in checked.stdout + checked.stderr
            for folder in (admin.folder, scientist.folder):
                assert not list(folder.rglob("mlruns")), f"artifacts written under {folder}"
        finally:
            drop_databases(admin)
