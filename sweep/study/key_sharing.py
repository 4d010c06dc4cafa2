"""Dicts of the same few keys kept with one table of keys among them: a finished trial's params and attributes.

A long sweep's process keeps every finished trial (Optuna's journal replay), each with dicts of the same names:
its params, its user attributes, its metrics. A plain dict holds a hash, a key and a value per entry; CPython's
key-sharing dicts (PEP 412, the layout of the attribute dicts of a class's instances) hold only the values, the
keys being in one table the class's instances share. KeySharingDicts makes such dicts: ordinary dicts in every
other way (type dict, equal, ordered, pickled, copied and printed as any other).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

KEY_SETS_LIMIT = 64  # distinct key sets a maker keeps a table for (a class each); dicts of more are plain copies


class KeySharingDicts:
    """Makes dicts equal to given ones (the same keys and values, in the same order) that share their table of keys
    with the other dicts of the same keys it made.

    Each key set has a class of its own, whose instances are made only to take their ``__dict__``: a dict read from
    an instance keeps the shared layout after the instance is gone. A class per key set, not one for all: CPython
    closes a class's table to new names after a few dozen instances, and sizes every instance's values for all the
    names in it. A dict that cannot share (a key that is not a str, a name the table does not hold, a later
    change to it) gets a table of its own, as a plain dict has: only the memory differs, never the dict.
    """

    def __init__(self) -> None:
        self._classes: dict[tuple[Any, ...], type] = {}

    def like(self, source: Mapping[Any, Any]) -> dict[Any, Any]:
        """A new dict equal to ``source``, its keys shared with the other dicts of the same keys made here."""
        keys = tuple(source)
        holder = self._classes.get(keys)
        if holder is None:
            if len(self._classes) >= KEY_SETS_LIMIT:
                return dict(source)
            holder = self._classes[keys] = type("SharedKeys", (), {"__module__": __name__})
        made: dict[Any, Any] = vars(holder())
        for key, value in source.items():  # one at a time: dict.update() copies a table of the source's own
            made[key] = value
        return made
