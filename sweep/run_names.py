"""A trial's child run name: `trial-12` by default, or the config's `run_name:` template filled with the trial's
number and params (`{trial}-lr{lr:.2g}-ep{epochs}`). A pruned trial's name ends with ` (pruned)` either way."""

from __future__ import annotations

import contextlib
import string
from collections.abc import Mapping
from typing import Any

from sweep.states import TrialState

TRIAL_FIELD = "trial"  # the trial's number in a run_name template
PRUNED_MARK = " (pruned)"  # a pruned run is KILLED like an interrupted one: the name tells them apart


def default_name(number: int) -> str:
    return f"trial-{number}"


def template_fields(template: str) -> list[tuple[str, str, str | None]]:
    """(name, format spec, conversion) of each `{field}` of ``template``; ValueError when a brace is malformed."""
    return [(name, spec or "", conversion) for _text, name, spec, conversion in string.Formatter().parse(template)
            if name is not None]


def fill(template: str, number: int, params: Mapping[str, Any]) -> str:
    """``template`` with ``{trial}`` the number and every other field the param of its name; raises KeyError for a
    param the trial does not have, ValueError or TypeError for a value its format spec does not fit."""
    return template.format_map({**params, TRIAL_FIELD: number})


def run_name(template: str | None, number: int, params: Mapping[str, Any], state: TrialState) -> str:
    """The child run's name: the template filled, else (no template, or a trial without a param it names: one
    that failed before suggesting it) `trial-N`; then ` (pruned)` for a pruned trial."""
    name = default_name(number)
    if template is not None:
        # the config's check tried every corner of the space; a define-by-run param may still be missing
        with contextlib.suppress(KeyError, ValueError, TypeError, IndexError, AttributeError):
            name = fill(template, number, params)
    return name + PRUNED_MARK if state == TrialState.PRUNED else name

