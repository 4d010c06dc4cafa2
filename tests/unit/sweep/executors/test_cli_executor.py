"""`sweep run --on ray` / `--jobs` refusals through typer's CliRunner: exit 2, one line, nothing written."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sweep.cli import app
from tests.support import e2e


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for name in ("MLFLOW_TRACKING_URI", "SWEEP_STORAGE", "RAY_ADDRESS"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def refused(*args: str) -> str:
    """The one `error:` line of a run that exits 2 and writes nothing."""
    result = CliRunner().invoke(app, ["run", *args])
    assert result.exit_code == 2, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and result.stdout == "", result.stderr
    assert not [name for name in os.listdir(".") if name != "sweep.yaml"], "something was written"
    return lines[0]


def test_on_ray_without_ray_installed_says_how_to_install_it(workdir, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # as if not installed
    assert "pip install 'sweep[ray]'" in refused("--on", "ray")


def test_a_journal_file_is_refused_for_a_cluster_on_other_machines(workdir):
    line = refused("--on", "ray", "--address", "10.0.0.5:6379", "--tracking-uri", "http://mlflow:5000")
    assert "sweep.journal is a file on this machine" in line and "--storage postgresql://" in line


def test_an_sqlite_tracking_store_is_refused_for_a_cluster_from_ray_address(workdir, monkeypatch):
    monkeypatch.setenv("RAY_ADDRESS", "head.example:6379")
    line = refused("--on", "ray", "--storage", "postgresql://postgres@db.example/sweeps")
    assert "tracking: sqlite:///mlflow.db is a store on this machine" in line and "--tracking-uri http://" in line


def test_jobs_asking_more_gpus_than_visible_are_refused(workdir, monkeypatch):
    (workdir / "sweep.yaml").write_text("trials: 1\nresources: {gpus: 1}\n", encoding="utf-8")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    line = refused("--config", "sweep.yaml", "--jobs", "3")
    assert "resources.gpus: 3 workers x 1 GPU need 3 GPUs, 2 visible (CUDA_VISIBLE_DEVICES=0,1)" in line


def test_workers_without_on_ray_point_at_jobs(workdir):
    assert "give --jobs N" in refused("--workers", "2")


@pytest.mark.slow  # the real run_sweep: the tracking process starts, Ray is imported
def test_an_address_nothing_answers_at_exits_1_at_once_and_writes_nothing(workdir):
    pytest.importorskip("ray")
    port = e2e.free_port()
    result = CliRunner().invoke(app, ["run", "--on", "ray", "--address", f"127.0.0.1:{port}", "--trials", "1"])
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith(f"error: no Ray cluster answers at 127.0.0.1:{port}")
    assert len(result.stderr.splitlines()) == 1
    assert not (workdir / "sweep.journal").exists() and not (workdir / "mlflow.db").exists()
