"""A torn last journal line is set aside before anything is appended; a broken line inside is located."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sweep.errors import StorageError
from sweep.study.journal_repair import find_broken_line, set_aside_torn_tail
from sweep.study.storage import open_storage

RECORDS = [{"op_code": 0, "worker_id": "w", "study_name": f"s{number}", "directions": [1]} for number in range(3)]


def _journal(folder: Path, tail: bytes = b"") -> Path:
    path = folder / "sweep.journal"
    path.write_bytes(b"".join(json.dumps(record).encode() + b"\n" for record in RECORDS) + tail)
    return path


@pytest.mark.parametrize("tail", [b'{"op_code": 5, "work', b"garbage\n", b"\n", b"\xff\xfe\n"],
                         ids=["no-newline", "not-json", "empty-line", "not-utf8"])
def test_torn_last_line_is_cut_off_and_kept_in_a_side_file(tmp_path: Path, tail: bytes):
    path = _journal(tmp_path, tail)
    intact = path.read_bytes()[: -len(tail)]
    torn = set_aside_torn_tail(path)
    assert torn is not None
    assert path.read_bytes() == intact
    assert torn.kept_in.read_bytes() == tail and torn.kept_in.name.startswith("sweep.journal.torn-")
    assert torn.line == len(RECORDS) + 1 and torn.size == len(tail)
    assert "\n" not in torn.message() and torn.kept_in.name in torn.message()


def test_whole_journal_is_left_alone(tmp_path: Path):
    path = _journal(tmp_path)
    before = path.read_bytes()
    assert set_aside_torn_tail(path) is None
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["sweep.journal"]


def test_last_line_longer_than_a_read_block_is_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr("sweep.study.journal_repair.BLOCK_BYTES", 7)
    path = _journal(tmp_path, b'{"op_code": 5, "worker_id": "a long torn line"')
    torn = set_aside_torn_tail(path)
    assert torn is not None and torn.size == len(b'{"op_code": 5, "worker_id": "a long torn line"')


def test_journal_of_only_a_torn_line_is_emptied(tmp_path: Path):
    path = tmp_path / "sweep.journal"
    path.write_bytes(b'{"op_')
    torn = set_aside_torn_tail(path)
    assert torn is not None and path.read_bytes() == b"" and torn.line == 1


def test_broken_line_in_the_middle_is_named_by_number_and_byte(tmp_path: Path):
    path = _journal(tmp_path)
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(lines[0] + b"{broken\n" + b"".join(lines[1:]))
    error = find_broken_line(path)
    assert error is not None
    assert f"line 2 (byte {len(lines[0])})" in str(error) and "head -n 1" in str(error) and "\n" not in str(error)


def test_open_storage_with_a_broken_middle_line_raises_and_writes_nothing(tmp_path: Path):
    path = _journal(tmp_path)
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(lines[0] + b"{broken\n" + b"".join(lines[1:]))
    before = path.read_bytes()
    for read_only in (False, True):
        with pytest.raises(StorageError, match="line 2"):
            open_storage(str(path), read_only=read_only)
    assert path.read_bytes() == before


def test_open_storage_for_writing_sets_a_torn_tail_aside_and_warns(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    path = _journal(tmp_path, b'{"op_code": 5, "wor')
    with caplog.at_level("WARNING", logger="sweep"):
        storage = open_storage(str(path))
    assert len(storage.get_all_studies()) == len(RECORDS)
    assert not path.read_bytes().endswith(b"wor") and "set aside" in caplog.text


def test_open_storage_read_only_leaves_a_torn_tail_in_place(tmp_path: Path):
    path = _journal(tmp_path, b'{"op_code": 5, "wor')
    before = path.read_bytes()
    assert len(open_storage(str(path), read_only=True).get_all_studies()) == len(RECORDS)
    assert path.read_bytes() == before
