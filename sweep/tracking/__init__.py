"""Every MLflow call of the project, behind the tracking process; importing this package imports no mlflow.

The sweep loop uses Recorder (sweep/tracking/client.py), its handle on the tracking process, to call or send
the requests of sweep/tracking/operations.py (one class per operation, served by the process). The
modules that import mlflow are reached by that process, by `train --mlflow`
(sweep.tracking.training_run), by `sweep predict` (sweep.tracking.artifacts) and by `sweep doctor`
(sweep.tracking.health, sweep.tracking.artifact_probe) only.
"""

from sweep.records import TrackingReport
from sweep.tracking.client import Recorder

__all__ = ["Recorder", "TrackingReport"]
