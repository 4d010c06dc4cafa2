"""The journal file's health before it is used: a torn last line is set aside, a broken line inside is located.

A journal line is one JSON record ending in a newline. A crash or a full disk in the middle of an
append leaves a torn last line (no newline, or not JSON); Optuna's reader skips it, but the next
append would glue a whole record onto it and make every later read fail. So before anything is
appended the torn tail is cut off (kept in a side file, never thrown away). A broken line with good
lines after it is not ours to cut: it is reported with its line number, and nothing is written.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from optuna.storages.journal import JournalFileOpenLock

from sweep.errors import StorageError

BLOCK_BYTES = 64 * 1024  # read backwards in blocks of this size to find the last line of a large journal


@dataclass(frozen=True)
class TornTail:
    """A torn last line that was cut off ``journal`` and kept in ``kept_in``."""

    journal: Path
    kept_in: Path
    line: int
    size: int

    def message(self) -> str:
        return (f"{self.journal}: its last line {self.line} was torn ({self.size} bytes, not a whole record); "
                f"set aside in {self.kept_in.name}, the records before it are intact")


class BrokenJournalError(StorageError):
    """A line inside the journal (with records after it) is not a whole JSON record."""


def set_aside_torn_tail(journal: Path) -> TornTail | None:
    """Cut a torn last line off ``journal`` into a side file, under the journal's own lock.

    The lock is the one every append takes, so no worker is half-way through writing the last line.
    """
    if not journal.is_file() or journal.stat().st_size == 0:
        return None
    lock = JournalFileOpenLock(str(journal))
    lock.acquire()
    try:
        with open(journal, "r+b") as file:
            start = _last_line_start(file)
            file.seek(start)
            tail = file.read()
            if _is_record(tail):
                return None
            kept_in = _side_file(journal)
            try:
                kept_in.write_bytes(tail)
            except OSError:
                kept_in.unlink(missing_ok=True)  # the disk is still full: cut nothing that is not kept
                raise
            file.truncate(start)
            file.flush()
            os.fsync(file.fileno())
        return TornTail(journal, kept_in, _line_count(journal) + 1, len(tail))
    finally:
        lock.release()


def find_broken_line(journal: Path) -> BrokenJournalError | None:
    """The first line of ``journal`` that is not a whole record yet has lines after it, as an error to raise."""
    broken: tuple[int, int] | None = None  # (line number, byte offset)
    offset = 0
    with open(journal, "rb") as file:
        for number, line in enumerate(file, start=1):
            if broken is not None:  # records follow the broken line: Optuna cannot read past it
                line_number, byte = broken
                return BrokenJournalError(
                    f"{journal}: line {line_number} (byte {byte}) is not a whole journal record and lines follow "
                    f"it; nothing was written. {keep_lines_before(journal, line_number)}")
            if not _is_record(line):
                broken = (number, offset)
            offset += len(line)
    return None


def find_unusable_record(journal: Path) -> BrokenJournalError | None:
    """The first line of ``journal`` that is a JSON object or value Optuna cannot apply (an unknown op_code, a
    missing key, a list), found by replaying the records as Optuna does on open; None when every one applies."""
    from optuna.storages.journal._storage import JournalStorageReplayResult  # the replay Optuna runs on open

    replay = JournalStorageReplayResult(worker_id_prefix="sweep-check-")
    with open(journal, "rb") as file:
        for number, line in enumerate(file, start=1):
            try:
                record = json.loads(line)
            except ValueError:
                continue  # not JSON: find_broken_line's and the torn tail's to report
            try:
                replay.apply_logs([record])
            except Exception as error:  # Optuna's replay asserts, indexes and looks keys up: any of them fails
                return BrokenJournalError(
                    f"{journal}: line {number} is a record Optuna cannot apply ({what_is_wrong(record, error)}); "
                    f"nothing was written. {keep_lines_before(journal, number)}")
    return None


def keep_lines_before(journal: Path, line: int) -> str:
    """The way out of a journal broken at ``line``: a copy cut before it."""
    return (f"To keep the {line - 1} lines before it: copy the file, cut the copy from line {line} on "
            f"(head -n {line - 1} {journal.name} > repaired.journal), then use --storage repaired.journal")


def what_is_wrong(record: object, error: Exception) -> str:
    if not isinstance(record, dict):
        return f"a JSON {type(record).__name__}, not an object"
    if "op_code" not in record:
        return "no op_code"
    if isinstance(error, KeyError):
        return f"op_code {record['op_code']!r} without {error.args[0]!r}"
    if isinstance(error, AssertionError):
        return f"unknown op_code {record['op_code']!r}"
    return f"{type(error).__name__}: {error}"


def _is_record(line: bytes) -> bool:
    if not line.endswith(b"\n"):
        return False
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:  # JSONDecodeError and UnicodeDecodeError
        return False


def _last_line_start(file: BinaryIO) -> int:
    """The byte offset where the file's last line starts (a trailing newline ends that line)."""
    end = file.seek(0, os.SEEK_END)
    position = end - 1  # the last byte may be the last line's own newline
    while position > 0:
        start = max(0, position - BLOCK_BYTES)
        file.seek(start)
        block = file.read(position - start)
        newline = block.rfind(b"\n")
        if newline >= 0:
            return start + newline + 1
        position = start
    return 0


def _line_count(journal: Path) -> int:
    with open(journal, "rb") as file:
        return sum(block.count(b"\n") for block in iter(lambda: file.read(BLOCK_BYTES), b""))


def _side_file(journal: Path) -> Path:
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    candidate = journal.with_name(f"{journal.name}.torn-{stamp}")
    number = 1
    while candidate.exists():
        number += 1
        candidate = journal.with_name(f"{journal.name}.torn-{stamp}-{number}")
    return candidate
