"""Every operation the tracking server serves, each defined once: its request, its delivery, how it is served.

The engine builds the request and gives it to its Recorder: ``recorder.call(OpenParent(...))`` waits for the
answer, ``recorder.send(FinishTrial(record))`` queues it (sweep/tracking/protocol.py says how each delivery
behaves). ``serve`` runs in the tracking server, on the MLflow jobs of parent.py, children.py and
publishing.py. Adding an operation means one class here, and its MLflow work in the job that does it.
All fields are plain records (sweep/records.py): picklable, no MLflow types.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from sweep.records import (
    BestAgreement,
    BestTrial,
    Counts,
    FrontMember,
    ModelPublishing,
    PublishedModel,
    Reconciled,
    SweepEnding,
    SweepIdentity,
    TrialRecord,
)
from sweep.states import RunStatus
from sweep.tracking.hub import HubAddress
from sweep.tracking.protocol import REPLY_SECONDS, STARTUP_SECONDS, Answer, Delivery, Request, Started, operation

if TYPE_CHECKING:
    from sweep.tracking.server import TrackingServer

RECONCILE_SECONDS_PER_TRIAL = 2.0  # a reconcile may write every trial's run


# -- set-up and `sweep sync`: answered ----------------------------------------------------------------


@dataclass(frozen=True)
class Connect(Request[str]):
    """Reach the tracking store and find or create the experiment; answers its id."""

    delivery: ClassVar[Delivery] = Delivery.CALL
    identity: SweepIdentity

    def serve(self, server: TrackingServer) -> str:
        tracker = server.open_tracker(self.identity)
        try:
            experiment_id = tracker.store.connect()
        except BaseException:
            tracker.store.cleanup()
            raise
        server.tracker = tracker  # only once connected: the requests after a refused Connect have no store
        return experiment_id

    def reply_seconds(self) -> float:
        return STARTUP_SECONDS  # the first request: the server may still be importing mlflow


@dataclass(frozen=True)
class OpenHub(Request[None]):
    """Serve this machine's workers too (`sweep run --jobs`): listen at ``address``, one session per worker
    (sweep/tracking/hub.py), so that no worker starts a tracking process or imports MLflow of its own."""

    delivery: ClassVar[Delivery] = Delivery.CALL
    address: HubAddress

    def serve(self, server: TrackingServer) -> None:
        server.open_hub(self.address)


@dataclass(frozen=True)
class OpenParent(Request[tuple[str, bool]]):
    """The sweep's parent run; answers (run id, created).

    A run creates it, or reopens ``parent_run_id`` on resume; without one, the parent run tagged with the
    study's ``token`` (its start was cut short) is adopted if there is one. With ``sync`` (`sweep sync`) an
    existing parent is only looked at, never reopened, and one MLflow lost is created again.
    """

    delivery: ClassVar[Delivery] = Delivery.CALL
    parent_run_id: str | None
    params: dict[str, Any]
    tags: dict[str, str]
    config_yaml: str
    token: str | None = None  # the study's token: finds a parent run it never linked
    sync: bool = False

    def serve(self, server: TrackingServer) -> tuple[str, bool]:
        parent = server.connected().parent
        open_or_sync = parent.sync if self.sync else parent.open
        return open_or_sync(self.parent_run_id, token=self.token, params=self.params, tags=self.tags,
                            config_yaml=self.config_yaml)


@dataclass(frozen=True)
class EndParentIfNeeded(Request[bool]):
    """End the parent with ``status`` unless it shows it already (None: leave it); answers whether it changed."""

    delivery: ClassVar[Delivery] = Delivery.CALL
    status: RunStatus | None
    counts: Counts

    def serve(self, server: TrackingServer) -> bool:
        return server.connected().parent.end_if_needed(self.status, self.counts)


@dataclass(frozen=True)
class AttachParent(Request[None]):
    """Log under an existing parent run without owning it (a worker neither reopens nor ends it)."""

    delivery: ClassVar[Delivery] = Delivery.CALL
    parent_run_id: str

    def serve(self, server: TrackingServer) -> None:
        server.connected().parent.attach(self.parent_run_id)


@dataclass(frozen=True)
class Reconcile(Request[Reconciled]):
    """Give every finished trial exactly one ended child run; answers the trials repaired and every trial's
    run id (the study must learn those of runs it created)."""

    delivery: ClassVar[Delivery] = Delivery.CALL
    trials: list[TrialRecord]

    def serve(self, server: TrackingServer) -> Reconciled:
        return server.connected().children.reconcile(self.trials)

    def reply_seconds(self) -> float:
        return REPLY_SECONDS + RECONCILE_SECONDS_PER_TRIAL * len(self.trials)


@dataclass(frozen=True)
class AgreeBest(Request[BestAgreement]):
    """`sweep sync`: make the parent's best (trial, run id, its model as ``publishing`` says) agree with
    ``best``; answers what was rewritten and what cannot be rebuilt."""

    delivery: ClassVar[Delivery] = Delivery.CALL
    best: BestTrial
    metric: str
    publishing: ModelPublishing

    def serve(self, server: TrackingServer) -> BestAgreement:
        return server.connected().parent.agree_best(self.best, self.metric, self.publishing)


# -- per trial ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StartTrial(Request[None]):
    """Create the trial's child run now; answered by Started (the loop collects it with Recorder.run_id)."""

    delivery: ClassVar[Delivery] = Delivery.START
    number: int
    start_ms: int

    def serve(self, server: TrackingServer) -> None:
        run_id = server.guard(self.number, lambda: server.connected().children.start(self.number, self.start_ms))
        if run_id is not None:
            server.open_runs[self.number] = run_id
        server.replies.put(Started(self.number, run_id))


@dataclass(frozen=True)
class FinishTrial(Request[None]):
    """Everything a finished trial's child run shows, and its end."""

    record: TrialRecord

    def serve(self, server: TrackingServer) -> None:
        record = with_run_id(self.record, server.open_runs.pop(self.record.number, None))
        server.guard(record.number, lambda: server.connected().children.finish(record))


@dataclass(frozen=True)
class RecordBest(Request[None]):
    """The best trial for the parent run: a new best of this loop, or with ``ensure`` the sweep's final best
    (found by any worker), written only when the parent does not show it already."""

    best: BestTrial
    metric: str
    ensure: bool = False

    def serve(self, server: TrackingServer) -> None:
        def write() -> None:
            parent = server.connected().parent
            (parent.ensure_best if self.ensure else parent.record_best)(self.best, self.metric)

        server.guard(None, write)


@dataclass(frozen=True)
class RecordCounts(Request[None]):
    """The trial counts for the parent run (only the latest is written, at most once a second)."""

    counts: Counts

    def serve(self, server: TrackingServer) -> None:
        server.pending_counts = self.counts  # written by the server's flush_counts_if_due


# -- the end ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PreparePublishing(Request[None]):
    """The sweep's end will log a pyfunc model: what that loads on first use is loaded now, while the trials run."""

    def serve(self, server: TrackingServer) -> None:
        server.guard(None, lambda: server.connected().publisher.warm_up())


@dataclass(frozen=True)
class PublishPlots(Request[None]):
    """SVG plots (file name -> bytes) for the parent's plots/ folder, replacing older ones, and why others
    were skipped."""

    images: dict[str, bytes]
    skipped: dict[str, str] = field(default_factory=dict)

    def serve(self, server: TrackingServer) -> None:
        logged = server.guard(None, lambda: server.connected().publisher.record_plots(self.images, self.skipped))
        if logged is not None:
            server.report = replace(server.report, plots=logged, plots_skipped=dict(self.skipped))


@dataclass(frozen=True)
class PublishFront(Request[None]):
    """The Pareto front of a sweep of several objectives on its parent: tag front.trials and pareto.json."""

    members: list[FrontMember]

    def serve(self, server: TrackingServer) -> None:
        server.guard(None, lambda: server.connected().publisher.record_front(self.members))


@dataclass(frozen=True)
class PublishModel(Request[None]):
    """The best trial's model on the parent, as ``publishing`` (the trainer's) says, registered as ``register``
    if given; the outcome comes back in the close report."""

    best: BestTrial | None
    register: str | None
    publishing: ModelPublishing

    def serve(self, server: TrackingServer) -> None:
        # publish_model turns its own failures into a warning; guard keeps anything else
        model = server.guard(None, lambda: server.connected().publisher.publish_model(self.best, self.register,
                                                                                      self.publishing))
        if model is not None:
            server.report = replace(server.report, model=model)


@dataclass(frozen=True)
class Close(Request[None]):
    """Write everything queued, end runs left open, end the parent with ``status`` (None: leave it) and
    ``tags`` (an empty value removes the tag); answered with the TrackingReport."""

    delivery: ClassVar[Delivery] = Delivery.END
    status: RunStatus | None
    counts: Counts
    tags: dict[str, str] = field(default_factory=dict)

    def serve(self, server: TrackingServer) -> None:
        self.end_runs(server)
        server.replies.put(Answer(operation(Close), server.report))

    def end_runs(self, server: TrackingServer) -> None:
        """The child runs left open, then the parent."""
        server.take_in_sessions()  # the workers' records it served: what failed there is this sweep's to report
        tracker = server.tracker
        if tracker is not None:
            for number, run_id in server.open_runs.items():  # started, never finished: the loop was interrupted
                server.guard(number, tracker.children.fail, run_id, "the sweep stopped before this trial ended",
                             RunStatus.KILLED)
            if self.status is not None:
                server.guard(None, tracker.parent.close, self.status, self.counts, self.tags)


class PlotImages(Protocol):
    images: dict[str, bytes]  # file name -> SVG document
    skipped: dict[str, str]  # plot -> why it was not made


class EndedSweep(Protocol):
    """The finished sweep as its background publisher reaches it: its study's plots, and where the published
    model is remembered (sweep/study/stored_end.py; picklable, and no Optuna call here)."""

    def plots(self) -> PlotImages:
        """The plots, or why each was not made: never raises."""

    def remember_model(self, model: PublishedModel) -> None: ...


@dataclass(frozen=True)
class PublishAndClose(Request[SweepEnding]):
    """The end of a sweep whose process returns before its publishing: the best model, the Pareto front, the
    plots (drawn from ``sweep``), the parent's end as ``close`` says, then the model remembered in the study.

    Served by a copy of this process that outlives the sweep's (TrackingServer.fork_publisher), holding the
    publisher lock at ``lock`` from before the answer until it exits; the answer names its pid. A server that
    cannot fork (one on a thread) serves it all before answering, with its report.
    """

    delivery: ClassVar[Delivery] = Delivery.END
    model: PublishModel
    front: PublishFront | None
    sweep: EndedSweep
    close: Close
    lock: Path

    def serve(self, server: TrackingServer) -> None:
        server.take_in_sessions()
        if not server.sweep_alive():  # killed since it asked: its resume runs the end again, not beside a publisher
            server.abandon()
            return
        publisher = server.fork_publisher(self.lock)
        if publisher:  # this process answers; its copy publishes
            # what failed so far (the trials' records) is the sweep's to report; the copy's own failures, sync's
            server.replies.put(Answer(operation(PublishAndClose), SweepEnding(server.report, publisher)))
            return
        self.model.serve(server)
        if self.front is not None:
            self.front.serve(server)
        drawn = self.sweep.plots()
        PublishPlots(drawn.images, drawn.skipped).serve(server)
        self.close.end_runs(server)
        server.guard(None, self.sweep.remember_model, server.report.model)
        if publisher == 0:
            server.end_publisher()  # does not return
        server.replies.put(Answer(operation(PublishAndClose), SweepEnding(server.report)))


@dataclass(frozen=True)
class Quit(Request[None]):
    """The loop is going away on an error: end what it had started, then exit."""

    delivery: ClassVar[Delivery] = Delivery.END

    def serve(self, server: TrackingServer) -> None:
        server.abandon()


def with_run_id(record: TrialRecord, run_id: str | None) -> TrialRecord:
    """The record naming the child run its StartTrial created, when there is one."""
    if run_id is None or record.run_id == run_id:
        return record
    return replace(record, run_id=run_id)
