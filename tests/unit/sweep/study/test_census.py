"""The census: the counts every worker shares, retried trials counted once, the best with ties broken."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from sweep.locations import StorageLocation
from sweep.records import Counts, TrialRecord
from sweep.study.attrs import relink_runs
from sweep.study.census import Tally, count_states, count_trials, record_of, take_census
from sweep.study.optuna_internals import storage_of
from sweep.study.storage import StaleTrials, open_storage
from tests.support import pg, redis_db
from tests.unit.sweep.study.conftest import add_trial, new_sweep, served_journal, sweep_config


def test_counts_running_waiting_and_finished_trials(journal):
    study = new_sweep(journal)
    add_trial(study, TrialState.COMPLETE, 0.7)
    add_trial(study, TrialState.PRUNED)
    add_trial(study, TrialState.FAIL)
    add_trial(study, TrialState.RUNNING)
    study.enqueue_trial({"lr": 0.3})
    census = take_census(study, sweep_config())
    assert census.finished == Counts(complete=1, pruned=1, failed=1)
    assert (census.counted, census.running, census.waiting) == (5, 1, 1)


def test_a_retried_trial_counts_once_its_retry_replaces_it(journal):
    study = new_sweep(journal)
    failed = add_trial(study, TrialState.RUNNING)
    stale = StaleTrials()
    study.tell(failed.number, state=TrialState.FAIL)
    stale(study, study.get_trials(deepcopy=False)[failed.number])  # Optuna's retry: a WAITING copy
    census = take_census(study, sweep_config())
    assert census.counted == 1 and census.waiting == 1 and census.finished == Counts(retried=1)
    assert [trial.number for trial in stale.take_failed()] == [failed.number] and stale.take_failed() == []


def test_the_best_is_the_highest_value_for_maximize_and_the_lowest_for_minimize(journal):
    study = new_sweep(journal)
    for value in (0.6, 0.9, 0.7):
        add_trial(study, TrialState.COMPLETE, value)
    best = take_census(study, sweep_config()).best
    assert best is not None and (best.number, best.value, best.run_id) == (1, 0.9, "run-1")
    low = take_census(study, sweep_config(metric="val_loss", direction="minimize")).best
    assert low is not None and low.number == 0


def test_a_tie_goes_to_the_lower_other_metric_then_the_earlier_trial(journal):
    study = new_sweep(journal)
    add_trial(study, TrialState.COMPLETE, 0.8, metrics={"val_loss": 0.5})
    add_trial(study, TrialState.COMPLETE, 0.8, metrics={"val_loss": 0.3})
    add_trial(study, TrialState.COMPLETE, 0.8, metrics={"val_loss": 0.3})
    best = take_census(study, sweep_config()).best
    assert best is not None and best.number == 1 and best.metrics == {"val_loss": 0.3}


def test_after_a_trial_the_census_counts_it_without_reading_the_storage(journal):
    study = new_sweep(journal)
    add_trial(study, TrialState.RUNNING)
    census = take_census(study, sweep_config())
    after = census.after(TrialRecord(0, "COMPLETE", {"lr": 0.5}, 0.8, {"val_accuracy": 0.8}), sweep_config())
    assert after.running == 0 and after.finished == Counts(complete=1)
    assert after.best is not None and after.best.value == 0.8


def test_count_states_and_record_of_a_finished_trial():
    study = optuna.create_study()
    study.tell(study.ask(), 1.0)
    study.tell(study.ask(), state=TrialState.PRUNED)
    trials = study.get_trials()
    assert count_states(trials) == Counts(complete=1, pruned=1)
    record = record_of(trials[0])
    assert (record.number, record.state, record.value) == (0, "COMPLETE", 1.0)
    assert record.end_ms >= record.start_ms > 0
    assert record_of(trials[1]).value is None


def test_the_best_names_the_run_sync_rebuilt_for_it(journal):
    study = new_sweep(journal)
    for value in (0.6, 0.9):
        add_trial(study, TrialState.COMPLETE, value)
    relink_runs(study, {1: "rebuilt-1"})
    best = take_census(study, sweep_config()).best
    assert best is not None and (best.number, best.run_id) == (1, "rebuilt-1")


def test_every_view_counts_a_retried_trial_once_and_its_failed_attempt_as_retried(journal):
    study = new_sweep(journal)
    failed = add_trial(study, TrialState.RUNNING)
    study.tell(failed.number, state=TrialState.FAIL)
    StaleTrials()(study, study.get_trials(deepcopy=False)[failed.number])
    retry = study.ask()  # the WAITING copy
    study.tell(retry, 0.8)
    add_trial(study, TrialState.PRUNED)
    trials = study.get_trials(deepcopy=False)
    assert count_trials(trials) == Counts(complete=1, pruned=1, retried=1)
    assert take_census(study, sweep_config()).finished == count_trials(trials)
    assert count_trials(trials).finished + count_trials(trials).retried == len(trials)  # = the child runs


@pytest.fixture(params=["journal", "proxy", "redis", "postgres",
                        pytest.param("sqlite", marks=pytest.mark.slow)])  # SQLite: a commit per write
def shared(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StorageLocation]:
    """A storage two loops share: each opens it on its own, as two worker processes do. Each kind is read its own
    way by a look (optuna_internals.changed_trials)."""
    if request.param == "proxy":
        with served_journal(tmp_path / "sweep.journal") as location:
            yield location
    elif request.param == "redis":
        with redis_db.journal() as url:
            yield StorageLocation.parse(url)
    elif request.param == "postgres":
        with pg.database() as url:
            yield StorageLocation.parse(url)
    else:
        where = tmp_path / "sweep.journal" if request.param == "journal" else f"sqlite:///{tmp_path / 'optuna.db'}"
        yield StorageLocation.parse(str(where))


def second_handle(location: StorageLocation, study: optuna.Study) -> optuna.Study:
    """Another loop's handle on the study, with its own journal replay or its own cache of the database's trials."""
    return optuna.load_study(study_name=study.study_name, storage=open_storage(location))


def test_tallies_of_two_loops_agree_with_a_full_recount_as_trials_finish_fail_and_retry(shared):
    mine = new_sweep(shared)
    theirs = second_handle(shared, mine)
    tallies = [Tally(mine, sweep_config()), Tally(theirs, sweep_config())]
    reader = second_handle(shared, mine)

    def agree() -> None:
        expected = take_census(reader, sweep_config())  # reads every trial: what the tallies must match
        for tally in tallies:
            assert tally.look() == expected

    agree()
    add_trial(mine, TrialState.COMPLETE, 0.6)
    running = add_trial(theirs, TrialState.RUNNING)
    agree()
    add_trial(theirs, TrialState.PRUNED)
    add_trial(mine, TrialState.COMPLETE, 0.9, metrics={"val_loss": 0.2})
    theirs.tell(running.number, 0.7)
    agree()
    doomed = add_trial(mine, TrialState.RUNNING)
    agree()  # the doomed trial is open in both tallies when it fails and a retry replaces it
    mine.tell(doomed.number, state=TrialState.FAIL)
    StaleTrials()(mine, mine.get_trials(deepcopy=False)[doomed.number])
    agree()
    assert tallies[0].look().waiting == 1 and tallies[0].look().finished.retried == 1
    retry = theirs.ask()  # the WAITING copy; it fails too: a trial is retried once only
    add_trial(mine, TrialState.FAIL)
    theirs.tell(retry, state=TrialState.FAIL)
    StaleTrials()(theirs, theirs.get_trials(deepcopy=False)[retry.number])
    agree()
    mine.tell(mine.ask(), 0.95)
    agree()
    census = tallies[1].look()
    assert census.finished == Counts(complete=4, pruned=1, failed=2, retried=1)
    assert census.counted == 7 and census.waiting == census.running == 0
    assert census.best is not None and census.best.value == 0.95


def test_a_look_reads_the_journal_once_however_many_trials_run(journal):
    study = new_sweep(journal)
    for value in range(40):
        add_trial(study, TrialState.COMPLETE, value / 100)
    running = [add_trial(study, TrialState.RUNNING) for _ in range(8)]
    tally = Tally(study, sweep_config())
    backend = storage_of(study)._backend  # type: ignore[attr-defined]
    reads: list[int] = []
    real_read_logs = backend.read_logs
    backend.read_logs = lambda start: reads.append(start) or real_read_logs(start)
    study.tell(running[0].number, 0.99)
    add_trial(study, TrialState.RUNNING)
    reads.clear()
    census = tally.look()
    assert len(reads) == 2  # the trials, then the study's attributes (`sweep set`): not one read per running trial
    assert census.best is not None and census.best.number == running[0].number and census.running == 8
    assert [trial.number for trial in tally.ended] == [running[0].number]
    assert [trial.number for trial in tally.running] == [trial.number for trial in running[1:]] + [48]


def test_a_tally_starts_from_a_full_read_of_a_study_with_retries(journal):
    study = new_sweep(journal)
    failed = add_trial(study, TrialState.RUNNING)
    study.tell(failed.number, state=TrialState.FAIL)
    StaleTrials()(study, study.get_trials(deepcopy=False)[failed.number])
    study.tell(study.ask(), 0.8)
    add_trial(study, TrialState.PRUNED)
    tally = Tally(study, sweep_config())
    assert tally.census() == tally.look() == take_census(study, sweep_config())
    assert tally.census().finished == count_trials(study.get_trials(deepcopy=False)) == Counts(1, 1, 0, 1)
