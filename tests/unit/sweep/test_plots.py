"""study_plots on in-memory Optuna studies: which plots a sweep gets, and why the others are skipped."""

from __future__ import annotations

import importlib.util

import optuna
import pytest

from sweep.study import PLOT_MIN_TRIALS, StudyPlots, study_plots

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def make_study(values: list[float], *, vary: bool = True, metric: str | None = "val_accuracy") -> optuna.Study:
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    if metric is not None:
        study.set_user_attr("sweep.metric", metric)
    for value in values:
        trial = study.ask()
        if vary:
            trial.suggest_float("lr", 0.01, 10.0, log=True)
            trial.suggest_int("epochs", 5, 500, log=True)
            trial.suggest_categorical("ngrams", [1, 2])
        else:
            trial.suggest_float("lr", 0.5, 0.5)
        study.tell(trial, value)
    return study


@pytest.fixture(scope="module")
def twelve() -> StudyPlots:
    """The plots of one 12-trial study, for the checks that only read them (drawing them takes seconds)."""
    return study_plots(make_study([0.5 + 0.01 * i for i in range(12)]))


def test_a_study_with_enough_trials_gets_all_four_plots_as_pngs(twelve: StudyPlots):
    made = twelve
    assert made.skipped == {}
    assert sorted(made.images) == sorted(f"{name}.png" for name in PLOT_MIN_TRIALS)
    for png in made.images.values():
        assert png.startswith(PNG_SIGNATURE) and len(png) > 5000


def test_a_study_without_completed_trials_skips_every_plot_with_a_reason():
    study = optuna.create_study()
    trial = study.ask()
    study.tell(trial, state=optuna.trial.TrialState.FAIL)
    made = study_plots(study)
    assert made.images == {}
    assert set(made.skipped) == set(PLOT_MIN_TRIALS)
    assert all("the sweep has 0" in why for why in made.skipped.values())


def test_one_completed_trial_gets_only_the_optimization_history():
    made = study_plots(make_study([0.7]))
    assert list(made.images) == ["optimization_history.png"]
    assert set(made.skipped) == {"param_importances", "parallel_coordinate", "slice"}
    assert "needs 2 completed trials" in made.skipped["slice"]


def test_identical_settings_skip_param_importances_with_a_note():
    made = study_plots(make_study([0.6, 0.7, 0.8], vary=False))
    assert made.skipped == {"param_importances": "every completed trial has the same settings"}
    assert "param_importances.png" not in made.images


def test_a_plot_that_raises_is_skipped_not_raised(monkeypatch: pytest.MonkeyPatch):
    from optuna.visualization import matplotlib as plots

    def broken(*_args: object, **_kwargs: object) -> None:
        raise ValueError("no axes today\nsecond line")

    monkeypatch.setattr(plots, "plot_slice", broken)
    made = study_plots(make_study([0.5, 0.6, 0.7]))
    assert made.skipped == {"slice": "ValueError: no axes today"}
    assert len(made.images) == 3


def test_plots_do_not_leave_scikit_learn_unimportable():
    study_plots(make_study([0.5, 0.6, 0.7]))
    # hidden only while optuna.importance loads; finding it is what importing it would do first, and a
    # hiding left behind makes find_spec answer None, as it makes `import sklearn` fail
    assert importlib.util.find_spec("sklearn") is not None


def test_plots_are_about_1000_by_600_pixels(twelve: StudyPlots):
    for name, png in twelve.images.items():
        width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
        assert width >= 700 and height >= 500, (name, width, height)


def test_a_log_axis_labels_a_few_major_ticks_and_no_minor_ones():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sweep.study.plots import MAX_TICKS, readable_ticks

    figure, axes = plt.subplots()
    try:
        axes.set_xscale("log")
        axes.plot([0.011, 0.2, 3.0, 9.5], [1, 2, 3, 4])
        readable_ticks(figure)
        figure.canvas.draw()
        low, high = axes.get_xlim()
        labelled = [tick for tick in axes.xaxis.get_major_ticks()
                    if tick.label1.get_text() and low <= tick.get_loc() <= high]
        assert 2 <= len(labelled) <= MAX_TICKS
        assert all(not tick.label1.get_text() for tick in axes.xaxis.get_minor_ticks())
        assert all(label.get_rotation() == 30 for label in axes.get_xticklabels())
    finally:
        plt.close(figure)


def test_a_large_study_is_drawn_as_its_best_trials_and_an_even_spread_of_the_others(monkeypatch: pytest.MonkeyPatch):
    from sweep.study import plots

    monkeypatch.setattr(plots, "DRAWN_TRIALS", 20)  # the rule at a size a test draws quickly
    values = [((7 * number) % 60) / 60 for number in range(60)]  # every value once, out of order
    complete = make_study(values).get_trials(deepcopy=False)
    for maximize in (True, False):
        drawn = plots.drawn_trials(complete, maximize=maximize)
        numbers = [trial.number for trial in drawn]
        assert len(drawn) == 20 and numbers == sorted(numbers)
        best = sorted(complete, key=lambda trial: trial.values[0], reverse=maximize)[:2]  # a tenth of 20
        assert {trial.number for trial in best} <= set(numbers)
        assert numbers[0] == 0 and numbers[-1] >= 50  # the spread reaches across the sweep
    assert plots.drawn_trials(complete[:20], maximize=True) == complete[:20]  # few enough: all of them


def test_the_plots_of_a_large_study_draw_a_part_and_say_which(monkeypatch: pytest.MonkeyPatch):
    from sweep.study import plots

    monkeypatch.setattr(plots, "DRAWN_TRIALS", 20)
    drawn: dict[str, int] = {}
    notes: list[str] = []
    real_parallel = plots._optuna_matplotlib()[0].plot_parallel_coordinate

    def parallel(study: optuna.Study, **options: object) -> object:
        drawn["parallel_coordinate"] = len(study.get_trials(deepcopy=False))
        return real_parallel(study, **options)

    real_png = plots._png
    monkeypatch.setattr("optuna.visualization.matplotlib.plot_parallel_coordinate", parallel)
    monkeypatch.setattr(plots, "_png", lambda figure: notes.extend(text.get_text() for text in figure.texts
                                                                   if "drawn" in text.get_text()) or real_png(figure))
    made = study_plots(make_study([0.5 + 0.001 * i for i in range(60)]))
    assert made.skipped == {} and drawn == {"parallel_coordinate": 20}
    assert notes == ["20 of 60 completed trials drawn: the best 2 and an even spread of the others"] * 2
