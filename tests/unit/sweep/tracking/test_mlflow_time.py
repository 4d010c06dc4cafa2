"""sweep/tracking/mlflow_time.py: the time a trial's code spends inside MLflow is counted once however MLflow's calls
nest, not while MLflow runs the user's own code (autologging's original fit), only on the trial's thread, and what
the clock swapped in for the trial's span is put back after it. Time is a fake the tests advance: no sleeps."""

from __future__ import annotations

import threading
from types import SimpleNamespace
from typing import Any

import mlflow
import pytest
from mlflow.models import Model
from mlflow.tracking import MlflowClient
from mlflow.utils.autologging_utils import AutologgingEventLogger

from sweep.tracking.mlflow_time import MlflowClock, mlflow_clock


class FakeTime:
    def __init__(self) -> None:
        self.value = 0.0

    def __call__(self) -> float:
        return self.value

    def advance(self, seconds: float) -> None:
        self.value += seconds


@pytest.fixture
def now() -> FakeTime:
    return FakeTime()


# -- the clock ---------------------------------------------------------------------------------------------------


def test_time_inside_mlflow_counts_and_the_users_code_it_calls_back_does_not(now):
    clock = MlflowClock(now)
    clock.enter(True, "patch")  # autologging's patch of fit
    now.advance(1)
    clock.enter(False, "original")  # the library's own fit
    now.advance(10)
    clock.enter(True, "log")  # a logging call the user's code makes inside it
    now.advance(2)
    clock.leave("log")
    now.advance(10)
    clock.leave("original")
    now.advance(3)  # autologging's work after the fit: metrics, the model
    clock.leave("patch")
    now.advance(100)  # the user's code again
    assert clock.seconds() == 6


def test_mlflow_calls_nested_in_mlflow_count_once(now):
    clock = MlflowClock(now)
    clock.enter(True, "outer")
    now.advance(1)
    clock.enter(True, "inner")
    now.advance(2)
    assert clock.seconds() == 3  # read while running
    clock.leave("inner")
    now.advance(1)
    clock.leave("outer")
    assert clock.seconds() == 4


def test_an_end_for_a_span_that_is_not_the_innermost_is_ignored(now):
    clock = MlflowClock(now)
    clock.enter(True, "patch")
    clock.enter(False, "original")
    clock.leave("patch")  # out of order: ignored, the original's span goes on
    now.advance(5)
    assert clock.seconds() == 0
    clock.leave("original")
    now.advance(1)
    assert clock.seconds() == 1


def test_stop_ends_the_spans_an_exception_left_open(now):
    clock = MlflowClock(now)
    clock.enter(True, "patch")  # its end event never came
    now.advance(2)
    clock.stop()
    now.advance(50)
    assert clock.seconds() == 2 and not clock.spans


def test_another_threads_calls_are_not_counted(now):
    clock = MlflowClock(now)

    def elsewhere() -> None:
        clock.enter(True, "background flush")
        now.advance(7)

    thread = threading.Thread(target=elsewhere)
    thread.start()
    thread.join()
    assert clock.seconds() == 0 and not clock.spans


# -- what the clock times in MLflow ------------------------------------------------------------------------------


def test_an_mlflow_client_call_is_counted_once_with_the_calls_it_makes(now, monkeypatch):
    def log_metric(self: MlflowClient, *args: Any) -> None:
        now.advance(1)
        self.set_tag("run", "key", "value")  # MLflow calling MLflow: not counted twice

    def set_tag(self: MlflowClient, *args: Any) -> None:
        now.advance(2)

    monkeypatch.setattr(MlflowClient, "log_metric", log_metric)
    monkeypatch.setattr(MlflowClient, "set_tag", set_tag)
    with mlflow_clock(now) as clock:
        now.advance(10)  # the user's code
        MlflowClient().log_metric("run", "loss", 0.5)
        now.advance(10)
    assert clock.seconds() == 3
    assert MlflowClient.log_metric is log_metric and MlflowClient.set_tag is set_tag  # put back


def test_a_flavors_log_model_is_counted(now, monkeypatch):
    def log(cls: type, *args: Any, **kwargs: Any) -> str:
        now.advance(4)
        return cls.__name__

    monkeypatch.setattr(Model, "log", classmethod(log))
    with mlflow_clock(now) as clock:
        assert Model.log() == "Model"  # still a classmethod
    assert clock.seconds() == 4


def test_autologgings_patch_is_counted_without_the_original_function(now):
    events = []

    class Recording(AutologgingEventLogger):
        def log_patch_function_start(self, *args: Any) -> None:
            events.append("patch start")

        def log_original_function_success(self, *args: Any) -> None:
            events.append("original success")

    before = Recording()
    AutologgingEventLogger.set_logger(before)
    try:
        with mlflow_clock(now) as clock:
            hooks = AutologgingEventLogger.get_logger()  # what MLflow's safe_patch calls, in its order
            session, patched = SimpleNamespace(integration="sklearn"), object()
            hooks.log_patch_function_start(session, patched, "fit", (), {})
            now.advance(1)  # the dataset's digest, the run's tags
            hooks.log_original_function_start(session, patched, "fit", (), {})
            now.advance(20)  # the library's fit
            hooks.log_original_function_success(session, patched, "fit", (), {})
            now.advance(5)  # training metrics, the model
            hooks.log_patch_function_success(session, patched, "fit", (), {})
            now.advance(30)
        assert clock.seconds() == 6
        assert events == ["patch start", "original success"]  # handed on to the logger set before
        assert AutologgingEventLogger.get_logger() is before
    finally:
        AutologgingEventLogger.set_logger(None)


def test_a_library_error_ends_the_patch_span_it_raises_through(now):
    with mlflow_clock(now) as clock:
        hooks = AutologgingEventLogger.get_logger()
        session, patched = SimpleNamespace(integration="sklearn"), object()
        hooks.log_patch_function_start(session, patched, "fit", (), {})
        now.advance(1)
        hooks.log_original_function_start(session, patched, "fit", (), {})
        now.advance(20)
        hooks.log_original_function_error(session, patched, "fit", (), {}, ValueError("bad input"))
        now.advance(30)  # the user's code handling the error: MLflow sends no end for the patch
        assert clock.seconds() == 1


def test_real_logging_to_a_store_is_counted_and_everything_swapped_is_put_back(mlflow_uri):
    methods = dict(vars(MlflowClient))
    log_model = vars(Model)["log"]
    mlflow.set_tracking_uri(mlflow_uri)
    try:
        with mlflow.start_run():
            with mlflow_clock() as clock:
                mlflow.log_metric("loss", 0.5)
            after = clock.seconds()
    finally:
        mlflow.set_tracking_uri(None)  # type: ignore[arg-type]
    assert after > 0 and clock.seconds() == after  # stopped at the block's end
    assert dict(vars(MlflowClient)) == methods and vars(Model)["log"] is log_model
