"""The end of a sweep: the final best on the parent run, its plots and best model, and the study's last state."""

from __future__ import annotations

from sweep.config import SweepConfig
from sweep.engine.progress import SweepListener
from sweep.records import BestTrial, TrackingReport
from sweep.study.census import Census
from sweep.study.plots import PLOT_MIN_TRIALS, StudyPlots
from sweep.study.sweep_study import SweepStudy
from sweep.tracking import Recorder


def end_sweep(study: SweepStudy, config: SweepConfig, recorder: Recorder, final: Census, state: str,
              parent_status: str, register: str | None, listener: SweepListener) -> TrackingReport:
    """The sweep ends here: the best whichever worker found it, plots and model, the parent's status, then
    the study's state.

    The study is marked last: a sweep killed after marking it finished but before its parent run was closed
    would be "complete" to `--resume`, which then never touches MLflow again, and the parent stays RUNNING.
    Killed before the mark, the resume runs the end again, and every step of it can be repeated.
    """
    listener.finishing()
    if final.best is not None:
        recorder.ensure_best(final.best, config.metric)
    publish_results(study, recorder, final.best, register, builtin=config.trainer.builtin)
    report = recorder.close(parent_status, final.finished)
    study.remember_model(report.model)
    study.set_status(state)
    return report


def publish_results(study: SweepStudy, recorder: Recorder, best: BestTrial | None, register: str | None, *,
                    builtin: bool) -> None:
    """Plots and the best model for the parent run: once, at the end of an invocation, never per trial.

    The model goes first: the tracking process logs it while this process draws the plots. ``builtin``:
    the built-in trainer, whose model.json becomes a pyfunc model; a function trainer's model is the one
    its best trial logged, if any.
    """
    recorder.publish_model(best, register, builtin=builtin)
    try:
        made = study.plots()
    except Exception as error:  # pictures are never worth a sweep's result: note it, carry on
        reason = f"{type(error).__name__}: {error}".splitlines()[0]
        made = StudyPlots({}, dict.fromkeys(PLOT_MIN_TRIALS, reason), 0.0)
    recorder.plots(made.images, made.skipped)

