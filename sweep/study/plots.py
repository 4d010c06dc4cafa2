"""Optuna's plots of a study, drawn as PNGs for the parent run at the end of a sweep."""

from __future__ import annotations

import contextlib
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import TrialState

from sweep.study.attrs import SweepAttrs
from sweep.study.census import is_feasible
from sweep.study.optuna_internals import StudyOfTrials
from sweep.urls import redact_text

PLOT_DPI = 80  # with PLOT_INCHES: 1000x600 px, the width of MLflow's artifact viewer; small PNGs, quick to encode
PLOT_INCHES = (12.5, 7.5)
MAX_TICKS = 6  # per numeric axis: a parallel-coordinate axis or a slice panel is ~200 px wide


# completed trials a parallel-coordinate or slice plot draws at most: past a few thousand lines or points a plot
# shows a blot, and drawing them is most of the end of a large sweep
DRAWN_TRIALS = 2000
DRAWN_PLOTS = ("parallel_coordinate", "slice")
DRAWN_BEST_SHARE = 0.1  # of DRAWN_TRIALS, the best trials (always drawn); the rest spread evenly over the others

# completed trials a plot needs to show anything: a comparison needs two; a history starts with one
PLOT_MIN_TRIALS = {"optimization_history": 1, "param_importances": 2, "parallel_coordinate": 2, "slice": 2}


@dataclass(frozen=True)
class StudyPlots:
    images: dict[str, bytes]  # file name (optimization_history.png, ...) -> PNG
    skipped: dict[str, str]  # plot name -> why it was not made
    seconds: float  # what making them cost, matplotlib's import included


def plots_or_why_not(draw: Callable[[], StudyPlots]) -> StudyPlots:
    """``draw()``'s plots; if it fails as a whole (the storage could not be read, say), none, each skipped with its
    error's first line (password hidden): pictures are never worth a sweep's result."""
    try:
        return draw()
    except Exception as error:
        reason = redact_text(f"{type(error).__name__}: {error}".splitlines()[0])
        return StudyPlots({}, dict.fromkeys(PLOT_MIN_TRIALS, reason), 0.0)


def study_plots(study: optuna.Study) -> StudyPlots:
    """Optuna's optimization history, parameter importances, parallel coordinates and slice plots, as PNGs.

    A plot the trials cannot support yet is skipped with a reason, never an error: a sweep's result
    matters more than its pictures. matplotlib (~0.3 s to import) is loaded here only, at the end of a
    sweep. Importances come from PED-ANOVA: numpy only and milliseconds, where Optuna's default
    (fANOVA) fits a scikit-learn random forest (about a second with its import).
    """
    started = time.perf_counter()
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    several = len(study.directions) > 1
    wanted = {**PLOT_MIN_TRIALS, **({"pareto_front": 1} if several else {})}
    skipped: dict[str, str] = {}
    for plot, needed in wanted.items():
        if len(complete) < needed:
            skipped[plot] = f"needs {needed} completed trial{'s' if needed > 1 else ''}, the sweep has {len(complete)}"
    if several and "pareto_front" not in skipped and not any(is_feasible(trial) for trial in complete):
        skipped["pareto_front"] = "no completed trial meets the constraints yet"
    if "param_importances" not in skipped and not _params_vary(complete):
        skipped["param_importances"] = "every completed trial has the same settings"
    if len(skipped) == len(wanted):
        return StudyPlots({}, skipped, time.perf_counter() - started)

    try:
        plt, plots, evaluator = plotting_modules()
    except ImportError:  # MLflow brings matplotlib, but mlflow-skinny does not
        reason = "matplotlib is not installed: pip install matplotlib"
        return StudyPlots({}, {plot: skipped.get(plot, reason) for plot in wanted},
                          time.perf_counter() - started)
    attrs = SweepAttrs.read(study)
    metric = attrs.metric if attrs.is_sweep else "Objective Value"  # axis labels say what was optimized
    drawn = drawn_trials(complete, maximize=study.directions[0] == optuna.study.StudyDirection.MAXIMIZE)
    part = StudyOfTrials(study, drawn) if len(drawn) < len(complete) else study
    # with several objectives, Optuna's one-objective plots need to be told which: the first
    first = (lambda trial: trial.values[0]) if several else None
    makers: dict[str, Callable[[optuna.Study], Any]] = {
        "optimization_history": lambda s: plots.plot_optimization_history(s, target=first, target_name=metric),
        "param_importances": lambda s: plots.plot_param_importances(s, evaluator=evaluator, target=first,
                                                                    target_name=metric),
        "parallel_coordinate": lambda _: plots.plot_parallel_coordinate(part, target=first, target_name=metric),
        "slice": lambda _: plots.plot_slice(part, target=first, target_name=metric),
    }
    if several:
        names = [name for name, _ in attrs.objectives] if attrs.is_sweep else None
        makers["pareto_front"] = lambda s: pareto_plot(plots, s, names)
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
            readable_ticks(figure)
            if plot in DRAWN_PLOTS and part is not study:
                figure.text(0.01, 0.0, f"{len(drawn):,} of {len(complete):,} completed trials drawn: the best "
                            f"{int(DRAWN_TRIALS * DRAWN_BEST_SHARE):,} and an even spread of the others",
                            fontsize=9, color="0.35")
            images[f"{plot}.png"] = _png(figure)
        except Exception as error:  # a plot is never worth failing a sweep over
            skipped[plot] = f"{type(error).__name__}: {error}".splitlines()[0]
        finally:
            if figure is not None:
                plt.close(figure)
    return StudyPlots(images, skipped, time.perf_counter() - started)


def drawn_trials(complete: list[optuna.trial.FrozenTrial], *, maximize: bool) -> list[optuna.trial.FrozenTrial]:
    """The completed trials a parallel-coordinate or slice plot draws, in number order: all of them up to
    DRAWN_TRIALS; beyond, the best by the first objective and an even spread of the others (a plot of a
    10,000-trial sweep then shows its best region and its whole range, and draws in a fraction of the time)."""
    if len(complete) <= DRAWN_TRIALS:
        return complete
    best_count = int(DRAWN_TRIALS * DRAWN_BEST_SHARE)
    ranked = sorted(complete, key=lambda trial: trial.values[0], reverse=maximize)
    best = {trial.number for trial in ranked[:best_count]}
    others = [trial for trial in complete if trial.number not in best]
    step = len(others) / (DRAWN_TRIALS - best_count)
    spread = {others[int(index * step)].number for index in range(DRAWN_TRIALS - best_count)}
    return [trial for trial in complete if trial.number in best or trial.number in spread]


def pareto_plot(plots: Any, study: optuna.Study, names: list[str] | None) -> Any:
    """Optuna's Pareto-front plot: every objective against every other with two or three; beyond three, the first
    two (Optuna draws at most three axes)."""
    if len(study.directions) <= 3:
        return plots.plot_pareto_front(study, target_names=names)
    return plots.plot_pareto_front(study, targets=lambda trial: (trial.values[0], trial.values[1]),
                                   target_names=names[:2] if names else None)


def plotting_modules() -> tuple[Any, Any, Any]:
    """matplotlib.pyplot (on the files-only backend unless pyplot was loaded already), Optuna's matplotlib plots and
    a PED-ANOVA evaluator; ImportError without matplotlib."""
    import sys

    import matplotlib

    if "matplotlib.pyplot" not in sys.modules:  # switching a caller's backend later would close its figures
        matplotlib.use("Agg")  # files only: no display, no GUI toolkit
    import matplotlib.pyplot as plt

    plots, evaluator = _optuna_matplotlib()
    return plt, plots, evaluator


def preload_plotting() -> None:
    """Import what study_plots needs ahead of a sweep's end, which then does not wait for it (`sweep run --jobs`
    does it on a thread while its workers run the trials). Whatever fails here fails again, and is reported, there."""
    with contextlib.suppress(Exception):
        plotting_modules()


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


def readable_ticks(figure: Any) -> None:
    """A larger figure, and at most MAX_TICKS labels per numeric axis, none of them on minor ticks.

    Optuna labels every minor tick of a log axis (2x10^-1, 3x10^-1, ...), which overlap in a slice
    panel or a parallel-coordinate axis. Axes labelled by name (a FixedLocator: the parallel
    coordinate's param names, categorical values) keep their labels.
    """
    from matplotlib.ticker import FixedLocator, FuncFormatter, LogLocator, MaxNLocator, NullFormatter

    figure.set_size_inches(*PLOT_INCHES)
    plain = FuncFormatter(lambda value, _: f"{value:g}")
    for axes in figure.axes:
        for axis, limits in ((axes.xaxis, axes.get_xlim()), (axes.yaxis, axes.get_ylim())):
            if isinstance(axis.get_major_locator(), FixedLocator):
                continue
            if axis.get_scale() == "log":
                low, high = sorted(abs(limit) for limit in limits)
                # 1, 2, 5 per decade fits MAX_TICKS over less than two decades; powers of ten beyond
                subs = (1.0, 2.0, 5.0) if low > 0 and high / low < 100 else (1.0,)
                axis.set_major_locator(LogLocator(base=10, subs=subs, numticks=MAX_TICKS))
                axis.set_major_formatter(plain)
                axis.set_minor_formatter(NullFormatter())
            elif axis.get_scale() == "linear":
                axis.set_major_locator(MaxNLocator(nbins=MAX_TICKS))
        for label in axes.get_xticklabels():
            label.set_rotation(30)
            label.set_horizontalalignment("right")


def _png(figure: Any) -> bytes:
    import io

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=PLOT_DPI, bbox_inches="tight")
    return buffer.getvalue()
