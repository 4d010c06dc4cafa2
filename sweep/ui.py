"""`sweep ui`: the MLflow UI for a sweep's tracking store, on this machine only unless asked otherwise.

The UI is MLflow's own server (`python -m mlflow ui`) in a child process; this module builds its
command line, waits until it answers, finds the URL of the sweep's experiment from the Optuna study
(no mlflow import here), and stops the server and everything it started. Only the CLI prints.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from sweep.errors import NotFoundError, SweepError
from sweep.report import tracking_uri_of
from sweep.study import SweepRow, sweep_trials
from sweep.urls import redact_url

DEFAULT_HOST = "127.0.0.1"  # loopback: a sweep's runs and models are not for the whole network by default
DEFAULT_PORT = 5000  # MLflow's own default
DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"  # MLflow's default store, as `sweep run` uses it
READY_SECONDS = 120.0  # importing mlflow and starting uvicorn: ~8 s on a 2-core machine, far more when cold
STOP_SECONDS = 10.0  # uvicorn's graceful shutdown, before the server's processes are killed
POLL_SECONDS = 0.25


class UiError(SweepError):
    """The MLflow UI could not start: the port is taken, or the server failed (its last log line says why)."""


@dataclass(frozen=True)
class UiTarget:
    """Which store to show and where to point the browser in it."""

    tracking_uri: str
    experiment_id: str | None  # None: the experiment list (no sweep yet, or another store)
    sweep: str | None

    @property
    def remote(self) -> bool:
        return self.tracking_uri.startswith(("http://", "https://"))

    def url(self, base: str) -> str:
        """The sweep's runs table under ``base`` (a server's root URL), else the experiment list."""
        root = base.rstrip("/")
        return f"{root}/#/experiments/{self.experiment_id}/runs" if self.experiment_id else f"{root}/#/experiments"


def ui_target(*, tracking_uri: str | None, storage: str | None, name: str | None) -> UiTarget:
    """The tracking store (the flag, else the sweep's own, else MLFLOW_TRACKING_URI, else MLflow's default)
    and the sweep's experiment in it; the latest sweep when no name is given, none when there is none."""
    sweep: SweepRow | None
    try:
        sweep = sweep_trials(storage, name)[0]
    except NotFoundError:
        if name is not None:
            raise
        sweep = None  # no sweep yet: the UI still shows whatever the store holds
    uri = tracking_uri_of(sweep, tracking_uri) or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI
    # the stored experiment id only means something in the store the sweep wrote to
    same_store = sweep is not None and sweep.tracking_uri == redact_url(uri)
    return UiTarget(uri, sweep.experiment_id if same_store and sweep is not None else None,
                    sweep.name if sweep is not None else None)


def ui_command(tracking_uri: str, host: str, port: int) -> list[str]:
    """`mlflow ui` for one store. One worker: a single person browsing needs no more, and it starts faster.

    No --default-artifact-root: the runs keep the artifact locations they were created with (./mlruns
    for the default store, as absolute paths), and the server reads them there.
    """
    return [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", tracking_uri, "--host", host,
            "--port", str(port), "--workers", "1"]


class UiServer:
    """A running `mlflow ui`: its own process group, so a stop ends uvicorn and its workers too."""

    def __init__(self, process: subprocess.Popen[bytes], url: str, log: Path) -> None:
        self.process, self.url, self.log = process, url, log

    def wait(self) -> None:
        """Until the server exits (an error) or Ctrl-C / SIGTERM arrives (a clean stop, no error)."""
        try:
            code = self.process.wait()
        except KeyboardInterrupt:
            self.stop()
            return
        reason = _last_line(self.log)
        self._cleanup()
        raise UiError(f"the MLflow UI stopped by itself (exit code {code}): {reason}")

    def stop(self) -> None:
        if self.process.poll() is None:
            _signal_group(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_SECONDS)
            except subprocess.TimeoutExpired:
                _signal_group(self.process.pid, signal.SIGKILL)
                self.process.wait()
        _signal_group(self.process.pid, signal.SIGKILL)  # a worker left behind by the server's own exit
        self._cleanup()

    def _cleanup(self) -> None:
        self.log.unlink(missing_ok=True)


def start_ui(target: UiTarget, *, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
             ready_seconds: float = READY_SECONDS) -> UiServer:
    """Start `mlflow ui` on ``host``:``port`` and return once it answers; its URL points at the sweep."""
    _check_port_free(host, port)
    log_fd, log_name = tempfile.mkstemp(prefix="sweep-ui-", suffix=".log")
    log = Path(log_name)
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": os.environ.get("MLFLOW_DISABLE_TELEMETRY", "true")}
    try:
        process = subprocess.Popen(ui_command(target.tracking_uri, host, port), stdin=subprocess.DEVNULL,
                                   stdout=log_fd, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    finally:
        os.close(log_fd)
    server = UiServer(process, target.url(f"http://{_reachable(host)}:{port}"), log)
    try:
        _wait_until_ready(server, f"http://{_reachable(host)}:{port}/health", ready_seconds)
    except BaseException:
        server.stop()
        raise
    return server


def _wait_until_ready(server: UiServer, health_url: str, ready_seconds: float) -> None:
    deadline = time.monotonic() + ready_seconds
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise UiError(f"the MLflow UI did not start: {_last_line(server.log)}")
        try:
            with urllib.request.urlopen(health_url, timeout=2):
                return
        except (urllib.error.URLError, OSError):
            time.sleep(POLL_SECONDS)
    raise UiError(f"the MLflow UI did not answer within {ready_seconds:.0f} s; its log: {_last_line(server.log)}")


def _check_port_free(host: str, port: int) -> None:
    """A taken port is named before starting a server that would only log the failure after seconds."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a socket in TIME_WAIT does not block a server
        try:
            probe.bind((host, port))
        except OSError as error:
            raise UiError(f"cannot listen on {host}:{port} ({error.strerror}); choose another --port") from None


def _reachable(host: str) -> str:
    """Where this machine reaches a server bound to ``host``: a wildcard address is reached on loopback."""
    return {"0.0.0.0": "127.0.0.1", "::": "[::1]", "": "127.0.0.1"}.get(host, f"[{host}]" if ":" in host else host)


def _signal_group(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):  # the group is gone already
        os.killpg(pid, signum)  # the group the server was started in (start_new_session): nothing else


def _last_line(log: Path) -> str:
    try:
        lines = [line.strip() for line in log.read_text(encoding="utf-8", errors="replace").splitlines()
                 if line.strip()]
    except OSError:
        return "no log"
    return lines[-1][:300] if lines else "no output"
