"""The end of a sweep: the final best on the parent run, its plots and best model, and the study's last state."""

from __future__ import annotations

from dataclasses import replace

import optuna

from sweep.config import SweepConfig
from sweep.engine.progress import SweepListener
from sweep.records import BestTrial, ModelPublishing, TrackingReport
from sweep.states import SweepEnd, SweepStatus
from sweep.study.attrs import SweepAttrs
from sweep.study.census import Census
from sweep.study.plots import PLOT_MIN_TRIALS, StudyPlots, study_plots
from sweep.tracking import Recorder
from sweep.tracking.operations import PublishModel, PublishPlots, RecordBest


def end_sweep(study: optuna.Study, config: SweepConfig, recorder: Recorder, final: Census, end: SweepEnd,
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
    remember_model(study, report)
    mark_status(study, end.status)
    return report


def mark_status(study: optuna.Study, status: SweepStatus) -> None:
    """The sweep's state in the study: running, finished, interrupted or failed (`sweep ls`, `--resume` read it)."""
    replace(SweepAttrs.read(study), status=status.value).write(study)


def publish_results(study: optuna.Study, recorder: Recorder, best: BestTrial | None, register: str | None,
                    publishing: ModelPublishing) -> None:
    """Plots and the best model for the parent run: once, at the end of an invocation, never per trial.

    The model goes first, as the trainer's ``publishing`` says: the tracking process logs it while this
    process draws the plots.
    """
    recorder.send(PublishModel(best, register, publishing))
    try:
        made = study_plots(study)
    except Exception as error:  # pictures are never worth a sweep's result: note it, carry on
        reason = f"{type(error).__name__}: {error}".splitlines()[0]
        made = StudyPlots({}, dict.fromkeys(PLOT_MIN_TRIALS, reason), 0.0)
    recorder.send(PublishPlots(made.images, made.skipped))


def remember_model(study: optuna.Study, report: TrackingReport) -> None:
    """The best model's URI, trial and registered version in the study, for `sweep best` (no MLflow there)."""
    model = report.model
    if model.uri is None and model.warning is None:
        return  # nothing published here (a worker: the sweep's owner publishes): keep what the study has
    registered_trial = model.trial if model.registered is not None else None
    replace(SweepAttrs.read(study), model_uri=model.uri, model_trial=model.trial, registered_model=model.registered,
            registered_trial=registered_trial).write(study)
