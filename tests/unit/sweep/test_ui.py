"""`sweep ui` without a server: the command line it builds, remote stores, a taken port."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sweep.cli import app
from sweep.ui import DEFAULT_HOST, RunsView, UiTarget, share_view, ui_command, ui_environment


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return tmp_path


def test_the_ui_listens_on_loopback_unless_a_host_is_given():
    assert DEFAULT_HOST == "127.0.0.1"
    command = ui_command(DEFAULT_HOST, 5123)
    assert command[1:3] == ["-m", "uvicorn"] and command[-1] == "mlflow.server.fastapi_app:app"
    assert command[command.index("--host") + 1] == "127.0.0.1"
    assert command[command.index("--port") + 1] == "5123"
    assert ui_environment("sqlite:///mlflow.db", {})["MLFLOW_BACKEND_STORE_URI"] == "sqlite:///mlflow.db"


# `mlflow ui` run for real, once per host given, with its server's start caught: the command and the environment
# the server would get, a JSON line per host (the environment as it was before each run: the CLI sets variables)
MLFLOW_UI_START = """
import json, os, sys
import mlflow.server
from click.testing import CliRunner
from mlflow.cli import cli

class Started:
    def wait(self):
        return 0

def start(command, *, extra_env, **_):
    print(json.dumps({"command": list(command), "env": {**os.environ, **extra_env}}))
    return Started()

mlflow.server._exec_cmd = start
before = dict(os.environ)
for host in sys.argv[1:]:
    done = CliRunner().invoke(cli, ["ui", "--host", host, "--port", "5123", "--workers", "1"])
    sys.stdout.write(done.output)  # the print above went to the runner
    os.environ.clear()
    os.environ.update(before)
"""
HOSTS = [DEFAULT_HOST, "0.0.0.0"]  # the settings MLflow gives a server differ between loopback and all addresses


@pytest.mark.slow  # a process importing MLflow
def test_the_server_starts_as_mlflow_ui_would_start_it(tmp_path: Path):
    """The same uvicorn arguments and MLflow settings as `mlflow ui`, for each host (MLflow's internal names: an
    upgrade that renames one fails here). In a process of its own: the CLI changes MLflow's process-wide state."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    base = {"PATH": os.environ["PATH"], "MLFLOW_DISABLE_TELEMETRY": "true"}
    done = subprocess.run([sys.executable, "-c", MLFLOW_UI_START, *HOSTS], cwd=tmp_path, capture_output=True,
                          text=True, check=False, env={**base, "MLFLOW_BACKEND_STORE_URI": uri,
                                                       "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"})
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == len(HOSTS), done.stdout + done.stderr
    for host, line in zip(HOSTS, lines):
        started = json.loads(line)
        theirs, ours = started["command"], ui_command(host, 5123)
        assert ours[ours.index("uvicorn") + 1:] == theirs[theirs.index("uvicorn") + 1:], host
        env = ui_environment(uri, base)
        for name, value in started["env"].items():
            if "MLFLOW" in name:
                assert name in env, f"mlflow ui sets {name} for {host}, sweep ui does not"
                assert name == "_MLFLOW_SERVER_BOOT_ID" or env[name] == value, (host, name)


def test_mlflows_job_runner_is_off_unless_the_user_turned_it_on():
    off = ui_environment("sqlite:///mlflow.db", {})
    assert off["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"
    assert ui_command(DEFAULT_HOST, 5123, off)[1:3] == ["-m", "uvicorn"]
    turned_on = ui_environment("sqlite:///mlflow.db", {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "true"})
    assert turned_on["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "true"
    assert ui_command(DEFAULT_HOST, 5123, turned_on)[1:4] == ["-m", "mlflow", "ui"]  # it starts the runner


def test_the_tracking_password_is_in_the_childs_environment_not_its_command_line():
    uri = "postgresql://postgres:s3cr3t-pw@db:5432/mlflow"
    command, env = ui_command(DEFAULT_HOST, 5123), ui_environment(uri, {"PATH": "/bin"})
    assert not [arg for arg in command if "s3cr3t-pw" in arg or "postgresql" in arg]
    assert env["MLFLOW_BACKEND_STORE_URI"] == uri and env["PATH"] == "/bin"


def test_the_url_is_the_sweeps_runs_table_else_the_experiment_list():
    assert UiTarget("sqlite:///mlflow.db", "7", "s").url("http://127.0.0.1:5000/") == \
        "http://127.0.0.1:5000/#/experiments/7/runs"
    assert UiTarget("sqlite:///mlflow.db", None, None).url("http://127.0.0.1:5000") == \
        "http://127.0.0.1:5000/#/experiments"


VIEW = RunsView("demo", "val_loss", False, ("lr", "epochs"), "parent-id")


def test_the_url_filters_the_runs_to_the_sweep_sorted_by_the_objective():
    url = UiTarget("sqlite:///mlflow.db", "7", "demo", VIEW).url("http://127.0.0.1:5000")
    assert url == ("http://127.0.0.1:5000/#/experiments/7/runs?searchFilter=tags.%60sweep.name%60%20%3D%20%27demo%27"
                   "&orderByKey=metrics.%60val_loss%60&orderByAsc=true")


def test_the_shared_view_shows_the_tuned_params_and_the_objective_as_columns():
    state = VIEW.shared_state()
    assert state["selectedColumns"] == ["params.`lr`", "params.`epochs`", "metrics.`val_loss`"]
    assert (state["searchFilter"], state["orderByKey"], state["orderByAsc"]) == \
        ("tags.`sweep.name` = 'demo'", "metrics.`val_loss`", True)
    url = UiTarget("sqlite:///mlflow.db", "7", "demo", VIEW).url("http://h:1", shared=True)
    assert url == f"http://h:1/#/experiments/7/runs?viewStateShareKey={VIEW.share_key}"
    assert VIEW.share_key != RunsView("demo", "val_loss", False, ("lr",), "parent-id").share_key


def test_without_a_server_to_write_the_view_the_url_keeps_filter_and_sort():
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        base = f"http://127.0.0.1:{closed.getsockname()[1]}"  # nothing listens there
    target = UiTarget("sqlite:///mlflow.db", "7", "demo", VIEW)
    assert share_view(target, base) == target.url(base)


def test_a_remote_tracking_server_is_printed_not_started(in_tmp: Path):
    result = CliRunner().invoke(app, ["ui", "--tracking-uri", "https://mlflow.example.com"])
    assert result.exit_code == 0, result.output
    assert result.output == "MLflow UI: https://mlflow.example.com/#/experiments  (the tracking server's own)\n"


def test_a_taken_port_exits_1_naming_the_port_and_the_fix(in_tmp: Path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(app, ["ui", "--port", str(port), "--tracking-uri", "sqlite:///mlflow.db"])
    assert result.exit_code == 1
    assert result.output.splitlines()[0] == "starting the MLflow UI..."  # at once: the server takes seconds
    assert f"cannot listen on 127.0.0.1:{port}" in result.output and "choose another --port" in result.output


def test_sweep_ui_without_a_sweep_exits_1_and_leaves_no_database(in_tmp: Path):
    result = CliRunner().invoke(app, ["ui"])
    assert result.exit_code == 1
    assert "no sweeps yet" in result.output and "--tracking-uri" in result.output
    assert list(in_tmp.iterdir()) == []


def test_sweep_predict_refuses_an_empty_text_with_exit_2(in_tmp: Path):
    result = CliRunner().invoke(app, ["predict", "a fine film", " "])
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and "empty text" in result.output


def test_an_unknown_sweep_name_exits_1(in_tmp: Path):
    result = CliRunner().invoke(app, ["ui", "--name", "nope"])
    assert result.exit_code == 1
    assert "no sweeps yet" in result.output


def test_sweep_ui_and_predict_modules_import_without_mlflow(tmp_path: Path):
    from tests.unit.sweep.test_exports import assert_ok, run_python

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


def test_a_ctrl_c_as_the_url_is_printed_still_stops_the_server(in_tmp: Path, monkeypatch: pytest.MonkeyPatch):
    """The Ctrl-C lands before the wait began (a script stopping the UI once it read the URL): the server, in a
    session of its own, must not be left running."""
    import sweep.ui

    stopped: list[bool] = []

    class Started:
        url = "http://127.0.0.1:5000/#/experiments"

        def wait(self) -> None:
            raise AssertionError("the Ctrl-C came first")

        def stop(self) -> None:
            stopped.append(True)

    def echo(message: str = "", **_: object) -> None:
        if message.startswith("MLflow UI: http"):
            raise KeyboardInterrupt

    monkeypatch.setattr(sweep.ui, "start_ui", lambda *_, **__: Started())
    monkeypatch.setattr("sweep.cli.typer.echo", echo)
    result = CliRunner().invoke(app, ["ui", "--tracking-uri", "sqlite:///mlflow.db"])
    assert stopped and result.exit_code == 0, result.output
