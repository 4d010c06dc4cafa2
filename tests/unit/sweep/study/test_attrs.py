"""SweepAttrs and TrialAttrs: one place for the names and defaults of what the study keeps."""

from __future__ import annotations

from dataclasses import replace
from unittest.mock import patch

import optuna
import pytest

from sweep.study.attrs import PREFIX, SweepAttrs, TrialAttrs, relink_runs
from sweep.study.optuna_internals import trial_id_of
from tests.unit.sweep.study.conftest import sweep_config


def test_a_study_without_attributes_reads_as_the_defaults_and_is_not_a_sweep():
    attrs = SweepAttrs.read(optuna.create_study())
    assert attrs == SweepAttrs()
    assert not attrs.is_sweep and attrs.metric == "val_accuracy" and attrs.status == "unknown" and attrs.target == 0
    with pytest.raises(ValueError, match="not a sweep"):
        _ = attrs.stored_config


def test_written_attributes_read_back_from_a_study_and_from_its_listing():
    study = optuna.create_study(study_name="s")
    config = sweep_config(trials=7, name="s")
    written = SweepAttrs(config=config.to_yaml(), parent_run_id="p", experiment="e", target=7, status="running",
                         created="2026-01-01T00:00:00", tracking_uri="sqlite:///mlflow.db",
                         tracking_uri_has_secret=False)
    written.write(study)
    assert SweepAttrs.read(study) == written
    assert SweepAttrs.read(study.user_attrs) == written
    assert study.user_attrs[PREFIX + "target"] == 7
    assert SweepAttrs.read(study).stored_config == config


def test_write_stores_only_the_values_that_changed():
    study = optuna.create_study()
    SweepAttrs(status="running", target=3, metric="val_loss").write(study)
    with patch.object(optuna.Study, "set_user_attr", autospec=True, side_effect=optuna.Study.set_user_attr) as setter:
        replace(SweepAttrs.read(study), status="finished").write(study)
    assert [call.args[1:] for call in setter.call_args_list] == [(PREFIX + "status", "finished")]


def test_write_never_stores_none_so_unset_values_stay_absent():
    study = optuna.create_study()
    SweepAttrs(status="running").write(study)
    assert PREFIX + "model_uri" not in study.user_attrs and PREFIX + "created" not in study.user_attrs


def test_a_stored_tracking_uri_says_whether_it_lost_a_password():
    usable = SweepAttrs(tracking_uri="http://mlflow:5000", tracking_uri_has_secret=False).stored_tracking
    assert usable is not None and usable.usable
    redacted = SweepAttrs(tracking_uri="http://bob:***@mlflow:5000", tracking_uri_has_secret=True).stored_tracking
    assert redacted is not None and not redacted.usable
    assert SweepAttrs().stored_tracking is None


def test_a_sweep_stored_before_the_secret_flag_is_judged_by_its_redaction_mask():
    assert not SweepAttrs(tracking_uri="http://bob:***@mlflow:5000").stored_tracking.usable  # type: ignore[union-attr]
    assert SweepAttrs(tracking_uri="http://mlflow:5000").stored_tracking.usable  # type: ignore[union-attr]


def test_trial_attrs_write_only_what_says_something_and_read_back():
    study = optuna.create_study()
    trial = study.ask()
    TrialAttrs(run_id="r1", metrics={"val_accuracy": 0.8}, worker="host:1").write(trial)
    study.tell(trial, 0.8)
    frozen = study.get_trials()[0]
    assert set(frozen.user_attrs) == {PREFIX + "run_id", PREFIX + "metrics", PREFIX + "worker"}
    assert TrialAttrs.read(frozen) == TrialAttrs("r1", {"val_accuracy": 0.8}, None, False, "host:1")


def test_trial_attrs_of_a_bare_trial_are_the_defaults():
    study = optuna.create_study()
    study.tell(study.ask(), 1.0)
    assert TrialAttrs.read(study.get_trials()[0]) == TrialAttrs()


def test_trial_attrs_reach_another_workers_trial_through_the_storage():
    storage = optuna.storages.InMemoryStorage()
    study = optuna.create_study(storage=storage)
    trial = study.ask()
    TrialAttrs(error="its worker process died", interrupted=True).write_to_storage(storage, trial_id_of(trial))
    assert TrialAttrs.read(study.get_trials()[0]) == TrialAttrs(error="its worker process died", interrupted=True)


def test_a_rebuilt_run_id_comes_before_the_one_the_trial_recorded():
    attrs = SweepAttrs(run_ids={"3": "rebuilt"})
    assert attrs.run_id_of(3, "lost") == "rebuilt" and attrs.run_id_of(4, "own") == "own"
    assert SweepAttrs().run_id_of(3, None) is None


def test_relink_runs_keeps_only_runs_that_differ_from_the_trials_own_and_reads_back():
    study = optuna.create_study()
    for own in ("run-0", None):
        trial = study.ask()
        TrialAttrs(run_id=own).write(trial)
        study.tell(trial, 0.5)
    assert relink_runs(study, {0: "run-0", 1: "made-1"}) == [1]
    assert SweepAttrs.read(study).run_ids == {"1": "made-1"}
    assert relink_runs(study, {0: "run-0", 1: "made-1"}) == []  # a second sync changes nothing
    assert relink_runs(study, {0: "made-0", 1: "made-1"}) == [0]
    assert SweepAttrs.read(study).run_id_of(0, "run-0") == "made-0"


def test_relinking_nothing_writes_no_attribute():
    study = optuna.create_study()
    relink_runs(study, {})
    assert PREFIX + "run_ids" not in study.user_attrs
