"""A sweep that returns before its publishing (`sweep run` without --wait), driven in-process on real stores: with
the real tracking process, a background publisher that outlives the sweep writes the plots, the model and the
parent's end, holding its lock; killed, `sweep sync` completes its work; what writes the same parent waits for
it. With the tracking server on a thread, the same end is written before the sweep returns."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from sweep.config import load_config
from sweep.engine import composition, run_sweep, sync_sweep
from sweep.locations import StorageLocation
from sweep.publisher_lock import holder, lock_path, wait_until_free
from sweep.study import configure_optuna
from sweep.study.attrs import SweepAttrs
from tests.support import e2e, inprocess

pytestmark = pytest.mark.slow  # whole sweeps with a tracking process of their own

PLOTS = {"plots/optimization_history.svg", "plots/param_importances.svg", "plots/parallel_coordinate.svg",
         "plots/slice.svg", "plots/NOTES.txt"}
HOLDER = """
import sys
from pathlib import Path
from sweep.publisher_lock import hold, name_holder
descriptor = hold(Path(sys.argv[1]))
name_holder(descriptor, 4242)
print("held", flush=True)
sys.stdin.readline()
"""


def write_sweep(folder: Path, trials: int) -> None:
    e2e.write_config(folder, f"trials: {trials}\npruner: {{name: none}}\n" + e2e.FAST_SPACE)


def run(folder: Path, *, parts=None, resume: bool = False, listener=None, **overrides):
    config = load_config(folder / "sweep.yaml", {"tracking_uri": f"sqlite:///{folder / 'mlflow.db'}",
                                                 "storage": str(folder / "sweep.journal"), "name": "bg", **overrides})
    configure_optuna()
    with inprocess.working_in(folder):
        return run_sweep(config, resume=resume, listener=listener or inprocess.RecordingListener(),
                         flags=frozenset(["name", *overrides]), parts=parts or composition.default_parts(),
                         publish_later=True)


def lock_of(folder: Path) -> Path:
    return lock_path(StorageLocation.parse(str(folder / "sweep.journal")), "bg")


def plots_of(folder: Path, run_id: str) -> set[str]:
    return {entry.path for entry in e2e.mlflow_client(folder).list_artifacts(run_id, "plots")}


def study_status(folder: Path) -> str | None:
    return SweepAttrs.read(e2e.study(folder, "bg")).status


def test_a_background_publisher_outlives_the_sweep_and_writes_its_end(tmp_path: Path):
    write_sweep(tmp_path, 4)
    summary = run(tmp_path)
    assert summary.publisher is not None and summary.publisher != os.getpid()
    with pytest.raises(ChildProcessError):  # not this process's child: nothing of it to wait for or reap
        os.waitpid(summary.publisher, os.WNOHANG)
    assert study_status(tmp_path) == "finished"  # the study is final when the sweep returns
    wait_until_free(lock_of(tmp_path))
    assert holder(lock_of(tmp_path)) is None and not lock_of(tmp_path).exists()  # released, its file removed
    assert not list(tmp_path.glob("mlflow.db-*"))  # its databases closed: no write-ahead log left behind
    parent, children = e2e.runs(tmp_path)
    assert parent.info.status == "FINISHED" and len(children) == 4
    assert plots_of(tmp_path, parent.info.run_id) >= PLOTS
    assert parent.data.tags["best.trial"] == str(summary.best.number)
    assert parent.data.tags["best.model_uri"] == f"runs:/{parent.info.run_id}/bg-best"
    # the model it published is remembered in the study, for `sweep best`
    assert SweepAttrs.read(e2e.study(tmp_path, "bg")).model_uri == f"runs:/{parent.info.run_id}/bg-best"


def test_a_killed_publisher_lets_go_of_its_lock_and_sync_completes_the_end(tmp_path: Path):
    write_sweep(tmp_path, 3)
    summary = run(tmp_path)
    assert summary.publisher is not None
    os.kill(summary.publisher, signal.SIGKILL)
    wait_until_free(lock_of(tmp_path))  # the kernel lets go of a dead process's lock
    assert study_status(tmp_path) == "finished"
    synced = sync_sweep("bg", storage_url=str(tmp_path / "sweep.journal"),
                        tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}", parts=inprocess.in_process_parts())
    assert synced.problems == []
    parent, _ = e2e.runs(tmp_path)
    assert parent.info.status == "FINISHED"
    assert plots_of(tmp_path, parent.info.run_id) >= PLOTS
    assert parent.data.tags["best.model_uri"] == f"runs:/{parent.info.run_id}/bg-best"


def test_with_the_tracking_server_on_a_thread_the_end_is_written_before_the_sweep_returns(tmp_path: Path):
    write_sweep(tmp_path, 3)
    summary = run(tmp_path, parts=inprocess.in_process_parts())
    assert summary.publisher is None
    assert set(summary.tracking.plots) == {name.removeprefix("plots/") for name in PLOTS} - {"NOTES.txt"}
    assert summary.tracking.model.uri is not None and summary.tracking.model.trial == summary.best.number
    parent, _ = e2e.runs(tmp_path)
    assert parent.info.status == "FINISHED" and plots_of(tmp_path, parent.info.run_id) >= PLOTS
    assert SweepAttrs.read(e2e.study(tmp_path, "bg")).model_uri == summary.tracking.model.uri


@pytest.fixture
def held_lock():
    """Hold a lock as a publisher would, until the returned release() is called."""
    processes: list[subprocess.Popen[str]] = []

    def hold_it(path: Path) -> subprocess.Popen[str]:
        process = subprocess.Popen([sys.executable, "-c", HOLDER, str(path)], stdin=subprocess.PIPE,
                                   stdout=subprocess.PIPE, text=True)
        processes.append(process)
        assert process.stdout is not None and process.stdout.readline() == "held\n"
        return process

    yield hold_it
    for process in processes:
        process.kill()
        process.wait()


class WaitingListener(inprocess.RecordingListener):
    """Says when the engine starts waiting for a publisher."""

    def __init__(self) -> None:
        super().__init__()
        self.told = threading.Event()

    def waiting_for_publisher(self, pid: int) -> None:
        super().waiting_for_publisher(pid)
        self.told.set()


def waits_for_the_publisher(command, publisher: subprocess.Popen[str]) -> None:
    """``command(listener)`` waits while ``publisher`` holds the lock, names it, and goes on once it ends."""
    listener = WaitingListener()
    outcome: list[object] = []
    waiter = threading.Thread(target=lambda: outcome.append(command(listener)))
    waiter.start()
    assert listener.told.wait(timeout=120)
    assert waiter.is_alive() and not outcome  # waiting, nothing written
    assert listener.publishers_waited_for == [4242]
    assert publisher.stdin is not None
    publisher.stdin.close()  # the publisher ends
    waiter.join(timeout=300)
    assert not waiter.is_alive() and outcome


def test_a_resume_and_a_sync_wait_for_the_sweeps_publisher(tmp_path: Path, held_lock):
    write_sweep(tmp_path, 2)
    run(tmp_path, parts=inprocess.in_process_parts())
    waits_for_the_publisher(lambda listener: run(tmp_path, parts=inprocess.in_process_parts(), resume=True, trials=3,
                                                 listener=listener), held_lock(lock_of(tmp_path)))
    waits_for_the_publisher(lambda listener: sync_sweep("bg", storage_url=str(tmp_path / "sweep.journal"),
                                                        tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}",
                                                        parts=inprocess.in_process_parts(),
                                                        on_wait=listener.waiting_for_publisher),
                            held_lock(lock_of(tmp_path)))
    parent, children = e2e.runs(tmp_path)
    assert len(children) == 3 and parent.info.status == "FINISHED"


def test_sweep_run_wait_returns_with_the_end_written_and_without_it_names_its_publisher(tmp_path: Path):
    # e2e.env(): no CI variable, so `sweep run` publishes later by default, as in a terminal
    write_sweep(tmp_path, 2)
    waited = subprocess.run([*e2e.SWEEP, "run", "--config", "sweep.yaml", "--name", "bg", "--wait"], cwd=tmp_path,
                            env=e2e.env(), capture_output=True, text=True, timeout=300)
    assert waited.returncode == 0, waited.stderr
    assert "in the background" not in waited.stdout and "plots:          4 under plots/" in waited.stdout
    assert holder(lock_of(tmp_path)) is None
    parent, _ = e2e.runs(tmp_path)  # read at once: nothing was left to write
    assert parent.info.status == "FINISHED" and plots_of(tmp_path, parent.info.run_id) >= PLOTS

    extended = subprocess.run([*e2e.SWEEP, "run", "--resume", "--name", "bg", "--trials", "3"], cwd=tmp_path,
                              env=e2e.env(), capture_output=True, text=True, timeout=300)
    assert extended.returncode == 0, extended.stderr
    [line] = [line for line in extended.stdout.splitlines() if line.startswith("plots, model:")]
    assert "in the background (pid " in line and "sweep sync bg" in line
    wait_until_free(lock_of(tmp_path))
    parent, children = e2e.runs(tmp_path)
    assert parent.info.status == "FINISHED" and len(children) == 3


def test_a_sweep_run_in_a_batch_or_ci_job_waits_for_its_end(tmp_path: Path):
    # the job's end would kill a background publisher: the default there is --wait
    write_sweep(tmp_path, 2)
    in_ci = subprocess.run([*e2e.SWEEP, "run", "--config", "sweep.yaml", "--name", "bg"], cwd=tmp_path,
                           env={**e2e.env(), "SLURM_JOB_ID": "1234"}, capture_output=True, text=True, timeout=300)
    assert in_ci.returncode == 0, in_ci.stderr
    assert "in the background" not in in_ci.stdout and "plots:          4 under plots/" in in_ci.stdout
    parent, _ = e2e.runs(tmp_path)
    assert parent.info.status == "FINISHED"


def test_a_pipe_reading_sweep_run_ends_with_it_not_with_its_publisher(tmp_path: Path):
    # `sweep run | tee log`: nothing the sweep leaves running (its publisher, multiprocessing's resource tracker,
    # which lives as long as the publisher) may hold the pipe
    write_sweep(tmp_path, 2)
    process = subprocess.Popen([*e2e.SWEEP, "run", "--config", "sweep.yaml", "--name", "bg"], cwd=tmp_path,
                               env=e2e.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout is not None
    lines = []
    for line in process.stdout:
        lines.append(line)
        if line.startswith("plots, model:"):
            break
    else:
        pytest.fail(f"no publisher line: {''.join(lines)}{process.communicate()[1]}")
    publisher = int(line.split("(pid ")[1].split(")")[0])
    try:
        os.kill(publisher, signal.SIGSTOP)  # held still until the pipe has ended
    except ProcessLookupError:
        pytest.skip("the publisher had already ended: nothing could hold the pipe")
    try:
        _, errors = process.communicate(timeout=120)  # end of file, though the publisher has not ended
        assert process.returncode == 0, errors
        assert holder(lock_of(tmp_path)) == publisher
    finally:
        os.kill(publisher, signal.SIGCONT)
    wait_until_free(lock_of(tmp_path))
    parent, _ = e2e.runs(tmp_path)
    assert parent.info.status == "FINISHED" and plots_of(tmp_path, parent.info.run_id) >= PLOTS
