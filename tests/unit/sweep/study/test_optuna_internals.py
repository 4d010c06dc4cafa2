"""Optuna's private API as sweep uses it: a failure here names what an Optuna upgrade moved or removed.

Every accessor of sweep/study/optuna_internals.py runs on real storages; the first test checks the
private names themselves, so the message says which attribute to look for in the new Optuna.
"""

from __future__ import annotations

import contextlib
import importlib
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import optuna
import pytest
from optuna.storages import JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileOpenLock
from optuna.trial import TrialState

from sweep.locations import StorageLocation
from sweep.study import optuna_internals as internals
from sweep.study.storage import open_storage
from tests.unit.sweep.study.conftest import served_journal

PRIVATE_MODULE_NAMES = [
    ("optuna.storages._grpc.auto_generated.api_pb2", "Trial"),
    ("optuna.storages._grpc.server", "make_server"),
    ("optuna.storages._grpc.servicer", "_from_proto_trial"),
    ("optuna.storages._grpc.servicer", "_to_proto_trial"),
    ("optuna.storages._heartbeat", "get_heartbeat_thread"),
    ("optuna.storages._heartbeat", "is_heartbeat_enabled"),
    ("optuna.storages.journal._file", "get_lock_file"),
    ("optuna.storages.journal._storage", "JournalOperation"),
    ("optuna.study._frozen", "FrozenStudy"),
    ("optuna.study._tell", "_tell_with_warning"),
]


@pytest.mark.parametrize(("module", "name"), PRIVATE_MODULE_NAMES, ids=[f"{m}.{n}" for m, n in PRIVATE_MODULE_NAMES])
def test_the_private_functions_sweep_imports_still_exist(module: str, name: str):
    try:
        loaded = importlib.import_module(module)
    except ImportError as error:
        pytest.fail(f"Optuna {optuna.__version__} has no module {module} ({error}): update optuna_internals.py")
    assert hasattr(loaded, name), f"Optuna {optuna.__version__}: {module}.{name} is gone; update optuna_internals.py"


def require(owner: object, attribute: str) -> None:
    assert hasattr(owner, attribute), (f"Optuna {optuna.__version__}: {type(owner).__name__}.{attribute} is gone; "
                                       f"update sweep/study/optuna_internals.py")


def journal_storage(tmp_path: Path) -> JournalStorage:
    path = str(tmp_path / "sweep.journal")
    return JournalStorage(internals.JournalFileNoFsync(path, lock_obj=JournalFileOpenLock(path)))


def test_study_storage_and_trial_and_study_ids(tmp_path: Path):
    storage = journal_storage(tmp_path)
    study = optuna.create_study(study_name="s", storage=storage)
    require(study, "_storage")
    assert internals.storage_of(study) is storage
    trial = study.ask()
    require(trial, "_trial_id")
    frozen = study.get_trials(deepcopy=False)[0]
    require(frozen, "_trial_id")
    assert internals.trial_id_of(trial) == internals.trial_id_of(frozen)
    assert storage.get_trial(internals.trial_id_of(frozen)).number == 0
    (summary,) = storage.get_all_studies()
    require(summary, "_study_id")
    assert isinstance(summary, internals.FrozenStudy)
    assert storage.get_study_name_from_id(internals.study_id_of(summary)) == "s"


def test_the_journal_without_fsync_appends_whole_lines_under_optunas_lock(tmp_path: Path):
    storage = journal_storage(tmp_path)
    backend = storage._backend
    require(backend, "_lock")
    require(backend, "_file_path")
    study = optuna.create_study(study_name="s", storage=storage)
    study.tell(study.ask(), 1.0)
    reread = optuna.load_study(study_name="s", storage=journal_storage(tmp_path))
    assert [t.value for t in reread.get_trials()] == [1.0]
    assert (tmp_path / "sweep.journal").read_bytes().endswith(b"\n")


def test_heartbeat_detection_and_thread_on_an_rdb_storage(tmp_path: Path):
    with internals.quiet_heartbeat_warnings():  # heartbeat_interval is marked experimental
        beating = RDBStorage(f"sqlite:///{tmp_path / 'beat.db'}", heartbeat_interval=60)
    plain = journal_storage(tmp_path)
    assert internals.storage_uses_heartbeat(beating)
    assert not internals.storage_uses_heartbeat(plain)
    study = optuna.create_study(study_name="s", storage=beating)
    with internals.quiet_heartbeat_warnings():
        trial = study.ask()
    require(trial, "study")
    require(trial.study, "_storage")
    with internals.heartbeat_thread(trial):  # Optuna's thread records a first beat at once
        pass
    from sqlalchemy import text

    with beating.engine.connect() as connection:
        beats = connection.execute(text("SELECT trial_id FROM trial_heartbeats")).scalars().all()
    assert beats == [internals.trial_id_of(trial)]


def test_fail_stale_trials_fails_a_trial_whose_heartbeat_stopped(tmp_path: Path):
    with internals.quiet_heartbeat_warnings():
        storage = RDBStorage(f"sqlite:///{tmp_path / 'stale.db'}", heartbeat_interval=1, grace_period=1)
    study = optuna.create_study(study_name="s", storage=storage)
    with internals.quiet_heartbeat_warnings():
        trial = study.ask()
    storage.record_heartbeat(internals.trial_id_of(trial))
    # a heartbeat from the past: as if the worker died long ago
    from sqlalchemy import text

    with storage.engine.begin() as connection:
        connection.execute(text("UPDATE trial_heartbeats SET heartbeat = '2000-01-01 00:00:00'"))
    internals.fail_stale_trials_quietly(study)
    assert study.get_trials()[0].state == TrialState.FAIL


def test_the_quiet_context_silences_only_inside_it(tmp_path: Path):
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with internals.quiet_heartbeat_warnings():
            warnings.warn("experimental", optuna.exceptions.ExperimentalWarning, stacklevel=1)
        warnings.warn("experimental", optuna.exceptions.ExperimentalWarning, stacklevel=1)
    assert len(caught) == 1


def test_ask_new_makes_a_new_trial_and_leaves_a_waiting_one_queued(tmp_path: Path):
    storage = JournalStorage(internals.JournalFileNoFsync(str(tmp_path / "j.log"),
                                                          lock_obj=JournalFileOpenLock(str(tmp_path / "j.log"))))
    study = optuna.create_study(storage=storage, sampler=optuna.samplers.RandomSampler(seed=0))
    require(study, "_thread_local")
    study.enqueue_trial({"x": 0.5})
    study._thread_local.cached_all_trials = []  # a stale per-ask cache the sampler would read
    trial = internals.ask_new(study)
    assert study._thread_local.cached_all_trials is None
    assert 0.0 <= trial.suggest_float("x", 0.0, 1.0) <= 1.0 and trial.number == 1
    study.tell(trial, 1.0)
    queued = study.ask()
    assert queued.number == 0 and queued.suggest_float("x", 0.0, 1.0) == 0.5


# -- the journal file's reads: Optuna's lines and errors, with less kept ----------------------------------------


def backends(path: Path) -> tuple[internals.JournalFileNoFsync, optuna.storages.journal.JournalFileBackend]:
    lock = JournalFileOpenLock(str(path))
    return (internals.JournalFileNoFsync(str(path), lock_obj=lock),
            optuna.storages.journal.JournalFileBackend(str(path), lock_obj=lock))


def test_journal_reads_give_optunas_lines_from_any_point_and_keep_two_offsets(tmp_path: Path):
    path = tmp_path / "sweep.journal"
    ours, optunas = backends(path)
    ours.append_logs([{"op_code": 1, "n": number, "user_attr": {"sweep.metrics": {"val_loss": 0.5}}}
                      for number in range(40)])
    for start in (0, 0, 25, 40, 3):  # from the start, again, ahead, at the end, and back (read from the start)
        assert list(ours.read_logs(start)) == list(optunas.read_logs(start))
    assert len(ours._log_number_offset) <= 2
    ours.append_logs([{"op_code": 1, "n": 40}])  # appended by another writer: the next read picks it up
    assert list(ours.read_logs(40)) == [{"op_code": 1, "n": 40}]
    first, second = (next(iter(ours.read_logs(number)))["user_attr"] for number in (0, 1))
    assert next(iter(first)) is next(iter(second))  # the same key, kept once


def test_journal_reads_leave_a_torn_last_line_for_later_and_refuse_a_broken_one_in_between(tmp_path: Path):
    path = tmp_path / "sweep.journal"
    ours, optunas = backends(path)
    ours.append_logs([{"n": 0}, {"n": 1}])
    with path.open("ab") as journal:
        journal.write(b'{"n": 2, "to')  # a write in progress
    assert list(ours.read_logs(0)) == list(optunas.read_logs(0)) == [{"n": 0}, {"n": 1}]
    with path.open("ab") as journal:
        journal.write(b'rn": 1}\n')  # ... and finished
    assert list(ours.read_logs(2)) == list(optunas.read_logs(2)) == [{"n": 2, "torn": 1}]
    broken = tmp_path / "broken.journal"
    broken.write_bytes(b'{"n": 0}\n{"n": 1, oops\n{"n": 2}\n')
    ours, optunas = backends(broken)
    for backend in (ours, optunas):
        with pytest.raises(ValueError):
            list(backend.read_logs(0))


# -- the journal storage's replay: finished trials compacted, equal to Optuna's ---------------------------------


def compact_storage(path: Path) -> internals.CompactJournalStorage:
    return internals.CompactJournalStorage(internals.JournalFileNoFsync(str(path),
                                                                        lock_obj=JournalFileOpenLock(str(path))))


def mixed_objective(trial: optuna.Trial) -> float:
    """Every kind of parameter and attribute a trial keeps, and every way a trial ends."""
    x = trial.suggest_float("x", -5.0, 5.0)
    n = trial.suggest_int("n", 1, 400)
    kind = trial.suggest_categorical("kind", ["a", "b", None])
    if kind == "b":
        trial.suggest_float("lr", 1e-4, 1.0, log=True)  # define-by-run: a parameter only some trials have
    trial.set_user_attr("sweep.worker", "host:1" if trial.number % 5 else "host:2")  # text that repeats
    trial.set_user_attr("sweep.metrics", {"loss": x * x, "n": n})
    for step in range(3):
        trial.report(x * x + step, step)
    if trial.number % 7 == 3:
        raise optuna.TrialPruned
    if trial.number % 11 == 5:
        raise ValueError("a failed trial")
    return x * x + n / 100


def run_mixed(storage: optuna.storages.BaseStorage, trials: int) -> optuna.Study:
    study = optuna.create_study(study_name="s", storage=storage, sampler=optuna.samplers.TPESampler(
        seed=3, n_startup_trials=5, constant_liar=True, constraints_func=lambda t: (t.params["x"],)))
    study.enqueue_trial({"x": 1.5, "n": 7, "kind": "a"})
    study.optimize(mixed_objective, n_trials=trials, catch=(ValueError,))
    study.add_trial(optuna.trial.create_trial(params={"x": 0.5}, distributions={
        "x": optuna.distributions.FloatDistribution(-5.0, 5.0)}, value=0.25))  # a trial made finished
    study.enqueue_trial({"x": 2.0})  # one left waiting
    return study


def described(trials: list[optuna.trial.FrozenTrial]) -> list[str]:
    """Trials down to their values' types (1 and 1.0 are equal; a sampler could tell them apart)."""
    return [repr(trial) + repr([(name, type(value)) for name, value in trial.params.items()]) for trial in trials]


def test_the_compact_journal_replays_the_trials_optunas_own_storage_replays(tmp_path: Path):
    path = tmp_path / "sweep.journal"
    live = compact_storage(path)
    run_mixed(live, 40)
    require(live, "_replay_result")
    require(live._replay_result, "_trials")
    optunas = JournalStorage(optuna.storages.journal.JournalFileBackend(str(path))).get_all_trials(0)
    for storage in (live, compact_storage(path)):  # built trial by trial as the sweep ran, and replayed at once
        trials = storage.get_all_trials(0)
        assert trials == optunas
        assert described(trials) == described(optunas)
    assert {trial.state for trial in optunas} == set(TrialState) - {TrialState.RUNNING}


def test_the_compact_journal_shares_distributions_and_repeated_text_among_finished_trials(tmp_path: Path):
    storage = compact_storage(tmp_path / "sweep.journal")
    run_mixed(storage, 30)
    finished = [t for t in storage.get_all_trials(0, deepcopy=False) if t.state.is_finished() and t.params]
    x = {id(trial.distributions["x"]) for trial in finished}
    assert len(x) == 1  # one object for all, not one per trial
    same_set = [trial.distributions for trial in finished if list(trial.params) == ["x", "n", "kind"]]
    assert len(same_set) > 1 and all(found is same_set[0] for found in same_set)
    assert all(name is next(iter(finished[0].params)) for trial in finished for name in list(trial.params)[:1])
    worker = [trial.user_attrs["sweep.worker"] for trial in finished if "sweep.worker" in trial.user_attrs]
    assert len({id(text) for text in worker}) < len(worker)  # a run of trials of one worker: its name kept once
    optunas = JournalStorage(optuna.storages.journal.JournalFileBackend(str(tmp_path / "sweep.journal")))
    plain = [t for t in optunas.get_all_trials(0, deepcopy=False) if t.state.is_finished() and t.params]
    assert len({id(trial.distributions["x"]) for trial in plain}) == len(plain)  # what Optuna keeps


def test_the_compact_journal_keeps_one_empty_dict_and_the_id_as_number_for_finished_trials(tmp_path: Path):
    storage = compact_storage(tmp_path / "sweep.journal")
    study = optuna.create_study(study_name="s", storage=storage)
    study.optimize(lambda trial: trial.suggest_float("x", 0.0, 1.0), n_trials=3)
    trials = storage.get_all_trials(0, deepcopy=False)
    assert len({id(dicts) for trial in trials for dicts in (trial.system_attrs, trial.intermediate_values)}) == 1
    running = study.ask()  # a running trial keeps dicts of its own, which Optuna's Trial writes into
    running.report(0.5, 0)
    again = storage.get_all_trials(0, deepcopy=False)
    assert again[-1].intermediate_values == {0: 0.5} and trials[0].intermediate_values == {}
    number, trial_id = int("1000"), int("1000")  # two int objects, as the replay makes them
    done = optuna.trial.FrozenTrial(number=number, state=TrialState.COMPLETE, value=1.0, datetime_start=None,
                                    datetime_complete=None, params={}, distributions={}, user_attrs={},
                                    system_attrs={}, intermediate_values={}, trial_id=trial_id)
    compacted = internals.SharedTrialParts().compact(done)
    assert compacted == done and compacted.number is internals.trial_id_of(compacted)


@pytest.mark.skipif(sys.implementation.name != "cpython" or sys.version_info < (3, 11),
                    reason="key-sharing dicts sized as CPython >= 3.11 sizes them")
def test_the_compact_journal_keeps_finished_trials_params_and_attributes_in_dicts_of_shared_keys(tmp_path: Path):
    storage = compact_storage(tmp_path / "sweep.journal")
    run_mixed(storage, 30)
    last = [t for t in storage.get_all_trials(0, deepcopy=False) if "sweep.metrics" in t.user_attrs][-1]
    for found in (last.params, last.user_attrs, last.user_attrs["sweep.metrics"]):
        assert sys.getsizeof(found) < sys.getsizeof(dict(found))  # the keys' table is not its own


def test_the_compact_journal_keeps_an_objective_value_equal_to_a_metric_as_the_metrics_object():
    values = [float("0.75"), 0.0, float("nan")]  # objects of their own, as the replay reads them
    metrics = {"accuracy": float("0.75"), "zero": -0.0, "nan": float("nan")}
    done = optuna.trial.FrozenTrial(number=1, state=TrialState.COMPLETE, value=None, values=values,
                                    datetime_start=None, datetime_complete=None, params={}, distributions={},
                                    user_attrs={"sweep.metrics": metrics}, system_attrs={}, intermediate_values={},
                                    trial_id=1)
    compacted = internals.SharedTrialParts().compact(done)
    kept = compacted.user_attrs["sweep.metrics"]
    assert compacted.values[0] is kept["accuracy"]
    assert compacted.values[1] is values[1] and str(compacted.values[1]) == "0.0"  # -0.0 == 0.0, yet not the same
    assert compacted.values[2] is values[2]


def test_a_metric_whose_values_repeat_keeps_one_float_per_value_and_one_that_does_not_is_given_up(
        monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(internals, "REPEATS_LIMIT", 3)
    repeats = internals.RepeatedNumbers()
    first = [repeats.shared("accuracy", float(text)) for text in ("0.5", "0.25", "0.5", "0.0", "nan")]
    again = [repeats.shared("accuracy", float(text)) for text in ("0.5", "0.25", "-0.0", "nan")]
    assert first[2] is first[0] and again[0] is first[0] and again[1] is first[1]
    assert str(again[2]) == "-0.0" and again[2] is not first[3] and again[3] is not first[4]
    assert repeats.shared("accuracy", 7) == 7 and type(repeats.shared("accuracy", 7)) is int
    losses = [repeats.shared("loss", float(number)) for number in (1, 2, 3, 4, 1)]  # four values: given up
    assert losses[4] is not losses[0] and losses == [1.0, 2.0, 3.0, 4.0, 1.0]
    assert repeats.shared("accuracy", float("0.5")) is first[0]  # the other metric keeps its table


def test_tpe_proposes_the_same_trials_on_the_compact_journal_as_on_optunas(tmp_path: Path):
    ours = run_mixed(compact_storage(tmp_path / "ours.journal"), 40)
    theirs = run_mixed(JournalStorage(optuna.storages.journal.JournalFileBackend(str(tmp_path / "optuna.journal"))),
                       40)
    assert [t.params for t in ours.trials] == [t.params for t in theirs.trials]
    assert [t.values for t in ours.trials] == [t.values for t in theirs.trials]


def test_the_compact_journal_changes_no_trial_it_handed_out(tmp_path: Path):
    storage = compact_storage(tmp_path / "sweep.journal")
    study = optuna.create_study(study_name="s", storage=storage)
    trial = study.ask()
    trial.suggest_float("x", 0.0, 1.0)
    running = storage.get_trial(internals.trial_id_of(trial))
    own = running.distributions
    study.tell(trial, 1.0)
    assert running.state == TrialState.RUNNING and running.distributions is own  # the copy read before
    done = storage.get_trial(internals.trial_id_of(trial))
    assert done.state == TrialState.COMPLETE and done.distributions is not own and done.distributions == own


def test_a_pickled_compact_journal_storage_replays_anew(tmp_path: Path):
    import pickle

    storage = compact_storage(tmp_path / "sweep.journal")
    run_mixed(storage, 10)
    state = storage.__getstate__()
    assert "_shared" not in state and "_replay_result" not in state
    again = pickle.loads(pickle.dumps(storage))
    assert again.get_all_trials(0) == storage.get_all_trials(0)


def test_a_journal_in_redis_replays_and_snapshots_as_optunas_own():
    from tests.support import redis_db

    with redis_db.journal() as url:
        server, prefix = redis_db.SERVER_URL, url.rsplit("prefix=", 1)[1]
        with internals.quiet_experimental_warnings():
            ours = internals.BeatingJournalStorage(internals.JournalRedisBatched(server, prefix=prefix), heartbeat=60,
                                                   callback=None)
            run_mixed(ours, 105)  # Optuna pickles its replay into Redis at trial 100: read by plain Optuna too
            snapshot = ours._backend.load_snapshot()
            optunas = JournalStorage(optuna.storages.journal.JournalRedisBackend(server, prefix=prefix))
        assert snapshot is not None and b"sweep.study" not in snapshot  # no class of ours: Optuna alone reads it
        assert described(ours.get_all_trials(0)) == described(optunas.get_all_trials(0))


def test_the_compact_journal_keeps_apart_distributions_equal_only_in_value(tmp_path: Path):
    path = tmp_path / "sweep.journal"
    storage = compact_storage(path)
    for name, choices in (("ints", [1, 2]), ("floats", [1.0, 2.0]), ("bools", [True, False])):  # 1 == 1.0 == True
        study = optuna.create_study(study_name=name, storage=storage)
        study.optimize(lambda trial, choices=choices: float(trial.suggest_categorical("c", choices)), n_trials=2)
    optunas = JournalStorage(optuna.storages.journal.JournalFileBackend(str(path)))
    for study_id in range(3):
        assert described(storage.get_all_trials(study_id)) == described(optunas.get_all_trials(study_id))


@contextlib.contextmanager
def sweep_storage(kind: str, tmp_path: Path) -> Iterator[StorageLocation]:
    """A storage as sweep opens it: a journal file, SQLite (behind Optuna's cache), the storage proxy."""
    if kind == "proxy":
        with served_journal(tmp_path / "sweep.journal") as location:
            yield location
    else:
        yield StorageLocation.parse(str(tmp_path / "sweep.journal") if kind == "journal"
                                    else f"sqlite:///{tmp_path / 'optuna.db'}")


@pytest.mark.parametrize("kind", ["journal", "sqlite", "proxy"])
def test_ask_new_with_attributes_makes_a_running_trial_holding_them_in_one_write(tmp_path: Path, kind: str):
    with sweep_storage(kind, tmp_path) as location:
        study = optuna.create_study(study_name="s", storage=open_storage(location))
        journal = tmp_path / "sweep.journal"
        lines = journal.read_text().count("\n") if journal.exists() else 0
        before = datetime.now() - timedelta(seconds=1)
        trial = internals.ask_new(study, {"sweep.worker": "host:1"})
        if kind != "sqlite":
            assert journal.read_text().count("\n") == lines + 1
        (seen,) = optuna.load_study(study_name="s", storage=open_storage(location)).get_trials()  # another worker
        assert seen.state == TrialState.RUNNING and seen.user_attrs == {"sweep.worker": "host:1"}
        assert seen.datetime_start is not None and before <= seen.datetime_start <= datetime.now()
        assert 0.0 <= trial.suggest_float("x", 0.0, 1.0) <= 1.0
        study.tell(trial, 1.0)
        assert study.get_trials()[0].user_attrs == {"sweep.worker": "host:1"}


@pytest.mark.parametrize("kind", ["journal", "sqlite", "proxy"])
def test_changed_trials_reads_the_open_and_the_new_trials_as_a_trial_by_trial_read_does(tmp_path: Path, kind: str):
    with sweep_storage(kind, tmp_path) as location:
        study = optuna.create_study(study_name="s", storage=open_storage(location))
        other = optuna.load_study(study_name="s", storage=open_storage(location))  # another worker's handle
        storage = internals.storage_of(study)
        for owner, attribute in {"journal": [(storage, "_replay_result"), (storage, "_thread_lock")],
                                 "sqlite": [(storage, "_studies"), (storage, "_read_trials_from_remote_storage")],
                                 "proxy": [(storage, "_cache")]}[kind]:
            require(owner, attribute)
        open_ones = [study.ask() for _ in range(3)]
        study.tell(study.ask(), 0.5)
        frozen = study.get_trials(deepcopy=False)
        other.tell(open_ones[1].number, 0.7)  # changed by another worker since
        other.tell(other.ask(), 0.8)
        other.ask()
        now, new = internals.changed_trials(storage, internals.study_id_of(study), frozen[:3], len(frozen))
        truth = {trial.number: trial for trial in other.get_trials(deepcopy=False)}
        assert now == [truth[0], truth[1], truth[2]] and now[1].state == TrialState.COMPLETE
        assert new == [truth[4], truth[5]] and [trial.state for trial in new] == [TrialState.COMPLETE,
                                                                                  TrialState.RUNNING]


@pytest.mark.parametrize("kind", ["journal", "sqlite", "proxy"])
def test_a_tell_without_reading_back_ends_the_trial_as_optunas_tell_does(tmp_path: Path, kind: str):
    with sweep_storage(kind, tmp_path) as location:
        study = optuna.create_study(study_name="s", storage=open_storage(location))
        complete, pruned, failed = study.ask(), study.ask(), study.ask()
        pruned.report(0.25, step=3)
        internals.tell_without_reading_back(study, complete, 0.5, TrialState.COMPLETE)
        internals.tell_without_reading_back(study, pruned, None, TrialState.PRUNED)
        internals.tell_without_reading_back(study, failed, None, TrialState.FAIL)
        seen = optuna.load_study(study_name="s", storage=open_storage(location)).get_trials()
        assert [(t.state, t.values) for t in seen] == [(TrialState.COMPLETE, [0.5]), (TrialState.PRUNED, [0.25]),
                                                       (TrialState.FAIL, None)]  # pruned: its last report, as Optuna
        with pytest.raises(ValueError, match="Cannot tell a COMPLETE trial"):
            internals.tell_without_reading_back(study, complete, 0.7, TrialState.COMPLETE)


def test_a_trial_handed_over_by_the_proxy_is_made_without_reading_it_again(tmp_path: Path, monkeypatch):
    with sweep_storage("proxy", tmp_path) as location:
        study = optuna.create_study(study_name="s", storage=open_storage(location))
        storage = internals.storage_of(study)
        assert isinstance(storage, internals.BeatingProxyStorage)
        started = internals.create_trial(storage, internals.study_id_of(study), {"sweep.worker": "host:1"})
        as_started = internals.trial_from_bytes(internals.trial_to_bytes(storage.get_trial(started)))
        reads: list[int] = []
        remote = optuna.storages.GrpcStorageProxy.get_trial
        monkeypatch.setattr(optuna.storages.GrpcStorageProxy, "get_trial",
                            lambda self, trial_id: reads.append(trial_id) or remote(self, trial_id))

        trial = internals.trial_of(study, started, as_started)

        assert reads == [] and trial.number == 0 and trial.user_attrs == {"sweep.worker": "host:1"}
        assert storage.get_trial(started).user_attrs == {"sweep.worker": "host:1"} and reads == [started]  # once only


@pytest.mark.parametrize("kind", ["journal", "sqlite"])
def test_a_waiting_trial_is_taken_once_and_a_taken_one_is_passed_over(tmp_path: Path, kind: str):
    with sweep_storage(kind, tmp_path) as location:
        study = optuna.create_study(study_name="s", storage=open_storage(location))
        study.enqueue_trial({"x": 0.1})
        study.enqueue_trial({"x": 0.2})
        waiting = study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
        storage = internals.storage_of(study)
        assert internals.take_waiting(storage, waiting) == waiting[0]._trial_id
        assert internals.take_waiting(storage, waiting) == waiting[1]._trial_id  # the first is running now
        assert internals.take_waiting(storage, waiting) is None
        assert [t.state for t in study.get_trials()] == [TrialState.RUNNING, TrialState.RUNNING]


def test_a_tell_held_back_sends_nothing_reads_nothing_and_writes_in_the_tells_order_later(tmp_path: Path,
                                                                                         monkeypatch):
    with sweep_storage("proxy", tmp_path) as location:
        study = optuna.create_study(study_name="s", storage=open_storage(location))
        trial = study.ask()
        trial.suggest_float("x", 0.0, 1.0)
        trial.report(0.25, step=3)
        require(trial, "_cached_frozen_trial")
        sent: list[str] = []
        for name in ("get_trial", "set_trial_user_attr", "set_trial_system_attr", "set_trial_state_values"):
            remote = getattr(optuna.storages.GrpcStorageProxy, name)
            monkeypatch.setattr(optuna.storages.GrpcStorageProxy, name, lambda self, *args, _name=name, _remote=remote:
                                sent.append(_name) or _remote(self, *args))

        with internals.holding_back(study, trial) as held:
            trial.set_user_attr("sweep.metrics", {"acc": 0.5})
            trial.storage.set_trial_system_attr(trial._trial_id, "constraints", [0.0])
            internals.tell_without_reading_back(study, trial, None, TrialState.PRUNED)

        assert sent == []  # nothing sent, and the tell read the trial as this process holds it
        assert held == internals.HeldWrites(trial._trial_id, {"sweep.metrics": {"acc": 0.5}}, {"constraints": [0.0]},
                                            TrialState.PRUNED, [0.25])  # pruned: its last report, as Optuna's tell
        other = optuna.load_study(study_name="s", storage=open_storage(location))
        assert other.get_trials()[0].state == TrialState.RUNNING
        internals.write_held(internals.storage_of(study), held)
        internals.write_held(internals.storage_of(study), held)  # sent again (an answer lost): left as it is
        (seen,) = other.get_trials()
        assert (seen.state, seen.values, seen.user_attrs, seen.system_attrs["constraints"]) == (
            TrialState.PRUNED, [0.25], {"sweep.metrics": {"acc": 0.5}}, [0.0])
        with pytest.raises(optuna.exceptions.UpdateFinishedTrialError):  # ended otherwise: not this tell's
            internals.write_held(internals.storage_of(study), internals.HeldWrites(
                trial._trial_id, {}, {}, TrialState.COMPLETE, [1.0]))


@pytest.mark.parametrize("kind", ["journal", "sqlite"])
def test_nothing_is_held_back_on_a_storage_other_than_the_proxy(tmp_path: Path, kind: str):
    with sweep_storage(kind, tmp_path) as location:
        study = optuna.create_study(study_name="s", storage=open_storage(location))
        trial = study.ask()
        with internals.holding_back(study, trial) as held:
            internals.tell_without_reading_back(study, trial, 1.0, TrialState.COMPLETE)
        assert held is None and study.get_trials()[0].values == [1.0]


def test_params_together_reach_the_proxy_in_one_call_on_its_client_channel(tmp_path: Path, monkeypatch):
    with sweep_storage("proxy", tmp_path) as location:
        study = optuna.create_study(study_name="s", storage=open_storage(location))
        storage = internals.storage_of(study)
        require(storage, "_channel")  # the client's channel to the proxy carries the call
        trial = study.ask()
        one_by_one: list[str] = []
        remote = optuna.storages.GrpcStorageProxy.set_trial_param
        monkeypatch.setattr(optuna.storages.GrpcStorageProxy, "set_trial_param", lambda self, trial_id, name, *args:
                            one_by_one.append(name) or remote(self, trial_id, name, *args))

        with internals.params_together(study, trial):
            x, y = trial.suggest_float("x", 0.0, 1.0), trial.suggest_int("y", 1, 3)
            z = trial.suggest_categorical("z", ["a", "b", None])  # its internal value is an index

        assert one_by_one == []
        (seen,) = optuna.load_study(study_name="s", storage=open_storage(location)).get_trials()
        assert seen.params == {"x": x, "y": y, "z": z} and seen.distributions == trial.distributions
