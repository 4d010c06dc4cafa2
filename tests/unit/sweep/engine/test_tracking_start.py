"""A new sweep's first trials run while its tracking server is still starting: they keep their child runs, MLflow
refusing the start leaves nothing behind, and a trial whose code needs its run waits for it. In-process on real
stores; the tracking server is held back until the trials say so, so that "before MLflow answered" is certain."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import optuna
import pytest

from sweep.config import SweepConfig, load_config
from sweep.engine import run_sweep
from sweep.engine.composition import make_trainer
from sweep.engine.parts import Parts
from sweep.errors import TrackingError
from sweep.executors import open_executor
from sweep.locations import StorageLocation, TrackingLocation
from sweep.study.attrs import SweepAttrs, TrialAttrs
from sweep.study.storage import open_storage
from sweep.tracking.protocol import Reply, Request
from sweep.tracking.transport import ThreadTransport
from sweep.trainers.base import Trainer, TrialOutcome
from tests.support import e2e, inprocess

pytestmark = pytest.mark.slow  # whole sweeps on real stores (in-process)


class HeldTransport(ThreadTransport):
    """The tracking server on a thread, sent nothing until ``release`` is set: as a tracking process still
    importing MLflow."""

    def __init__(self, release: threading.Event) -> None:
        super().__init__()
        self.release = release
        self.held: list[Request[Any]] = []
        self.lock = threading.Lock()

    def put(self, request: Request[Any]) -> None:
        with self.lock:
            if not self.release.is_set():
                self.held.append(request)
                return
            for earlier in self.held:
                super().put(earlier)
            self.held.clear()
        super().put(request)

    def get(self, timeout: float) -> Reply:
        if self.release.is_set():
            self.put_held()
        return super().get(timeout)

    def put_held(self) -> None:
        with self.lock:
            for earlier in self.held:
                super().put(earlier)
            self.held.clear()


class CountingTrainer:
    """The config's trainer; the tracking server is let go when ``after`` trials have started (0: at the first)."""

    def __init__(self, inner: Trainer, release: threading.Event, after: int) -> None:
        self.inner, self.release, self.after = inner, release, after
        self.started = 0

    def run(self, trial: Any) -> TrialOutcome:
        if self.started == self.after:
            self.release.set()
        self.started += 1
        return self.inner.run(trial)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def held_parts(after: int) -> tuple[Parts, threading.Event]:
    release = threading.Event()

    def trainer(config: SweepConfig, tracking: TrackingLocation) -> Trainer:
        return CountingTrainer(make_trainer(config, tracking), release, after)  # type: ignore[return-value]

    return Parts(transport=lambda: HeldTransport(release), trainer=trainer, executor=open_executor), release


def config_in(folder: Path, body: str = "", tracking_uri: str | None = None) -> SweepConfig:
    e2e.write_config(folder, "trials: 6\npruner: {name: none}\n" + body + e2e.FAST_SPACE)
    return load_config(folder / "sweep.yaml", {"tracking_uri": tracking_uri or f"sqlite:///{folder / 'mlflow.db'}",
                                               "storage": str(folder / "sweep.journal"), "name": "early"})


def study_of(folder: Path) -> optuna.Study:
    return optuna.load_study(study_name="early", storage=open_storage(StorageLocation.parse(
        str(folder / "sweep.journal")), read_only=True))


@pytest.mark.usefixtures("mlflow_db")
def test_trials_told_before_mlflow_answered_keep_their_child_runs(tmp_path: Path):
    parts, _ = held_parts(after=3)
    listener = inprocess.RecordingListener()
    with inprocess.working_in(tmp_path):
        summary = run_sweep(config_in(tmp_path), resume=False, listener=listener, parts=parts)
    assert summary.counts.complete == 6
    assert listener.started[0].parent_run_id is None, "the trials started before the parent run existed"
    study = study_of(tmp_path)
    attrs = SweepAttrs.read(study)
    assert (attrs.parent_run_id, attrs.status) == (summary.parent_run_id, "finished")
    told_without = [t.number for t in study.trials if TrialAttrs.read(t).run_id is None]
    assert told_without[:3] == [0, 1, 2], "the first three were told before the tracking server had a request"
    client = e2e.mlflow_client(tmp_path)
    assert attrs.experiment_id == client.get_experiment_by_name("sentiment").experiment_id
    run_ids = {trial.number: attrs.run_id_of(trial.number, TrialAttrs.read(trial).run_id) for trial in study.trials}
    for trial in study.trials:
        run = client.get_run(run_ids[trial.number])
        assert run.data.tags["sweep.trial"] == str(trial.number)
        assert run.data.tags["mlflow.parentRunId"] == summary.parent_run_id
        assert run.info.status == "FINISHED" and run.data.metrics["val_accuracy"] == trial.value
    children = client.search_runs([attrs.experiment_id], "tags.mlflow.parentRunId != ''")
    assert len(children) == 6, "one run per trial"
    assert summary.best is not None
    assert client.get_run(summary.parent_run_id).data.tags["best.run_id"] == run_ids[summary.best.number]


def test_mlflow_refusing_the_start_after_trials_ran_leaves_no_store(tmp_path: Path):
    parts, _ = held_parts(after=2)
    config = config_in(tmp_path, tracking_uri="sqlite:////proc/sweep-test/mlflow.db")
    with inprocess.working_in(tmp_path), pytest.raises(TrackingError, match="cannot open the MLflow database"):
        run_sweep(config, resume=False, listener=inprocess.RecordingListener(), parts=parts)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["sweep.yaml"], "no journal, no gate, no runs"


FIT = '''
import json


def fit(trial):
    x = trial.suggest_float("x", 0.0, 1.0)
    with open(f"seen-{trial.number}.json", "w") as seen:
        json.dump([trial.run_id, trial.experiment_id], seen)
    return x
'''


@pytest.mark.usefixtures("mlflow_db")
def test_a_trial_whose_code_asks_for_its_run_waits_for_mlflow(tmp_path: Path):
    (tmp_path / "train.py").write_text(FIT, encoding="utf-8")
    parts, _ = held_parts(after=0)
    config = config_in(tmp_path, "trainer: {function: train.py:fit}\nobjective: {direction: maximize}\n")
    with inprocess.working_in(tmp_path):
        run_sweep(config, resume=False, listener=inprocess.RecordingListener(), parts=parts)
    study = study_of(tmp_path)
    client = e2e.mlflow_client(tmp_path)
    for trial in study.trials:
        run_id, seen_experiment = json.loads((tmp_path / f"seen-{trial.number}.json").read_text())
        assert TrialAttrs.read(trial).run_id == run_id, "told with the run id its code was given"
        run = client.get_run(run_id)
        assert run.data.tags["sweep.trial"] == str(trial.number)
        assert seen_experiment == run.info.experiment_id == SweepAttrs.read(study).experiment_id
