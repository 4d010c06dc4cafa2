"""`train --mlflow`: one MLflow run with the trainer's params, final metrics, per-epoch curves and model.json."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from sweep.records import Curves, now_ms
from sweep.states import RunStatus
from sweep.tracking.settings import process_settings

if TYPE_CHECKING:
    from trainer import TrainConfig, TrainResult


def log_training_run(result: TrainResult, config: TrainConfig, curves: Curves, model_path: Path, *,
                     experiment: str, tracking_uri: str | None, data_source: str,
                     data_fingerprint: str) -> str:
    """Log one training as an MLflow run; returns its run id. Raises TrackingError in one line."""
    with process_settings():  # MLflow reads some of them at import: import it inside
        from mlflow import MlflowClient
        from mlflow.entities import Metric, Param
        from mlflow.exceptions import MlflowException
        from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

        from sweep.tracking.children import final_and_curves
        from sweep.tracking.publishing import global_tracking_uri
        from sweep.tracking.sqlite_file import prepare_sqlite
        from sweep.tracking.store import param_text, resolved_tracking_uri, store_error

        uri = resolved_tracking_uri(tracking_uri)
        prepare_sqlite(uri)  # a new SQLite database is created whole, an unusable one fails in one line
        client = MlflowClient(uri)
        try:
            experiment_found = client.get_experiment_by_name(experiment)
            experiment_id = (experiment_found.experiment_id if experiment_found is not None
                             else client.create_experiment(experiment))
            run = client.create_run(experiment_id, start_time=now_ms(),
                                    tags={"mlflow.source.name": "train", "data.source": data_source,
                                          "data.fingerprint": data_fingerprint})
            run_id = run.info.run_id
            timestamp = now_ms()
            params = {**config.to_dict(), "vocab_size_used": result.vocab_size, **result.sizes}
            metrics = final_and_curves(result.metrics, curves, result.epochs, timestamp)
            metrics.append(Metric("training_seconds", result.seconds, timestamp, result.epochs))
            client.log_batch(run_id, metrics=metrics, params=[Param(k, param_text(v)) for k, v in params.items()])
            # the artifact repository of a proxying server finds it through the process-wide URI
            with tempfile.TemporaryDirectory(prefix="sweep-train-") as scratch, global_tracking_uri(uri):
                # the artifact is model.json whatever --out named the local file
                local = Path(scratch) / "model.json"
                local.write_bytes(model_path.read_bytes())
                get_artifact_repository(run.info.artifact_uri).log_artifact(str(local))
            client.set_terminated(run_id, status=RunStatus.FINISHED.value, end_time=now_ms())
        except MlflowException as error:
            raise store_error(uri, error) from error
    return run_id
