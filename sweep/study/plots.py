"""The end of a sweep: plots of the study and the best model published on the parent run."""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import TrialState

from sweep.recorder import Recorder, TrackingReport
from sweep.records import BestTrial
from sweep.study.storage import ATTR

PLOT_DPI = 80  # ~510x380 px per panel: readable in the MLflow UI, ~20-150 kB per PNG, quick to encode


# completed trials a plot needs to show anything: a comparison needs two; a history starts with one
PLOT_MIN_TRIALS = {"optimization_history": 1, "param_importances": 2, "parallel_coordinate": 2, "slice": 2}


@dataclass(frozen=True)
class StudyPlots:
    images: dict[str, bytes]  # file name (optimization_history.png, ...) -> PNG
    skipped: dict[str, str]  # plot name -> why it was not made
    seconds: float  # what making them cost, matplotlib's import included


def study_plots(study: optuna.Study) -> StudyPlots:
    """Optuna's optimization history, parameter importances, parallel coordinates and slice plots, as PNGs.

    A plot the trials cannot support yet is skipped with a reason, never an error: a sweep's result
    matters more than its pictures. matplotlib (~0.3 s to import) is loaded here only, at the end of a
    sweep. Importances come from PED-ANOVA: numpy only and milliseconds, where Optuna's default
    (fANOVA) fits a scikit-learn random forest (about a second with its import).
    """
    started = time.perf_counter()
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    skipped: dict[str, str] = {}
    for plot, needed in PLOT_MIN_TRIALS.items():
        if len(complete) < needed:
            skipped[plot] = f"needs {needed} completed trial{'s' if needed > 1 else ''}, the sweep has {len(complete)}"
    if "param_importances" not in skipped and not _params_vary(complete):
        skipped["param_importances"] = "every completed trial has the same settings"
    if len(skipped) == len(PLOT_MIN_TRIALS):
        return StudyPlots({}, skipped, time.perf_counter() - started)

    try:
        import matplotlib
    except ImportError:  # MLflow brings it, but mlflow-skinny does not
        reason = "matplotlib is not installed: pip install matplotlib"
        return StudyPlots({}, {plot: skipped.get(plot, reason) for plot in PLOT_MIN_TRIALS},
                          time.perf_counter() - started)

    import sys

    if "matplotlib.pyplot" not in sys.modules:  # switching a caller's backend later would close its figures
        matplotlib.use("Agg")  # files only: no display, no GUI toolkit
    import matplotlib.pyplot as plt

    plots, evaluator = _optuna_matplotlib()
    metric = str(study.user_attrs.get(f"{ATTR}metric", "Objective Value"))  # axis labels say what was optimized
    makers: dict[str, Callable[[optuna.Study], Any]] = {
        "optimization_history": lambda s: plots.plot_optimization_history(s, target_name=metric),
        "param_importances": lambda s: plots.plot_param_importances(s, evaluator=evaluator, target_name=metric),
        "parallel_coordinate": lambda s: plots.plot_parallel_coordinate(s, target_name=metric),
        "slice": lambda s: plots.plot_slice(s, target_name=metric),
    }
    images: dict[str, bytes] = {}
    for plot, make in makers.items():
        if plot in skipped:
            continue
        figure = None
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                axes = make(study)
            figure = axes.figure if hasattr(axes, "figure") else axes.flat[0].figure  # slice: an array of axes
            equal = [str(w.message) for w in caught if "importances will be equal" in str(w.message)]
            if equal:  # too few trials for PED-ANOVA's top quantile: every bar would be the same
                skipped[plot] = equal[0]
                continue
            images[f"{plot}.png"] = _png(figure)
        except Exception as error:  # a plot is never worth failing a sweep over
            skipped[plot] = f"{type(error).__name__}: {error}".splitlines()[0]
        finally:
            if figure is not None:
                plt.close(figure)
    return StudyPlots(images, skipped, time.perf_counter() - started)


def _optuna_matplotlib() -> tuple[Any, Any]:
    """optuna.visualization.matplotlib and a PED-ANOVA evaluator, imported without scikit-learn.

    optuna.importance imports scikit-learn (and with it scipy.stats) when it is installed, as MLflow
    makes it, for its fANOVA and mean-decrease-impurity evaluators: ~0.85 s of the ~1.5 s the plots
    would cost, for evaluators never used here. While optuna.importance loads, `import sklearn` fails
    fast, which Optuna takes as "not installed"; scikit-learn stays importable afterwards. The price:
    in this process, Optuna's fANOVA evaluator would report scikit-learn missing (nothing here uses it).
    """
    import sys

    hidden = "optuna.importance" not in sys.modules and "sklearn" not in sys.modules
    if hidden:
        sys.modules["sklearn"] = None  # type: ignore[assignment]  # Python's "this import fails" marker
    try:
        from optuna.importance import PedAnovaImportanceEvaluator  # optuna.importance is lazy: load it now
        from optuna.visualization import matplotlib as plots
    finally:
        if hidden:
            del sys.modules["sklearn"]
    return plots, PedAnovaImportanceEvaluator()


def _params_vary(trials: list[optuna.trial.FrozenTrial]) -> bool:
    """Whether some tuned setting took two values: importances need something to attribute."""
    names = {name for trial in trials for name in trial.params}
    return any(len({repr(trial.params.get(name)) for trial in trials}) > 1 for name in names)


def _png(figure: Any) -> bytes:
    import io

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=PLOT_DPI, bbox_inches="tight")
    return buffer.getvalue()


def _publish_results(study: optuna.Study, recorder: Recorder, best: BestTrial | None, register: str | None) -> None:
    """Plots and the best model for the parent run: once, at the end of an invocation, never per trial.

    The model goes first: the tracking process logs it (~0.5 s) while this process draws the plots.
    """
    recorder.publish_model(best, register)
    try:
        made = study_plots(study)
    except Exception as error:  # pictures are never worth a sweep's result: note it, carry on
        reason = f"{type(error).__name__}: {error}".splitlines()[0]
        made = StudyPlots({}, dict.fromkeys(PLOT_MIN_TRIALS, reason), 0.0)
    recorder.plots(made.images, made.skipped)


def _remember_model(study: optuna.Study, report: TrackingReport) -> None:
    """The pyfunc model's URI, trial and registered version in the study, for `sweep best` (no MLflow there)."""
    attrs = study.user_attrs
    model = report.model
    registered_trial = model.trial if model.registered is not None else None
    for key, value in (("model_uri", model.uri), ("model_trial", model.trial), ("registered_model", model.registered),
                       ("registered_trial", registered_trial)):
        if value is not None and attrs.get(f"{ATTR}{key}") != value:
            study.set_user_attr(f"{ATTR}{key}", value)
