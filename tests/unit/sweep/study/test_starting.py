"""Starting a sweep: a free name, a half-created study cleared away, the resumed config."""

from __future__ import annotations

import datetime as dt
import threading
import time
from dataclasses import replace

import optuna
import pytest
from optuna.trial import TrialState

from sweep.errors import SweepConfigError
from sweep.locations import TrackingLocation
from sweep.study.attrs import SweepAttrs
from sweep.study.opening import STARTING_SECONDS, open_started_sweep, open_sweep
from sweep.study.starting import (
    claim_name,
    create_study,
    discard_new_study,
    link_parent,
    record_sweep,
    resumed_config,
)
from sweep.study.storage import open_storage
from tests.unit.sweep.study.conftest import add_trial, new_sweep, sweep_config


def test_a_name_held_by_a_sweep_is_refused(journal):
    new_sweep(journal, "taken")
    with pytest.raises(SweepConfigError, match="exists already"):
        claim_name(open_storage(journal), "taken")


def test_a_study_a_killed_run_left_empty_is_removed_and_its_name_reused(journal):
    storage = open_storage(journal)
    optuna.create_study(study_name="half", storage=storage)  # killed before its config was stored
    assert claim_name(storage, "half") == "half"
    assert [s.study_name for s in storage.get_all_studies()] == []


def test_a_study_with_trials_but_no_config_is_kept(journal):
    storage = open_storage(journal)
    study = optuna.create_study(study_name="other", storage=storage)
    add_trial(study, TrialState.COMPLETE, 1.0)
    with pytest.raises(SweepConfigError):
        claim_name(storage, "other")


def test_no_name_gives_a_new_dated_one(journal):
    name = claim_name(open_storage(journal), None)
    assert name.startswith("sweep-")


def test_on_resume_the_stored_config_wins_but_target_and_timeout_follow_the_flags(journal):
    new_sweep(journal, "kept", config=sweep_config(trials=4, seed=11))
    sweep = open_sweep(journal, "kept")
    given = sweep_config(trials=9, seed=99, timeout=5.0)
    resumed = resumed_config(sweep, given, frozenset({"trials", "timeout", "seed"}))
    assert (resumed.name, resumed.seed, resumed.trials, resumed.timeout) == ("kept", 11, 9, 5.0)
    unflagged = resumed_config(sweep, given, frozenset())
    assert (unflagged.trials, unflagged.timeout) == (4, None)


def test_a_name_taken_between_the_check_and_the_creation_is_refused_the_same_way(journal):
    storage = open_storage(journal)
    assert claim_name(storage, "same") == "same"  # two sweeps started together both find it free
    create_study(storage, sweep_config(), "same")
    with pytest.raises(SweepConfigError, match="a sweep named 'same' exists already"):
        create_study(storage, sweep_config(), "same")


def test_the_study_records_the_sweep_and_its_token_before_the_parent_run_exists(journal):
    tracking = TrackingLocation.resolve("sqlite:///mlflow.db")
    study = create_study(open_storage(journal), sweep_config(), "new")
    token = record_sweep(study, sweep_config(), "0", tracking)
    attrs = SweepAttrs.read(study)
    assert attrs.is_sweep and attrs.token == token and len(token) == 32
    assert (attrs.status, attrs.parent_run_id) == ("starting", None)
    assert record_sweep(study, sweep_config(), "0", tracking) == token  # a resume keeps it
    link_parent(study, "parent-9")
    assert (SweepAttrs.read(study).status, SweepAttrs.read(study).parent_run_id) == ("running", "parent-9")
    assert open_sweep(journal, None, unfinished=True).name == "new"


def test_a_failed_start_removes_the_study_it_created(journal):
    storage = open_storage(journal)
    ours = create_study(storage, sweep_config(), "failed")
    discard_new_study(ours)
    discard_new_study(ours)  # already gone: harmless
    assert claim_name(storage, "failed") == "failed"


def test_a_failed_start_never_removes_a_study_another_run_made_under_the_name(journal):
    storage = open_storage(journal)
    ours = create_study(storage, sweep_config(), "raced")
    optuna.delete_study(study_name="raced", storage=storage)  # another run cleared it, and made its own
    theirs = new_sweep(journal, "raced")
    discard_new_study(ours)
    assert [s.study_name for s in storage.get_all_studies()] == ["raced"]
    assert open_sweep(journal, "raced").attrs.parent_run_id == SweepAttrs.read(theirs).parent_run_id



def test_a_worker_joining_a_sweep_being_started_waits_for_its_parent_run(journal):
    """A new sweep's first trials run before MLflow has made its parent run (engine/tracking_start.py)."""
    study = create_study(open_storage(journal), sweep_config(), "new")
    record_sweep(study, sweep_config(), None, TrackingLocation.resolve("sqlite:///mlflow.db"))
    linked = threading.Timer(0.3, lambda: link_parent(study, "parent-9", "4"))
    linked.start()
    joined = open_started_sweep(journal, "new")
    linked.join()
    assert (joined.attrs.parent_run_id, joined.attrs.experiment_id, joined.attrs.status) == ("parent-9", "4",
                                                                                             "running")


def test_a_start_cut_short_long_ago_is_not_waited_for(journal):
    study = create_study(open_storage(journal), sweep_config(), "old")
    record_sweep(study, sweep_config(), None, TrackingLocation.resolve("sqlite:///mlflow.db"))
    long_ago = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=STARTING_SECONDS + 1)
    replace(SweepAttrs.read(study), created=long_ago.isoformat()).write(study)
    started = time.monotonic()
    assert open_started_sweep(journal, "old").attrs.parent_run_id is None
    assert time.monotonic() - started < STARTING_SECONDS / 2
