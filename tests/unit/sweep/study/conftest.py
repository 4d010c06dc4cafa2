"""Real Optuna storages on tmp_path for the study layer's unit tests (no MLflow anywhere)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import optuna
from optuna.trial import TrialState

from sweep.config import SweepConfig
from sweep.locations import StorageLocation
from sweep.space import FloatRange
from sweep.study.attrs import SweepAttrs, TrialAttrs
from sweep.study.proxy import storage_server
from sweep.study.storage import open_storage
from tests.support.e2e import free_port


def sweep_config(**changes: object) -> SweepConfig:
    return SweepConfig(space={"lr": FloatRange(0.1, 1.0)}).replace(**changes)


def new_sweep(location: StorageLocation, name: str = "demo", *, config: SweepConfig | None = None,
              status: str = "running", created: str = "2026-01-01T00:00:00") -> optuna.Study:
    """A study set up as `sweep run` leaves it: its config and target stored."""
    config = (config or sweep_config(trials=4)).replace(name=name)
    study = optuna.create_study(study_name=name, storage=open_storage(location), direction=config.direction)
    SweepAttrs(config=config.to_yaml(), parent_run_id="parent-1", experiment="exp", metric=config.metric,
               direction=config.direction, target=config.trials, status=status, created=created,
               tracking_uri="sqlite:///mlflow.db", tracking_uri_has_secret=False).write(study)
    return study


def add_trial(study: optuna.Study, state: TrialState, value: float | None = None, *, lr: float = 0.5,
              metrics: dict[str, float] | None = None, worker: str | None = None) -> optuna.trial.FrozenTrial:
    """One trial in ``state``, with the attributes the loop writes."""
    trial = study.ask()
    trial.suggest_float("lr", 0.1, 1.0)  # a parameter, so trials look like the loop's
    TrialAttrs(run_id=f"run-{trial.number}", metrics=metrics or {}, worker=worker).write(trial)
    if state != TrialState.RUNNING:
        study.tell(trial, value if state == TrialState.COMPLETE else None, state=state)
    return study.get_trials(deepcopy=False)[trial.number]


@contextmanager
def served_journal(path: Path) -> Iterator[StorageLocation]:
    """A storage proxy with its trial gate in this process, serving a journal file at ``path``: its grpc:// location."""
    port = free_port()
    server = storage_server(open_storage(StorageLocation.parse(str(path))), "127.0.0.1", port, 8)
    server.start()
    try:
        yield StorageLocation.parse(f"grpc://127.0.0.1:{port}")
    finally:
        server.stop(None).wait()
