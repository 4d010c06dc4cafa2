"""Every MLflow call of the project: the parent sweep run, one child run per trial, the best on the parent.

Only the tracking process (sweep/recorder.py) and `train --mlflow` import this module: `import mlflow`
costs ~2 s, which `sweep best` and `--help` never pay.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

import mlflow
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository
from sqlalchemy import event
from sqlalchemy.engine import Engine

from sweep.errors import TrackingError
from sweep.records import BestTrial, Counts, Curves, SweepIdentity, TrialRecord
from sweep.urls import redact_url as redact

if TYPE_CHECKING:
    from trainer import TrainConfig, TrainResult

MAX_TAG_CHARS = 5000  # MLflow caps tag values at 8,000 characters; an error message needs far fewer
STATUS = {"COMPLETE": "FINISHED", "PRUNED": "KILLED", "FAIL": "FAILED"}  # Optuna state -> child run status


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
        self.client = MlflowClient(self.uri)
        self.parent_run_id: str | None = None
        self.owns_parent = True  # False for a worker joining a sweep: it never reopens or ends the parent
        self.experiment_id: str | None = None
        self._artifact_uris: dict[str, str] = {}
        # one scratch folder for the files it logs, removed when the tracker is closed or collected
        self._scratch_dir = tempfile.TemporaryDirectory(prefix="sweep-tracking-")
        self._scratch = Path(self._scratch_dir.name)

    # -- the parent run --------------------------------------------------------------------------

    def connect(self) -> str:
        """Reach the store and find or create the experiment: fails fast, before any trial runs."""
        _check_server(self.uri)
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
                self.finish_child(record)
                repaired.append(record.number)
            elif found[1] != _status(record):
                # left RUNNING, or ended KILLED by a dying sweep whose trial the study has since failed
                self.client.set_tag(found[0], "sweep.state", record.state.lower())
                if record.error:
                    self.client.set_tag(found[0], "error", record.error[:MAX_TAG_CHARS])
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
            return self.client.create_experiment(self.identity.experiment)
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


def _check_server(uri: str, timeout: float = 10.0) -> None:
    """An http(s) tracking server answers /health, or the sweep stops here in one line.

    MLflow's own client retries a refused connection with backoff for minutes before it gives up.
    """
    if not uri.startswith(("http://", "https://")):
        return
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout):
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
    return (str(error).strip().splitlines() or [type(error).__name__])[0]

