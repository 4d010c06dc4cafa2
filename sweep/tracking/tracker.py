"""The MLflow side of one sweep, seen from one process: its store, parent run, child runs and publisher."""

from __future__ import annotations

from dataclasses import dataclass

from sweep.records import SweepIdentity
from sweep.tracking.children import ChildRuns
from sweep.tracking.parent import ParentRun
from sweep.tracking.publishing import Publisher
from sweep.tracking.store import TrackingStore


@dataclass
class SweepTracker:
    """The four jobs the tracking process serves, sharing one store."""

    store: TrackingStore
    parent: ParentRun
    children: ChildRuns
    publisher: Publisher


def open_tracker(identity: SweepIdentity) -> SweepTracker:
    """Build the MlflowClient for the sweep's store (failing fast when it cannot be reached) and the jobs on it."""
    store = TrackingStore(identity)
    parent = ParentRun(store)
    return SweepTracker(store, parent, ChildRuns(parent), Publisher(parent))
