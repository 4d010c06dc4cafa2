"""The trials' working folders at the end of a sweep: the best trial's is kept, the others' removed."""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path


def tidy_workdirs(folder: Path, *, keep: int | None, finished: Iterable[int]) -> list[int]:
    """Remove ``folder``/trial-N of each finished trial but ``keep`` (a running trial's folder is left
    alone: another worker may be using it); returns the trials whose folder was removed."""
    removed = []
    for number in finished:
        workdir = folder / f"trial-{number}"
        if number != keep and workdir.is_dir():
            shutil.rmtree(workdir, ignore_errors=True)
            removed.append(number)
    return removed
