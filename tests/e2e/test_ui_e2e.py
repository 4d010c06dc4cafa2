"""End to end: `sweep ui` after a small sweep, checked through MLflow's REST API and a headless Chromium.

The tests share one UI server and run in file order: the last one stops it with Ctrl-C.
"""

from __future__ import annotations

import ctypes
import json
import os
import platform
import re
import shutil
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support import e2e, inprocess
from tests.support.stores import copy_mlflow_db

pytestmark = pytest.mark.slow

NAME = "ui-sweep"
TRIALS = 4
SCREENSHOT = Path(__file__).resolve().parents[1] / "artifacts" / "ui-experiment.png"  # gitignored
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--virtual-time-budget=15000"]


@dataclass
class Ui:
    folder: Path
    process: subprocess.Popen[str]
    url: str  # what `sweep ui` printed: the sweep's runs table
    port: int

    def api(self, path: str, body: dict[str, object]) -> dict[str, object]:
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}/api/2.0/mlflow/{path}",
                                         data=json.dumps(body).encode(), method="POST",
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def get(self, path: str, **query: str) -> dict[str, object]:
        url = f"http://127.0.0.1:{self.port}/api/2.0/mlflow/{path}?{urllib.parse.urlencode(query)}"
        with urllib.request.urlopen(url, timeout=30) as response:
            return json.loads(response.read())


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory, mlflow_template: Path) -> Iterator[Ui]:
    folder = tmp_path_factory.mktemp("ui")
    copy_mlflow_db(mlflow_template, folder)
    e2e.write_config(folder, f"trials: {TRIALS}\npruner: {{name: none}}\n" + e2e.FAST_SPACE)
    swept = inprocess.sweep(folder, "run", "--config", "sweep.yaml", "--name", NAME)  # not the subject: in-process
    assert swept.returncode == 0, swept.stderr
    port = e2e.free_port()
    process = e2e.start_sweep(folder, "ui", "--port", str(port))
    try:
        assert process.stdout is not None
        assert process.stdout.readline() == "starting the MLflow UI...\n"  # at once
        line = process.stdout.readline()  # printed once the server answers
        assert line.startswith("MLflow UI: http://127.0.0.1:"), line + (process.stderr.read() if process.stderr
                                                                         else "")
        yield Ui(folder, process, line.split()[2], port)
    finally:
        if process.poll() is None:
            process.terminate()  # the stop test did not run: SIGTERM stops it like Ctrl-C
            process.communicate(timeout=60)


def test_ui_prints_the_url_of_the_sweeps_shared_view(ui: Ui):
    experiment_id = e2e.study(ui.folder, NAME).user_attrs["sweep.experiment_id"]
    runs = f"http://127.0.0.1:{ui.port}/#/experiments/{experiment_id}/runs?viewStateShareKey="
    assert ui.url.startswith(runs)
    key = ui.url[len(runs):]
    experiment = ui.get("experiments/get", experiment_id=experiment_id)["experiment"]
    assert isinstance(experiment, dict)
    tags = {tag["key"]: tag["value"] for tag in experiment["tags"]}
    state = json.loads(tags[f"mlflow.sharedViewState.{key}"])
    assert state["searchFilter"] == f"tags.`sweep.name` = '{NAME}'"
    assert (state["orderByKey"], state["orderByAsc"]) == ("metrics.`val_accuracy`", False)
    assert sorted(state["selectedColumns"]) == ["metrics.`val_accuracy`", "params.`epochs`", "params.`lr`",
                                                "params.`vocab_size`"]


def test_ui_listens_on_loopback_only(ui: Ui):
    listening = [line.split() for line in Path("/proc/net/tcp").read_text().splitlines()[1:]
                 if line.split()[3] == "0A"]  # state LISTEN
    addresses = {local for _, local, *_ in listening if int(local.split(":")[1], 16) == ui.port}
    assert addresses == {"0100007F:" + f"{ui.port:04X}"}, addresses  # 127.0.0.1, little-endian


def test_rest_api_shows_the_parent_and_its_linked_children(ui: Ui):
    experiment_id = e2e.study(ui.folder, NAME).user_attrs["sweep.experiment_id"]
    found = ui.api("runs/search", {"experiment_ids": [experiment_id], "max_results": 100})
    runs = found["runs"]
    assert isinstance(runs, list)
    tags = [{tag["key"]: tag["value"] for tag in run["data"].get("tags", [])} for run in runs]
    parents = [(run, tag) for run, tag in zip(runs, tags) if tag.get("sweep.role") == "parent"]
    assert len(parents) == 1
    parent, _ = parents[0]
    assert parent["info"]["run_name"] == NAME and parent["info"]["status"] == "FINISHED"
    children = [tag for tag in tags if "sweep.trial" in tag]
    assert sorted(int(tag["sweep.trial"]) for tag in children) == list(range(TRIALS))
    assert {tag["mlflow.parentRunId"] for tag in children} == {parent["info"]["run_id"]}


def test_browser_shows_the_sweeps_runs_best_first_with_params_and_objective(ui: Ui):
    if CHROMIUM is None:
        if os.environ.get("SWEEP_REQUIRE_BROWSER"):  # .ci/run installs Chromium and sets this
            pytest.fail("Chromium is missing but SWEEP_REQUIRE_BROWSER is set; install it: apt-get install chromium")
        pytest.skip("Chromium is not installed (apt-get install chromium; .ci/run installs it)")
    with tempfile.TemporaryDirectory(prefix="sweep-chromium-") as profile:
        dom = subprocess.run([CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--window-size=1400,900",
                              "--dump-dom", ui.url],
                             capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert NAME in dom.stdout, "the runs table does not show the parent run's name"
    for column in ("params.`epochs`", "params.`lr`", "params.`vocab_size`", "metrics.`val_accuracy`"):
        assert f'col-id="{column}"' in dom.stdout, f"the runs table has no column {column}"
    rows = re.findall(r">trial-(\d+)<", dom.stdout)
    best = json.loads(inprocess.sweep(ui.folder, "best", "--name", NAME, "--format", "json").stdout)
    assert rows and int(rows[0]) == best["trial"], f"`sweep best`'s trial {best['trial']} is not first: {rows}"
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    SCREENSHOT.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="sweep-chromium-") as profile:
        shot = subprocess.run([CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--window-size=1400,900",
                               f"--screenshot={SCREENSHOT}", ui.url], capture_output=True, text=True, timeout=120)
    assert shot.returncode == 0, shot.stderr[-2000:]
    assert e2e.png_size(SCREENSHOT.read_bytes()) == (1400, 900)
    print(f"screenshot: {SCREENSHOT}")


def test_browser_shows_a_plot_of_the_parent_run_as_an_image(ui: Ui):
    if CHROMIUM is None:
        if os.environ.get("SWEEP_REQUIRE_BROWSER"):
            pytest.fail("Chromium is missing but SWEEP_REQUIRE_BROWSER is set; install it: apt-get install chromium")
        pytest.skip("Chromium is not installed (apt-get install chromium; .ci/run installs it)")
    study = e2e.study(ui.folder, NAME)
    experiment_id, parent = study.user_attrs["sweep.experiment_id"], study.user_attrs["sweep.parent_run_id"]
    page = (f"http://127.0.0.1:{ui.port}/#/experiments/{experiment_id}/runs/{parent}/artifacts/plots/"
            "optimization_history.svg")
    with tempfile.TemporaryDirectory(prefix="sweep-chromium-") as profile:
        dom = subprocess.run([CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--window-size=1400,900",
                              "--dump-dom", page], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    # MLflow's artifact viewer fetches the file and shows it in an <img> (an SVG it would not show as an image
    # would be a text view or a download link)
    assert re.search(r'<img alt="plots/optimization_history\.svg" src="blob:', dom.stdout), dom.stdout[-3000:]


TGKILL = {"x86_64": 234, "aarch64": 131}  # the syscall's number: Python has no tgkill of its own


def takes_sigint(pid: int, tid: int) -> bool:
    """Whether the thread does not block SIGINT: the kernel hands a process's signal only to such a thread."""
    status = Path(f"/proc/{pid}/task/{tid}/status").read_text()
    blocked = int(next(line.split()[1] for line in status.splitlines() if line.startswith("SigBlk:")), 16)
    return not blocked & (1 << (e2e.SIGINT - 1))


def interrupt_a_side_thread(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    """SIGINT as the kernel may deliver a terminal's Ctrl-C: to a thread of the process other than the main
    one (when it has one), where it cannot interrupt what the main thread is blocked in."""
    threads = sorted(int(tid) for tid in os.listdir(f"/proc/{process.pid}/task"))
    side = [tid for tid in threads if tid != process.pid and takes_sigint(process.pid, tid)]
    machine = platform.machine()
    if not side or machine not in TGKILL:
        return e2e.interrupt(process, e2e.SIGINT)
    libc = ctypes.CDLL(None, use_errno=True)
    assert libc.syscall(TGKILL[machine], process.pid, side[0], e2e.SIGINT) == 0, os.strerror(ctypes.get_errno())
    out, err = process.communicate(timeout=120)
    return process.returncode, out, err


def test_ctrl_c_stops_the_ui_and_its_server_cleanly(ui: Ui):
    assert ui.process.poll() is None, "the UI server stopped before the test"
    started = time.monotonic()
    code, _, err = interrupt_a_side_thread(ui.process)
    assert code == 0, err
    assert err == ""
    assert time.monotonic() - started < 30
    with pytest.raises(OSError):  # nothing is left listening: uvicorn went with its parent
        urllib.request.urlopen(f"http://127.0.0.1:{ui.port}/health", timeout=5)
