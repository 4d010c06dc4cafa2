"""A trial's child run as MLflow's active run in the trial's own process (`trainer.mlflow: active | autolog`).

The user's `mlflow.log_metric(...)`, `mlflow.log_artifact(...)` and `mlflow.<flavor>.log_model(...)` then land
in that child run, never in the parent or a stray top-level run. mlflow is imported on the first trial,
not before: a sweep whose trainer does not ask for it never pays for the import.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from sweep.errors import TrackingError
from sweep.states import RunStatus
from sweep.tracking.mlflow_time import mlflow_clock

log = logging.getLogger(__name__)  # shown by the CLI on stderr

EXPERIMENT_ENV = "MLFLOW_EXPERIMENT_ID"  # where MLflow puts a run started with no experiment given
PARENT_TAG = "mlflow.parentRunId"


class ActiveChildRuns:
    """Makes each trial's child run the active run while its ``fit`` runs, and clocks the time ``fit`` spends inside
    MLflow (mlflow_time.py); with ``autolog`` (None: off; else the settings given to ``mlflow.autolog()``, such as
    ``log_models: False``), MLflow's autologging is switched on once, before the first trial of this process."""

    def __init__(self, tracking_uri: str, *, autolog: Mapping[str, bool] | None) -> None:
        self.tracking_uri = tracking_uri  # absolute: MLflow keeps one store per URI text for the whole process
        self.autolog = autolog
        self.ready = False
        # MLflow's process-wide tracking URI as the caller had it (set_tracking_uri keeps it in this variable
        # too): read now, before the sweep's tracking server (a thread, in-process) sets the sweep's own
        self._uri_before = os.environ.get("MLFLOW_TRACKING_URI")

    def prepare(self) -> None:
        from sweep.tracking.settings import configure_process

        configure_process()  # before the import: MLflow reads some of its variables then
        import mlflow

        mlflow.set_tracking_uri(self.tracking_uri)
        if self.autolog is not None:
            # `mlflow: {autolog: {...}}` over the sweep's defaults; silent is not among the settings a config gives
            mlflow.autolog(**{"log_input_examples": False, **self.autolog, "silent": True})
        self.ready = True

    def close(self) -> None:
        """Put back what prepare() changed for the whole process once the sweep's trials are over here: the
        tracking URI as it was, autologging off (a process that goes on after the sweep, a notebook or the
        engine driven in-process, must not log its own fits into the sweep's store)."""
        if not self.ready:
            return
        import mlflow

        if self.autolog is not None:
            mlflow.autolog(disable=True, silent=True)
        mlflow.set_tracking_uri(self._uri_before)  # type: ignore[arg-type]  # None unsets it, as MLflow documents
        self.ready = False

    @contextmanager
    def scope(self, child_run: Callable[[], str | None]) -> Iterator[Callable[[], float]]:
        """The trial's child run (``child_run()`` waits for its id) made active around the trial's code; yields what
        reads the seconds that code spent inside MLflow (final once the block has ended)."""
        run_id = child_run()
        if run_id is None:
            raise TrackingError("the trial has no child run to make active (the tracking store could not create "
                                "it); check the tracking store, then `sweep sync`")
        if not self.ready:
            self.prepare()
        import mlflow

        child = mlflow.start_run(run_id=run_id)
        # a run the user's code starts itself with another run id lands in the sweep's experiment, not in Default
        experiment_before = os.environ.get(EXPERIMENT_ENV)
        os.environ[EXPERIMENT_ENV] = child.info.experiment_id
        try:
            with trial_run_kept(run_id), mlflow_clock() as clock:
                yield clock.seconds
        finally:
            # runs the user's code left open end first, each one made a child of the trial's run if it has no
            # parent (after end_run(); start_run()); the child run is left RUNNING for the tracking process,
            # which ends it with the trial's real status once its record is written
            while (active := mlflow.active_run()) is not None and active.info.run_id != run_id:
                if PARENT_TAG not in active.data.tags:
                    mlflow.set_tag(PARENT_TAG, run_id)
                mlflow.end_run()
            if mlflow.active_run() is not None:
                mlflow.end_run(status=RunStatus.RUNNING.value)
            if experiment_before is None:
                os.environ.pop(EXPERIMENT_ENV, None)
            else:
                os.environ[EXPERIMENT_ENV] = experiment_before


@contextmanager
def trial_run_kept(run_id: str) -> Iterator[None]:
    """While the trial's code runs, MLflow code as people write it logs into the trial's run and leaves it open.

    ``mlflow.start_run()`` (no run id, ``nested=True``, or the trial's run id) while the trial's run is the active
    one returns that run, so ``with mlflow.start_run(): ...`` logs into it; ``mlflow.end_run()`` and leaving such
    a ``with`` block leave it open: the tracking process ends it with the trial's real status. A run id of
    another run, or a start while the code's own run is active, is MLflow's as usual. MLflow's module functions
    are swapped for the trial's span only (its ``with`` blocks end runs through the module's own end_run), and
    put back after.
    """
    import mlflow
    from mlflow.tracking import fluent

    started, ended = fluent.start_run, fluent.end_run

    def trial_run() -> Any:
        active = fluent.active_run()
        return active if active is not None and active.info.run_id == run_id else None

    def start_run(given_run_id: str | None = None, *args: Any, **kwargs: Any) -> Any:
        active = trial_run()
        if active is not None and given_run_id in (None, run_id) and not kwargs.get("parent_run_id"):
            if kwargs.get("tags"):
                fluent.set_tags(kwargs["tags"])
            return active
        return started(given_run_id, *args, **kwargs)

    def end_run(*args: Any, **kwargs: Any) -> None:
        if trial_run() is None:
            ended(*args, **kwargs)

    swapped = [(module, name) for module in (mlflow, fluent) for name in ("start_run", "end_run")]
    before = {(module, name): getattr(module, name) for module, name in swapped}
    replacement = {"start_run": start_run, "end_run": end_run}
    for module, name in swapped:
        setattr(module, name, replacement[name])
    try:
        yield
    finally:
        for (module, name), function in before.items():
            setattr(module, name, function)


class StrayRunWatch:
    """`mlflow: off`: the trial's process never imports mlflow for the sweep, but the user's code may log to MLflow
    itself, which makes one top-level run (in experiment Default) that every trial writes over. After each trial,
    a run left active by that code is said once per sweep, with the setting that puts its logging into each
    trial's child run. mlflow is looked at only if the code imported it."""

    def __init__(self, trainer_setting: str) -> None:
        self.trainer_setting = trainer_setting  # how the config names the trainer, for the fix it suggests
        self.warned = False

    @contextmanager
    def scope(self, _child_run: Callable[[], str | None]) -> Iterator[None]:
        yield None  # the child run is not waited for: the trial runs while the tracking process creates it; no clock
        mlflow = sys.modules.get("mlflow")
        if self.warned or mlflow is None:
            return
        active = mlflow.active_run()
        if active is not None:
            self.warned = True
            log.warning("the trainer logs to MLflow itself (run %s, outside the sweep's runs) but trainer.mlflow "
                        "is off: set `trainer: {%s, mlflow: active}` to log into each trial's child run",
                        active.info.run_id, self.trainer_setting)
