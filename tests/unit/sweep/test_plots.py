"""study_plots on in-memory Optuna studies: which plots a sweep gets, what they show, and why the others are
skipped."""

from __future__ import annotations

import importlib.util
import sys
import xml.etree.ElementTree as ElementTree

import optuna
import pytest

from sweep.study import PLOT_MIN_TRIALS, StudyPlots, study_plots
from sweep.study.attrs import SweepAttrs


def make_study(values: list[float], *, vary: bool = True, metric: str | None = "val_accuracy") -> optuna.Study:
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    if metric is not None:  # a sweep's study, as `sweep run` makes it
        SweepAttrs(config="trials: 12\n", metric=metric).write(study)
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


PRELOADED = {name for name in ("matplotlib", "sklearn") if name in sys.modules}


@pytest.fixture(scope="module")
def twelve() -> StudyPlots:
    """The plots of one 12-trial study, for the checks that only read them."""
    return study_plots(make_study([0.5 + 0.01 * i for i in range(12)]))


def test_a_study_with_enough_trials_gets_all_four_plots_as_svgs(twelve: StudyPlots):
    made = twelve
    assert made.skipped == {}
    assert sorted(made.images) == sorted(f"{name}.svg" for name in PLOT_MIN_TRIALS)
    for document in made.images.values():
        root = ElementTree.fromstring(document)
        assert root.tag == "{http://www.w3.org/2000/svg}svg"
        assert (root.get("width"), root.get("height")) == ("1000", "600")


def test_the_plots_name_the_metric_and_the_tuned_settings(twelve: StudyPlots):
    for name in ("parallel_coordinate.svg", "slice.svg"):
        text = " ".join(ElementTree.fromstring(twelve.images[name]).itertext())
        assert all(word in text for word in ("val_accuracy", "lr", "epochs", "ngrams")), name
    importances = " ".join(ElementTree.fromstring(twelve.images["param_importances.svg"]).itertext())
    assert all(setting in importances for setting in ("lr", "epochs", "ngrams"))


def test_drawing_the_plots_imports_neither_matplotlib_nor_scikit_learn():
    for name in ("matplotlib", "sklearn"):
        assert name not in sys.modules or name in PRELOADED, name  # conftest or a plugin may have loaded one
    study_plots(make_study([0.5 + 0.01 * i for i in range(12)]))
    assert not {"matplotlib", "sklearn"} - PRELOADED & set(sys.modules)


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
    assert list(made.images) == ["optimization_history.svg"]
    assert set(made.skipped) == {"param_importances", "parallel_coordinate", "slice"}
    assert "needs 2 completed trials" in made.skipped["slice"]


def test_identical_settings_skip_param_importances_with_a_note():
    made = study_plots(make_study([0.6, 0.7, 0.8], vary=False))
    assert made.skipped == {"param_importances": "every completed trial has the same settings"}
    assert "param_importances.svg" not in made.images


def test_a_plot_that_raises_is_skipped_not_raised(monkeypatch: pytest.MonkeyPatch):
    from sweep.study import plots

    def broken(*_args: object, **_kwargs: object) -> None:
        raise ValueError("no axes today\nsecond line")

    monkeypatch.setattr(plots.charts, "slice_chart", broken)
    made = study_plots(make_study([0.5, 0.6, 0.7]))
    assert made.skipped == {"slice": "ValueError: no axes today"}
    assert len(made.images) == 3


def test_plots_do_not_leave_scikit_learn_unimportable():
    study_plots(make_study([0.5, 0.6, 0.7]))
    # hidden only while optuna.importance loads; finding it is what importing it would do first, and a
    # hiding left behind makes find_spec answer None, as it makes `import sklearn` fail
    assert importlib.util.find_spec("sklearn") is not None


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
    made = study_plots(make_study([0.5 + 0.001 * i for i in range(60)]))
    assert made.skipped == {}
    note = "20 of 60 completed trials drawn: the best 2 and an even spread of the others"
    for name in ("parallel_coordinate.svg", "slice.svg"):
        root = ElementTree.fromstring(made.images[name])
        assert note in " ".join(root.itertext()), name
        lines = root.findall(".//{http://www.w3.org/2000/svg}polyline")
        if name == "parallel_coordinate.svg":
            assert 20 <= len(lines) < 60  # one line per drawn trial (and perhaps an axis or two)
    history = " ".join(ElementTree.fromstring(made.images["optimization_history.svg"]).itertext())
    assert "drawn" not in history  # the history shows every trial


def test_a_study_of_many_settings_draws_the_most_important_and_says_so(monkeypatch: pytest.MonkeyPatch):
    from sweep.study import plots

    monkeypatch.setattr(plots, "DRAWN_SETTINGS", 2)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    SweepAttrs(config="trials: 30\n", metric="score").write(study)
    for _ in range(30):
        trial = study.ask()
        noise = [trial.suggest_float(f"noise_{index}", 0.0, 1.0) for index in range(3)]
        signal = trial.suggest_float("signal", 0.0, 1.0)  # suggested last: drawn only for its importance
        study.tell(trial, signal + 0.01 * sum(noise))
    made = study_plots(study)
    assert made.skipped == {}
    for name in ("parallel_coordinate.svg", "slice.svg"):
        text = " ".join(ElementTree.fromstring(made.images[name]).itertext())
        assert "signal" in text and "2 of 4 settings drawn: the most important" in text, name
        assert sum(f"noise_{index}" in text for index in range(3)) == 1, name
