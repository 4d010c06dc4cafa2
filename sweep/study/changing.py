"""Changing a sweep while it runs (`sweep set`): its trial target, in the study every worker reads at each look."""

from __future__ import annotations

from dataclasses import dataclass, replace

from sweep.config import MAX_TRIALS
from sweep.errors import SweepConfigError
from sweep.locations import StorageLocation
from sweep.study.attrs import SweepAttrs
from sweep.study.census import take_census
from sweep.study.opening import open_sweep


@dataclass(frozen=True)
class TargetChange:
    """A sweep's trial target before and after `sweep set`, and its trials then."""

    name: str
    before: int
    after: int
    counted: int  # trials that count toward the target, running ones included
    running: int
    status: str  # the sweep's status (a SweepStatus as stored)


def set_target(storage_url: str | None, name: str, trials: int) -> TargetChange:
    """Store ``trials`` as sweep ``name``'s target. Its loops read it at their next look: a target at or below
    the trials counted already starts no new trial (the running ones end as usual), a higher one lets them go on;
    a sweep no process runs takes it up on `sweep run --resume` (or `sweep worker`)."""
    if isinstance(trials, bool) or not 1 <= trials <= MAX_TRIALS:
        raise SweepConfigError(f"--trials: must be an integer from 1 to {MAX_TRIALS:,}, got {trials}")
    sweep = open_sweep(StorageLocation.parse(storage_url), name)
    study = sweep.read()
    before = sweep.attrs.target or sweep.config.trials
    replace(SweepAttrs.read(study), target=trials).write(study)
    census = take_census(study, sweep.config)
    return TargetChange(sweep.name, before, trials, census.counted, census.running, sweep.attrs.status)
