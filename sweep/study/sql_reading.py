"""An RDB storage (SQLite, PostgreSQL) read with plain SQL against Optuna's tables: what `sweep best/ls/show` read.

RDBStorage builds every trial through SQLAlchemy's ORM, and importing Optuna and SQLAlchemy alone costs more than
these commands may take. A handful of SELECTs over Optuna's own tables (studies, study_user_attributes,
trials, trial_values, trial_params, trial_user_attributes, trial_system_attributes) read the same records; the
database is always current, so nothing is kept beside it and nothing can go stale. The reader reads only the
schema version it knows (Optuna's version_info); on any other, or any error, the caller reads through Optuna.
SQLite is read with the standard library's driver, PostgreSQL with psycopg (the project's driver); another
driver named in the URL is left to Optuna.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import replace
from operator import itemgetter
from typing import Any

from sweep.locations import StorageLocation
from sweep.states import TrialState
from sweep.study.plain import (
    BRIEF_USER_ATTRS,
    CONSTRAINTS_KEY,
    FIXED_PARAMS_KEY,
    RETRY_HISTORY_KEY,
    WORKER_ATTR,
    Distribution,
    PlainStudy,
    PlainTrial,
    UnreadableStore,
    kept_system_attr,
)

SCHEMA_VERSION = 12  # optuna.storages._rdb.models.SCHEMA_VERSION of the tables read here
INFINITE = {"INF_POS": math.inf, "INF_NEG": -math.inf}  # TrialValueType names of the values kept as NULL

DETAILED_BY_ID_UP_TO = 500  # trials read in full by their ids (SQLite takes 999 parameters); more by table
WHOLE_TABLES_FROM = 0.5  # of the database's trials a study holds, from which its rows are read by whole tables

# the rows of one per-trial table (table, columns, its key column or "" for any order, a condition on the table's
# own columns or "") that belong to one study, in the key's order
Scan = Callable[[str, str, str, str], list[tuple[Any, ...]]]

# the trial system attributes the commands read (plain.kept_system_attr), chosen by the database: the others (a
# sampler's state, a grid's whole search space on every trial) are never sent
# (substr, not LIKE: LIKE ignores case in SQLite, and its % is psycopg's placeholder mark)
KEPT_SYSTEM_ATTRS = (f"key IN ('{RETRY_HISTORY_KEY}', '{FIXED_PARAMS_KEY}', '{CONSTRAINTS_KEY}') "
                     f"OR substr(key, 1, {len(CONSTRAINTS_KEY) + 1}) = '{CONSTRAINTS_KEY}:'")


class UnreadableDatabase(UnreadableStore):
    """The database cannot be read here (another schema, a driver this reader does not use): read through Optuna."""


class SqlSource:
    """One connection to an Optuna RDB storage, read-only: reading.py's TrialSource."""

    hint = "the storage"  # storage.storage_hint's words for a database

    @classmethod
    def open(cls, location: StorageLocation) -> SqlSource | None:
        """A reader of ``location``, or None when it cannot be read here: another driver or schema, no driver
        installed, a server that does not answer now (reading through Optuna then waits for it, or says why)."""
        try:
            return cls(location)
        except Exception:  # UnreadableDatabase, ImportError, the driver's own errors: Optuna's path reports them
            return None

    def __init__(self, location: StorageLocation) -> None:
        self._location = location
        self._trial_ids: dict[int, dict[int, int]] = {}  # study key -> trial number -> trial id, as trials() read
        if location.is_sqlite and location.local_file is not None:
            import sqlite3

            if not location.local_file.exists():
                raise UnreadableDatabase("no such file")  # Optuna creates it, and says what it says
            # read-only, by a file: URI (percent-encoded: a path may hold '?' or '#')
            self._connection: Any = sqlite3.connect(location.local_file.resolve().as_uri() + "?mode=ro", uri=True)
            self._mark = "?"
            self._cursor_options: dict[str, Any] = {}
            self._errors: tuple[type[Exception], ...] = (sqlite3.Error,)
        elif location.is_postgres and _driver(location) in ("", "psycopg") and not location.url.params:
            import psycopg

            url = location.url.copy_with(scheme="postgresql")  # libpq takes the URL without SQLAlchemy's driver
            self._connection = psycopg.connect(url.secret, autocommit=True, connect_timeout=10)
            self._mark = "%s"
            self._cursor_options = {"binary": True}
            self._errors = (psycopg.Error,)
        else:
            raise UnreadableDatabase(f"no plain reader for {location.scheme!r} with this driver")
        try:
            version = self._rows("SELECT schema_version FROM version_info")
        except self._errors as error:
            self.close()
            raise UnreadableDatabase(str(error)) from None
        if [row[0] for row in version] != [SCHEMA_VERSION]:
            self.close()
            raise UnreadableDatabase(f"schema version {version}, not {SCHEMA_VERSION}")

    def close(self) -> None:
        self._connection.close()

    def _rows(self, query: str, *args: Any) -> list[tuple[Any, ...]]:
        cursor = self._connection.cursor(**self._cursor_options)
        try:
            cursor.execute(query.replace("?", self._mark), args)
            return list(cursor.fetchall())
        finally:
            cursor.close()

    def studies(self) -> list[PlainStudy]:
        attrs: dict[int, dict[str, Any]] = {}
        for study_id, key, value in self._rows("SELECT study_id, key, value_json FROM study_user_attributes "
                                               "ORDER BY study_user_attribute_id"):
            attrs.setdefault(study_id, {})[key] = json.loads(value)
        return [PlainStudy(study_id, name, attrs.get(study_id, {}))
                for study_id, name in self._rows("SELECT study_id, study_name FROM studies ORDER BY study_id")]

    def trials(self, study: PlainStudy, *, times: bool = True, brief: bool = False) -> list[PlainTrial]:
        """Every trial of ``study``, by number, as RDBStorage builds them (params in the order they were set);
        without ``times``, their start and end are not read (None); ``brief``: of their user attributes only
        BRIEF_USER_ATTRS (and the worker, with ``times``), the rest read by ``detailed``."""
        moments = "datetime_start, datetime_complete" if times else "NULL, NULL"
        rows = self._rows(f"SELECT trial_id, number, CAST(state AS TEXT), {moments} FROM trials "
                          "WHERE study_id = ?", study.key)
        rows.sort(key=itemgetter(1))  # by number: stored nearly so, which Python's sort sees, unlike the database's
        self._trial_ids[study.key] = {row[1]: row[0] for row in rows}
        scan = self._scan(study, {row[0] for row in rows})
        values: dict[int, list[float]] = {}
        columns = "trial_id, objective, value, CAST(value_type AS TEXT)"  # an enum: as text, however it is sent
        for trial_id, objective, value, kind in scan("trial_values", columns, "trial_value_id", ""):
            found = values.setdefault(trial_id, [])
            found.append(INFINITE.get(kind, value))
            if len(found) != objective + 1:  # Optuna's objectives are 0, 1, ...: a gap is not read here
                raise UnreadableDatabase(f"trial {trial_id} has no value for an objective before {objective}")
        params: dict[int, dict[str, Any]] = {}
        converters: dict[str, Callable[[float], Any] | None] = {}  # the same JSON again and again: read once
        last, of_trial = None, {}  # a trial's params are written one after the other: its dict looked up once
        for trial_id, name, value, text in scan("trial_params", "trial_id, param_name, param_value, distribution_json",
                                                "param_id", ""):
            if text in converters:
                convert = converters[text]
            else:
                convert = converters[text] = Distribution.from_json(text).converter()
            if trial_id != last:
                last, of_trial = trial_id, params.setdefault(trial_id, {})
            of_trial[name] = value if convert is None else convert(value)
        kept = [*BRIEF_USER_ATTRS, *([WORKER_ATTR] if times else [])] if brief else []
        user = self._attrs(scan, "trial_user_attributes", f"key IN ({', '.join(map(_literal, kept))})" if kept else "",
                           None)
        system = self._attrs(scan, "trial_system_attributes", KEPT_SYSTEM_ATTRS, kept_system_attr)
        known = {state.value: state for state in TrialState}
        states = {state: known.get(getattr(state, "name", state)) for state in {row[2] for row in rows}}
        if None in states.values():
            raise UnreadableDatabase("a trial state this reader does not know")
        # (`.get(trial_id) or {}`: a new empty dict only for a trial without any, not one per lookup)
        return [PlainTrial(number, states[state],
                           tuple(values[trial_id]) if trial_id in values else None, params.get(trial_id) or {},
                           user.get(trial_id) or {}, system.get(trial_id) or {}, _moment(start), _moment(complete))
                for trial_id, number, state, start, complete in rows]

    def detailed(self, study: PlainStudy, trials: Sequence[PlainTrial]) -> list[PlainTrial]:
        """``trials`` (read brief by trials()) with all their user attributes."""
        ids = self._trial_ids.get(study.key)
        if ids is None or any(trial.number not in ids for trial in trials):
            raise UnreadableDatabase("trials not read here first")  # not expected: Optuna's replay reads them
        wanted = sorted({ids[trial.number] for trial in trials})

        def by_id(table: str, columns: str, _key: str, _where: str) -> list[tuple[Any, ...]]:
            return self._rows(f"SELECT {columns} FROM {table} WHERE trial_id IN ({', '.join('?' * len(wanted))})",
                              *wanted)

        scan = self._scan(study, set(ids.values())) if len(wanted) > DETAILED_BY_ID_UP_TO else by_id
        user = self._attrs(scan, "trial_user_attributes", "", None)
        return [replace(trial, user_attrs=user.get(ids[trial.number], {})) for trial in trials]

    def _scan(self, study: PlainStudy, ids: set[int]) -> Scan:
        """A reader of the rows of a per-trial table that belong to ``study``'s trials (``ids``), in the order of
        the table's own key (the order Optuna wrote them) when one is given. When the study holds most of the
        database's trials, the whole table is read in its stored order and the other studies' rows skipped here: a
        database reads that far faster than it looks each row up through the trial index and sorts them."""
        (total,), = self._rows("SELECT count(*) FROM trials")
        if len(ids) >= WHOLE_TABLES_FROM * total:
            def whole(table: str, columns: str, key: str, where: str) -> list[tuple[Any, ...]]:
                rows = self._rows(f"SELECT {columns} FROM {table}{f' WHERE {where}' if where else ''}"
                                  f"{f' ORDER BY {key}' if key else ''}")
                if len(ids) == total:  # the only study with trials: every row is one of its trials'
                    return rows
                return [row for row in rows if row[0] in ids]

            return whole

        def of_study(table: str, columns: str, key: str, where: str) -> list[tuple[Any, ...]]:
            return self._rows(f"SELECT {columns} FROM {table} WHERE trial_id IN "
                              f"(SELECT trial_id FROM trials WHERE study_id = ?){f' AND ({where})' if where else ''}"
                              f"{f' ORDER BY {key}' if key else ''}", study.key)

        return of_study

    @staticmethod
    def _attrs(scan: Scan, table: str, where: str, keep: Callable[[str], bool] | None) -> dict[int, dict[str, Any]]:
        """The attributes in ``table`` by trial id: those the condition ``where`` selects and whose key ``keep``
        keeps (all without either), in no particular order: a trial's keys are distinct, and Optuna's storage gives
        them in no order either."""
        rows = scan(table, "trial_id, key, value_json", "", where)
        if keep is not None:
            rows = [row for row in rows if keep(row[1])]
        # every value decoded in one call: a JSON array of them (each is a whole JSON document, as Optuna wrote it)
        try:
            decoded = json.loads("[" + ",".join(row[2] for row in rows) + "]")
        except ValueError as error:
            raise UnreadableDatabase(f"{table}: {error}") from None
        if len(decoded) != len(rows):  # a value that was not one JSON document
            raise UnreadableDatabase(f"{table}: a value is not one JSON document")
        found: dict[int, dict[str, Any]] = {}
        for (trial_id, key, _), value in zip(rows, decoded, strict=True):
            found.setdefault(trial_id, {})[key] = value
        return found


def _literal(text: str) -> str:
    """``text`` as an SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def _driver(location: StorageLocation) -> str:
    """The SQLAlchemy driver a URL names ("postgresql+psycopg": psycopg), "" when none."""
    return location.url.scheme.partition("+")[2].lower()


def _moment(stored: str | dt.datetime | None) -> str | dt.datetime | None:
    """A stored time (naive UTC: SQLite gives it as text, PostgreSQL as a datetime) with its zone, as PlainTrial
    reads it (without one it would be read as local time); turned into local time only if a command reads it."""
    if stored is None:
        return None
    if isinstance(stored, str):
        return stored + "+00:00"
    return stored.replace(tzinfo=dt.timezone.utc) if stored.tzinfo is None else stored
