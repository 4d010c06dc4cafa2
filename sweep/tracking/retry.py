"""The retry policy of the tracking process: backoff on a failing write, one try each while the store is down."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

RETRY_FIRST_SECONDS = 0.5  # first pause before retrying an MLflow write; it doubles each time
RETRY_ENV = "SWEEP_TRACKING_RETRY_SECONDS"  # how long one write may keep retrying
RETRY_DEFAULT_SECONDS = 30.0

# what a store says when it is broken rather than down: no retry can fix these, so none is spent on them
PERMANENT_SIGNS = ("file is not a database", "no such table", "no such column", "duplicate column",
                   "_alembic_tmp", "out-of-date database schema",
                   "serves Connect first")  # a sweep whose start MLflow refused: its later requests have no store

T = TypeVar("T")


def is_permanent(error: BaseException) -> bool:
    """A failure that retrying cannot fix: a file that is not a database, a half-made or outdated schema."""
    text = str(error)
    return any(sign in text for sign in PERMANENT_SIGNS)


def retry_seconds() -> float:
    """How long one write may keep retrying: SWEEP_TRACKING_RETRY_SECONDS, else the default."""
    return float(os.environ.get(RETRY_ENV, str(RETRY_DEFAULT_SECONDS)))


@dataclass
class RetryPolicy:
    """Retry a write with backoff for up to ``budget_seconds``; once one write used up its retries the
    store is down, and later writes try once each until one succeeds (a dead server must not stall the
    trials behind a queue of retries)."""

    budget_seconds: float
    first_delay: float = RETRY_FIRST_SECONDS
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    store_down: bool = False
    permanent: Callable[[BaseException], bool] = is_permanent

    @classmethod
    def from_environment(cls) -> RetryPolicy:
        return cls(retry_seconds())

    def run(self, call: Callable[[], T]) -> T:
        """call()'s result; its last exception once the budget (or, while the store is down, one try) is spent,
        or at once when the failure is permanent."""
        delay = self.first_delay
        deadline = self.clock() + (0.0 if self.store_down else self.budget_seconds)
        while True:
            try:
                result = call()
            except Exception as error:
                if not self.permanent(error) and self.clock() + delay <= deadline:
                    self.sleep(delay)
                    delay *= 2
                    continue
                self.store_down = True
                raise
            self.store_down = False
            return result
