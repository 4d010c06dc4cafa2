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
