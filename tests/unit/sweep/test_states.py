"""sweep/states.py: the states as the text stored and shown, and the one mapping to MLflow run statuses."""

from __future__ import annotations

import json

import optuna
import pytest

from sweep.records import Counts, TrialRecord
from sweep.states import LoopEnd, RunStatus, SweepEnd, SweepStatus, TrialState, end_of, run_status, sweep_end
from sweep.study.census import finished_state, optuna_state, state_of


def test_a_state_is_its_text_wherever_it_is_compared_printed_or_stored():
    assert TrialState.FAIL == "FAIL" and TrialState("PRUNED") is TrialState.PRUNED
    assert f"{SweepStatus.FINISHED}" == "finished" and str(RunStatus.KILLED) == "KILLED"
    assert f"{LoopEnd.TIMEOUT:<9}|" == "timeout  |"
    assert json.dumps({"status": SweepStatus.FAILED}) == '{"status": "failed"}'
    assert TrialState.COMPLETE.lower() == "complete" and type(TrialState.COMPLETE.lower()) is str
    assert {"running": 1}[SweepStatus.RUNNING] == 1  # a stored text finds the member's entry, and back


def test_a_record_given_its_state_as_text_holds_the_state():
    assert TrialRecord(0, "PRUNED", {}).state is TrialState.PRUNED  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        TrialRecord(0, "DONE", {})  # type: ignore[arg-type]


@pytest.mark.parametrize(("state", "interrupted", "status"), [
    (TrialState.COMPLETE, False, RunStatus.FINISHED),
    (TrialState.PRUNED, False, RunStatus.KILLED),
    (TrialState.FAIL, False, RunStatus.FAILED),
    (TrialState.FAIL, True, RunStatus.KILLED),  # stopped by Ctrl-C: run again on resume
])
def test_a_finished_trials_child_run_status(state, interrupted, status):
    assert run_status(state, interrupted=interrupted) is status


@pytest.mark.parametrize(("end", "counts", "expected"), [
    (LoopEnd.FINISHED, Counts(complete=2, failed=1), SweepEnd(SweepStatus.FINISHED, RunStatus.FINISHED)),
    (LoopEnd.FINISHED, Counts(pruned=2), SweepEnd(SweepStatus.FINISHED, RunStatus.FINISHED)),
    (LoopEnd.FINISHED, Counts(failed=3), SweepEnd(SweepStatus.FAILED, RunStatus.FAILED)),
    (LoopEnd.FAILING, Counts(failed=5), SweepEnd(SweepStatus.FAILED, RunStatus.FAILED)),
    (LoopEnd.TIMEOUT, Counts(complete=1), SweepEnd(SweepStatus.TIMEOUT, RunStatus.FINISHED)),
    (LoopEnd.TIMEOUT, Counts(failed=1), SweepEnd(SweepStatus.TIMEOUT, RunStatus.FAILED)),
    (LoopEnd.INTERRUPTED, Counts(complete=1), SweepEnd(SweepStatus.INTERRUPTED, RunStatus.KILLED)),
    (LoopEnd.STOPPED, Counts(failed=1), SweepEnd(SweepStatus.INTERRUPTED, RunStatus.KILLED)),
])
def test_how_an_invocation_ended_says_the_sweeps_status_and_its_parent_runs(end, counts, expected):
    assert sweep_end(end, counts) == expected


@pytest.mark.parametrize(("stored", "status"), [
    ("finished", RunStatus.FINISHED),
    ("failed", RunStatus.FAILED),
    ("interrupted", RunStatus.KILLED),
    ("starting", RunStatus.KILLED),  # killed before it linked its parent: resumable, as an interruption
    ("running", None),
    ("unknown", None),
])
def test_sync_ends_a_parent_as_the_stored_status_says_by_the_same_mapping(stored, status):
    counts = Counts(failed=2) if stored == "failed" else Counts(complete=2)
    end = end_of(stored)
    assert (sweep_end(end, counts).run_status if end is not None else None) is status


def test_optunas_trial_states_are_the_sweeps_by_name_both_ways():
    for state in optuna.trial.TrialState:
        assert state_of(state) == state.name and optuna_state(state_of(state)) is state


def test_a_trial_not_finished_is_recorded_for_its_run_as_failed():
    def frozen(state: optuna.trial.TrialState) -> optuna.trial.FrozenTrial:
        return optuna.trial.create_trial(state=state, value=0.5 if state == optuna.trial.TrialState.COMPLETE else None)

    assert [finished_state(frozen(state)) for state in optuna.trial.TrialState] == [
        TrialState.FAIL, TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL, TrialState.FAIL]
