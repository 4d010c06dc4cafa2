"""`sweep ui`: the MLflow UI for a sweep's tracking store, on this machine only unless asked otherwise.

The UI is MLflow's own server (its app under uvicorn, as `mlflow ui` runs it) in a child process; this module
builds its command line, waits until it answers, finds the URL of the sweep's runs from the Optuna study (no mlflow
import here), and stops the server and everything it started. Only the CLI prints.

The URL opens on the answer: MLflow's runs table keeps its search filter and sort order in the URL
(searchFilter, orderByKey, orderByAsc), but its columns only in the browser's local storage. A
"shared view" (what the UI's own Share button makes) carries both: an experiment tag
`mlflow.sharedViewState.<key>` holding the table's state as JSON, opened by `?viewStateShareKey=<key>`.
`sweep ui` writes that tag through the server it started, so the table shows the sweep's runs, best
first, with the tuned params and the objective as columns.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sweep.errors import NotFoundError, SweepError
from sweep.locations import REMOTE_SCHEMES
from sweep.queries import tracking_of
from sweep.study import SweepRow, TrialRow, sweep_trials
from sweep.urls import URL

DEFAULT_HOST = "127.0.0.1"  # loopback: a sweep's runs and models are not for the whole network by default
DEFAULT_PORT = 5000  # MLflow's own default
READY_SECONDS = 120.0  # importing mlflow and starting uvicorn: ~8 s on a 2-core machine, far more when cold
WAKE_SECONDS = 0.2  # how often the waiting main thread looks for a stop (see UiServer.wait)
STOP_SECONDS = 10.0  # uvicorn's graceful shutdown, before the server's processes are killed
POLL_SECONDS = 0.25
SHARED_VIEW_TAG = "mlflow.sharedViewState."  # the experiment tag prefix MLflow's UI reads shared views from
SERVER_APP = "mlflow.server.fastapi_app:app"  # what `mlflow ui` runs under uvicorn
# What `mlflow ui --host H --port P --workers 1` hands the uvicorn process it starts (mlflow/server/__init__.py,
# _run_server, with the CLI's defaults): the store's URI in the two *_STORE variables, artifacts served by the
# server from ./mlartifacts. tests/unit/sweep/test_ui.py checks these names against the installed MLflow's.
BACKEND_STORE_ENV = "_MLFLOW_SERVER_FILE_STORE"
REGISTRY_STORE_ENV = "_MLFLOW_SERVER_REGISTRY_STORE"
SERVER_SETTINGS = {
    "_MLFLOW_SERVER_ARTIFACT_ROOT": "mlflow-artifacts:/",
    "_MLFLOW_SERVER_SERVE_ARTIFACTS": "true",
    "_MLFLOW_SERVER_ARTIFACT_DESTINATION": "./mlartifacts",
    "_MLFLOW_SGI_NAME": "uvicorn",
    "_MLFLOW_IN_JOB_EXECUTOR": "false",
    "MLFLOW_SERVER_SECRETS_CACHE_TTL": "60",
    "MLFLOW_SERVER_SECRETS_CACHE_MAX_SIZE": "1000",
    "_MLFLOW_SERVER_TLS_LISTENER": "false",  # MLflow 3.18 on: the server calls itself over HTTP (no TLS here)
}
USER_SETTINGS = {"MLFLOW_SERVER_X_FRAME_OPTIONS": "SAMEORIGIN", "MLFLOW_ENABLE_WORKSPACES": "false"}  # the user's wins


class UiError(SweepError):
    """The MLflow UI could not start: the port is taken, or the server failed (its last log line says why)."""


@dataclass(frozen=True)
class RunsView:
    """The runs table opened on a sweep's answer: its runs only, best first, tuned params and objective shown."""

    sweep: str
    metric: str  # the objective, a metric of every completed child run
    maximize: bool
    params: tuple[str, ...]  # the tuned params, in the order the trials first tuned them
    parent_run_id: str | None = None  # expanded, so its children show under it

    @property
    def search_filter(self) -> str:
        # the parent and every child carry the tag; a sweep name holds no quote (SweepConfig checks it)
        return f"tags.`sweep.name` = '{self.sweep}'"

    def facets(self) -> dict[str, str]:
        """The runs table's URL parameters: filter and sort (MLflow keeps no columns in the URL)."""
        return {"searchFilter": self.search_filter, "orderByKey": f"metrics.`{self.metric}`",
                "orderByAsc": "false" if self.maximize else "true"}

    def shared_state(self) -> dict[str, object]:
        """The table's state as the UI's Share button stores it: the facets and the columns to show."""
        columns = [f"params.`{name}`" for name in self.params] + [f"metrics.`{self.metric}`"]
        return {"searchFilter": self.search_filter, "orderByKey": f"metrics.`{self.metric}`",
                "orderByAsc": not self.maximize, "selectedColumns": columns,
                "runsExpanded": {self.parent_run_id: True} if self.parent_run_id else {}}

    @property
    def share_key(self) -> str:
        """Named by its content: the same sweep and columns share one tag, a changed view gets its own."""
        state = json.dumps(self.shared_state(), sort_keys=True)
        return "sweep-" + hashlib.sha256(state.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class UiTarget:
    """Which store to show and where to point the browser in it."""

    tracking_uri: str
    experiment_id: str | None  # None: the experiment list (another store)
    sweep: str | None
    view: RunsView | None = field(default=None, compare=False)
    remote: bool = field(init=False, compare=False)  # a tracking server: a UI of its own

    def __post_init__(self) -> None:
        object.__setattr__(self, "remote", URL.parse(self.tracking_uri).kind in REMOTE_SCHEMES)

    def url(self, base: str, *, shared: bool = False) -> str:
        """The sweep's runs table under ``base`` (a server's root URL), else the experiment list.

        ``shared``: the shared view (columns too), once its experiment tag is written; else the
        search filter and sort order only.
        """
        root = base.rstrip("/")
        if not self.experiment_id:
            return f"{root}/#/experiments"
        runs = f"{root}/#/experiments/{self.experiment_id}/runs"
        if self.view is None:
            return runs
        if shared:
            return f"{runs}?viewStateShareKey={self.view.share_key}"
        return f"{runs}?{urllib.parse.urlencode(self.view.facets(), quote_via=urllib.parse.quote)}"


def runs_view(sweep: SweepRow, trials: list[TrialRow]) -> RunsView:
    """The view of ``sweep``: its objective, and the params its trials tuned (first seen first)."""
    params: dict[str, None] = {}
    for trial in trials:
        params.update(dict.fromkeys(trial.params))
    return RunsView(sweep.name, sweep.metric, sweep.direction == "maximize", tuple(params), sweep.parent_run_id)


def ui_target(*, tracking_uri: str | None, storage: str | None, name: str | None) -> UiTarget:
    """The tracking store (the flag, else the sweep's own, else MLFLOW_TRACKING_URI, else MLflow's default)
    and the sweep's experiment in it; the latest sweep when no name is given.

    No sweep and no store named (flag or MLFLOW_TRACKING_URI): NotFoundError, rather than an empty UI
    on a database `mlflow ui` would create in this folder.
    """
    try:
        sweep, trials, _ = sweep_trials(storage, name)
    except NotFoundError as error:
        if name is not None:
            raise
        if not (tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")):
            raise NotFoundError(f"{error}; or show an MLflow store with --tracking-uri") from None
        tracking = tracking_of(None, tracking_uri)
        return UiTarget(tracking.secret_url, None, None)
    tracking = tracking_of(sweep, tracking_uri)
    # the stored experiment id only means something in the store the sweep wrote to
    same_store = sweep.tracking_uri == str(tracking)
    return UiTarget(tracking.secret_url, sweep.experiment_id if same_store else None, sweep.name,
                    runs_view(sweep, trials) if same_store else None)


def share_view(target: UiTarget, base: str) -> str:
    """Write the sweep's shared view through the server at ``base`` and return its URL; the filtered
    URL (no columns) when there is no view or the server refuses the tag."""
    if target.view is None or not target.experiment_id:
        return target.url(base)
    body = json.dumps({"experiment_id": target.experiment_id, "key": SHARED_VIEW_TAG + target.view.share_key,
                       "value": json.dumps(target.view.shared_state())}).encode()
    request = urllib.request.Request(f"{base.rstrip('/')}/api/2.0/mlflow/experiments/set-experiment-tag",
                                     data=body, method="POST", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30):
            return target.url(base, shared=True)
    except (urllib.error.URLError, OSError):
        return target.url(base)


def ui_command(host: str, port: int, environment: Mapping[str, str] | None = None) -> list[str]:
    """MLflow's tracking server app under uvicorn, one worker, as `mlflow ui --workers 1` runs it.

    `mlflow ui` is a process that imports mlflow and opens the store only to start this same command as a
    second process, which imports both again: half the wait for the URL. Here the server is started directly,
    with the settings `mlflow ui` would hand it (ui_environment). Only when ``environment`` turns MLflow's job
    runner on is it `mlflow ui` itself, which starts the runner beside its server. One worker: a single person
    browsing needs no more, and it starts faster.

    The store is not on this command line, which every user of the machine reads with `ps`: its URI
    (password included) goes in the environment. No --default-artifact-root: the runs keep the artifact
    locations they were created with (./mlruns for the default store, as absolute paths), and the server
    reads them there.
    """
    if (environment or {}).get("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false").lower() in ("true", "1"):
        return [sys.executable, "-m", "mlflow", "ui", "--host", host, "--port", str(port), "--workers", "1"]
    log_config = mlflow_package() / "server" / "uvicorn_log_config.yaml"
    return [sys.executable, "-m", "uvicorn", *(["--log-config", str(log_config)] if log_config.is_file() else []),
            "--host", host, "--port", str(port), "--workers", "1", SERVER_APP]


def ui_environment(tracking_uri: str, base: Mapping[str, str]) -> dict[str, str]:
    """``base`` plus the store the server shows and the settings `mlflow ui` gives its server (SERVER_SETTINGS).

    MLflow's job runner (GenAI scoring jobs) is off unless ``base`` turns it on: browsing a sweep's runs needs
    none of it, and it starts a runner and several consumers that each import mlflow, most of the UI's start."""
    stores = dict.fromkeys(("MLFLOW_BACKEND_STORE_URI", "MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", BACKEND_STORE_ENV,
                            REGISTRY_STORE_ENV), tracking_uri)
    chosen = {name: base.get(name, default) for name, default in USER_SETTINGS.items()}
    return {**base, **SERVER_SETTINGS, **stores, **chosen, "_MLFLOW_SERVER_BOOT_ID": uuid.uuid4().hex,
            "MLFLOW_DISABLE_TELEMETRY": base.get("MLFLOW_DISABLE_TELEMETRY", "true"),
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": base.get("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")}


def mlflow_package() -> Path:
    """Where mlflow is installed, found without importing it (seconds)."""
    spec = importlib.util.find_spec("mlflow")
    if spec is None or not spec.submodule_search_locations:
        raise UiError("mlflow is not installed in this environment: pip install mlflow")
    return Path(next(iter(spec.submodule_search_locations)))


class UiServer:
    """A running `mlflow ui`: its own process group, so a stop ends uvicorn and its workers too."""

    def __init__(self, process: subprocess.Popen[bytes], url: str, log: Path) -> None:
        self.process, self.url, self.log = process, url, log

    def wait(self) -> None:
        """Until the server exits (an error) or Ctrl-C / SIGTERM arrives (a clean stop, no error)."""
        try:
            while (code := self.process.poll()) is None:
                # never one blocking wait: a Ctrl-C the kernel hands to another thread of this process (a
                # library's) only runs its handler once the main thread is back in the interpreter
                time.sleep(WAKE_SECONDS)
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
    try:
        environment = ui_environment(target.tracking_uri, os.environ)
        process = subprocess.Popen(ui_command(host, port, environment), stdin=subprocess.DEVNULL, stdout=log_fd,
                                   stderr=subprocess.STDOUT, env=environment,
                                   start_new_session=True)
    finally:
        os.close(log_fd)
    base = f"http://{_reachable(host)}:{port}"
    server = UiServer(process, target.url(base), log)
    try:
        _wait_until_ready(server, f"{base}/health", ready_seconds)
        server.url = share_view(target, base)
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
