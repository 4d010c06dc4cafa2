"""The tracking server in-process on a fake tracker: dispatch, ordering, outages, the close report, abandoning runs."""

from __future__ import annotations

from typing import Any

from sweep.records import TRIAL_LOGGED_MODEL, BestAgreement, Counts, PublishedModel, SweepIdentity
from sweep.states import RunStatus
from sweep.tracking import operations
from sweep.tracking.operations import (
    AgreeBest,
    Close,
    Connect,
    FinishTrial,
    OpenParent,
    PublishAndClose,
    PublishModel,
    PublishPlots,
    Quit,
    RecordBest,
    RecordCounts,
    StartTrial,
)
from sweep.tracking.protocol import Answer, Failure, Request, Started
from tests.unit.sweep.tracking.fakes import Harness, best, record


def test_every_request_type_says_how_it_is_served():
    request_types = {value for value in vars(operations).values()
                     if isinstance(value, type) and issubclass(value, Request) and value is not Request}
    assert len(request_types) == 18
    assert all("serve" in vars(kind) for kind in request_types)


def test_connect_builds_the_tracker_from_the_identity_and_answers_the_experiment_id():
    harness = Harness()
    harness.server.tracker = None
    identity = SweepIdentity("sweep-1", "exp", None)
    harness.server.dispatch(Connect(identity))
    assert harness.replies == [Answer("Connect", "experiment-1")]
    assert harness.tracker.identity == identity and harness.server.tracker is harness.tracker


def test_a_failed_call_answers_its_first_line_with_the_password_hidden():
    harness = Harness()
    harness.tracker.failures["open"] = lambda: RuntimeError(
        "cannot reach http://alice:s3cret@mlflow.example:5000\nTraceback follows")
    harness.server.dispatch(OpenParent(None, {}, {}, "trials: 1\n"))
    [reply] = harness.replies
    assert isinstance(reply, Failure)
    assert "s3cret" not in reply.message and "Traceback" not in reply.message
    assert reply.message.startswith("cannot reach http://alice:")


def test_a_start_jumps_ahead_of_earlier_trials_queued_logging():
    harness = Harness()
    harness.run(FinishTrial(record(0)), RecordBest(best(0), "val_accuracy"), StartTrial(1, 0),
                FinishTrial(record(1)), Close(None, Counts(2)))
    assert harness.tracker.calls == ["start 1", "finish 0 None", "best 0", "finish 1 run-1"]
    assert harness.replies[0] == Started(1, "run-1")


def test_a_start_never_jumps_ahead_of_the_calls_that_open_the_sweep():
    """A new sweep's first trials start before MLflow has answered its Connect and OpenParent (the engine's
    tracking_start.py): their starts wait for those calls, then still jump ahead of queued logging."""
    harness = Harness()
    harness.server.tracker = None
    harness.run(Connect(SweepIdentity("sweep-1", "exp", None)), OpenParent(None, {}, {}, "trials: 2\n"),
                StartTrial(0, 0), FinishTrial(record(0)), StartTrial(1, 0), FinishTrial(record(1)),
                Close(None, Counts(2)))
    assert harness.tracker.calls[:5] == ["connect", "open None", "start 0", "start 1", "finish 0 run-0"]
    assert [type(reply).__name__ for reply in harness.replies[:4]] == ["Answer", "Answer", "Started", "Started"]


def test_a_start_behind_a_call_is_served_in_its_turn_never_dropped():
    harness = Harness()
    harness.run(FinishTrial(record(0)), StartTrial(1, 0), OpenParent(None, {}, {}, "trials: 3\n"), StartTrial(2, 0),
                Close(None, Counts(1)))
    assert harness.tracker.calls[:4] == ["start 1", "finish 0 None", "open None", "start 2"]
    assert Started(2, "run-2") in harness.replies


def test_requests_after_a_refused_connect_are_given_up_at_once_and_reported():
    harness = Harness()
    harness.server.tracker = None
    harness.tracker.failures["connect"] = lambda: RuntimeError("cannot open the MLflow database")
    harness.run(Connect(SweepIdentity("sweep-1", "exp", None)), StartTrial(0, 0), FinishTrial(record(0)),
                RecordBest(best(0), "val_accuracy"), Quit())
    assert isinstance(harness.replies[0], Failure) and harness.replies[1] == Started(0, None)
    assert harness.clock.now == 0.0, "no retries: nothing can be written without a store"


def test_close_serves_everything_queued_before_it_and_answers_last():
    harness = Harness()
    harness.run(StartTrial(0, 0), FinishTrial(record(0)), PublishPlots({"history.png": b"png"}, {"slice": "1 param"}),
                PublishModel(best(0), None, TRIAL_LOGGED_MODEL), Close("FINISHED", Counts(1)), FinishTrial(record(9)))
    assert harness.tracker.calls == ["start 0", "finish 0 run-0", "plots", "model", "close FINISHED 1"]
    closed = harness.replies[-1]
    assert isinstance(closed, Answer) and closed.operation == "Close"
    assert closed.value.plots == ["history.png"] and closed.value.plots_skipped == {"slice": "1 param"}
    assert closed.value.model == PublishedModel("runs:/parent/model", 0)
    assert closed.value.failed_trials == [] and closed.value.errors == []


def test_close_ends_runs_started_but_never_finished_as_killed():
    harness = Harness()
    harness.run(StartTrial(3, 0), Close("KILLED", Counts()))
    assert harness.tracker.calls == ["start 3", "fail run-3 KILLED", "close KILLED 0"]


def test_a_write_that_keeps_failing_is_reported_at_close_and_never_stops_the_server():
    harness = Harness(budget=3.0)
    harness.tracker.failures["finish"] = lambda: ConnectionError("store unreachable\nretry later")
    harness.run(StartTrial(0, 0), FinishTrial(record(0)), FinishTrial(record(1)), RecordBest(best(1), "acc"),
                Close("FINISHED", Counts(2)))
    report = harness.replies[-1].value
    assert report.failed_trials == [0, 1]
    assert report.errors == ["store unreachable", "store unreachable"]
    assert harness.tracker.calls[-2:] == ["best 1", "close FINISHED 2"]  # served after the failures


def test_after_one_write_used_its_retries_the_next_writes_try_once_each():
    harness = Harness(budget=3.0)
    harness.tracker.failures["finish"] = lambda: ConnectionError("store unreachable")
    harness.run(FinishTrial(record(0)), FinishTrial(record(1)), Close(None, Counts(2)))
    assert harness.clock.sleeps == [0.5, 1.0]  # the first write's retries; the second tried once
    assert harness.tracker.calls == ["finish 0 None"] * 3 + ["finish 1 None"]


def test_counts_are_written_at_most_once_a_second_and_only_the_latest():
    harness = Harness()
    harness.run(RecordCounts(Counts(1)), RecordCounts(Counts(2)), RecordCounts(Counts(3)), Close(None, Counts(3)))
    assert harness.tracker.calls == ["counts 1"]  # the later ones wait for the second to pass
    harness.clock.now += 1.0
    harness.run(RecordCounts(Counts(4)), RecordCounts(Counts(5)), Close(None, Counts(5)))
    assert harness.tracker.calls == ["counts 1", "counts 4"]


def test_when_the_loop_dies_its_open_runs_and_the_parent_end_killed():
    harness = Harness()
    harness.run(StartTrial(0, 0), StartTrial(1, 0), FinishTrial(record(0)), parent_alive=False)
    assert harness.tracker.calls == ["start 0", "start 1", "finish 0 run-0", "fail run-1 KILLED", "abandon"]


def test_a_worker_that_dies_fails_its_open_run_and_leaves_the_parent_to_its_owner():
    harness = Harness()
    harness.tracker.owns = False
    harness.run(StartTrial(0, 0), parent_alive=False)
    assert harness.tracker.calls == ["start 0", "fail run-0 FAILED"]


def test_quit_abandons_like_a_dead_loop_and_stops_serving():
    harness = Harness()
    harness.run(StartTrial(0, 0), Quit(), FinishTrial(record(0)))
    assert harness.tracker.calls == ["start 0", "fail run-0 KILLED", "abandon"]



def test_agree_best_is_answered_with_what_the_parent_rewrote():
    harness = Harness()
    harness.server.dispatch(AgreeBest(best(6), "val_accuracy", TRIAL_LOGGED_MODEL))
    assert harness.replies == [Answer("AgreeBest", BestAgreement(["best trial 6"], None, True, 6, True))]
    assert harness.tracker.calls == ["agree 6 run-6"]


def test_open_parent_answers_the_run_and_whether_it_was_made_and_with_sync_only_looks_at_it():
    harness = Harness()
    harness.server.dispatch(OpenParent(None, {}, {}, "trials: 1\n"))
    harness.server.dispatch(OpenParent("parent", {}, {}, "trials: 1\n", sync=True))
    assert harness.replies == [Answer("OpenParent", ("parent", True)), Answer("OpenParent", ("parent", False))]
    assert harness.tracker.calls == ["open None", "sync parent"]


def test_a_new_best_is_always_written_and_the_final_best_only_unless_the_parent_shows_it():
    harness = Harness()
    harness.run(RecordBest(best(1), "acc"), RecordBest(best(2), "acc", ensure=True), Close(None, Counts(2)))
    assert harness.tracker.calls == ["best 1", "ensure 2"]


class NeverDrawn:
    """A finished sweep whose plots must not be drawn (picklable, as PublishAndClose's sweep is)."""

    def plots(self) -> Any:
        raise AssertionError("a dead sweep's end must not be published")

    def remember_model(self, model: PublishedModel) -> None:
        raise AssertionError("a dead sweep's end must not be published")


def test_an_end_asked_for_by_a_sweep_that_died_since_is_abandoned_not_published(tmp_path):
    # its resume runs the end again: a publisher beside it would write the same parent at the same time
    harness = Harness()
    end = PublishAndClose(PublishModel(best(0), None, TRIAL_LOGGED_MODEL), None, NeverDrawn(),
                          Close(RunStatus.FINISHED, Counts(1)), tmp_path / "end.lock")
    harness.run(StartTrial(0, 0), FinishTrial(record(0)), end, parent_alive=False)
    assert harness.tracker.calls == ["start 0", "finish 0 run-0", "abandon"]
    assert not [reply for reply in harness.replies if isinstance(reply, Answer)]  # nobody is left to answer
