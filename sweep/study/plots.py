"""A study's plots for the parent run at the end of a sweep: what its completed trials say (values, settings,
importances), drawn as SVG documents by sweep/study/charts.py.

SVG drawn with the standard library, not Optuna's matplotlib plots: the end of a sweep no longer imports matplotlib
nor rasterizes four figures (most of a short sweep's end), and the plots need no matplotlib (mlflow-skinny) and
stay sharp at any zoom in MLflow's artifact viewer.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.distributions import CategoricalDistribution
from optuna.trial import FrozenTrial, TrialState

from sweep.ranking import pareto_front, signed
from sweep.study import charts
from sweep.study.attrs import SweepAttrs
from sweep.study.census import is_feasible
from sweep.study.charts import Point, Setting
from sweep.urls import redact_text

# completed trials a parallel-coordinate or slice plot draws at most: past a few thousand lines or points a plot
# shows a blot, and a file of them is slow to show
DRAWN_TRIALS = 2000
DRAWN_PLOTS = ("parallel_coordinate", "slice")
DRAWN_BEST_SHARE = 0.1  # of DRAWN_TRIALS, the best trials (always drawn); the rest spread evenly over the others

# tuned settings a parallel-coordinate or slice plot draws at most (an axis or a panel each): past a dozen they are
# too narrow to read; the most important are drawn
DRAWN_SETTINGS = 12

# completed trials a plot needs to show anything: a comparison needs two; a history starts with one
PLOT_MIN_TRIALS = {"optimization_history": 1, "param_importances": 2, "parallel_coordinate": 2, "slice": 2}


@dataclass(frozen=True)
class StudyPlots:
    images: dict[str, bytes]  # file name (optimization_history.svg, ...) -> SVG document
    skipped: dict[str, str]  # plot name -> why it was not made
    seconds: float  # what making them cost


def plots_or_why_not(draw: Callable[[], StudyPlots]) -> StudyPlots:
    """``draw()``'s plots; if it fails as a whole (the storage could not be read, say), none, each skipped with its
    error's first line (password hidden): pictures are never worth a sweep's result."""
    try:
        return draw()
    except Exception as error:
        reason = redact_text(f"{type(error).__name__}: {error}".splitlines()[0])
        return StudyPlots({}, dict.fromkeys(PLOT_MIN_TRIALS, reason), 0.0)


def study_plots(study: optuna.Study) -> StudyPlots:
    """The optimization history, the settings' importances, parallel coordinates and slices (and the Pareto front
    with several objectives), as SVG documents.

    A plot the trials cannot support yet is skipped with a reason, never an error: a sweep's result
    matters more than its pictures. Importances come from Optuna's PED-ANOVA: numpy only and milliseconds, where
    its default (fANOVA) fits a scikit-learn random forest. With several objectives, the one-objective plots show
    the first.
    """
    started = time.perf_counter()
    complete = [trial for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                if trial.values and all(math.isfinite(value) for value in trial.values)]
    several = len(study.directions) > 1
    wanted = {**PLOT_MIN_TRIALS, **({"pareto_front": 1} if several else {})}
    skipped: dict[str, str] = {}
    for plot, needed in wanted.items():
        if len(complete) < needed:
            skipped[plot] = f"needs {needed} completed trial{'s' if needed > 1 else ''}, the sweep has {len(complete)}"
    if several and "pareto_front" not in skipped and not any(is_feasible(trial) for trial in complete):
        skipped["pareto_front"] = "no completed trial meets the constraints yet"
    settings = settings_of(complete)
    for plot in ("param_importances", *DRAWN_PLOTS):
        if plot not in skipped and not settings:
            skipped[plot] = "the trials have no tuned settings"
    if "param_importances" not in skipped and not _params_vary(complete):
        skipped["param_importances"] = "every completed trial has the same settings"

    attrs = SweepAttrs.read(study)
    metric = attrs.metric if attrs.is_sweep else "objective value"  # axis labels say what was optimized
    maximize = study.directions[0] == optuna.study.StudyDirection.MAXIMIZE
    points = [point_of(trial) for trial in complete]
    drawn = drawn_trials(complete, maximize=maximize)
    drawn_points = [point_of(trial) for trial in drawn] if len(drawn) < len(complete) else points
    trials_note = (f"{len(drawn):,} of {len(complete):,} completed trials drawn: the best "
                   f"{int(DRAWN_TRIALS * DRAWN_BEST_SHARE):,} and an even spread of the others"
                   if len(drawn) < len(complete) else None)
    importances: dict[str, float] = {}  # most important first, once the importance plot has computed them

    def importance_plot() -> str | None:
        importances.update(param_importances(study))
        if not any(value > 0 for value in importances.values()):
            return None
        return charts.importance_chart(importances, metric=metric)

    def shown() -> tuple[list[Setting], str | None]:
        """The settings a parallel-coordinate or slice plot draws, and the note under it."""
        drawn_settings = most_important(settings, importances)
        settings_note = (f"{len(drawn_settings)} of {len(settings)} settings drawn: the "
                         f"{'most important' if importances else 'first suggested'}"
                         if len(drawn_settings) < len(settings) else None)
        return drawn_settings, "; ".join(note for note in (trials_note, settings_note) if note) or None

    def parallel_plot() -> str:
        drawn_settings, note = shown()
        return charts.parallel_chart(drawn_settings, drawn_points, metric=metric, maximize=maximize, note=note)

    def slice_plot() -> str:
        drawn_settings, note = shown()
        return charts.slice_chart(drawn_settings, drawn_points, metric=metric, note=note)

    makers: dict[str, Callable[[], str | None]] = {
        "optimization_history": lambda: charts.history_chart(points, metric=metric, maximize=maximize),
        "param_importances": importance_plot,  # before the two below: they draw the most important settings
        "parallel_coordinate": parallel_plot,
        "slice": slice_plot,
    }
    if several:
        names = [name for name, _ in attrs.objectives] if attrs.is_sweep else None
        makers["pareto_front"] = lambda: pareto_plot(study, complete, names)
    images: dict[str, bytes] = {}
    for plot, make in makers.items():
        if plot in skipped:
            continue
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                document = make()
            equal = [str(w.message) for w in caught if "importances will be equal" in str(w.message)]
            if document is None or equal:  # too few trials for PED-ANOVA's top quantile: every bar would be alike
                skipped[plot] = equal[0] if equal else "the trials do not tell the settings apart"
                importances.clear()  # they rank nothing: the plots below draw the first settings suggested
                continue
            images[f"{plot}.svg"] = document.encode("utf-8")
        except Exception as error:  # a plot is never worth failing a sweep over
            skipped[plot] = f"{type(error).__name__}: {error}".splitlines()[0]
    return StudyPlots(images, skipped, time.perf_counter() - started)


def point_of(trial: FrozenTrial) -> Point:
    """A completed trial as the charts draw it: its number, first objective and settings (a choice by its label)."""
    params = {name: str(value) if isinstance(trial.distributions.get(name), CategoricalDistribution) else float(value)
              for name, value in trial.params.items()}
    return Point(trial.number, trial.values[0], params)


def settings_of(trials: Sequence[FrozenTrial]) -> list[Setting]:
    """The tuned settings of ``trials`` in the order they were first suggested: log-scaled as their distribution
    says; categorical with every choice any trial's distribution offered, in the order offered."""
    log: dict[str, bool] = {}
    choices: dict[str, list[str]] = {}
    for trial in trials:
        for name, distribution in trial.distributions.items():
            if isinstance(distribution, CategoricalDistribution):
                known = choices.setdefault(name, [])
                known.extend(label for label in map(str, distribution.choices) if label not in known)
            log.setdefault(name, bool(getattr(distribution, "log", False)))
    return [Setting(name, log=is_log and name not in choices,
                    choices=tuple(choices[name]) if name in choices else None) for name, is_log in log.items()]


def param_importances(study: optuna.Study) -> dict[str, float]:
    """The settings' importances by PED-ANOVA for the first objective, most important first."""
    evaluator = ped_anova()  # first: it loads optuna.importance without scikit-learn
    from optuna.importance import get_param_importances

    first = (lambda trial: trial.values[0]) if len(study.directions) > 1 else None
    return dict(get_param_importances(study, evaluator=evaluator, target=first))


def most_important(settings: list[Setting], importances: dict[str, float]) -> list[Setting]:
    """At most DRAWN_SETTINGS of ``settings``, in their order: the most important when ``importances`` (most
    important first) are known, else the first."""
    if len(settings) <= DRAWN_SETTINGS:
        return settings
    rank = {name: place for place, name in enumerate(importances)}
    chosen = {setting.name for setting in sorted(settings, key=lambda setting: rank.get(setting.name, len(rank)))
              [:DRAWN_SETTINGS]}
    return [setting for setting in settings if setting.name in chosen]


def pareto_plot(study: optuna.Study, complete: Sequence[FrozenTrial], names: list[str] | None) -> str:
    """Every completed trial by its objectives (the first three at most), the front among the feasible ones."""
    directions = [direction == optuna.study.StudyDirection.MAXIMIZE for direction in study.directions]
    feasible = [(trial.number, [signed(value, "maximize" if up else "minimize")
                                for value, up in zip(trial.values, directions)])
                for trial in complete if is_feasible(trial)]
    front = set(pareto_front(feasible))
    labels = names or [f"objective {index}" for index in range(len(directions))]
    return charts.pareto_chart(labels, [(trial.number, list(trial.values)) for trial in complete], front, directions)


def drawn_trials(complete: list[FrozenTrial], *, maximize: bool) -> list[FrozenTrial]:
    """The completed trials a parallel-coordinate or slice plot draws, in number order: all of them up to
    DRAWN_TRIALS; beyond, the best by the first objective and an even spread of the others (a plot of a
    10,000-trial sweep then shows its best region and its whole range)."""
    if len(complete) <= DRAWN_TRIALS:
        return complete
    best_count = int(DRAWN_TRIALS * DRAWN_BEST_SHARE)
    ranked = sorted(complete, key=lambda trial: trial.values[0], reverse=maximize)
    best = {trial.number for trial in ranked[:best_count]}
    others = [trial for trial in complete if trial.number not in best]
    step = len(others) / (DRAWN_TRIALS - best_count)
    spread = {others[int(index * step)].number for index in range(DRAWN_TRIALS - best_count)}
    return [trial for trial in complete if trial.number in best or trial.number in spread]


def ped_anova() -> Any:
    """Optuna's PED-ANOVA evaluator, imported without scikit-learn.

    optuna.importance imports scikit-learn (and with it scipy.stats) when it is installed, as MLflow
    makes it, for its fANOVA and mean-decrease-impurity evaluators, never used here. While
    optuna.importance loads, `import sklearn` fails fast, which Optuna takes as "not installed";
    scikit-learn stays importable afterwards. The price: in this process, Optuna's fANOVA evaluator
    would report scikit-learn missing (nothing here uses it).
    """
    import sys

    hidden = "optuna.importance" not in sys.modules and "sklearn" not in sys.modules
    if hidden:
        sys.modules["sklearn"] = None  # type: ignore[assignment]  # Python's "this import fails" marker
    try:
        from optuna.importance import PedAnovaImportanceEvaluator
    finally:
        if hidden:
            del sys.modules["sklearn"]
    return PedAnovaImportanceEvaluator()


def _params_vary(trials: list[FrozenTrial]) -> bool:
    """Whether some tuned setting took two values: importances need something to attribute."""
    names = {name for trial in trials for name in trial.params}
    return any(len({repr(trial.params.get(name)) for trial in trials}) > 1 for name in names)
