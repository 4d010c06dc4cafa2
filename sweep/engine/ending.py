"""The end of a sweep: the final best on the parent run, its plots and best model, and the study's last state."""

from __future__ import annotations

from sweep.config import SweepConfig
from sweep.engine.progress import SweepListener
from sweep.locations import StorageLocation
from sweep.publisher_lock import lock_path
from sweep.records import BestTrial, ModelPublishing, SweepEnding
from sweep.states import StopRule, SweepEnd
from sweep.study.census import Census
from sweep.study.plots import plots_or_why_not
from sweep.study.stopping import has_rules
from sweep.study.stored_end import StoredSweep
from sweep.study.sweep_study import SweepStudy
from sweep.tracking import Recorder
from sweep.tracking.operations import Close, PublishAndClose, PublishFront, PublishModel, PublishPlots, RecordBest

STOPPED_BY_TAG = "sweep.stopped_by"  # on the parent run: the rule of the config that ended the sweep early
TARGET_TAG = "sweep.target"  # on the parent run: the trial target, written at the start and by the end if it changed


def end_sweep(study: SweepStudy, config: SweepConfig, recorder: Recorder, final: Census, end: SweepEnd,
              publishing: ModelPublishing, register: str | None, listener: SweepListener,
              stopped_by: StopRule | None = None, *, publish_later: StorageLocation | None = None) -> SweepEnding:
    """The sweep ends here: the best whichever worker found it, plots and model (as the trainer's
    ``publishing`` says), the parent's status, then the study's (both as ``end`` says), and the rule of the
    config that ended it early (``stopped_by``: tag sweep.stopped_by, study attribute stopped_by).

    The study is marked last: a sweep killed after marking it finished but before its parent run was closed
    would be "complete" to `--resume`, which then never touches MLflow again, and the parent stays RUNNING.
    Killed before the mark, the resume runs the end again, and every step of it can be repeated.

    ``publish_later`` (the sweep's storage): the plots, the model and the parent's end are left to a background
    publisher that outlives this process (PublishAndClose), and the study is marked once that publisher is
    started, so the caller returns once the study is final; `sweep sync` repairs what a publisher cut short leaves
    undone. It registers no model: a ``register`` is for a sweep that waits (run_sweep asks for one or the other).
    """
    if final.best is not None:
        recorder.send(RecordBest(final.best, config.metric, ensure=True))
    # a config with rules says on every end whether one ended it: a resume that ran on clears an earlier one
    rule = (stopped_by or "") if has_rules(config) else None
    tags = {STOPPED_BY_TAG: rule} if rule is not None else {}
    if final.target is not None and final.target != config.trials:  # `sweep set` changed it while the sweep ran
        tags[TARGET_TAG] = str(final.target)
    close = Close(end.run_status, final.finished, tags)
    if publish_later is not None:
        front = PublishFront(study.front()) if config.multi_objective else None
        ending = recorder.close_publishing_later(PublishAndClose(
            PublishModel(final.best, None, publishing), front, StoredSweep(publish_later, study.name), close,
            lock_path(publish_later, study.name)))
        study.set_status(end.status, rule)  # last here too: killed before, the resume runs the end again
        return ending
    listener.finishing()
    publish_results(study, recorder, final.best, register, publishing)
    report = recorder.close(close.status, close.counts, close.tags or None)
    study.remember_model(report.model)
    study.set_status(end.status, rule)
    return SweepEnding(report)


def publish_results(study: SweepStudy, recorder: Recorder, best: BestTrial | None, register: str | None,
                    publishing: ModelPublishing) -> None:
    """Plots and the best model for the parent run: once, at the end of an invocation, never per trial.

    The model goes first, as the trainer's ``publishing`` says: the tracking process logs it while this
    process draws the plots.
    """
    recorder.send(PublishModel(best, register, publishing))
    if study.config.multi_objective:
        recorder.send(PublishFront(study.front()))
    made = plots_or_why_not(study.plots)
    recorder.send(PublishPlots(made.images, made.skipped))
