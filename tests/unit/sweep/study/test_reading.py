"""Reading sweeps (`sweep best/ls/show`) and opening an existing one, on a real journal file; reading writes nothing."""

from __future__ import annotations

import datetime as dt
import os
import socket
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from sweep.errors import NotFoundError
from sweep.locations import TrackingLocation
from sweep.study.attrs import relink_runs
from sweep.study.census import take_census
from sweep.study.opening import open_sweep
from sweep.study.reading import STALLED_SECONDS, list_sweeps, liveness, sweep_trials
from sweep.study.starting import create_study, record_sweep
from sweep.study.storage import StaleTrials, open_storage
from tests.unit.sweep.study.conftest import add_trial, new_sweep, sweep_config


@pytest.fixture
def two_sweeps(journal):
    first = new_sweep(journal, "first", status="finished", created="2026-01-01T00:00:00")
    add_trial(first, TrialState.COMPLETE, 0.6)
    add_trial(first, TrialState.COMPLETE, 0.8, metrics={"val_accuracy": 0.8})
    add_trial(first, TrialState.FAIL)
    second = new_sweep(journal, "second", status="interrupted", created="2026-02-01T00:00:00")
    add_trial(second, TrialState.PRUNED)
    optuna.create_study(study_name="not-a-sweep", storage=open_storage(journal))  # another tool's study
    return journal


def test_list_sweeps_shows_every_sweep_oldest_first_without_other_studies(two_sweeps):
    rows = list_sweeps(two_sweeps.secret_url)
    assert [row.name for row in rows] == ["first", "second"]
    first = rows[0]
    assert (first.status, first.target, first.best_value) == ("finished", 4, 0.8)
    assert (first.counts.complete, first.counts.failed) == (2, 1)
    assert first.tracking_uri == "sqlite:///mlflow.db" and first.tracking is not None and first.tracking.usable
    assert rows[1].best_value is None and rows[1].counts.pruned == 1


def test_list_sweeps_of_a_missing_default_journal_is_empty(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    assert list_sweeps(None) == []
    assert not (tmp_path / "sweep.journal").exists()


def test_sweep_trials_of_the_latest_sweep_and_of_a_named_one(two_sweeps):
    latest, trials, config = sweep_trials(two_sweeps.secret_url, None)
    assert latest.name == "second" and [t.state for t in trials] == ["PRUNED"]
    assert config["trials"] == 4
    first, trials, _ = sweep_trials(two_sweeps.secret_url, "first")
    assert first.name == "first"
    assert [(t.number, t.state, t.value) for t in trials] == [(0, "COMPLETE", 0.6), (1, "COMPLETE", 0.8),
                                                              (2, "FAIL", None)]
    assert trials[1].run_id == "run-1" and trials[1].metrics == {"val_accuracy": 0.8}


def test_an_unknown_name_and_another_tools_study_are_not_found(two_sweeps):
    with pytest.raises(NotFoundError, match="no sweep named 'nope'"):
        sweep_trials(two_sweeps.secret_url, "nope")
    with pytest.raises(NotFoundError, match="no sweep named 'not-a-sweep'"):
        sweep_trials(two_sweeps.secret_url, "not-a-sweep")


def test_reading_writes_nothing_to_the_journal(two_sweeps):
    path = two_sweeps.journal_path
    assert path is not None
    past = path.stat().st_mtime_ns - 10_000_000_000  # ten seconds back: any write would move it
    os.utime(path, ns=(past, past))
    size = path.stat().st_size
    list_sweeps(two_sweeps.secret_url)
    sweep_trials(two_sweeps.secret_url, None)
    sweep_trials(two_sweeps.secret_url, "first")
    open_sweep(two_sweeps, None).read()
    assert (path.stat().st_size, path.stat().st_mtime_ns) == (size, past)


def test_open_sweep_finds_the_latest_unfinished_with_its_stored_config(two_sweeps):
    sweep = open_sweep(two_sweeps, None, unfinished=True)
    assert sweep.name == "second" and sweep.attrs.status == "interrupted"
    assert sweep.config == sweep_config(trials=4, name="second")
    study = sweep.load()
    assert study.study_name == "second" and len(study.get_trials()) == 1


def test_open_sweep_with_nothing_unfinished_says_so(journal):
    new_sweep(journal, "done", status="finished")
    with pytest.raises(NotFoundError, match="no unfinished sweep"):
        open_sweep(journal, None, unfinished=True)
    assert open_sweep(journal, "done", unfinished=True).name == "done"  # a name resumes even a finished one


def test_open_sweep_without_a_storage_file_is_not_found_and_creates_none(tmp_path: Path):
    from sweep.locations import StorageLocation

    location = StorageLocation.parse(str(tmp_path / "missing.journal"))
    with pytest.raises(NotFoundError):
        open_sweep(location, None)
    assert not (tmp_path / "missing.journal").exists()


def test_a_running_sweep_whose_worker_here_is_dead_is_stalled(journal):
    study = new_sweep(journal, "killed", created="2099-01-01T00:00:00+00:00")
    add_trial(study, TrialState.RUNNING, worker=f"{socket.gethostname()}:{dead_pid()}")
    assert list_sweeps(str(journal))[0].shown_status == "stalled"


def test_a_running_sweep_whose_worker_here_is_alive_is_running(journal):
    study = new_sweep(journal, "alive", created="2000-01-01T00:00:00+00:00")
    add_trial(study, TrialState.RUNNING, worker=f"{socket.gethostname()}:{os.getpid()}")
    assert list_sweeps(str(journal))[0].shown_status == "running"


def test_a_running_sweep_quiet_for_long_is_stalled_or_unknown_when_another_machine_runs_it(journal):
    study = new_sweep(journal, "quiet", created="2000-01-01T00:00:00+00:00")
    add_trial(study, TrialState.COMPLETE, 0.5)
    trials = study.get_trials(deepcopy=False)
    later = dt.datetime.now() + dt.timedelta(seconds=STALLED_SECONDS + 60)
    assert liveness(trials, "2000-01-01T00:00:00+00:00") == "running"  # a trial ended just now
    assert liveness(trials, "2000-01-01T00:00:00+00:00", now=later) == "stalled"
    add_trial(study, TrialState.RUNNING, worker="another-host:1234")
    assert liveness(study.get_trials(deepcopy=False), None, now=later) == "running?"


def test_a_finished_sweep_shows_its_stored_status(journal):
    new_sweep(journal, "done", status="finished")
    row = list_sweeps(str(journal))[0]
    assert row.shown_status == "finished" and row.liveness == ""


def dead_pid() -> int:
    """The id of a process that has exited (a child we started and waited for)."""
    import subprocess
    import sys

    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                           check=True)
    return int(child.stdout)


def test_trial_rows_name_the_runs_sync_rebuilt(journal):
    sweep = new_sweep(journal, "rebuilt", status="finished")
    add_trial(sweep, TrialState.COMPLETE, 0.6)
    add_trial(sweep, TrialState.COMPLETE, 0.8)
    relink_runs(sweep, {0: "run-0", 1: "rebuilt-1"})
    _, trials, _ = sweep_trials(journal.secret_url, "rebuilt")
    assert [t.run_id for t in trials] == ["run-0", "rebuilt-1"]


def test_ls_and_show_count_a_retried_trial_once_like_the_census(journal):
    study = new_sweep(journal, "one-down")
    dead = add_trial(study, TrialState.RUNNING)
    study.tell(dead.number, state=TrialState.FAIL)
    StaleTrials()(study, study.get_trials(deepcopy=False)[dead.number])
    study.tell(study.ask(), 0.7)
    [row] = list_sweeps(journal.secret_url)
    shown, _, _ = sweep_trials(journal.secret_url, "one-down")
    assert row.counts == shown.counts == take_census(study, sweep_config()).finished
    assert (row.counts.finished, row.counts.retried) == (1, 1)


def test_a_sweep_whose_start_was_cut_short_is_listed_as_starting(journal):
    study = create_study(open_storage(journal), sweep_config(), "cut")
    record_sweep(study, sweep_config(), "0", TrackingLocation.resolve("sqlite:///mlflow.db"))
    [row] = list_sweeps(journal.secret_url)
    assert (row.name, row.status, row.parent_run_id) == ("cut", "starting", None)
