"""`sweep enqueue`: one trial with given params queued into a sweep, running or stopped, to run exactly once."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sweep.config import NAME_PATTERN, param_set_from_file
from sweep.errors import SweepConfigError
from sweep.locations import StorageLocation
from sweep.space import parse_value, shown_key
from sweep.states import SweepStatus
from sweep.study.opening import open_sweep
from sweep.study.sharing import TrialGate
from sweep.study.sweep_study import SweepStudy

OUTSIDE_HINT = "give a value inside it, or add --allow-outside to run it anyway"


@dataclass(frozen=True)
class Enqueued:
    """A trial queued into a sweep, and how it will run."""

    sweep: str
    number: int
    params: dict[str, Any]
    running: bool  # the sweep is marked running: its next free worker takes the trial
    target: int
    target_raised: bool  # the sweep had started its whole target: the target was raised by one for this trial
    resume: str  # the command that runs it when no worker of the sweep is left


def split_arguments(arguments: Sequence[str]) -> tuple[str | None, dict[str, str]]:
    """`[NAME] PARAM=VALUE...` -> (the sweep's name or None, param -> value as text); checked before any store
    is opened. A sweep's name never holds '=', so the first argument without one is the name."""
    name: str | None = None
    texts: dict[str, str] = {}
    for index, argument in enumerate(arguments):
        param, equals, value = argument.partition("=")
        if not equals:
            if index == 0 and NAME_PATTERN.match(argument):
                name = argument
                continue
            raise SweepConfigError(f"{shown_key(argument)!r}: expected PARAM=VALUE (e.g. lr=0.5), after the sweep's "
                                   f"name")
        if not param:
            raise SweepConfigError(f"{shown_key(argument)!r}: a param's name is missing before '='")
        if param in texts:
            raise SweepConfigError(f"{shown_key(param)}: given twice; keep one")
        texts[param] = value
    return name, texts


def enqueue_trial(arguments: Sequence[str], *, storage_url: str | None, from_file: Path | None = None,
                  allow_outside: bool = False) -> Enqueued:
    """Queue a trial with the params of ``from_file`` and of ``arguments`` (`[NAME] PARAM=VALUE...`; a param given
    in both takes the argument's value) into the named sweep, else the latest one.

    The params are checked against the sweep's stored space before anything is written: each must be a param
    under space: (or a fixed: one with its fixed value), inside its range unless ``allow_outside`` (a choice
    the space lacks, or a value of another type, is refused whatever: Optuna could not keep it).
    """
    name, texts = split_arguments(arguments)
    given: Mapping[str, Any] = param_set_from_file(from_file) if from_file is not None else {}
    if not given and not texts:
        raise SweepConfigError("no params given; name them as PARAM=VALUE (e.g. lr=0.5 epochs=300) or give --from "
                               "FILE")
    location = StorageLocation.parse(storage_url)
    sweep = open_sweep(location, name)
    config = sweep.config
    if config.sampler == "grid":
        raise SweepConfigError(f"sweep {sweep.name} uses the grid sampler, which visits every point of its grid "
                               f"itself; queue trials into sweeps of the other samplers")
    params = {**given, **{param: parse_value(config.space.get(param), text) for param, text in texts.items()}}
    checked = config.check_params(params, "enqueue", allow_outside=allow_outside, outside_hint=OUTSIDE_HINT)
    study = SweepStudy.read(sweep, config)
    gate = TrialGate(location, sweep.storage, sweep.name)
    try:
        with gate:  # no worker counts the trials between this count and the queueing
            queued = study.queue_trial(checked)
    finally:
        gate.close()
    return Enqueued(sweep.name, queued.number, checked, sweep.attrs.status == SweepStatus.RUNNING, queued.target,
                    queued.target_raised, f"sweep run --resume --name {sweep.name}{location.flag}")
