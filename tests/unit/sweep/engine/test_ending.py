"""The end of a sweep, against a real journal study: what the study says if the end is cut short."""

from __future__ import annotations

import pytest

from sweep.engine.ending import end_sweep
from sweep.locations import StorageLocation
from sweep.records import TRIAL_LOGGED_MODEL, Counts, TrackingReport
from sweep.states import LoopEnd, sweep_end
from sweep.study.attrs import SweepAttrs
from sweep.study.census import Census
from sweep.study.sweep_study import SweepStudy
from sweep.tracking.operations import PublishModel, PublishPlots, RecordBest
from sweep.tracking.protocol import Request
from tests.unit.sweep.study.conftest import new_sweep, sweep_config


class KilledWhileClosing(Exception):
    """Stands for the SIGKILL that lands while the tracking process ends the parent run."""


class RecorderKilledAtClose:
    """The tracking side of a sweep whose process dies while the parent run is being closed."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def send(self, request: Request) -> None:
        named = {RecordBest: "ensure_best", PublishModel: "publish_model", PublishPlots: "plots"}
        self.calls.append(named[type(request)])

    def close(self, status: str | None, counts: Counts, tags: dict[str, str] | None = None) -> TrackingReport:
        self.calls.append("close")
        raise KilledWhileClosing


class QuietListener:
    def finishing(self) -> None:
        pass


def test_a_sweep_killed_while_closing_its_parent_run_is_not_marked_finished(journal: StorageLocation):
    # marked finished first, `--resume` would find a complete sweep and never end its RUNNING parent run
    study = new_sweep(journal, config=sweep_config(trials=1))
    final = Census(counted=0, running=0, waiting=0, finished=Counts(), best=None)
    recorder = RecorderKilledAtClose()
    with pytest.raises(KilledWhileClosing):
        end_sweep(SweepStudy(study, sweep_config(trials=1)), sweep_config(trials=1), recorder, final,  # type: ignore[arg-type]
                  sweep_end(LoopEnd.FINISHED, Counts(1)), TRIAL_LOGGED_MODEL, None, QuietListener())  # type: ignore[arg-type]
    assert recorder.calls[-1] == "close"
    assert SweepAttrs.read(study).status == "running"
