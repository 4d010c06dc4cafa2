"""`objective: {source: mlflow}`: a command's objective read from its child run after it exits.

For scripts that already log to MLflow (MLFLOW_RUN_ID points them at their child run). mlflow is imported on
the first read, in the trial's process: a sweep whose objective comes from report lines never pays for it.
"""

from __future__ import annotations

from sweep.errors import TrackingError


def final_metric(tracking_uri: str, run_id: str, metric: str) -> float | None:
    """The latest value of ``metric`` in the run, or None when the run has none."""
    from sweep.tracking.settings import process_settings

    with process_settings():
        from mlflow import MlflowClient
        from mlflow.exceptions import MlflowException

        try:
            return MlflowClient(tracking_uri).get_run(run_id).data.metrics.get(metric)
        except MlflowException as error:
            raise TrackingError(f"cannot read {metric!r} from the trial's run {run_id}: "
                                f"{str(error).splitlines()[0] if str(error) else type(error).__name__}") from None
