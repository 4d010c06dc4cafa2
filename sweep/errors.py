"""The sweep's exceptions: one root; the CLI maps each to a one-line message and an exit code."""

from __future__ import annotations


class SweepError(Exception):
    """Root of every error the sweep raises on purpose. ``exit_code`` is what the CLI exits with."""

    exit_code = 1


class SweepConfigError(SweepError, ValueError):
    """A sweep config or flag is invalid; the message names the key and the fix."""

    exit_code = 2


class NotFoundError(SweepError, LookupError):
    """A named sweep, or any completed trial, does not exist."""


class StorageError(SweepError):
    """The Optuna storage cannot be opened or written."""


class TrackingError(SweepError):
    """The MLflow tracking store cannot be reached or written."""


class AllTrialsFailedError(SweepError):
    """Every trial of a sweep failed; the message summarises the errors."""
