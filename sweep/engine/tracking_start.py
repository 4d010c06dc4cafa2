"""A new sweep's first trials run while its tracking process is still starting (importing MLflow, opening the
store): the experiment and the parent run are asked for without waiting, and linked as soon as MLflow answers.

Until the parent run is linked the study says "starting", as it does while a sweep's start waits for MLflow. A
thread of its own waits for MLflow's answers and links the parent run, so that a long first trial does not keep
the link (which `sweep worker`s wait for) from the study. A trial the tracking process has not yet made a child
run for is told without its run id, and the id is linked once known (the study's run_ids: as `sweep sync` links
the runs it rebuilds), at the latest before the sweep's end reads the study. Killed meanwhile, `--resume` and
`sweep sync` find the parent run by the study's token and every trial's run by its number (Reconcile). MLflow
refusing the start discards the study with its trials: nothing is half-written, as when the trials waited.

Once the early trials are linked, every later trial waits for its run id as before; so does a trial whose code
asks for it (``trial.run_id``, a command's MLFLOW_RUN_ID), once the parent is linked. A tracking process that
never catches up ends the early start after EARLY_LIMIT trials.
"""

from __future__ import annotations

import threading

from sweep.study.sweep_study import SweepStudy
from sweep.tracking import Recorder
from sweep.tracking.operations import OpenParent

EARLY_LIMIT = 500  # trials told without their run id at most: the study keeps each one's link until the end


class TrackingStart:
    """The answers of a new sweep's Connect and OpenParent (sent with Recorder.ask), and the run ids of the
    trials told before they came.

    Only the linking thread reads the tracking process's replies until it has linked the parent run (or found the
    start refused); the loop's thread reads them after ready()."""

    def __init__(self, study: SweepStudy, recorder: Recorder) -> None:
        self.study, self.recorder = study, recorder
        self.parent_run_id: str | None = None
        self.unlinked: set[int] = set()  # trials told without their run id, whose run id is not yet known
        self.found: dict[int, str] = {}  # run ids known of those, not yet written to the study
        self.over = False  # every early trial linked: later trials wait for their run id
        self._refused: BaseException | None = None
        self._linking = threading.Thread(target=self._link_parent, name="sweep-parent-link", daemon=True)
        self._linking.start()

    def _link_parent(self) -> None:
        try:
            answered = self.recorder.answer(OpenParent, wait=True)
            assert answered is not None
            self.parent_run_id = answered[0]
            self.study.link_parent(self.parent_run_id, self.recorder.experiment())
        except BaseException as error:  # raised in the loop's thread by ready()
            self._refused = error

    @property
    def ahead(self) -> bool:
        """A trial ending now is told without waiting for its run id."""
        return not self.over and len(self.unlinked) + len(self.found) < EARLY_LIMIT

    def ready(self) -> None:
        """Wait until the parent run is linked (the trial's code asks for its run, or the trials are over); raises
        what MLflow answered if it refused the start."""
        self._linking.join()
        if self._refused is not None:
            raise self._refused

    def run_id(self, number: int) -> str | None:
        """A trial's run id if the tracking process has made it, without waiting (None: not yet, or the parent
        run is not linked yet)."""
        if self._linking.is_alive():
            return None
        self.ready()
        return self.recorder.run_id(number, timeout=0)

    def told(self, number: int, run_id: str | None) -> None:
        """A trial was told with ``run_id`` (None: not yet known); then what has come is linked, without waiting."""
        if run_id is None:
            self.unlinked.add(number)
        self.settle(wait=False)

    def settle(self, *, wait: bool) -> None:
        """Link the run ids that have come (``wait``: all of them, once the parent is linked); raises what MLflow
        answered when it refused the start."""
        if not wait and self._linking.is_alive():
            return
        self.ready()
        for number in sorted(self.unlinked):
            run_id = self.recorder.run_id(number) if wait else self.recorder.run_id(number, timeout=0)
            if run_id is not None or wait or self.recorder.started(number):
                self.unlinked.discard(number)
                if run_id is not None:
                    self.found[number] = run_id
        if not self.unlinked:  # one write for all the early trials (the study keeps them as one attribute)
            if self.found:
                self.study.relink_runs(self.found)
                self.found = {}
            self.over = True
