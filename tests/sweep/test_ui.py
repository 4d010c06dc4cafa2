"""`sweep ui` without a server: the command line it builds, remote stores, a taken port."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sweep.cli import app
from sweep.ui import DEFAULT_HOST, UiTarget, ui_command


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return tmp_path


def test_the_ui_listens_on_loopback_unless_a_host_is_given():
    assert DEFAULT_HOST == "127.0.0.1"
    command = ui_command("sqlite:///mlflow.db", DEFAULT_HOST, 5123)
    assert command[1:4] == ["-m", "mlflow", "ui"]
    assert command[command.index("--host") + 1] == "127.0.0.1"
    assert command[command.index("--port") + 1] == "5123"
    assert command[command.index("--backend-store-uri") + 1] == "sqlite:///mlflow.db"


def test_the_url_is_the_sweeps_runs_table_else_the_experiment_list():
    assert UiTarget("sqlite:///mlflow.db", "7", "s").url("http://127.0.0.1:5000/") == \
        "http://127.0.0.1:5000/#/experiments/7/runs"
    assert UiTarget("sqlite:///mlflow.db", None, None).url("http://127.0.0.1:5000") == \
        "http://127.0.0.1:5000/#/experiments"


def test_a_remote_tracking_server_is_printed_not_started(in_tmp: Path):
    result = CliRunner().invoke(app, ["ui", "--tracking-uri", "https://mlflow.example.com"])
    assert result.exit_code == 0, result.output
    assert result.output == "MLflow UI: https://mlflow.example.com/#/experiments  (the tracking server's own)\n"


def test_a_taken_port_exits_1_naming_the_port_and_the_fix(in_tmp: Path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(app, ["ui", "--port", str(port)])
    assert result.exit_code == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.output and "choose another --port" in result.output


def test_an_unknown_sweep_name_exits_1(in_tmp: Path):
    result = CliRunner().invoke(app, ["ui", "--name", "nope"])
    assert result.exit_code == 1
    assert "no sweeps yet" in result.output


def test_sweep_ui_and_predict_modules_import_without_mlflow(tmp_path: Path):
    from tests.sweep.test_exports import assert_ok, run_python

    assert_ok(run_python("""
        import sys
        import sweep.predict, sweep.ui
        from sweep.cli import app
        for args in (["ui", "--help"], ["predict", "--help"]):
            try:
                app(args, prog_name="sweep")
            except SystemExit:
                pass
        assert "mlflow" not in sys.modules, "mlflow was imported"
    """, tmp_path))
