"""Every error `sweep` and `train` report on purpose, and the one table of exit codes both commands use.

Two roots, because the layers point one way (trainer/ imports nothing from sweep/):

- ``trainer.errors.TrainerError``: what the numpy trainer raises (bad settings, bad data files,
  divergence, bad model files). The trainer cannot know this module, so its classes stay there and
  are mapped here by name (importing them would import numpy into every command).
- ``SweepError``: what the sweep raises (config, stores, missing sweeps, failed sweeps, interrupts).

Only the CLI modules (sweep/cli.py, sweep/train_cli.py) turn an error into a message and an exit
code, through :func:`exit_code` and :func:`first_line`:

====  ==========================================================================================
code  meaning
====  ==========================================================================================
0     done
1     something named does not exist (a sweep, a data, settings or model file), a store cannot
      be reached or written (Optuna storage, MLflow tracking, the UI server), every trial
      failed, or training diverged: the input was well-formed, the outcome was not
2     bad input: a config, a flag, a settings, data or model file that cannot be used; nothing
      was written
130   interrupted (Ctrl-C or SIGTERM); a sweep can be resumed
====  ==========================================================================================

The same problem gets the same code from both commands: a bad data file exits 2 from
``sweep run --data`` and from ``train --data``.
"""

from __future__ import annotations

from sweep.urls import redact_text

DONE = 0
FAILED = 1
BAD_INPUT = 2
INTERRUPTED = 130


class SweepError(Exception):
    """Root of every error the sweep raises on purpose; its exit code is in EXIT_CODES."""


class SweepConfigError(SweepError, ValueError):
    """A sweep config or flag is invalid; the message names the key (or flag) and the fix."""


class NotFoundError(SweepError, LookupError):
    """A named sweep, or any completed trial, does not exist."""


class StorageError(SweepError):
    """The Optuna storage cannot be opened or written."""


class StorageUnavailableError(StorageError):
    """The Optuna storage stopped answering mid-sweep and did not come back within the retry time."""

    def resumable(self, resume_command: str) -> StorageUnavailableError:
        """The same error, saying how to continue once the storage answers again."""
        return StorageUnavailableError(f"{self}; when it answers again, continue with: {resume_command}")


class TrackingError(SweepError):
    """The MLflow tracking store cannot be reached or written."""


class ClusterError(SweepError):
    """The Ray cluster a sweep runs on cannot be reached."""


class AllTrialsFailedError(SweepError):
    """Every trial of a sweep failed; the message summarises the errors."""


class Interrupted(SweepError):
    """Ctrl-C or SIGTERM stopped the command; the message says how to resume, when that applies."""


# Looked up along the error's class hierarchy (most derived class first), so a subclass not listed
# gets its nearest listed base's code. The trainer's "not found" classes are listed on their own:
# they derive from both a bad-input class and FileNotFoundError, and a missing file is not bad input.
EXIT_CODES: dict[type[BaseException], int] = {
    KeyboardInterrupt: INTERRUPTED,
    Interrupted: INTERRUPTED,
    SweepConfigError: BAD_INPUT,
    NotFoundError: FAILED,
    StorageError: FAILED,
    TrackingError: FAILED,
    ClusterError: FAILED,
    AllTrialsFailedError: FAILED,
    SweepError: FAILED,
}

# The trainer's classes, by their full names: importing trainer.errors runs the trainer package, which imports
# numpy, a cost every command would pay at start; a trainer error only exists once the trainer is imported.
TRAINER_EXIT_CODES: dict[str, int] = {
    "trainer.errors.ConfigFileNotFoundError": FAILED,
    "trainer.errors.DataFileNotFoundError": FAILED,
    "trainer.errors.ModelFileNotFoundError": FAILED,
    "trainer.errors.DivergenceError": FAILED,
    "trainer.errors.ConfigError": BAD_INPUT,
    "trainer.errors.DataError": BAD_INPUT,
    "trainer.errors.ModelFileError": BAD_INPUT,
    "trainer.errors.TrainerError": BAD_INPUT,
}


def exit_code(error: BaseException) -> int | None:
    """The exit code for ``error``, or None when it is not an error either command reports on purpose."""
    for kind in type(error).__mro__:
        if kind in EXIT_CODES:
            return EXIT_CODES[kind]
        code = TRAINER_EXIT_CODES.get(f"{kind.__module__}.{kind.__qualname__}")
        if code is not None:
            return code
    return None


def first_line(error: BaseException) -> str:
    """The first line of the error's message (its class name when empty), with passwords in URLs hidden."""
    lines = str(error).strip().splitlines()
    return redact_text(lines[0] if lines else type(error).__name__)
