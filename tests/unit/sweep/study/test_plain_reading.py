"""`sweep best/ls/show` read a journal file (through its summary) and SQLite / PostgreSQL (plain SQL) without Optuna:
what they read must be exactly what Optuna's replay gives, on real stores, whatever was written to them."""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

import optuna
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from optuna.trial import TrialState

from sweep import cli
from sweep.locations import StorageLocation
from sweep.study import reading, sql_reading
from sweep.study.attrs import SweepAttrs, TrialAttrs
from sweep.study.journal_reading import JournalFold, JournalSource, UnreadableJournal, read_journal, summary_path
from sweep.study.journal_repair import BrokenJournalError
from sweep.study.optuna_internals import trial_id_of
from sweep.study.plain import PlainStudy, PlainTrial
from sweep.study.reading import ReplaySource, open_source
from sweep.study.sql_reading import SqlSource
from sweep.study.storage import open_storage
from tests.support import pg
from tests.support.ranking_reference import front_rows, rank_rows
from tests.unit.sweep.study.conftest import new_sweep, sweep_config

# -- building sweeps through Optuna: every kind of record the commands read -------------------------------------

FINITE = st.floats(-1e6, 1e6, allow_nan=False)
TRIAL = st.fixed_dictionaries({
    "state": st.sampled_from(["COMPLETE", "COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING", "BAD_PARAM"]),
    "values": st.lists(FINITE | st.sampled_from([math.inf, -math.inf, 0.5]), min_size=2, max_size=2),
    "lr": st.floats(0.1, 1.0),
    "layers": st.integers(1, 4),
    "act": st.sampled_from(["relu", "tanh", None, 1, 2.5, True]),
    "metrics": st.dictionaries(st.sampled_from(["val_accuracy", "val_loss", "model_bytes"]), FINITE, max_size=3),
    "constraint": st.none() | st.floats(-1.0, 1.0),
    "interrupted": st.booleans(),
    "retry_of": st.none() | st.integers(0, 20),
})
PLAN = st.fixed_dictionaries({
    "objectives": st.sampled_from([1, 2]),
    "first": st.lists(TRIAL, max_size=8),
    "then": st.lists(TRIAL, max_size=6),  # written after a first read: the summary's update
    "other_study": st.booleans(),  # a study another tool made, deleted or not
    "delete_other": st.booleans(),
})
CHOICES = ("relu", "tanh", None, 1, 2.5, True)


def start(location: StorageLocation, plan: dict[str, Any]) -> optuna.Study:
    """The sweep "demo" as `sweep run` records it (and maybe a study of another tool beside it)."""
    if plan["other_study"]:
        other = optuna.create_study(study_name="other", storage=open_storage(location))
        other.enqueue_trial({"x": 1.0})
        if plan["delete_other"]:
            optuna.delete_study(study_name="other", storage=open_storage(location))
    two = plan["objectives"] == 2
    study = optuna.create_study(study_name="demo", storage=open_storage(location),
                                directions=["maximize", "minimize"][:plan["objectives"]],
                                sampler=optuna.samplers.RandomSampler(seed=0))
    SweepAttrs(config=sweep_config(trials=30).replace(name="demo").to_yaml(), parent_run_id="parent-1",
               experiment="exp", metric="val_accuracy", direction="maximize",
               more_objectives=[["model_bytes", "minimize"]] if two else None, target=30, status="running",
               created="2026-01-01T00:00:00", tracking_uri="sqlite:///mlflow.db",
               tracking_uri_has_secret=False).write(study)
    return study


def add(study: optuna.Study, spec: dict[str, Any], objectives: int) -> None:
    """One trial as `sweep run` (or a retry, a queued trial, a rejected param) leaves it."""
    storage = study._storage
    if spec["state"] == "WAITING":
        study.enqueue_trial({"lr": spec["lr"]})
        waiting = study.get_trials(deepcopy=False)[-1]
        if spec["retry_of"] is not None and spec["retry_of"] < waiting.number:
            storage.set_trial_system_attr(trial_id_of(waiting), "retry_history", [spec["retry_of"]])
        return
    trial = study.ask()
    trial.suggest_float("lr", 0.1, 1.0)
    if spec["state"] == "BAD_PARAM":  # other choices than an earlier trial's: a journal keeps the line Optuna's
        with contextlib.suppress(ValueError):  # replay rejects (or, first of its name, later trials' lines)
            trial.suggest_categorical("act", ("x", "y"))
        return  # left running
    trial.suggest_int("layers", 1, 4)
    with contextlib.suppress(ValueError):  # rejected after a BAD_PARAM trial set "act" first
        trial.suggest_categorical("act", CHOICES)
    TrialAttrs(run_id=f"run-{trial.number}", metrics=spec["metrics"], worker="elsewhere:1",
               interrupted=spec["interrupted"] and spec["state"] == "FAIL").write(trial)
    if spec["constraint"] is not None:
        storage.set_trial_system_attr(trial_id_of(trial), "constraints", [spec["constraint"]])
    if spec["state"] == "RUNNING":
        return
    state = TrialState[spec["state"]]
    values = spec["values"][:objectives] if state == TrialState.COMPLETE else None
    study.tell(trial, values, state=state)


def build(location: StorageLocation, plan: dict[str, Any], key: str) -> optuna.Study:
    study = start(location, plan) if key == "first" else optuna.load_study(study_name="demo",
                                                                           storage=open_storage(location))
    for spec in plan[key]:
        add(study, spec, plan["objectives"])
    return study


# -- what each source reads -------------------------------------------------------------------------------------


def read_all(source: Any) -> list[tuple[PlainStudy, list[PlainTrial]]]:
    return [(study, source.trials(study)) for study in source.studies()]


def comparable(read: list[tuple[PlainStudy, list[PlainTrial]]]) -> list[tuple[str, dict[str, Any], list]]:
    """Studies by name (the sources number them their own way), their attributes and trials (times as Optuna
    gives them: the sources keep them as stored)."""
    return sorted(((study.name, dict(study.user_attrs), [shown(trial) for trial in trials]) for study, trials in read),
                  key=lambda r: r[0])


def shown(trial: PlainTrial) -> tuple[Any, ...]:
    return (trial.number, trial.state, trial.values, trial.params, dict(trial.user_attrs), dict(trial.system_attrs),
            trial.datetime_start, trial.datetime_complete)


def replayed(location: StorageLocation) -> list[tuple[str, dict[str, Any], list]]:
    return comparable(read_all(ReplaySource(location)))


@contextmanager
def folder() -> Iterator[Path]:
    """A fresh folder per example (tmp_path is one per test, shared by hypothesis's examples)."""
    path = Path(tempfile.mkdtemp(prefix="plain-reading-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


SLOW = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# -- the journal file: its own fold, through the summary ----------------------------------------------------------


@SLOW
@given(plan=PLAN)
def test_the_journal_fold_reads_what_optunas_replay_reads_before_and_after_more_trials(plan):
    with folder() as path:
        location = StorageLocation.parse(str(path / "sweep.journal"))
        build(location, plan, "first")
        assert comparable(read_all(JournalSource(read_journal(location.journal_path)))) == replayed(location)
        assert summary_path(location.journal_path).exists()
        build(location, plan, "then")  # lines appended after the summary was written: read from it on
        fast = comparable(read_all(JournalSource(read_journal(location.journal_path))))
        assert fast == replayed(location)
        summary_path(location.journal_path).unlink()  # a journal an older version wrote: no summary at all
        assert comparable(read_all(JournalSource(read_journal(location.journal_path)))) == fast


def two_trial_journal(path: Path) -> tuple[StorageLocation, optuna.Study]:
    location = StorageLocation.parse(str(path / "sweep.journal"))
    study = new_sweep(location)
    for value in (0.6, 0.8):
        add(study, {"state": "COMPLETE", "values": [value], "lr": 0.5, "layers": 2, "act": "relu", "metrics": {},
                    "constraint": None, "interrupted": False, "retry_of": None}, 1)
    return location, study


def test_a_summary_moved_on_by_appended_lines_is_used_by_the_next_read_without_folding_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    location, study = two_trial_journal(tmp_path)
    read_journal(location.journal_path)  # the whole journal folded
    add(study, {"state": "PRUNED", "values": [0.0], "lr": 0.3, "layers": 3, "act": 1, "metrics": {},
                "constraint": None, "interrupted": False, "retry_of": None}, 1)
    read_journal(location.journal_path)  # only the appended lines folded, the summary saved again

    def refuse(self: JournalFold, log: dict[str, Any]) -> None:
        raise AssertionError(f"line folded again: {log}")

    monkeypatch.setattr(JournalFold, "apply", refuse)
    assert comparable(read_all(JournalSource(read_journal(location.journal_path)))) == replayed(location)


def test_a_journal_cut_below_its_summary_is_folded_again_from_its_start(tmp_path: Path):
    location, _ = two_trial_journal(tmp_path)
    journal = location.journal_path
    lines = journal.read_bytes().splitlines(keepends=True)
    read_journal(journal)  # the summary covers every line
    journal.write_bytes(b"".join(lines[:-3]))  # the last trial's last lines gone (as keep_lines_before cuts)
    assert comparable(read_all(JournalSource(read_journal(journal)))) == replayed(location)
    assert [t.state for t in read_all(JournalSource(read_journal(journal)))[0][1]][-1] == "RUNNING"


def test_a_journal_replaced_by_a_longer_one_is_not_read_through_the_old_summary(tmp_path: Path):
    location, _ = two_trial_journal(tmp_path)
    read_journal(location.journal_path)
    other, _ = two_trial_journal(tmp_path / "other")  # same study, other times and ids: other bytes
    add(optuna.load_study(study_name="demo", storage=open_storage(other)),
        {"state": "FAIL", "values": [0.0], "lr": 0.2, "layers": 1, "act": None, "metrics": {}, "constraint": None,
         "interrupted": False, "retry_of": None}, 1)
    shutil.copyfile(other.journal_path, location.journal_path)
    assert comparable(read_all(JournalSource(read_journal(location.journal_path)))) == replayed(location)


@pytest.mark.parametrize("summary", [b"", b"{not json", b'{"format": 0, "covered": 1}', b"[]"])
def test_an_unreadable_or_foreign_summary_is_ignored_and_rewritten(tmp_path: Path, summary: bytes):
    location, _ = two_trial_journal(tmp_path)
    summary_path(location.journal_path).write_bytes(summary)
    assert comparable(read_all(JournalSource(read_journal(location.journal_path)))) == replayed(location)
    assert json.loads(summary_path(location.journal_path).read_bytes())["covered"] == \
        location.journal_path.stat().st_size


def test_a_summary_claiming_more_than_the_journal_holds_is_not_used(tmp_path: Path):
    location, _ = two_trial_journal(tmp_path)
    read_journal(location.journal_path)
    saved = json.loads(summary_path(location.journal_path).read_bytes())
    saved["state"]["trials"][0][2] = 3  # the summary says FAIL where the journal says COMPLETE...
    saved["covered"] += 1  # ...and covers a byte the journal does not have
    summary_path(location.journal_path).write_text(json.dumps(saved))
    assert comparable(read_all(JournalSource(read_journal(location.journal_path)))) == replayed(location)


def test_a_torn_last_line_is_left_for_the_next_read(tmp_path: Path):
    location, study = two_trial_journal(tmp_path)
    journal = location.journal_path
    whole = journal.read_bytes()
    journal.write_bytes(whole + b'{"op_code":4,"worker_id":"w","study_id":0,"datetime_st')  # a writer mid-line
    first = read_journal(journal)
    assert len(JournalSource(first).trials(JournalSource(first).studies()[0])) == 2
    journal.write_bytes(whole)  # the line set aside (journal_repair), then a whole trial written
    add(study, {"state": "PRUNED", "values": [0.0], "lr": 0.3, "layers": 3, "act": 1, "metrics": {},
                "constraint": None, "interrupted": False, "retry_of": None}, 1)
    assert comparable(read_all(JournalSource(read_journal(journal)))) == replayed(location)


def test_a_line_the_fold_cannot_read_is_left_to_optuna_which_names_it(tmp_path: Path):
    location, _ = two_trial_journal(tmp_path)
    with location.journal_path.open("ab") as file:
        file.write(b'{"op_code": 99, "worker_id": "w"}\n')
    with pytest.raises(UnreadableJournal):
        read_journal(location.journal_path)
    with pytest.raises(BrokenJournalError, match="unknown op_code 99"), open_source(location):
        pass


def test_a_summary_that_cannot_be_written_only_costs_a_full_read(tmp_path: Path):
    location, _ = two_trial_journal(tmp_path)
    summary_path(location.journal_path).mkdir()  # something in the way where the summary goes
    assert comparable(read_all(JournalSource(read_journal(location.journal_path)))) == replayed(location)


# -- SQLite and PostgreSQL: plain SQL against Optuna's tables --------------------------------------------------------


def read_by_sql(location: StorageLocation) -> list[tuple[str, dict[str, Any], list]]:
    source = SqlSource.open(location)
    assert source is not None
    try:
        return comparable(read_all(source))
    finally:
        source.close()


@contextmanager
def whole_tables(share: float) -> Iterator[None]:
    """The plain reader reads a study's rows by whole tables from this share of the database's trials."""
    with mock.patch.object(sql_reading, "WHOLE_TABLES_FROM", share):
        yield


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plan=PLAN)
def test_sqlite_read_with_plain_sql_is_what_optunas_storage_reads(plan):
    with folder() as path:
        location = StorageLocation.parse(f"sqlite:///{path / 'optuna.db'}")
        build(location, plan, "first")
        build(location, plan, "then")
        expected = replayed(location)
        assert read_by_sql(location) == expected
        for share in (0.0, 2.0):  # every study read by whole tables; none
            with whole_tables(share):
                assert read_by_sql(location) == expected


def test_a_study_beside_a_larger_one_is_read_by_its_own_rows_and_the_larger_one_by_whole_tables(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    location = StorageLocation.parse(f"sqlite:///{tmp_path / 'optuna.db'}")
    build(location, FIXED_PLAN, "first")  # "demo" and a one-trial study "other"
    other = optuna.load_study(study_name="other", storage=open_storage(location))
    for x in range(len(FIXED_PLAN["first"]) + 1):  # now "other" holds most of the trials
        other.add_trial(optuna.trial.create_trial(params={"x": float(x)}, distributions={
            "x": optuna.distributions.FloatDistribution(0.0, 100.0)}, value=float(x)))
    queries: list[str] = []
    original = SqlSource._rows

    def noted(self: SqlSource, query: str, *args: Any) -> list[tuple[Any, ...]]:
        queries.append(query)
        return original(self, query, *args)

    monkeypatch.setattr(SqlSource, "_rows", noted)
    assert read_by_sql(location) == replayed(location)
    per_trial = [query for query in queries if "trial_params" in query]
    assert sorted("WHERE" in query for query in per_trial) == [False, True]  # one study each way


FIXED_PLAN = {
    "objectives": 2, "other_study": True, "delete_other": False, "then": [],
    "first": [{"state": state, "values": [0.5 + i / 10, 100.0 - i], "lr": 0.1 + i / 20, "layers": 1 + i % 4,
               "act": CHOICES[i % len(CHOICES)], "metrics": {"val_accuracy": 0.5 + i / 10, "model_bytes": 100.0 - i},
               "constraint": (i % 3) - 1.0, "interrupted": i % 2 == 0, "retry_of": 0}
              for i, state in enumerate(["COMPLETE", "COMPLETE", "PRUNED", "FAIL", "WAITING", "RUNNING",
                                         "COMPLETE", "BAD_PARAM", "COMPLETE"])],
}


# FIXED_PLAN with values PostgreSQL keeps apart (infinities as NULL and a type) or sends in binary exactly (-0.0)
UNUSUAL_VALUES = {**FIXED_PLAN, "first": [{**spec, "values": values} for spec, values in zip(
    FIXED_PLAN["first"], [[math.inf, -0.0], [-math.inf, 0.0], [-0.0, math.inf], [1e-300, -1e300]] * 3)]}


@pytest.mark.parametrize("plan", [FIXED_PLAN, UNUSUAL_VALUES], ids=["fixed", "unusual-values"])
def test_postgresql_read_with_plain_sql_is_what_optunas_storage_reads(plan):
    with pg.database() as url:
        location = StorageLocation.parse(url)
        build(location, plan, "first")
        source = SqlSource.open(location)
        assert source is not None
        try:
            read = comparable(read_all(source))
        finally:
            source.close()
        expected = replayed(location)
        assert read == expected
        values = [[repr(trial[2]) for trial in trials] for _, _, trials in read]  # -0.0 == 0.0, but not its repr
        assert values == [[repr(trial[2]) for trial in trials] for _, _, trials in expected]


@pytest.mark.parametrize("store", ["sqlite", "postgresql"])
def test_only_the_system_attributes_the_commands_read_leave_the_database(store, tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch):
    with (pg.database() if store == "postgresql" else _no_database()) as url:
        location = StorageLocation.parse(url or f"sqlite:///{tmp_path / 'optuna.db'}")
        study = build(location, FIXED_PLAN, "first")  # constraints, retry_history, fixed_params
        storage = study._storage
        unfinished = study.get_trials(deepcopy=False, states=(TrialState.RUNNING, TrialState.WAITING))
        assert unfinished
        for trial in unfinished:  # a sampler's own records, and look-alikes of the kept keys
            for key in ("search_space", "nsga2:generation", "Constraints:0", "constraintsx", "retry_history:1"):
                storage.set_trial_system_attr(trial_id_of(trial), key, [1.0])
        sent = keys_sent(monkeypatch, "trial_system_attributes")
        assert read_by_sql(location) == replayed(location)
        assert {"constraints", "retry_history", "fixed_params"} <= set(sent)
        assert set(sent) <= {"constraints", "retry_history", "fixed_params"}


def test_a_database_url_with_another_driver_is_read_through_optuna(tmp_path: Path):
    assert SqlSource.open(StorageLocation.parse("postgresql+psycopg2://nobody@127.0.0.1:1/none")) is None
    assert SqlSource.open(StorageLocation.parse(f"sqlite:///{tmp_path / 'missing.db'}")) is None


# -- the commands: the same output whichever source reads the store -----------------------------------------------


def outputs(location: StorageLocation) -> list[str]:
    from typer.testing import CliRunner

    runner = CliRunner()
    commands = [["best", *args] for args in ([], ["--format", "json"], ["--format", "yaml"],
                                             ["--pick", "model_bytes<=97"])]
    commands += [["ls"], ["show", "demo", "--top", "4"], ["show", "demo"]]
    results = []
    for command in commands:
        done = runner.invoke(cli.app, [*command, "--storage", location.secret_url], prog_name="sweep")
        results.append(f"{done.exit_code}\n{done.output}")
    return results


@contextmanager
def replay_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    @contextmanager
    def through_optuna(location: StorageLocation) -> Iterator[ReplaySource]:
        yield ReplaySource(location)

    with monkeypatch.context() as patch:
        patch.setattr(reading, "open_source", through_optuna)
        yield


@pytest.mark.parametrize("store", ["journal", "sqlite", "postgresql"])
def test_best_ls_and_show_print_what_the_replay_prints_on_every_store(store, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    with (pg.database() if store == "postgresql" else _no_database()) as url:
        location = StorageLocation.parse({"journal": str(tmp_path / "sweep.journal"),
                                          "sqlite": f"sqlite:///{tmp_path / 'optuna.db'}"}.get(store, url))
        build(location, FIXED_PLAN, "first")
        with open_source(location) as source:
            assert not isinstance(source, ReplaySource)  # the fast path is the one measured here
        fast = outputs(location)
        with replay_only(monkeypatch):
            assert outputs(location) == fast
    assert fast[0].startswith("0\nPareto front of sweep demo")


@contextmanager
def _no_database() -> Iterator[str]:
    yield ""


@pytest.mark.slow  # a fresh process: what the commands import, nothing the tests loaded already
def test_sweep_best_on_a_journal_or_sqlite_imports_neither_optuna_nor_numpy(tmp_path: Path):
    location, _ = two_trial_journal(tmp_path)
    sqlite = StorageLocation.parse(f"sqlite:///{tmp_path / 'optuna.db'}")
    new_sweep(sqlite)
    code = f"""
import sys
from sweep.cli import app
for storage in ({location.secret_url!r}, {sqlite.secret_url!r}):
    for command in (["best"], ["ls"], ["show", "--top", "3"]):
        try:
            app([*command, "--storage", storage], prog_name="sweep")
        except SystemExit as stop:
            assert stop.code in (0, 1), stop.code
loaded = [name for name in ("optuna", "numpy", "sqlalchemy", "mlflow") if name in sys.modules]
assert not loaded, loaded
"""
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"})
    assert done.returncode == 0, done.stderr


# -- rows built for the shown trials alone: what ranking every trial's row gives ---------------------------------


def shown_from_every_row(url: str, top: int) -> list[Any]:
    """`sweep show --top` as it was computed before rows were built lazily: every trial's row, ranked."""
    from dataclasses import replace

    sweep, rows, _ = reading.sweep_trials(url, "demo")
    ranked = rank_rows(sweep, rows)
    if sweep.more_objectives:
        front = {t.number for t in front_rows(sweep, rows)}
        ranked = [replace(t, on_front=True) for t in ranked if t.number in front] + \
                 [t for t in ranked if t.number not in front]
    numbers = {t.number for t in ranked}
    return (ranked + sorted((t for t in rows if t.number not in numbers), key=lambda t: t.number))[:top]


@pytest.mark.parametrize("store", ["journal", "sqlite"])  # read in full; read brief, the shown trials in full
@SLOW
@given(plan=PLAN, top=st.integers(1, 16))
def test_show_top_best_and_the_best_value_are_what_ranking_every_trials_row_gives(store, plan, top):
    from sweep import queries
    from sweep.errors import NotFoundError
    from sweep.ranking import rank_key

    with folder() as path:
        location = StorageLocation.parse(str(path / "sweep.journal") if store == "journal"
                                         else f"sqlite:///{path / 'optuna.db'}")
        build(location, plan, "first")
        url = location.secret_url
        sweep, rows = queries.show(url, "demo", top)
        assert rows == shown_from_every_row(url, top)
        every = reading.sweep_trials(url, "demo")[1]
        complete = [row for row in every if row.values and row.feasible]
        best = min(complete, default=None, key=lambda row: rank_key(
            row.values[0], row.metrics, row.number, metric=sweep.metric, direction=sweep.direction,
            more=sweep.more_objectives))
        assert sweep.best_value == (best.values[0] if best else None)
        try:
            winner = queries.best(url, "demo").trial
        except NotFoundError:
            winner = None
        candidates = (front_rows(sweep, every) if sweep.more_objectives
                      else rank_rows(sweep, every))
        assert winner == (candidates[0] if candidates else None)


@pytest.mark.parametrize("store", ["sqlite", "postgresql"])
def test_best_and_show_read_all_the_user_attributes_of_the_trials_they_rank_and_show_alone(
        store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from sweep import queries

    with (pg.database() if store == "postgresql" else _no_database()) as url:
        location = StorageLocation.parse(url or f"sqlite:///{tmp_path / 'optuna.db'}")
        study = build(location, {**FIXED_PLAN, "objectives": 1}, "first")
        SweepAttrs(status="finished").write(study)
        sent = keys_sent(monkeypatch, "trial_user_attributes")
        winner = queries.best(location.secret_url, "demo").trial
        assert sent.count("sweep.run_id") == 1  # the winner's (values differ: no tie for its metrics to break)
        assert winner.run_id is not None
        sent.clear()
        _, rows = queries.show(location.secret_url, "demo", 2)
        assert sent.count("sweep.run_id") == 2 == len(rows)


@pytest.mark.parametrize("store", ["sqlite", "postgresql"])
def test_a_finished_sweep_is_read_without_its_trials_times_and_prints_what_the_replay_prints(
        store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from dataclasses import replace

    monkeypatch.chdir(tmp_path)
    with (pg.database() if store == "postgresql" else _no_database()) as url:
        location = StorageLocation.parse(url or f"sqlite:///{tmp_path / 'optuna.db'}")
        study = build(location, FIXED_PLAN, "first")
        SweepAttrs(status="finished").write(study)  # only a running sweep's liveness reads the times
        source = SqlSource.open(location)
        assert source is not None
        try:
            demo = next(s for s in source.studies() if s.name == "demo")
            timed = source.trials(demo)
            assert any(t.started is not None for t in timed)
            assert source.trials(demo, times=False) == [replace(t, started=None, completed=None) for t in timed]
        finally:
            source.close()
        fast = outputs(location)
        with replay_only(monkeypatch):
            assert outputs(location) == fast
    assert "finished" in fast[4]  # `sweep ls`


@pytest.mark.parametrize("enabled", [True, False])
def test_reading_a_sweep_leaves_cycle_collection_as_it_found_it(enabled, tmp_path: Path):
    import gc

    location, _ = two_trial_journal(tmp_path)
    was = gc.isenabled()
    (gc.enable if enabled else gc.disable)()
    try:
        seen = []
        original = reading.SweepRead.of

        def noted(*args: Any) -> reading.SweepRead:
            seen.append(gc.isenabled())
            return original(*args)

        with mock.patch.object(reading.SweepRead, "of", noted):
            reading.read_sweep(location.secret_url, None, lambda read: read)
            reading.list_sweeps(location.secret_url)
        assert seen == [False, False]  # off while the trials are read and ranked
        assert gc.isenabled() == enabled
    finally:
        (gc.enable if was else gc.disable)()


def keys_sent(monkeypatch: pytest.MonkeyPatch, table: str) -> list[str]:
    """The attribute keys the database sends from ``table`` (its rows' second column) from now on, as the SQL reader
    receives them."""
    sent: list[str] = []
    original = SqlSource._rows

    def noted(self: SqlSource, query: str, *args: Any) -> list[tuple[Any, ...]]:
        rows = original(self, query, *args)
        if table in query:
            sent.extend(row[1] for row in rows)
        return rows

    monkeypatch.setattr(SqlSource, "_rows", noted)
    return sent
