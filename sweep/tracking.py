"""Every MLflow call of the project: the parent sweep run, one child run per trial, the best on the parent.

Only the tracking process (sweep/recorder.py) and `train --mlflow` import this module: `import mlflow`
costs ~2 s, which `sweep best` and `--help` never pay.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
# MLflow prints "View run ... at: <tracking URI>" on stdout when a run ends: the URI may carry a password,
# and the sweep's own output says where the runs are
os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "true"
# the tracking process retries a failed write itself (recorder._guard), with a bound; MLflow's own
# HTTP retries would wait minutes on a dead server before giving up
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
# progress bars for downloads of a few kilobytes would only clutter the sweep's output
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

import mlflow
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository
from sqlalchemy import event
from sqlalchemy.engine import Engine

from sweep.errors import TrackingError
from sweep.records import BestTrial, Counts, Curves, PublishedModel, SweepIdentity, TrialRecord
from sweep.urls import redact_text
from sweep.urls import redact_url as redact

if TYPE_CHECKING:
    from trainer import TrainConfig, TrainResult

MAX_TAG_CHARS = 5000  # MLflow caps tag values at 8,000 characters; an error message needs far fewer
STATUS = {"COMPLETE": "FINISHED", "PRUNED": "KILLED", "FAIL": "FAILED"}  # Optuna state -> child run status
INPUT_EXAMPLE = ("a warm, funny and beautifully acted film", "dull, predictable and far too long")  # pyfunc model


@event.listens_for(Engine, "connect")
def _fast_sqlite(dbapi_connection: Any, _record: Any) -> None:
    """WAL + synchronous=NORMAL on SQLite: a commit no longer waits for two fsyncs.

    A child run is three commits; in the default rollback-journal mode the fsyncs are most of their
    cost. WAL also lets `mlflow ui` read while a sweep writes. NORMAL can lose the last commits on
    power loss (never on a crash of the process); the Optuna study stays the source of truth and
    `sweep sync` rebuilds what MLflow lacks.
    """
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()


def now_ms() -> int:
    return int(time.time() * 1000)


def resolved_tracking_uri(tracking_uri: str | None) -> str:
    """The URI MLflow will use: the one given, else MLFLOW_TRACKING_URI, else MLflow's default."""
    return tracking_uri or mlflow.get_tracking_uri()


class SweepTracker:
    """The MLflow side of one sweep, seen from one process."""

    def __init__(self, identity: SweepIdentity) -> None:
        self.identity = identity
        self.uri = resolved_tracking_uri(identity.tracking_uri)
        # fail fast, in one line: the client opens its store at once, with minutes of retries
        _check_server(self.uri)
        _check_sqlite(self.uri)
        self.client = MlflowClient(self.uri)
        # artifact repositories (mlflow-artifacts:/ URIs of a proxying server) find the server through
        # the process-wide URI; this process tracks one store only, so setting it is safe
        mlflow.set_tracking_uri(self.uri)
        self.parent_run_id: str | None = None
        self.owns_parent = True  # False for a worker joining a sweep: it never reopens or ends the parent
        self._parent_status: str | None = None  # as MLflow showed it to sync_parent
        self.experiment_id: str | None = None
        self._artifact_uris: dict[str, str] = {}
        self._best_model: tuple[int, str] | None = None  # (trial, model.json) last written as the parent's best
        # one scratch folder for the files it logs, removed when the tracker is closed or collected
        self._scratch_dir = tempfile.TemporaryDirectory(prefix="sweep-tracking-")
        self._scratch = Path(self._scratch_dir.name)

    # -- the parent run --------------------------------------------------------------------------

    def connect(self) -> str:
        """Reach the store and find or create the experiment: fails fast, before any trial runs."""
        try:
            self.experiment_id = self._experiment_id()
        except MlflowException as error:
            raise TrackingError(f"MLflow at {redact(self.uri)}: {_first_line(error)}") from error
        return self.experiment_id

    def open_parent(self, parent_run_id: str | None, *, params: Mapping[str, Any],
                    tags: Mapping[str, str], config_yaml: str) -> tuple[str, str]:
        """Create the sweep's parent run, or reopen it on resume; returns (run id, experiment id)."""
        experiment_id = self.experiment_id or self.connect()
        try:
            if parent_run_id is None:
                run = self.client.create_run(
                    experiment_id, run_name=self.identity.name, start_time=now_ms(),
                    tags={"sweep.name": self.identity.name, "sweep.role": "parent", **tags})
                parent_run_id = run.info.run_id
                self._artifact_uris[parent_run_id] = run.info.artifact_uri
                self.client.log_batch(parent_run_id, params=[Param(k, _text(v)) for k, v in params.items()])
                self._log_text(parent_run_id, config_yaml, "sweep.yaml", None)
            else:
                self.client.update_run(parent_run_id, status="RUNNING")
                self.client.log_batch(parent_run_id, tags=[RunTag(k, _text(v)) for k, v in tags.items()])
        except MlflowException as error:
            raise TrackingError(f"MLflow at {redact(self.uri)}: {_first_line(error)}") from error
        self.parent_run_id = parent_run_id
        return parent_run_id, experiment_id

    def sync_parent(self, parent_run_id: str | None, *, status: str | None, params: Mapping[str, Any],
                    tags: Mapping[str, str], config_yaml: str) -> tuple[str, bool]:
        """`sweep sync`: the parent run, recreated when MLflow lost it; returns (run id, created).

        ``status`` is the run status the sweep's state calls for (None while the sweep still runs);
        the parent is ended with it later only if it shows another one (sync must be idempotent).
        """
        try:
            run = self.client.get_run(parent_run_id) if parent_run_id else None
        except MlflowException:
            run = None
        if run is None or run.info.lifecycle_stage != "active":
            new_id, _ = self.open_parent(None, params=params, tags=tags, config_yaml=config_yaml)
            self._parent_status = None
            return new_id, True
        self.parent_run_id = parent_run_id
        self._parent_status = run.info.status
        return parent_run_id, False

    def end_parent_if_needed(self, status: str | None, counts: Counts) -> bool:
        """End the parent with ``status`` unless it already shows it; True when it changed."""
        if status is None or self._parent_status == status:
            return False
        self.close_parent(status, counts)
        self._parent_status = status
        return True

    def attach_parent(self, parent_run_id: str) -> None:
        self.parent_run_id = parent_run_id
        self.owns_parent = False

    def ensure_best(self, best: BestTrial, metric: str) -> None:
        """Rewrite the parent's best unless it already shows this trial (workers race to report theirs)."""
        parent = self.client.get_run(self._parent())
        if parent.data.tags.get("best.trial") == str(best.number):
            return
        model_json = best.model_json
        if model_json is None and best.run_id is not None:
            local = self.client.download_artifacts(best.run_id, "model.json", str(self._scratch))
            model_json = Path(local).read_text(encoding="utf-8")
        self.record_best(replace(best, model_json=model_json), metric)

    def close_parent(self, status: str, counts: Counts) -> None:
        parent = self._parent()
        self.record_counts(counts, step=counts.finished)
        self.client.set_tag(parent, "sweep.status", status.lower())
        self.client.set_terminated(parent, status=status, end_time=now_ms())
        self._scratch_dir.cleanup()

    def record_counts(self, counts: Counts, *, step: int) -> None:
        """Trial counts on the parent: tags for the table, metrics stepped by finished trials for a chart."""
        values = {"trials_complete": counts.complete, "trials_pruned": counts.pruned,
                  "trials_failed": counts.failed}
        timestamp = now_ms()
        self.client.log_batch(
            self._parent(),
            metrics=[Metric(name, float(value), timestamp, step) for name, value in values.items()],
            tags=[RunTag(f"sweep.{name}", str(value)) for name, value in values.items()])

    def record_best(self, best: BestTrial, metric: str) -> None:
        """Tags best.*, the best-so-far metric stepped by trial number, and best/model.json."""
        parent = self._parent()
        tags = {"best.trial": str(best.number), "best.value": repr(best.value)}
        if best.run_id is not None:
            tags["best.run_id"] = best.run_id
        tags.update({f"best.{name}": _text(value) for name, value in best.params.items()})
        timestamp = now_ms()
        metrics = [Metric(f"best_{metric}", best.value, timestamp, best.number)]
        metrics += [Metric(f"best.{name}", value, timestamp, best.number) for name, value in best.metrics.items()]
        self.client.log_batch(parent, metrics=metrics, tags=[RunTag(k, v) for k, v in tags.items()])
        if best.model_json is not None:
            self._log_text(parent, best.model_json, "model.json", "best")
            self._best_model = (best.number, best.model_json)

    # -- at the end of a sweep: plots and the best model as a pyfunc model -----------------------

    def record_plots(self, images: Mapping[str, bytes], skipped: Mapping[str, str]) -> list[str]:
        """PNGs under plots/ on the parent, overwriting older ones of the same name, and NOTES.txt.

        One log_artifacts call for the folder: the local and the proxied (mlflow-artifacts) stores
        both overwrite a file logged again under the same path. Returns the plot files logged.
        """
        parent = self._parent()
        folder = self._scratch / "plots"
        folder.mkdir(exist_ok=True)
        for name, png in images.items():
            (folder / name).write_bytes(png)
        lines = [f"made: {name}" for name in images]
        lines += [f"skipped: {name}: {why}" for name, why in skipped.items()]
        (folder / "NOTES.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
        self._repository(parent).log_artifacts(str(folder), "plots")
        self.client.set_tag(parent, "sweep.plots_skipped",
                            "; ".join(f"{name}: {why}" for name, why in skipped.items())[:MAX_TAG_CHARS] or "none")
        return list(images)

    def publish_model(self, best: BestTrial | None, register: str | None) -> PublishedModel:
        """The best trial's model as the parent's pyfunc model `model`, registered as ``register`` if given.

        Logged at the end of an invocation, and only when the best trial changed since it was last
        logged: trials never pay for it. A failure comes back as a warning, never an exception.
        """
        if best is None:
            return PublishedModel(warning=f"no completed trial, so no model to register as {register!r}"
                                  if register else None)
        parent = self._parent()
        try:
            tags = self.client.get_run(parent).data.tags
            model_id = tags.get("best.model_id")
            if model_id is None or tags.get("best.model_trial") != str(best.number):
                model_id = self._log_pyfunc(self._model_json(best, tags), best.number)
                self.client.log_batch(parent, tags=[RunTag("best.model_uri", model_uri(parent)),
                                                    RunTag("best.model_id", model_id),
                                                    RunTag("best.model_trial", str(best.number))])
                if "best.registered_model" in tags:  # that version holds the previous best's model
                    self.client.delete_tag(parent, "best.registered_model")
        except Exception as error:  # MLflow, pandas or the model file: the sweep's result stands without it
            return PublishedModel(warning=f"the best model was not logged as a pyfunc model: {_first_line(error)}")
        published = PublishedModel(model_uri(parent), best.number)
        if register is None:
            return published
        try:
            version = self._register(model_id, register)
        except Exception as error:
            return replace(published, warning=f"the best model was not registered as {register!r}: "
                                              f"{_first_line(error)}")
        self.client.set_tag(parent, "best.registered_model", version)
        return replace(published, registered=version)

    def _model_json(self, best: BestTrial, parent_tags: Mapping[str, str]) -> str:
        """The best trial's model.json: known from its "best" message, else from its child run or the parent."""
        if best.model_json is not None:
            return best.model_json
        if self._best_model is not None and self._best_model[0] == best.number:
            return self._best_model[1]
        if best.run_id is not None:
            local = self.client.download_artifacts(best.run_id, "model.json", str(self._scratch))
        elif parent_tags.get("best.trial") == str(best.number):
            local = self.client.download_artifacts(self._parent(), "best/model.json", str(self._scratch))
        else:
            raise TrackingError(f"trial {best.number} has no child run to take its model.json from")
        return Path(local).read_text(encoding="utf-8")

    def _log_pyfunc(self, model_json: str, trial: int) -> str:
        """Log sweep/pyfunc_model.py "as code" with the trainer's sources and model.json; returns the model id.

        Requirements are given, not inferred: inference would load the model in a subprocess (seconds).
        The input example is checked against the signature by MLflow when it logs the model.
        """
        import warnings

        import mlflow.pyfunc
        import numpy as np
        import pandas as pd

        from trainer import Model

        folder = self._scratch / "pyfunc"
        folder.mkdir(exist_ok=True)
        (folder / "model.json").write_text(model_json, encoding="utf-8")
        example = pd.DataFrame({"text": list(INPUT_EXAMPLE)})
        labels, probabilities = Model.from_json(model_json).predict(list(INPUT_EXAMPLE))
        output = pd.DataFrame({"label": labels.astype("int64"), "probability": probabilities})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "integer columns cannot hold missing values": labels never miss
            signature = mlflow.models.infer_signature(example, output)
        # start_run on the existing parent, so the model is linked to it; close_parent sets its real status
        with _global_tracking_uri(self.uri), mlflow.start_run(run_id=self._parent()):
            info = mlflow.pyfunc.log_model(
                name="model", python_model=str(Path(__file__).with_name("pyfunc_model.py")),
                artifacts={"model_json": str(folder / "model.json")},
                code_paths=[str(_trainer_sources(folder / "code"))], signature=signature, input_example=example,
                pip_requirements=[f"mlflow=={mlflow.__version__}", f"numpy=={np.__version__}",
                                  f"pandas=={pd.__version__}"],
                tags={"sweep.name": self.identity.name, "sweep.trial": str(trial)})
        return info.model_id

    def _register(self, model_id: str, name: str) -> str:
        """A new version of registered model ``name``; returns "NAME/VERSION"."""
        try:
            self.client.create_registered_model(name, description="Best models of sweep runs (sweep run --register).")
        except MlflowException as error:
            if error.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
        version = self.client.create_model_version(name, f"models:/{model_id}", run_id=self._parent(),
                                                   model_id=model_id,
                                                   tags={"sweep.name": self.identity.name})
        return f"{name}/{version.version}"

    def _repository(self, run_id: str) -> Any:
        artifact_uri = self._artifact_uris.get(run_id) or self.client.get_run(run_id).info.artifact_uri
        self._artifact_uris[run_id] = artifact_uri
        return get_artifact_repository(artifact_uri)

    # -- child runs ------------------------------------------------------------------------------

    def start_child(self, number: int, start_ms: int) -> str:
        run = self.client.create_run(
            self._experiment(), start_time=start_ms, run_name=f"trial-{number}",
            tags={"mlflow.parentRunId": self._parent(), "sweep.name": self.identity.name,
                  "sweep.trial": str(number)})
        self._artifact_uris[run.info.run_id] = run.info.artifact_uri
        return run.info.run_id

    def finish_child(self, record: TrialRecord) -> str:
        """Params, final metrics, curves, model.json and status of one trial, in one batch and one file."""
        run_id = record.run_id or self.start_child(record.number, record.start_ms)
        last_epoch = max((points[-1][0] for points in record.curves.values() if points), default=0)
        metrics = _final_and_curves(record.metrics, record.curves, last_epoch, record.end_ms)
        tags = {"sweep.state": record.state.lower()}
        if record.error:
            tags["error"] = record.error[:MAX_TAG_CHARS]
        self.client.log_batch(run_id, metrics=metrics,
                              params=[Param(k, _text(v)) for k, v in record.params.items()],
                              tags=[RunTag(k, v) for k, v in tags.items()])
        if record.model_json is not None:
            self._log_text(run_id, record.model_json, "model.json", None)
        if record.traceback:
            self._log_text(run_id, record.traceback, "traceback.txt", None)
        self.client.set_terminated(run_id, status=_status(record), end_time=record.end_ms)
        self._artifact_uris.pop(run_id, None)
        return run_id

    def children(self) -> dict[int, tuple[str, str]]:
        """Trial number -> (run id, status) of the parent's child runs."""
        runs = self.client.search_runs(
            [self._experiment()], filter_string=f"tags.mlflow.parentRunId = '{self._parent()}'",
            max_results=50000)
        found: dict[int, tuple[str, str]] = {}
        for run in runs:
            trial = run.data.tags.get("sweep.trial")
            if trial is not None and trial.isdigit():
                found.setdefault(int(trial), (run.info.run_id, run.info.status))
        return found

    def fail_run(self, run_id: str, reason: str, status: str = "FAILED") -> None:
        self.client.set_tag(run_id, "error", reason[:MAX_TAG_CHARS])
        self.client.set_terminated(run_id, status=status, end_time=now_ms())

    def abandon_parent(self) -> None:
        """The sweep loop died without closing: the parent ends KILLED, resumable with --resume."""
        parent = self._parent()
        self.client.set_tag(parent, "sweep.status", "interrupted")
        self.client.set_terminated(parent, status="KILLED", end_time=now_ms())
        self._scratch_dir.cleanup()

    def reconcile(self, trials: list[TrialRecord]) -> list[int]:
        """Make MLflow match the study: every finished trial gets exactly one ended child run.

        A trial whose child run is missing (the store was down, or the process died before
        logging) gets one built from the study; a child left RUNNING takes the trial's status.
        Idempotent: a second call changes nothing.
        """
        children = self.children()
        repaired = []
        for record in trials:
            found = children.get(record.number)
            if found is None:
                # a new run: the one the trial names (if any) was deleted or lost with the store
                self.finish_child(replace(record, run_id=None))
                repaired.append(record.number)
            elif found[1] != _status(record):
                # left RUNNING, or ended KILLED by a dying sweep whose trial the study has since failed
                # its final record may never have arrived: log what the study knows (params are
                # immutable in MLflow, but logging the same value again is accepted)
                tags = [RunTag("sweep.state", record.state.lower())]
                if record.error:
                    tags.append(RunTag("error", record.error[:MAX_TAG_CHARS]))
                metrics = [Metric(k, v, record.end_ms or now_ms(), 0) for k, v in record.metrics.items()]
                self.client.log_batch(found[0], metrics=metrics, tags=tags,
                                      params=[Param(k, _text(v)) for k, v in record.params.items()])
                self.client.set_terminated(found[0], status=_status(record), end_time=record.end_ms or now_ms())
                repaired.append(record.number)
        return repaired

    # -- helpers ---------------------------------------------------------------------------------

    def _experiment_id(self) -> str:
        experiment = self.client.get_experiment_by_name(self.identity.experiment)
        if experiment is not None:
            if experiment.lifecycle_stage != "active":
                raise TrackingError(
                    f"MLflow experiment {self.identity.experiment!r} is deleted; restore it or choose "
                    f"another --experiment")
            return experiment.experiment_id
        try:
            # the kind tag opens the MLflow UI on model training (runs, charts) instead of GenAI traces
            return self.client.create_experiment(self.identity.experiment,
                                                 tags={"mlflow.experimentKind": "custom_model_development"})
        except MlflowException:
            # another worker created it between our look-up and our create
            experiment = self.client.get_experiment_by_name(self.identity.experiment)
            if experiment is None:
                raise
            return experiment.experiment_id

    def _experiment(self) -> str:
        if self.experiment_id is None:
            raise RuntimeError("open_parent() must run first")
        return self.experiment_id

    def _parent(self) -> str:
        if self.parent_run_id is None:
            raise RuntimeError("open_parent() must run first")
        return self.parent_run_id

    def _log_text(self, run_id: str, text: str, file_name: str, artifact_path: str | None) -> None:
        """Write text as an artifact straight through the run's artifact repository.

        client.log_artifact first looks the run up again to find its artifact URI: one more query
        per file. The URI is known from create_run, so it is kept and reused.
        """
        artifact_uri = self._artifact_uris.get(run_id)
        if artifact_uri is None:
            artifact_uri = self.client.get_run(run_id).info.artifact_uri
        local = self._scratch / file_name
        local.write_text(text, encoding="utf-8")
        get_artifact_repository(artifact_uri).log_artifact(str(local), artifact_path)


def log_training_run(result: TrainResult, config: TrainConfig, curves: Curves, model_path: Path, *,
                     experiment: str, tracking_uri: str | None, data_source: str,
                     data_fingerprint: str) -> str:
    """`train --mlflow`: one run with params, final metrics, per-epoch curves and model.json."""
    uri = resolved_tracking_uri(tracking_uri)
    client = MlflowClient(uri)
    mlflow.set_tracking_uri(uri)  # for the artifact repository of a proxying server
    try:
        found = client.get_experiment_by_name(experiment)
        experiment_id = found.experiment_id if found is not None else client.create_experiment(experiment)
        run = client.create_run(experiment_id, start_time=now_ms(),
                                tags={"mlflow.source.name": "train", "data.source": data_source,
                                      "data.fingerprint": data_fingerprint})
        run_id = run.info.run_id
        timestamp = now_ms()
        params = {**config.to_dict(), "vocab_size_used": result.vocab_size, **result.sizes}
        metrics = _final_and_curves(result.metrics, curves, result.epochs, timestamp)
        metrics.append(Metric("training_seconds", result.seconds, timestamp, result.epochs))
        client.log_batch(run_id, metrics=metrics, params=[Param(k, _text(v)) for k, v in params.items()])
        with tempfile.TemporaryDirectory(prefix="sweep-train-") as scratch:
            # the artifact is model.json whatever --out named the local file
            local = Path(scratch) / "model.json"
            local.write_bytes(model_path.read_bytes())
            get_artifact_repository(run.info.artifact_uri).log_artifact(str(local))
        client.set_terminated(run_id, status="FINISHED", end_time=now_ms())
    except MlflowException as error:
        raise TrackingError(f"MLflow at {redact(uri)}: {_first_line(error)}") from error
    return run_id


def read_artifact_text(artifact_uri: str, tracking_uri: str | None) -> str:
    """One small text artifact (e.g. runs:/<run id>/model.json) from the tracking store, as a string."""
    uri = resolved_tracking_uri(tracking_uri)
    _check_server(uri)
    try:
        with tempfile.TemporaryDirectory(prefix="sweep-download-") as scratch:
            local = mlflow.artifacts.download_artifacts(artifact_uri, dst_path=scratch, tracking_uri=uri)
            return Path(local).read_text(encoding="utf-8")
    except (MlflowException, OSError) as error:
        raise TrackingError(f"cannot read {artifact_uri} from MLflow at {redact(uri)} ({_first_line(error)}); "
                            f"run in the sweep's folder or pass --tracking-uri") from None


@contextmanager
def _global_tracking_uri(uri: str) -> Iterator[None]:
    """MLflow's fluent API (start_run, log_model) reads a process-wide tracking URI, which set_tracking_uri
    also copies into MLFLOW_TRACKING_URI: set it for one call, then put back what was there."""
    previous = mlflow.get_tracking_uri() if mlflow.is_tracking_uri_set() else None
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(previous)  # type: ignore[arg-type]  # None unsets it, as MLflow documents


def model_uri(parent_run_id: str) -> str:
    """Where the parent's pyfunc model loads from: the parent's newest logged model named `model`."""
    return f"runs:/{parent_run_id}/model"


def _trainer_sources(folder: Path) -> Path:
    """A copy of the trainer package's sources (numpy only) to ship with the model: no corpus, no caches,
    and no `train` CLI (it needs typer, which a model server has no use for)."""
    import shutil

    import trainer

    target = folder / "trainer"
    target.mkdir(parents=True, exist_ok=True)
    for source in Path(trainer.__file__).parent.glob("*.py"):
        if source.name != "cli.py":
            shutil.copy2(source, target / source.name)
    return target


def _status(record: TrialRecord) -> str:
    return "KILLED" if record.interrupted else STATUS[record.state]


def _final_and_curves(final: Mapping[str, float], curves: Curves, last_epoch: int, timestamp: int) -> list[Metric]:
    """Curves stepped by epoch, and the final values at the last epoch.

    At step 0 a final value would start its curve with the end result; at the last epoch it is the
    curve's own last point (the same value, which MLflow stores once) and the run's latest value.
    """
    metrics = [Metric(name, value, timestamp, step) for name, points in curves.items() for step, value in points]
    metrics += [Metric(name, value, timestamp, last_epoch) for name, value in final.items()]
    return metrics


def _check_sqlite(uri: str) -> None:
    """A SQLite store that cannot be opened (missing folder, no permission, read-only disk) fails in one
    line now: MLflow itself retries creating its engine with backoff for about two minutes."""
    if not uri.startswith("sqlite:///"):
        return
    import sqlite3

    path = uri.removeprefix("sqlite:///").split("?", 1)[0]
    try:
        sqlite3.connect(path).close()
    except sqlite3.Error as error:
        raise TrackingError(f"cannot open the MLflow database {path} ({error}); check --tracking-uri, and that "
                            f"its folder exists and is writable") from None


def _check_server(uri: str, timeout: float = 10.0) -> None:
    """An http(s) tracking server answers /health, or the sweep stops here in one line.

    MLflow's own client retries a refused connection with backoff for minutes before it gives up.
    """
    if not uri.startswith(("http://", "https://")):
        return
    import base64
    import urllib.error
    import urllib.parse
    import urllib.request

    parts = urllib.parse.urlsplit(uri)
    netloc = (parts.hostname or "") + (f":{parts.port}" if parts.port else "")
    request = urllib.request.Request(urllib.parse.urlunsplit(
        (parts.scheme, netloc, parts.path.rstrip("/") + "/health", "", "")))
    if parts.username is not None:  # http://user:password@host: basic auth, as MLflow's client sends it
        token = f"{urllib.parse.unquote(parts.username)}:{urllib.parse.unquote(parts.password or '')}"
        request.add_header("Authorization", "Basic " + base64.b64encode(token.encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=timeout):
            return
    except urllib.error.HTTPError as error:
        if error.code < 500:
            return  # it answers: an auth proxy or an older server without /health
        raise TrackingError(f"MLflow tracking server {redact(uri)} answered HTTP {error.code}") from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise TrackingError(f"cannot reach the MLflow tracking server at {redact(uri)} ({reason}); "
                            f"start it or check --tracking-uri") from None


def _text(value: object) -> str:
    return repr(value) if isinstance(value, float) else str(value)


def _first_line(error: BaseException) -> str:
    # MLflow's messages name the URI they called, password included
    return redact_text((str(error).strip().splitlines() or [type(error).__name__])[0])

