"""The composition root: the one place that knows every concrete part (trainers, the tracking process,
executors) and puts them together for the engine; `sweep` runs with default_parts()."""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path

from sweep.config import SweepConfig
from sweep.engine.parts import Parts
from sweep.executors import open_executor
from sweep.locations import StorageLocation, TrackingLocation
from sweep.records import ModelPublishing
from sweep.tracking.active_run import ActiveChildRuns, StrayRunWatch
from sweep.tracking.host_hub import hub_place, join_hub
from sweep.tracking.hub import HubAddress, HubTransport
from sweep.tracking.run_metrics import final_metric
from sweep.tracking.transport import ProcessTransport, TrackingTransport
from sweep.trainers.base import Trainer
from sweep.trainers.command import CommandTrainer, check_command
from sweep.trainers.function import FunctionTrainer, load_constraints_function, load_function
from sweep.trainers.sentiment import SentimentTrainer, data_fingerprint, load_split


def make_trainer(config: SweepConfig, tracking: TrackingLocation, workdirs: Path | None = None) -> Trainer:
    """The built-in trainer with its data loaded and split, the user's function imported, or the user's
    command checked (its program, and ``workdirs`` where its trials' folders go); a bad data file, a function
    that cannot be imported or a command that cannot run fails here, in one line (so does a constraints function)."""
    if config.constraints.function is not None:
        load_constraints_function(config.constraints.function)
    more = tuple(objective.metric for objective in config.more_objectives)
    if config.trainer.builtin:
        data = load_split(config.data, text_column=config.text_column, label_column=config.label_column,
                          fixed=config.fixed)
        return SentimentTrainer(data, config.metric, prunes=config.pruner != "none",
                                data_fingerprint=data_fingerprint(data), more_objectives=more)
    if config.trainer.command is not None:
        check_command(config.trainer.command, workdirs or Path.cwd() / "sweeps")
        uri = tracking.absolute_uri()
        run_metric = partial(final_metric, uri) if config.source == "mlflow" else None
        return CommandTrainer(config.trainer.command, config.metric, uri, run_metric)
    fit = load_function(config.trainer)
    if config.trainer.mlflow == "off":
        stray_runs = StrayRunWatch(f"function: {config.trainer.describe()}")
        return FunctionTrainer(config.trainer, fit, config.metric, stray_runs.scope, more_objectives=more)
    autolog = config.trainer.autolog if config.trainer.mlflow == "autolog" else None
    runs = ActiveChildRuns(tracking.absolute_uri(), autolog=autolog)
    return FunctionTrainer(config.trainer, fit, config.metric, runs.scope, on_close=runs.close, more_objectives=more)


def model_publishing(config: SweepConfig) -> ModelPublishing:
    """How the config's trainer publishes its best model, said without making the trainer (`sweep sync` runs no
    trial: it loads no data and imports no user code)."""
    if config.trainer.builtin:
        return SentimentTrainer.model_publishing()
    if config.trainer.command is not None:
        return CommandTrainer.model_publishing()
    return FunctionTrainer.model_publishing()


def worker_transport(name: str, storage: StorageLocation, by_hand: bool) -> TrackingTransport:
    """A `sweep worker`'s tracking: the tracking process of the `sweep run --jobs` that started it (its hub); for a
    worker started ``by_hand``, the hub of the sweep's workers on this machine (started now when none runs:
    sweep/tracking/host_hub.py); else a tracking process of its own (a Ray task's: Ray may end what a task leaves
    running once it ends). A hub that cannot be reached costs only its savings."""
    jobs_hub = HubAddress.taken_from(os.environ)  # taken out: the trainer's own processes must not see its key
    if jobs_hub is not None:
        try:
            return HubTransport.connect(jobs_hub)
        except Exception:  # OSError, or multiprocessing's AuthenticationError: the machine's hub, or our own
            pass
    place = hub_place(storage.secret_url, name) if by_hand else None
    joined = join_hub(place) if place is not None else None
    return joined if joined is not None else ProcessTransport()


def default_parts() -> Parts:
    """What `sweep` runs with: the tracking process (a worker's may be shared: see worker_transport), the config's
    trainer, worker processes or Ray tasks."""
    return Parts(transport=ProcessTransport, trainer=make_trainer, executor=open_executor,
                 worker_transport=worker_transport)
