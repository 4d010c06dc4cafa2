"""A journal file read without Optuna, through a summary kept beside it: what `sweep best`, `ls`, `show` read.

Optuna's replay of a journal builds and copies a FrozenTrial per operation, and importing Optuna alone costs
more than these commands may take. This module folds the journal's JSON lines itself, by Optuna's own replay
rules (JournalStorageReplayResult, as seen by a reader that wrote none of the lines: an operation Optuna's replay
would reject is skipped), into plain studies and trials.

The fold's state is saved beside the journal (``<journal>.summary``) with how many bytes of the journal it
covers, so the next read folds only the lines appended since. A journal only grows (Optuna appends whole
lines; a torn last line is never folded); the only rewrites (a torn tail set aside, `keep_lines_before`'s
repair) cut it. The summary is used only when the journal still holds, at the bytes it covers, what it held
then: the same first and last bytes of that stretch (a file cut, rewritten or replaced fails the check and the
journal is folded again from its start). A summary that cannot be read or written only costs a full fold.
Any line the fold cannot apply (not JSON, an unknown operation) makes the reader give up: the caller then
replays through Optuna, which reports the broken line as it always has.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sweep.states import TrialState
from sweep.study.plain import Distribution, PlainStudy, PlainTrial, UnreadableStore, kept_system_attr

SUMMARY_FORMAT = 1  # bumped whenever the saved state's layout changes: an older summary is then folded again
CHECK_BYTES = 4096  # of the journal's start and of the bytes before the covered end, kept to check it later

# Optuna's journal operations (optuna.storages.journal.JournalOperation) and trial states (TrialState values)
CREATE_STUDY, DELETE_STUDY, SET_STUDY_USER_ATTR, SET_STUDY_SYSTEM_ATTR = 0, 1, 2, 3
CREATE_TRIAL, SET_TRIAL_PARAM, SET_TRIAL_STATE_VALUES, SET_TRIAL_INTERMEDIATE_VALUE = 4, 5, 6, 7
SET_TRIAL_USER_ATTR, SET_TRIAL_SYSTEM_ATTR, DISCARD_TRIALS = 8, 9, 10
RUNNING, WAITING = 0, 4
FINISHED_STATES = (1, 2, 3)  # COMPLETE, PRUNED, FAIL
STATE_NAMES = {0: "RUNNING", 1: "COMPLETE", 2: "PRUNED", 3: "FAIL", 4: "WAITING"}

# a trial in the saved state: a list, by these positions (JSON keeps it small and quick to load)
STUDY, NUMBER, STATE, VALUES, PARAMS, USER, SYSTEM, START, COMPLETE = range(9)


class UnreadableJournal(UnreadableStore):
    """A line the fold cannot apply: the caller replays through Optuna instead (which names the line)."""


class JournalFold:
    """Optuna's replay of a journal, kept to what the commands read, in JSON-ready values."""

    def __init__(self, state: Mapping[str, Any] | None = None) -> None:
        state = state or {}
        self.studies: dict[str, dict[str, Any]] = state.get("studies", {})  # study id (text) -> name, attrs
        self.next_study: int = state.get("next_study", 0)
        self.trials: list[list[Any]] = state.get("trials", [])  # by trial id, the deleted studies' too
        self.per_study: dict[str, int] = state.get("per_study", {})  # study id -> its trial count
        # (study id, param) -> [trial id, distribution JSON] of the earliest trial holding the param: the one
        # Optuna's replay checks a new distribution of the param against
        self.first_holder: dict[str, list[Any]] = state.get("first_holder", {})

    def state(self) -> dict[str, Any]:
        return {"studies": self.studies, "next_study": self.next_study, "trials": self.trials,
                "per_study": self.per_study, "first_holder": self.first_holder}

    def apply(self, log: Mapping[str, Any]) -> None:
        op = log["op_code"]
        if op == CREATE_STUDY:
            if all(study["name"] != log["study_name"] for study in self.studies.values()):
                self.studies[str(self.next_study)] = {"name": log["study_name"], "user_attrs": {}}
                self.per_study[str(self.next_study)] = 0
                self.next_study += 1
        elif op == DELETE_STUDY:
            self.studies.pop(str(log["study_id"]), None)
        elif op == SET_STUDY_USER_ATTR:
            study = self.studies.get(str(log["study_id"]))
            if study is not None:
                study["user_attrs"].update(log["user_attr"])
        elif op == SET_STUDY_SYSTEM_ATTR:
            pass  # no command reads them
        elif op == CREATE_TRIAL:
            self._create_trial(log)
        elif op in (SET_TRIAL_PARAM, SET_TRIAL_STATE_VALUES, SET_TRIAL_USER_ATTR, SET_TRIAL_SYSTEM_ATTR):
            trial_id = log["trial_id"]
            if not 0 <= trial_id < len(self.trials) or self.trials[trial_id][STATE] in FINISHED_STATES:
                return  # Optuna's replay skips an update of a missing or finished trial
            trial = self.trials[trial_id]
            if op == SET_TRIAL_PARAM:
                self._set_param(trial_id, trial, log)
            elif op == SET_TRIAL_STATE_VALUES:
                self._set_state(trial, log)
            elif op == SET_TRIAL_USER_ATTR:
                trial[USER].update(log["user_attr"])
            else:
                trial[SYSTEM].update({key: value for key, value in log["system_attr"].items() if kept_system_attr(key)})
        elif op not in (SET_TRIAL_INTERMEDIATE_VALUE, DISCARD_TRIALS):  # neither changes what is read
            raise UnreadableJournal(f"unknown journal operation {op!r}")

    def _create_trial(self, log: Mapping[str, Any]) -> None:
        study_id = str(log["study_id"])
        if study_id not in self.studies:
            return
        distributions = log.get("distributions", {})
        params = {name: Distribution.from_json(distributions[name]).external(value)
                  for name, value in log.get("params", {}).items()}
        values = log.get("values")
        if values is None and log.get("value") is not None:
            values = [log["value"]]
        trial_id = len(self.trials)
        self.trials.append([study_id, self.per_study[study_id], _known(log.get("state", RUNNING)), values, params,
                            dict(log.get("user_attrs", {})),
                            {key: value for key, value in log.get("system_attrs", {}).items() if kept_system_attr(key)},
                            log["datetime_start"], log.get("datetime_complete")])
        self.per_study[study_id] += 1
        for name in params:
            self._note_holder(study_id, name, trial_id, distributions[name])

    def _set_param(self, trial_id: int, trial: list[Any], log: Mapping[str, Any]) -> None:
        name, text = log["param_name"], log["distribution"]
        distribution = Distribution.from_json(text)
        holder = self.first_holder.get(f"{trial[STUDY]}\0{name}")
        if holder is not None and not Distribution.from_json(holder[1]).compatible(distribution):
            return  # Optuna's replay rejects a param whose distribution changed kind (or choices)
        trial[PARAMS][name] = distribution.external(log["param_value_internal"])
        self._note_holder(trial[STUDY], name, trial_id, text)

    def _note_holder(self, study_id: str, name: str, trial_id: int, text: str) -> None:
        key = f"{study_id}\0{name}"
        holder = self.first_holder.get(key)
        if holder is None or trial_id < holder[0]:
            self.first_holder[key] = [trial_id, text]
        elif trial_id == holder[0]:
            holder[1] = text

    @staticmethod
    def _set_state(trial: list[Any], log: Mapping[str, Any]) -> None:
        state = _known(log["state"])
        if state == RUNNING == trial[STATE]:
            return  # a waiting trial another worker popped first
        if state == RUNNING:
            trial[START] = log["datetime_start"]
        if state in FINISHED_STATES:
            trial[COMPLETE] = log["datetime_complete"]
        trial[STATE] = state
        if log["values"] is not None:
            trial[VALUES] = log["values"]

    def studies_read(self) -> list[PlainStudy]:
        return [PlainStudy(int(key), study["name"], study["user_attrs"]) for key, study in self.studies.items()]

    def trials_of(self, study: PlainStudy) -> list[PlainTrial]:
        key = str(study.key)
        states = {code: TrialState(name) for code, name in STATE_NAMES.items()}
        return [PlainTrial(t[NUMBER], states[t[STATE]], tuple(t[VALUES]) if t[VALUES] is not None else None,
                           t[PARAMS], t[USER], t[SYSTEM], t[START], t[COMPLETE])
                for t in self.trials if t[STUDY] == key]


def _known(state: int) -> int:
    if state not in STATE_NAMES:
        raise UnreadableJournal(f"unknown trial state {state!r}")
    return state


class JournalSource:
    """A folded journal as reading.py's TrialSource."""

    hint = "the journal storage"  # storage.storage_hint's words for a journal

    def __init__(self, fold: JournalFold) -> None:
        self._fold = fold

    def studies(self) -> list[PlainStudy]:
        return self._fold.studies_read()

    def trials(self, study: PlainStudy, *, times: bool = True, brief: bool = False) -> list[PlainTrial]:
        return self._fold.trials_of(study)  # the times and attributes as stored: nothing to leave out

    def detailed(self, study: PlainStudy, trials: Sequence[PlainTrial]) -> list[PlainTrial]:
        return list(trials)  # read in full already


def summary_path(journal: Path) -> Path:
    return journal.with_name(journal.name + ".summary")


def read_journal(journal: Path, *, save: bool = True) -> JournalFold:
    """The journal folded up to its last whole line: from its summary on, when the summary still holds. With
    ``save``, a summary that moved on is written back (atomically; silently not when it cannot be)."""
    with journal.open("rb") as file:
        size = os.fstat(file.fileno()).st_size
        saved = _load_summary(summary_path(journal), file, size)
        fold = JournalFold(saved["state"] if saved else None)
        start = saved["covered"] if saved else 0
        file.seek(start)
        data = file.read(size - start)
    end = data.rfind(b"\n") + 1  # a torn last line (being written, or cut by a crash) waits for the next read
    try:
        for line in data[:end].splitlines():
            if line.strip():
                fold.apply(json.loads(line))
    except (ValueError, KeyError, TypeError, IndexError, AttributeError) as error:
        raise UnreadableJournal(str(error)) from None
    if save and end > 0:
        # the check bytes of what was folded, from the bytes read (the file may have changed since): the head is
        # the first CHECK_BYTES of the journal, the tail the last before the covered end
        head = (saved["head"].encode("latin-1") if saved else b"") + data[:end]
        tail = (saved["tail"].encode("latin-1") if saved else b"") + data[:end]
        _save_summary(summary_path(journal), journal.stat().st_mode,
                      {"format": SUMMARY_FORMAT, "covered": start + end, "head": head[:CHECK_BYTES].decode("latin-1"),
                       "tail": tail[-CHECK_BYTES:].decode("latin-1"), "state": fold.state()})
    return fold


def _load_summary(path: Path, journal: Any, size: int) -> dict[str, Any] | None:
    """The saved summary when it still describes the journal's first ``covered`` bytes, else None."""
    try:
        saved = json.loads(path.read_bytes())
        covered = saved["covered"]
        if saved["format"] != SUMMARY_FORMAT or not 0 < covered <= size:
            return None
        head, tail = _check_bytes(journal, covered)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if head.decode("latin-1") != saved["head"] or tail.decode("latin-1") != saved["tail"]:
        return None  # the journal was cut or replaced since
    return saved


def _check_bytes(journal: Any, covered: int) -> tuple[bytes, bytes]:
    """The first and the last CHECK_BYTES of the journal's first ``covered`` bytes."""
    journal.seek(0)
    head = journal.read(min(CHECK_BYTES, covered))
    journal.seek(max(0, covered - CHECK_BYTES))
    return head, journal.read(covered - max(0, covered - CHECK_BYTES))


def _save_summary(path: Path, mode: int, saved: dict[str, Any]) -> None:
    """Written to a new file, then renamed over the old one: a reader never sees half a summary. It gets the
    journal's permissions: whoever may read the journal may read its summary."""
    try:
        handle, temporary = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    except OSError:
        return  # a folder this user cannot write: every read folds the journal
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            json.dump(saved, file, separators=(",", ":"))
        os.chmod(temporary, stat.S_IMODE(mode) & 0o666)
        os.replace(temporary, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
