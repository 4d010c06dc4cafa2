"""The protocol between the sweep loop and the tracking server: how a request is delivered, and the replies.

Every request (sweep/tracking/operations.py: one class per operation) says how it is delivered: a CALL is
answered (the loop waits for its Answer), a START is answered by Started and served before any queued
logging, a LOG is written in order and never answered (what failed is in the close report), an END is the
last request the server serves. A request also says how the server serves it (``serve``), so the server
needs no table of handlers, and the loop's Recorder no method per operation.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

if TYPE_CHECKING:
    from sweep.tracking.server import TrackingServer

PARENT_CHECK_SECONDS = 1.0  # how often a waiting side checks that the other process is alive
STARTUP_SECONDS = 180.0  # importing mlflow and migrating a new database, on a slow machine
REPLY_SECONDS = 60.0  # one MLflow call, retries included

A = TypeVar("A")  # what a request is answered with (None for a request that is not answered)


class Delivery(Enum):
    CALL = "call"  # answered by Answer (or Failure): the loop waits for it
    START = "start"  # answered by Started; jumps ahead of queued LOG requests
    LOG = "log"  # written in order, never answered; a failure goes into the close report
    END = "end"  # the process serves it last, then exits


@dataclass(frozen=True)
class Request(Generic[A]):
    """One operation the tracking server serves."""

    delivery: ClassVar[Delivery] = Delivery.LOG

    def serve(self, server: TrackingServer) -> A:
        """Do the operation on ``server``'s tracker; a CALL's result is its answer."""
        raise NotImplementedError(f"{type(self).__name__} says nothing of how it is served")

    def reply_seconds(self) -> float:
        """How long the loop waits for a CALL's answer."""
        return REPLY_SECONDS


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


def operation(request: Request[Any] | type[Request[Any]]) -> str:
    """The name an Answer gives for a request (its type's name)."""
    return (request if isinstance(request, type) else type(request)).__name__
