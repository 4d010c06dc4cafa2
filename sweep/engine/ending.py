"""The end of a sweep: the final best on the parent run, its plots and best model, and the study's last state."""

from __future__ import annotations

from sweep.config import SweepConfig
from sweep.engine.progress import SweepListener
from sweep.records import BestTrial, ModelPublishing, TrackingReport
from sweep.states import SweepEnd
from sweep.study.census import Census
from sweep.study.plots import PLOT_MIN_TRIALS, StudyPlots
from sweep.study.sweep_study import SweepStudy
from sweep.tracking import Recorder
from sweep.tracking.operations import PublishFront, PublishModel, PublishPlots, RecordBest


def end_sweep(study: SweepStudy, config: SweepConfig, recorder: Recorder, final: Census, end: SweepEnd,
              publishing: ModelPublishing, register: str | None, listener: SweepListener) -> TrackingReport:
    """The sweep ends here: the best whichever worker found it, plots and model (as the trainer's
    ``publishing`` says), the parent's status, then the study's (both as ``end`` says).

    The study is marked last: a sweep killed after marking it finished but before its parent run was closed
    would be "complete" to `--resume`, which then never touches MLflow again, and the parent stays RUNNING.
    Killed before the mark, the resume runs the end again, and every step of it can be repeated.
    """
    listener.finishing()
    if final.best is not None:
        recorder.send(RecordBest(final.best, config.metric, ensure=True))
    publish_results(study, recorder, final.best, register, publishing)
    report = recorder.close(end.run_status, final.finished)
    study.remember_model(report.model)
    study.set_status(end.status)
    return report


def publish_results(study: SweepStudy, recorder: Recorder, best: BestTrial | None, register: str | None,
                    publishing: ModelPublishing) -> None:
    """Plots and the best model for the parent run: once, at the end of an invocation, never per trial.

    The model goes first, as the trainer's ``publishing`` says: the tracking process logs it while this
    process draws the plots.
    """
    recorder.send(PublishModel(best, register, publishing))
    if study.config.multi_objective:
        recorder.send(PublishFront(study.front()))
    try:
        made = study.plots()
    except Exception as error:  # pictures are never worth a sweep's result: note it, carry on
        reason = f"{type(error).__name__}: {error}".splitlines()[0]
        made = StudyPlots({}, dict.fromkeys(PLOT_MIN_TRIALS, reason), 0.0)
    recorder.send(PublishPlots(made.images, made.skipped))

