"""The typed messages between the sweep loop and the tracking process: one frozen request type per operation.

Every request says how it is delivered: a CALL is answered (the loop waits for its Answer), a START
is answered by Started and served before any queued logging, a LOG is written in order and never
answered (what failed is in the close report), an END is the last request the process serves.
Adding a tracked item means one request type here and one handler in sweep/tracking/server.py.
All fields are plain records (sweep/records.py): picklable, no MLflow types.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any, ClassVar

from sweep.records import BestTrial, Counts, SweepIdentity, TrialRecord

PARENT_CHECK_SECONDS = 1.0  # how often a waiting side checks that the other process is alive


class Delivery(Enum):
    CALL = "call"  # answered by Answer (or Failure): the loop waits for it
    START = "start"  # answered by Started; jumps ahead of queued LOG requests
    LOG = "log"  # written in order, never answered; a failure goes into the close report
    END = "end"  # the process serves it last, then exits


@dataclass(frozen=True)
class Request:
    """One operation the tracking process serves."""

    delivery: ClassVar[Delivery] = Delivery.LOG


# -- set-up and `sweep sync`: answered ----------------------------------------------------------------


@dataclass(frozen=True)
class Connect(Request):
    """Reach the tracking store and find or create the experiment; answers its id."""

    delivery: ClassVar[Delivery] = Delivery.CALL
    identity: SweepIdentity


@dataclass(frozen=True)
class OpenParent(Request):
    """Create the parent run, or reopen ``parent_run_id`` on resume; without one, adopt the parent
    run tagged with the study's ``token`` (its start was cut short) if there is one; answers its run id."""

    delivery: ClassVar[Delivery] = Delivery.CALL
    parent_run_id: str | None
    params: dict[str, Any]
    tags: dict[str, str]
    config_yaml: str
    token: str | None = None  # the study's token: finds a parent run it never linked


@dataclass(frozen=True)
class SyncParent(Request):
    """`sweep sync`: the parent run (adopted by ``token`` when the study links none), recreated when
    MLflow lost it; answers (run id, created)."""

    delivery: ClassVar[Delivery] = Delivery.CALL
    parent_run_id: str | None
    params: dict[str, Any]
    tags: dict[str, str]
    config_yaml: str
    token: str | None = None  # the study's token: finds a parent run it never linked


@dataclass(frozen=True)
class EndParentIfNeeded(Request):
    """End the parent with ``status`` unless it shows it already; answers whether it changed."""

    delivery: ClassVar[Delivery] = Delivery.CALL
    status: str | None
    counts: Counts


@dataclass(frozen=True)
class AttachParent(Request):
    """Log under an existing parent run without owning it (a worker); answers None."""

    delivery: ClassVar[Delivery] = Delivery.CALL
    parent_run_id: str


@dataclass(frozen=True)
class Reconcile(Request):
    """Give every finished trial exactly one ended child run; answers a Reconciled (repairs, every run id)."""

    delivery: ClassVar[Delivery] = Delivery.CALL
    trials: list[TrialRecord]


@dataclass(frozen=True)
class AgreeBest(Request):
    """`sweep sync`: make the parent's best (trial, run id, model.json, pyfunc tags) agree with ``best``;
    answers a BestAgreement."""

    delivery: ClassVar[Delivery] = Delivery.CALL
    best: BestTrial
    metric: str
    builtin: bool = True  # a function trainer has no model.json: its model is the one its trial logged


# -- per trial ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StartTrial(Request):
    """Create the trial's child run now; answered by Started."""

    delivery: ClassVar[Delivery] = Delivery.START
    number: int
    start_ms: int


@dataclass(frozen=True)
class FinishTrial(Request):
    """Everything a finished trial's child run shows, and its end."""

    record: TrialRecord


@dataclass(frozen=True)
class RecordBest(Request):
    """A new best trial for the parent run."""

    best: BestTrial
    metric: str


@dataclass(frozen=True)
class EnsureBest(Request):
    """Make the parent show ``best`` (found by any worker) unless it does already."""

    best: BestTrial
    metric: str


@dataclass(frozen=True)
class RecordCounts(Request):
    """The trial counts for the parent run (only the latest is written, at most once a second)."""

    counts: Counts


# -- the end ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PublishPlots(Request):
    """PNG plots (file name -> bytes) for the parent's plots/ folder, and why others were skipped."""

    images: dict[str, bytes]
    skipped: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PublishModel(Request):
    """The best trial's model on the parent (the built-in trainer's as a pyfunc model, a function trainer's
    as its child run logged it), registered as ``register`` if given."""

    best: BestTrial | None
    register: str | None
    builtin: bool = True


@dataclass(frozen=True)
class Close(Request):
    """Write everything queued, end runs left open, end the parent with ``status`` (None: leave it);
    answers the TrackingReport."""

    delivery: ClassVar[Delivery] = Delivery.END
    status: str | None
    counts: Counts


@dataclass(frozen=True)
class Quit(Request):
    """The loop is going away on an error: end what it had started, then exit."""

    delivery: ClassVar[Delivery] = Delivery.END


# -- replies ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """The result of a CALL (or of Close): ``operation`` names the request type it answers."""

    operation: str
    value: Any


@dataclass(frozen=True)
class Started:
    """A StartTrial served: the child run id, or None when the store could not create it."""

    number: int
    run_id: str | None


@dataclass(frozen=True)
class Failure:
    """A CALL failed (or the process could not start): one line, password hidden."""

    message: str


Reply = Answer | Started | Failure


def operation(request: Request | type[Request]) -> str:
    """The name an Answer gives for a request (its type's name)."""
    return (request if isinstance(request, type) else type(request)).__name__
