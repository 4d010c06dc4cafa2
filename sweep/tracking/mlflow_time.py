"""How long a trial's own code spends inside MLflow while its ``fit`` runs (`trainer.mlflow: active | autolog`).

Counted on the trial's thread, as wall time, once however deeply MLflow's calls nest:

- every public method of ``MlflowClient``: the fluent API (``mlflow.log_metric``, ``mlflow.log_artifact``...) and
  autologging's own client write through it;
- ``mlflow.models.Model.log``: every flavor's ``log_model`` (the model saved, its environment and signature worked
  out, its files uploaded);
- what autologging adds around a patched call such as ``estimator.fit``: the time inside MLflow's patch minus the
  time inside the library's own function (training metrics, dataset digests, the model). MLflow tells it through
  its documented hooks (``AutologgingEventLogger``): the patch starts and ends, the original function starts and
  ends.

What MLflow does on other threads (autologging's parameters flushed in the background) runs beside the fit and is
not counted; a wait for it on the trial's thread is. Everything is swapped in for the trial's span only and put
back after it.
"""

from __future__ import annotations

import functools
import inspect
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


class MlflowClock:
    """Wall time the thread that made it spends inside MLflow: a stack of the spans it is in (MLflow's, or the
    user's code that MLflow called back, as the original ``fit`` inside an autologging patch); the clock runs
    while the innermost span is MLflow's."""

    def __init__(self, now: Callable[[], float] = time.perf_counter) -> None:
        self.now = now
        self.thread = threading.get_ident()
        self.spans: list[tuple[bool, object]] = []  # (inside MLflow, the span's key), innermost last
        self.total = 0.0
        self.since = 0.0  # when the clock last started running

    @property
    def running(self) -> bool:
        return bool(self.spans) and self.spans[-1][0]

    def seconds(self) -> float:
        """The time counted so far."""
        return self.total + (self.now() - self.since if self.running else 0.0)

    def enter(self, inside_mlflow: bool, key: object) -> None:
        if threading.get_ident() != self.thread:
            return  # another thread's MLflow call (a tracking thread in this process, a background flush)
        was = self.running
        self.spans.append((inside_mlflow, key))
        self._switched(was)

    def leave(self, key: object) -> None:
        """End the innermost span if it is ``key``'s; an event for any other span is ignored, so a hook MLflow
        skips (a patch whose original function raised ends with no event) never unbalances the stack."""
        if threading.get_ident() != self.thread or not self.spans or self.spans[-1][1] != key:
            return
        was = self.running
        self.spans.pop()
        self._switched(was)

    def stop(self) -> None:
        """The trial's code has returned: spans still open (an exception that skipped MLflow's end event) end."""
        if self.running:
            self.total += self.now() - self.since
        self.spans.clear()

    def _switched(self, was_running: bool) -> None:
        now = self.now()
        if was_running and not self.running:
            self.total += now - self.since
        elif self.running and not was_running:
            self.since = now


@contextmanager
def mlflow_clock(now: Callable[[], float] = time.perf_counter) -> Iterator[MlflowClock]:
    """A clock of the time this thread spends inside MLflow until the block ends (see the module docstring)."""
    from mlflow.models import Model
    from mlflow.tracking import MlflowClient
    from mlflow.utils.autologging_utils import AutologgingEventLogger

    clock = MlflowClock(now)
    swapped: list[tuple[type, str, Any]] = []  # (class, name, its attribute as it was)
    for name, function in vars(MlflowClient).items():
        if not name.startswith("_") and inspect.isfunction(function):
            swapped.append((MlflowClient, name, function))
    log_model = vars(Model)["log"]  # a classmethod: wrapped as one
    events_before = AutologgingEventLogger.get_logger()
    for owner, name, attribute in swapped:
        setattr(owner, name, timed(attribute, clock))
    Model.log = classmethod(timed(log_model.__func__, clock))  # type: ignore[method-assign,assignment]
    AutologgingEventLogger.set_logger(patch_timer(AutologgingEventLogger, events_before, clock))
    try:
        yield clock
    finally:
        AutologgingEventLogger.set_logger(events_before)
        Model.log = log_model  # type: ignore[method-assign]
        for owner, name, attribute in swapped:
            setattr(owner, name, attribute)
        clock.stop()


def timed(function: Callable[..., Any], clock: MlflowClock) -> Callable[..., Any]:
    """``function`` counted as MLflow's time on the clock's thread."""

    @functools.wraps(function)
    def counted(*args: Any, **kwargs: Any) -> Any:
        key = object()
        clock.enter(True, key)
        try:
            return function(*args, **kwargs)
        finally:
            clock.leave(key)

    return counted


def patch_timer(base: type, forward: Any, clock: MlflowClock) -> Any:
    """An ``AutologgingEventLogger`` (``base``, MLflow's class) that spans autologging's patches on ``clock`` and
    hands every event on to the logger that was set before (``forward``). The clock is moved first: a logger that
    raises (MLflow catches it) must not leave a span open."""

    def key(kind: str, patch_obj: Any, function_name: str) -> tuple[str, int, str]:
        return kind, id(patch_obj), function_name

    class PatchTimer(base):  # type: ignore[misc,valid-type]
        def log_autolog_called(self, *args: Any) -> None:
            forward.log_autolog_called(*args)

        def log_patch_function_start(self, session: Any, patch_obj: Any, function_name: str, *args: Any) -> None:
            clock.enter(True, key("patch", patch_obj, function_name))
            forward.log_patch_function_start(session, patch_obj, function_name, *args)

        def log_patch_function_success(self, session: Any, patch_obj: Any, function_name: str, *args: Any) -> None:
            clock.leave(key("patch", patch_obj, function_name))
            forward.log_patch_function_success(session, patch_obj, function_name, *args)

        def log_patch_function_error(self, session: Any, patch_obj: Any, function_name: str, *args: Any) -> None:
            clock.leave(key("patch", patch_obj, function_name))
            forward.log_patch_function_error(session, patch_obj, function_name, *args)

        def log_original_function_start(self, session: Any, patch_obj: Any, function_name: str, *args: Any) -> None:
            clock.enter(False, key("original", patch_obj, function_name))
            forward.log_original_function_start(session, patch_obj, function_name, *args)

        def log_original_function_success(self, session: Any, patch_obj: Any, function_name: str,
                                          *args: Any) -> None:
            clock.leave(key("original", patch_obj, function_name))
            forward.log_original_function_success(session, patch_obj, function_name, *args)

        def log_original_function_error(self, session: Any, patch_obj: Any, function_name: str, *args: Any) -> None:
            # the patch re-raises the library's error with no end event of its own: its span ends here too
            clock.leave(key("original", patch_obj, function_name))
            clock.leave(key("patch", patch_obj, function_name))
            forward.log_original_function_error(session, patch_obj, function_name, *args)

    return PatchTimer()
