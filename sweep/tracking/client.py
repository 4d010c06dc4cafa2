"""The sweep loop's handle on the tracking server: typed requests out, replies back, and the server's end."""

from __future__ import annotations

import queue
import time
from typing import Any

from sweep.errors import TrackingError
from sweep.records import Counts, SweepEnding, SweepIdentity, TrackingReport
from sweep.states import RunStatus
from sweep.tracking.operations import Close, Connect, FinishTrial, PublishAndClose, Quit
from sweep.tracking.protocol import (
    PARENT_CHECK_SECONDS,
    REPLY_SECONDS,
    A,
    Answer,
    Failure,
    Request,
    Started,
    operation,
)
from sweep.tracking.transport import ProcessTransport, TrackingTransport

QUIT_SECONDS = 60.0  # how long a stopping sweep lets the tracking process finish its current request


class Recorder:
    """The sweep loop's handle on the tracking server, reached through ``transport`` (the tracking process by
    default; a ThreadTransport serves the same requests in this process).

    The engine builds each request (sweep/tracking/operations.py) and calls it (waits for the answer) or sends
    it (queued; a failure comes back in close()'s report). Only what keeps state here has a method of its own:
    the experiment Connect found, the child run ids StartTrial answers, the close and the server's end.
    """

    def __init__(self, transport: TrackingTransport | None = None) -> None:
        self._transport: TrackingTransport = transport if transport is not None else ProcessTransport()
        self._transport.start()
        self._run_ids: dict[int, str | None] = {}
        self._store_touched = False  # no request yet: the server has opened no store
        self.experiment_id: str | None = None  # the sweep's experiment, once connect() found it
        # requests sent with ask(): how long each may take to be answered, and the answers come so far
        self._asked: dict[str, float] = {}
        self._answers: dict[str, Any] = {}

    def connect(self, identity: SweepIdentity) -> str:
        """Reach the tracking store and find or create the experiment; returns its id (kept as experiment_id)."""
        self.experiment_id = self.call(Connect(identity))
        return self.experiment_id

    def ask(self, request: Request[Any]) -> None:
        """Send a CALL request without waiting for its answer: answer() takes it later. A failure raises
        TrackingError from whichever wait or look at the replies comes next."""
        self.send(request)
        self._asked[operation(request)] = request.reply_seconds()

    def answer(self, request: type[Request[A]], *, wait: bool) -> A | None:
        """The answer to the request of this type that ask() sent; None while it has not come (``wait=False``)."""
        name = operation(request)
        if name not in self._answers:
            if wait:
                self._answers[name] = self._wait(name, timeout=self._asked[name])
            else:
                self._look()
        answer: A | None = self._answers.get(name)
        return answer

    def experiment(self) -> str | None:
        """The sweep's experiment id, waiting for the Connect that ask() sent if need be (a trial's code asks)."""
        if self.experiment_id is None and operation(Connect) in self._asked:
            self.experiment_id = self.answer(Connect, wait=True)
        return self.experiment_id

    def run_id(self, number: int, timeout: float = REPLY_SECONDS) -> str | None:
        """The child run id of a started trial, or None when the tracking store could not create it (or, with a
        ``timeout`` of 0, has not yet answered)."""
        if timeout == 0:
            self._look()
            return self._run_ids.get(number)
        deadline = time.monotonic() + timeout
        while number not in self._run_ids:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._transport.alive():
                return None
            try:
                reply = self._transport.get(timeout=min(remaining, PARENT_CHECK_SECONDS))
            except queue.Empty:
                continue
            self._take(reply)
        # kept until the trial is finished: fit may ask for it (trial.run_id, `mlflow: active`) before the
        # loop asks again for the trial's record; popping it here made that second ask wait REPLY_SECONDS
        return self._run_ids[number]

    def started(self, number: int) -> bool:
        """Whether the tracking process has answered the trial's StartTrial (with a run id or None)."""
        return number in self._run_ids

    def close(self, status: RunStatus | None, counts: Counts, tags: dict[str, str] | None = None) -> TrackingReport:
        """End the parent run with ``status`` once every queued record is written; None leaves the
        parent as it is (a worker that does not own it). ``tags`` go on the parent as it ends ("" removes one)."""
        report: TrackingReport = self._last_answer(Close(status, counts, dict(tags or {})))
        return report

    def close_publishing_later(self, request: PublishAndClose) -> SweepEnding:
        """As close(), once every queued record is written, but the plots, the model and the parent's end are left
        to a background publisher when the server can fork one (the answer names it): the sweep need not wait."""
        ending: SweepEnding = self._last_answer(request)
        return ending

    def _last_answer(self, request: Request[Any]) -> Any:
        """Send the server's last request (an END) and wait as long as it takes for its answer."""
        self.send(request)
        while True:
            try:
                answer = self._wait(operation(request), timeout=None)
                self._transport.closed()  # a process is not waited for; a thread is (see TrackingTransport)
                return answer
            except KeyboardInterrupt:
                continue  # already closing: a second Ctrl-C must not cut the final writes short

    def terminate(self, grace: float = QUIT_SECONDS) -> None:
        """Stop the process after the request it is serving, then kill it if it does not exit.

        Killed mid-request, it could leave a half-migrated MLflow database that no later run opens;
        asked to quit, it finishes that request first (it ignores Ctrl-C and SIGTERM itself). Before
        any request it has opened no store: a sweep refused early (bad data) need not wait for its
        `import mlflow` to end."""
        if self._transport.alive() and self._store_touched:
            self.send(Quit())
            self._transport.join(timeout=grace)
        self._transport.kill()

    # -- any request --------------------------------------------------------------------------------

    def send(self, request: Request[Any]) -> None:
        """Queue a request; a LOG request's failure comes back in close()'s report."""
        if isinstance(request, FinishTrial):  # its run id was handed over: nobody asks for it again
            self._run_ids.pop(request.record.number, None)
        self._store_touched = True
        self._transport.put(request)

    def call(self, request: Request[A]) -> A:
        """Send a CALL request and wait as long as it says for its answer; raises TrackingError with the
        server's one-line error."""
        self.send(request)
        answer: A = self._wait(operation(request), timeout=request.reply_seconds())
        return answer

    def _wait(self, expected: str, *, timeout: float | None) -> Any:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise TrackingError(f"the MLflow tracking store did not answer within {timeout:.0f} s")
            try:
                reply = self._transport.get(timeout=PARENT_CHECK_SECONDS if remaining is None
                                            else min(remaining, PARENT_CHECK_SECONDS))
            except queue.Empty:
                if not self._transport.alive():
                    raise TrackingError("the tracking process stopped unexpectedly") from None
                continue
            if isinstance(reply, Answer) and reply.operation == expected:
                return reply.value
            self._take(reply)

    def _look(self) -> None:
        """Take every reply that has come, without waiting."""
        while True:
            try:
                reply = self._transport.get(timeout=0)
            except queue.Empty:
                return
            self._take(reply)

    def _take(self, reply: Any) -> None:
        """Keep a reply that is not the one waited for: a run id, or the answer to an ask(); a failure raises."""
        if isinstance(reply, Started):
            self._run_ids[reply.number] = reply.run_id
        elif isinstance(reply, Failure):
            raise TrackingError(reply.message)
        elif isinstance(reply, Answer) and reply.operation in self._asked:
            self._answers[reply.operation] = reply.value
