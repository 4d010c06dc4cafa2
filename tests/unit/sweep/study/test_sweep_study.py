"""SweepStudy: one sweep's Optuna study in the engine's terms (records, a census, trials to run), on a real journal."""

from __future__ import annotations

import socket

import optuna
from optuna.trial import TrialState

from sweep.records import MlflowTime, PublishedModel, TrialRecord
from sweep.study.attrs import SweepAttrs, TrialAttrs
from sweep.study.census import count_trials
from sweep.study.sharing import DEAD_WORKER
from sweep.study.sweep_study import OPTUNA_PRUNED, SweepStudy, TrialSpan
from tests.unit.sweep.study.conftest import add_trial, new_sweep, sweep_config
from tests.unit.sweep.study.test_sharing import dead_pid


def test_an_asked_trial_is_marked_as_its_workers_and_told_with_its_records_attributes_first(journal):
    raw = new_sweep(journal)
    study = SweepStudy(raw, sweep_config())
    trial = study.ask(waiting=False, worker="host-a:12")
    lr = trial.suggest_float("lr", 0.1, 1.0)
    study.tell(trial, TrialRecord(trial.number, "COMPLETE", {"lr": lr}, 0.7, {"val_accuracy": 0.7}, run_id="run-0"))
    [told] = raw.get_trials()
    assert (told.state, told.value, told.params) == (TrialState.COMPLETE, 0.7, {"lr": lr})
    assert TrialAttrs.read(told) == TrialAttrs("run-0", {"val_accuracy": 0.7}, worker="host-a:12")


def test_a_pruned_or_failed_record_is_told_without_a_value_and_a_fail_keeps_its_error(journal):
    raw = new_sweep(journal)
    study = SweepStudy(raw, sweep_config())
    for state, error, interrupted in (("PRUNED", None, False), ("FAIL", "ValueError: bad", False),
                                      ("FAIL", "interrupted (Ctrl-C or SIGTERM)", True)):
        trial = study.ask(waiting=False, worker="host-a:12")
        study.tell(trial, TrialRecord(trial.number, state, {}, None, error=error, interrupted=interrupted))
    pruned, failed, interrupted = raw.get_trials()
    assert (pruned.state, pruned.value, failed.state, failed.value) == (TrialState.PRUNED, None, TrialState.FAIL, None)
    assert TrialAttrs.read(failed).error == "ValueError: bad" and TrialAttrs.read(interrupted).interrupted


def test_a_waiting_retry_is_asked_first_only_when_the_census_saw_one(journal):
    raw = new_sweep(journal)
    study = SweepStudy(raw, sweep_config())
    raw.enqueue_trial({"lr": 0.3})  # trial 0 waits
    assert study.ask(waiting=False, worker="w:1").number == 1  # the census saw none: a new trial
    retried = study.ask(waiting=True, worker="w:1")
    assert retried.number == 0 and retried.suggest_float("lr", 0.1, 1.0) == 0.3


def test_a_trial_that_does_not_follow_the_last_one_asked_starts_its_own_sampler_stream(journal):
    raw = new_sweep(journal)
    study = SweepStudy(raw, sweep_config(seed=7))
    add_trial(raw, TrialState.COMPLETE, 0.5)  # another process's trial 0
    study.ask(waiting=False, worker="w:1")  # trial 1: this process's first, not trial 0
    assert study.streams.restarts == 1
    study.ask(waiting=False, worker="w:1")  # trial 2 follows it
    assert study.streams.restarts == 1


def test_the_tally_hands_on_the_trials_it_saw_finish_as_records(journal):
    raw = new_sweep(journal)
    add_trial(raw, TrialState.COMPLETE, 0.7, metrics={"val_accuracy": 0.7})
    running = add_trial(raw, TrialState.RUNNING)
    study = SweepStudy(raw, sweep_config())
    tally = study.tally()
    [first] = tally.ended
    assert (first.number, first.state, first.value, first.metrics, first.run_id) == \
        (0, "COMPLETE", 0.7, {"val_accuracy": 0.7}, "run-0")
    raw.tell(running.number, state=TrialState.FAIL)
    tally.look()
    assert [(record.number, record.state, record.value) for record in tally.ended] == [(1, "FAIL", None)]


def test_a_dead_workers_trial_the_tally_saw_running_is_failed_and_handed_back_for_its_run(journal):
    raw = new_sweep(journal)
    orphan = add_trial(raw, TrialState.RUNNING, worker=f"{socket.gethostname()}:{dead_pid()}")
    study = SweepStudy(raw, sweep_config())
    tally = study.tally()
    assert [(record.number, record.state, record.error) for record in study.fail_dead_trials(tally)] == \
        [(orphan.number, "FAIL", DEAD_WORKER)]
    assert tally.look().waiting == 1  # its retry


def test_the_sweeps_trials_as_records_and_spans_and_its_failed_trials_errors(journal):
    raw = new_sweep(journal)
    add_trial(raw, TrialState.COMPLETE, 0.7)
    add_trial(raw, TrialState.FAIL)
    add_trial(raw, TrialState.RUNNING)
    for error in ("OSError: disk", "ValueError: bad", "OSError: disk"):
        trial = raw.ask()
        TrialAttrs(error=error).write(trial)
        raw.tell(trial, state=TrialState.FAIL)
    study = SweepStudy(raw, sweep_config(fixed={"seed": 3}))
    assert [record.number for record in study.records()] == [0, 1, 3, 4, 5]  # the RUNNING one is a live worker's
    finished = study.finished_records()
    assert [record.number for record in finished] == study.finished_numbers() == [0, 1, 3, 4, 5]
    assert finished[0].params == {"seed": 3, "lr": raw.trials[0].params["lr"]}
    spans = study.spans({0, 2})
    assert [span.number for span in spans] == [0, 2] and spans[1] == TrialSpan(2, spans[1].started, None)
    assert spans[0].started is not None and spans[0].completed is not None and spans[0].started <= spans[0].completed
    assert study.failed_errors() == {"unknown error": 1, "OSError: disk": 2, "ValueError: bad": 1}
    assert study.census().finished.failed == 4 and study.name == "demo"


def test_what_the_study_keeps_about_its_sweep_status_parent_and_published_model(journal):
    raw = new_sweep(journal)
    study = SweepStudy(raw, sweep_config())
    study.adopt_parent("parent-2", "interrupted")
    study.remember_model(PublishedModel(uri="runs:/parent-2/model", trial=3, registered="demo/1"))
    study.remember_model(PublishedModel())  # published elsewhere (a worker): the study keeps what it has
    study.set_status("finished")
    attrs = SweepAttrs.read(raw)
    assert (attrs.parent_run_id, attrs.status) == ("parent-2", "finished")
    assert (attrs.model_uri, attrs.model_trial, attrs.registered_model, attrs.registered_trial) == \
        ("runs:/parent-2/model", 3, "demo/1", 3)


def test_an_optuna_objectives_prune_is_the_one_the_loop_catches():
    assert OPTUNA_PRUNED is optuna.TrialPruned


def test_an_interrupted_trial_is_counted_apart_from_the_failures_toward_the_target(journal):
    raw = new_sweep(journal)
    study = SweepStudy(raw, sweep_config())
    tally = study.tally()
    for state, error, interrupted in (("COMPLETE", None, False), ("FAIL", "ValueError: bad", False),
                                      ("FAIL", "interrupted (Ctrl-C or SIGTERM)", True)):
        trial = study.ask(waiting=False, worker="host-a:12")
        study.tell(trial, TrialRecord(trial.number, state, {}, 0.5 if state == "COMPLETE" else None, error=error,
                                      interrupted=interrupted))
    for census in (study.census(), tally.look()):  # read whole, and kept up to date
        assert (census.finished.complete, census.finished.failed, census.finished.interrupted) == (1, 1, 1)
        assert census.finished.finished == 3 and census.counted == 3
    assert count_trials(raw.get_trials()).interrupted == 1


def test_the_time_inside_mlflow_is_kept_per_trial_and_summed_over_those_asked_for(journal):
    raw = new_sweep(journal)
    study = SweepStudy(raw, sweep_config())
    assert study.mlflow_time() is None  # no trial clocked it
    told = [("host-a:1", MlflowTime(1.0, 4.0)), ("host-b:2", MlflowTime(2.0, 5.0)), ("host-a:1", None),
            ("host-a:1", MlflowTime(0.5, 1.0))]
    for worker, spent in told:
        trial = study.ask(waiting=False, worker=worker)
        study.tell(trial, TrialRecord(trial.number, "COMPLETE", {}, 0.5, mlflow_time=spent))
    assert TrialAttrs.read(raw.get_trials()[1]).mlflow_time == MlflowTime(2.0, 5.0)
    assert study.mlflow_time() == MlflowTime(3.5, 10.0, trials=3)
    assert study.mlflow_time(skip={0}) == MlflowTime(2.5, 6.0, trials=2)  # finished before this invocation
    assert study.mlflow_time(worker="host-a:1") == MlflowTime(1.5, 5.0, trials=2)  # a `sweep worker`'s own
