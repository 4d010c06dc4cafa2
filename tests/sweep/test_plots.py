"""study_plots on in-memory Optuna studies: which plots a sweep gets, and why the others are skipped."""

from __future__ import annotations

import optuna
import pytest

from sweep.study import PLOT_MIN_TRIALS, study_plots

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


def test_a_study_with_enough_trials_gets_all_four_plots_as_pngs():
    made = study_plots(make_study([0.5 + 0.01 * i for i in range(12)]))
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
    import sklearn  # hidden only while optuna.importance loads

    assert sklearn.__version__
