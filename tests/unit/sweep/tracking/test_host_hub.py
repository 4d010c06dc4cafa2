"""Two `sweep worker`s started by hand on one machine for one sweep share one tracking process: the first starts
it (in a session of its own), the second finds it; neither imports MLflow nor starts a tracking process of its
own; every trial gets its child run; the hub ends by itself once both have ended."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sweep.engine.composition import worker_transport
from sweep.locations import StorageLocation
from sweep.tracking.host_hub import HubPlace, hub_place, private_home
from sweep.tracking.hub import HUB_ENV, HUB_KEY_ENV, HubAddress, HubTransport
from tests.support import e2e, inprocess
from tests.unit.sweep.executors.test_jobs_sweeps import assert_consistent

pytestmark = pytest.mark.slow  # a sweep, two worker processes and the hub process

WORKER_TRAINER = '''
import contextlib
import json
import os
import sys
import time
from pathlib import Path


def fit(trial):
    lr = trial.suggest_float("lr", 0.1, 3.0, log=True)
    met = Path("met")
    (met / str(os.getpid())).touch()
    deadline = time.monotonic() + 300  # both workers are in a trial at once: both have joined the hub by then
    while len(list(met.iterdir())) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    children = []
    for task in os.listdir("/proc/self/task"):  # a thread or a child may end while it is looked at: skipped
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            for pid in Path(f"/proc/self/task/{task}/children").read_text().split():
                with contextlib.suppress(FileNotFoundError, ProcessLookupError):
                    children.append(Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\\0", b" ").decode())
    hubs = sorted(path.name for path in Path(os.environ.get("SWEEP_HUBS", "none")).glob("*.sock"))
    Path("seen", str(trial.number)).write_text(json.dumps(
        {"pid": os.getpid(), "mlflow": "mlflow" in sys.modules, "children": children, "hubs": hubs}))
    return {"val_accuracy": 1 - 1 / (1 + lr)}
'''


@pytest.fixture
def runtime(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A runtime folder of the test's own, with a short path: a socket's path must fit in 108 bytes."""
    folder = Path(tempfile.mkdtemp(prefix="hubs-", dir="/tmp"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(folder))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def wait_until_gone(place: HubPlace, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while place.socket.exists() or place.key.exists() or place.lock.exists():
        assert time.monotonic() < deadline, "the hub did not end after its workers"
        time.sleep(0.1)  # polling its files: the hub is no child of this test to wait for


@pytest.mark.usefixtures("mlflow_db")
def test_two_workers_on_one_machine_share_one_tracking_process_that_ends_after_them(
        tmp_path: Path, runtime: Path, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / "train.py").write_text(WORKER_TRAINER, encoding="utf-8")
    (tmp_path / "met").mkdir()
    (tmp_path / "seen").mkdir()
    e2e.write_config(tmp_path, "trainer: {function: train.py:fit}\nexperiment: sentiment\npruner: {name: none}\n"
                               "objective: {metric: val_accuracy, direction: maximize}\ntrials: 1\n")
    (tmp_path / "met" / "0").touch()  # the sweep's own first trial runs alone
    started = inprocess.sweep(tmp_path, "run", "--config", "sweep.yaml", "--name", "shared")
    assert started.returncode == 0, started.stderr
    for arrival in (tmp_path / "met").iterdir():  # the workers' trials wait for each other from here
        arrival.unlink()
    home = private_home()
    assert home is not None
    environment = {**e2e.env(), "SWEEP_HUBS": str(home)}
    # three trials: the sweep's own, then one for each worker (the first worker's trial waits for the second's)
    workers = [subprocess.Popen([*e2e.SWEEP, "worker", "shared", "--trials", "3", "--quiet"], cwd=tmp_path,
                                env=environment, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for worker in workers:
        _, err = worker.communicate(timeout=600)
        assert worker.returncode == 0, err
    seen = [json.loads(path.read_text()) for path in (tmp_path / "seen").iterdir() if path.name != "0"]
    assert len({trial["pid"] for trial in seen}) == 2
    # no tracking process of their own: the first to join started the hub (its child until it ends)
    assert not [trial for trial in seen if trial["mlflow"]], seen
    assert not [child for trial in seen for child in trial["children"] if "sweep.tracking.host_hub" not in child], seen
    assert len({child for trial in seen for child in trial["children"]}) == 1, seen
    assert len({name for trial in seen for name in trial["hubs"]}) == 1, seen  # one hub for both
    assert_consistent(e2e.mlflow_client(tmp_path), e2e.study(tmp_path, "shared"), 3)
    with monkeypatch.context() as inside:
        inside.chdir(tmp_path)
        place = hub_place(StorageLocation.parse(None).secret_url, "shared")
    assert place is not None
    wait_until_gone(place)
    assert list(home.iterdir()) == []  # the hub that ended left no file behind


def test_a_worker_takes_the_jobs_hub_out_of_its_environment_and_joins_the_machines_when_it_does_not_answer(
        tmp_path: Path, runtime: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    for name, value in HubAddress.new().environment().items():  # nobody listens there
        monkeypatch.setenv(name, value)
    transport = worker_transport("gone", StorageLocation.parse(None), True)
    assert HUB_ENV not in os.environ and HUB_KEY_ENV not in os.environ, "the trainer's processes must not see the key"
    assert isinstance(transport, HubTransport)  # the machine's hub for this sweep, started for it
    transport.start()
    transport.kill()  # no session: the hub ends by itself
    place = hub_place(StorageLocation.parse(None).secret_url, "gone")
    assert place is not None
    wait_until_gone(place)
    assert HubAddress.taken_from({HUB_ENV: "x", HUB_KEY_ENV: "not hex"}) is None
    # a worker a Ray task started tracks on its own (not the default ProcessTransport started here: a fresh one)
    assert not isinstance(worker_transport("gone", StorageLocation.parse(None), False), HubTransport)


def test_a_socket_path_too_long_for_linux_shares_no_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / ("deep" * 30)))
    (tmp_path / ("deep" * 30)).mkdir()
    assert private_home() is not None and hub_place("sweep.journal", "any") is None


def test_no_hub_is_shared_from_a_folder_others_can_enter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    (tmp_path / f"sweep-hubs-{os.getuid()}").mkdir(mode=0o755)
    os.chmod(tmp_path / f"sweep-hubs-{os.getuid()}", 0o755)  # whatever the umask
    assert private_home() is None and hub_place("sweep.journal", "any") is None
