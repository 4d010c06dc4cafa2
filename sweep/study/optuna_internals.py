"""Every use of Optuna's private API, in one place: an Optuna upgrade that breaks one shows up here.

tests/unit/sweep/study/test_optuna_internals.py exercises each of them on real storages and names the
attribute that went missing. pyproject pins Optuna to the minor version CI tests.
"""

from __future__ import annotations

import contextlib
import copy
import errno
import json
import os
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

import optuna
from optuna.distributions import BaseDistribution, distribution_to_json, json_to_distribution
from optuna.exceptions import UpdateFinishedTrialError
from optuna.storages import BaseStorage, GrpcStorageProxy, JournalStorage, RDBStorage, fail_stale_trials
from optuna.storages._cached_storage import _CachedStorage
from optuna.storages._grpc.auto_generated import api_pb2
from optuna.storages._grpc.server import make_server
from optuna.storages._grpc.servicer import _from_proto_trial, _to_proto_trial
from optuna.storages._heartbeat import BaseHeartbeat, get_heartbeat_thread, is_heartbeat_enabled
from optuna.storages.journal import JournalFileBackend, JournalRedisBackend
from optuna.storages.journal._file import get_lock_file
from optuna.storages.journal._storage import JournalOperation
from optuna.study._frozen import FrozenStudy  # what storage.get_all_studies() returns
from optuna.study._tell import _tell_with_warning
from optuna.trial import FrozenTrial, TrialState

from sweep.errors import StorageError
from sweep.study.key_sharing import KeySharingDicts

if TYPE_CHECKING:
    from sweep.study.patience import Patience

REPEATS_LIMIT = 1024  # distinct values of a metric kept once each; a metric with more (a loss) is no longer looked up
SHARED_LIMIT = 4096  # distinct distributions (and sets of them) shared; a space that changes per trial stops there
REDIS_READ_BATCH = 1000  # journal entries read from Redis in one round trip
BEAT_ATTR = "sweep:heartbeat"  # a running trial's last heartbeat (epoch seconds), on storages without one of their own

__all__ = [
    "BEAT_ATTR",
    "PARAMS_CALL",
    "STORAGE_CALLS",
    "BeatingJournalStorage",
    "BeatingProxyStorage",
    "CompactJournalStorage",
    "FrozenStudy",
    "HeldParam",
    "HeldWrites",
    "JournalFileNoFsync",
    "JournalRedisBatched",
    "StudyOfTrials",
    "StudyWithPrior",
    "ask_new",
    "catch_up",
    "changed_trials",
    "contains",
    "create_trial",
    "database_url_of",
    "decode_params",
    "encode_params",
    "fail_stale_trial_ids",
    "fail_stale_trials_quietly",
    "heartbeat_grace",
    "heartbeat_thread",
    "holding_back",
    "is_stale",
    "params_together",
    "proxy_server",
    "quiet_experimental_warnings",
    "quiet_heartbeat_warnings",
    "storage_of",
    "storage_uses_heartbeat",
    "study_id_of",
    "take_waiting",
    "tell_without_reading_back",
    "trial_from_bytes",
    "trial_id_of",
    "trial_of",
    "trial_to_bytes",
    "write_held",
    "write_params",
]

# what a storage is asked by Optuna: its public interface, the heartbeat's write, and the heartbeat's query for
# stale trials (private, called by fail_stale_trials); and the storage proxy client's params sent together
STORAGE_CALLS = frozenset(name for name in vars(BaseStorage) if not name.startswith("_")) | {
    "record_heartbeat", "_get_stale_trial_ids", "set_trial_params"}
# `sweep storage-proxy`'s call (proxy.py) for several params of a trial at once, beside Optuna's one per param
PARAMS_CALL = "/sweep.TrialGate/SetTrialParameters"
PARAMS_CALL_SECONDS = 30.0  # as long as the proxy's other calls may take (proxy.LEASE_SECONDS)

T = TypeVar("T")

HEARTBEAT_WITH_ASK = "Heartbeat of storage is supposed to be used with Study.optimize"


@contextmanager
def quiet_heartbeat_warnings() -> Iterator[None]:
    """Optuna's heartbeat API is marked experimental, and it warns about ask/tell with a heartbeat: both
    are what this project does on purpose (the loop runs the heartbeat thread itself), so the warnings
    are silenced around those calls only."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
        warnings.filterwarnings("ignore", message=HEARTBEAT_WITH_ASK)
        yield


@contextmanager
def quiet_experimental_warnings() -> Iterator[None]:
    """Optuna marks its journal in Redis and its gRPC storage proxy as experimental: used here on purpose."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
        yield


def proxy_server(storage: BaseStorage, host: str, port: int, threads: int) -> Any:
    """Optuna's gRPC storage proxy as a grpc.Server, not yet started.

    run_grpc_proxy_server is this plus start() and a wait that only Ctrl-C ends: the server object is
    needed to serve the trial gate beside the storage (on the same port) and to stop it on SIGTERM.
    """
    from concurrent.futures import ThreadPoolExecutor

    return make_server(storage, host, port, ThreadPoolExecutor(max_workers=threads, thread_name_prefix="proxy"))


def ask_new(study: optuna.Study, user_attrs: dict[str, Any] | None = None) -> optuna.Trial:
    """A new trial, as study.ask() makes one when no trial waits, without ask()'s look for a waiting
    trial: Optuna reads every trial of the study for it (O(n) per ask). For a caller that has just
    counted no waiting trial; one queued meanwhile is taken by the next study.ask(). Like ask(), it
    clears the sampler's per-ask cache of the study's trials (Study._thread_local).

    ``user_attrs`` are part of the trial from its creation: one storage write (the storage's template trial), not
    one more per attribute, which every other worker of a journal would replay too."""
    return trial_of(study, create_trial(study._storage, study._study_id, user_attrs))


def create_trial(storage: BaseStorage, study_id: int, user_attrs: dict[str, Any] | None = None) -> int:
    """A new running trial's id; ``user_attrs`` are part of it from its creation (one write: the storage's template
    trial)."""
    template = None
    if user_attrs:
        template = FrozenTrial(number=-1, state=TrialState.RUNNING, value=None, datetime_start=datetime.now(),
                               datetime_complete=None, params={}, distributions={}, user_attrs=dict(user_attrs),
                               system_attrs={}, intermediate_values={}, trial_id=-1)
    return storage.create_new_trial(study_id, template)


def take_waiting(storage: BaseStorage, waiting: Sequence[FrozenTrial]) -> int | None:
    """The id of the first of the ``waiting`` trials this caller set running, as Optuna's ask takes one from the
    queue; None when others took every one first."""
    for trial in waiting:
        try:
            if storage.set_trial_state_values(trial._trial_id, state=TrialState.RUNNING):
                return trial._trial_id
        except UpdateFinishedTrialError:
            continue
    return None


def trial_of(study: optuna.Study, trial_id: int, as_started: FrozenTrial | None = None) -> optuna.Trial:
    """The running trial ``trial_id`` to run in this process, as study.ask() hands it over (clearing the sampler's
    per-ask cache of the study's trials, Study._thread_local). ``as_started``: the trial as whoever started it read
    it (the storage proxy), which optuna.Trial then reads instead of asking the storage (a client of the proxy)."""
    study._thread_local.cached_all_trials = None
    storage = study._storage
    if as_started is not None and isinstance(storage, BeatingProxyStorage):
        storage.hand_over(as_started)
    return optuna.Trial(study, trial_id)


def tell_without_reading_back(study: optuna.Study, trial: optuna.Trial, values: float | Sequence[float] | None,
                              state: TrialState) -> None:
    """Study.tell without what it does after the tell: read the finished trial back from the storage for its return
    value (a round trip to a server, a journal's sync), which the caller does not use."""
    _tell_with_warning(study=study, trial=trial, value_or_values=values, state=state)


@dataclass
class HeldWrites:
    """What telling a trial writes to the storage, held back by a worker of the storage proxy so that they go with its
    next start in one call (served.py) instead of one call each: the trial's attributes, then its state and values."""

    trial_id: int
    user_attrs: dict[str, Any] = field(default_factory=dict)
    system_attrs: dict[str, Any] = field(default_factory=dict)
    state: TrialState | None = None  # None: the tell did not get as far as writing it
    values: list[float] | None = None


@contextmanager
def holding_back(study: optuna.Study, trial: optuna.Trial) -> Iterator[HeldWrites | None]:
    """Inside the block, what is written to ``trial`` (a tell) is held back in the HeldWrites yielded instead of sent,
    and the tell's read of the trial is the trial as this process holds it (optuna.Trial's own copy: the params,
    reports, attributes and constraints it wrote). None, and nothing held back, unless the study's storage is a
    client of the storage proxy."""
    storage = study._storage
    if not isinstance(storage, BeatingProxyStorage):
        yield None
        return
    held = HeldWrites(trial._trial_id)
    with storage.holding_back(held, copy.copy(trial._cached_frozen_trial)):
        yield held


def write_held(storage: BaseStorage, held: HeldWrites) -> None:
    """``held`` written to ``storage`` in the tell's order: the attributes, then the state and values. A trial that has
    ended so already (the same writes sent again, after an answer that was lost) is left as it is."""
    try:
        for key, value in held.user_attrs.items():
            storage.set_trial_user_attr(held.trial_id, key, value)
        for key, value in held.system_attrs.items():
            storage.set_trial_system_attr(held.trial_id, key, value)
        if held.state is not None:
            storage.set_trial_state_values(held.trial_id, held.state, held.values)
    except UpdateFinishedTrialError:
        stored = storage.get_trial(held.trial_id)
        if held.state is None or (stored.state, stored.values) != (held.state, held.values):
            raise


HeldParam = tuple[str, float, BaseDistribution]  # a param as Optuna's storage takes it: name, internal value, range


@contextmanager
def params_together(study: optuna.Study, trial: optuna.Trial) -> Iterator[None]:
    """The params ``trial`` is given inside the block (a search space suggested one after the other) go to the storage
    proxy in one call at its end, instead of one call each; on any other storage, one write each as usual. Optuna
    reads none of them back from the storage before the block ends (its Trial keeps its own copy)."""
    storage = study._storage
    if not isinstance(storage, BeatingProxyStorage):
        yield
        return
    with storage.params_together(trial._trial_id):
        yield


def encode_params(trial_id: int, params: Sequence[HeldParam]) -> bytes:
    # a float as Optuna's own call sends it (a double): a categorical's internal value is the index, an int
    return json.dumps({"trial_id": trial_id, "params": [[name, float(value), distribution_to_json(distribution)]
                                                       for name, value, distribution in params]}).encode()


def decode_params(data: bytes) -> tuple[int, list[HeldParam]]:
    message = json.loads(data.decode())
    return message["trial_id"], [(name, value, json_to_distribution(distribution))
                                 for name, value, distribution in message["params"]]


def write_params(storage: BaseStorage, trial_id: int, params: Sequence[HeldParam]) -> None:
    """``params`` written one by one, in their order (the proxy's side of params_together)."""
    for name, value, distribution in params:
        storage.set_trial_param(trial_id, name, value, distribution)


def trial_to_bytes(trial: FrozenTrial) -> bytes:
    """A trial as the storage proxy sends one (Optuna's own message)."""
    return _to_proto_trial(trial).SerializeToString()


def trial_from_bytes(data: bytes) -> FrozenTrial:
    message = api_pb2.Trial()
    message.ParseFromString(data)
    return _from_proto_trial(message)


def heartbeat_grace(storage: BaseStorage) -> float | None:
    """How long an attribute heartbeat (AttributeHeartbeat) may stay silent before its trial is stale; None for a
    storage without one."""
    return storage._grace if isinstance(storage, AttributeHeartbeat) and is_heartbeat_enabled(storage) else None


def is_stale(trial: FrozenTrial, grace: float, now: float) -> bool:
    """Whether a running trial's attribute heartbeat (else its start) is older than ``grace`` seconds at ``now``."""
    beat = trial.system_attrs.get(BEAT_ATTR)
    if beat is None and trial.datetime_start is not None:
        beat = trial.datetime_start.timestamp()
    return beat is not None and now - float(beat) > grace


def fail_stale_trial_ids(study: optuna.Study, trial_ids: Sequence[int]) -> None:
    """Optuna's fail_stale_trials for trials found stale elsewhere (the storage proxy's census): each becomes FAIL,
    and the storage's stale-trial callback (the retry) runs for the ones this caller failed."""
    storage = study._storage
    failed = []
    for trial_id in trial_ids:
        with contextlib.suppress(UpdateFinishedTrialError):  # another worker failed it first
            if storage.set_trial_state_values(trial_id, state=TrialState.FAIL):
                failed.append(trial_id)
    callback = storage.get_heartbeat_stale_trial_callback() if isinstance(storage, BaseHeartbeat) else None
    if callback is not None:
        for trial_id in failed:
            callback(study, copy.deepcopy(storage.get_trial(trial_id)))


def changed_trials(storage: BaseStorage, study_id: int, open_trials: Sequence[FrozenTrial], next_number: int
                   ) -> tuple[list[FrozenTrial], list[FrozenTrial]]:
    """The trials ``open_trials`` as they are now, and the study's trials numbered ``next_number`` and after (in
    number order), in one read of the storage where it allows one.

    Read trial by trial, a look with 64 running trials made 64 round trips (a journal syncs on every get_trial)
    while the trial gate was held. A journal syncs once and reads its replay; a database (behind Optuna's cache)
    and the storage proxy's client each ask for the unfinished and the new trials in one request, as their
    get_all_trials does, without sorting every trial. Another storage is read trial by trial. A storage that waits
    for a server that went away (patience.py) waits for the whole read.
    """
    return _patiently(storage, _changed_trials, storage, study_id, open_trials, next_number)


def catch_up(storage: BaseStorage, study_id: int) -> None:
    """Read what other workers wrote to the study since the last read, into this process's copy of it (a journal's
    replay, the proxy client's or Optuna's database cache): done outside the trial gate, it leaves the look
    inside the gate (changed_trials) only what was written meanwhile. Nothing for another storage."""
    _patiently(storage, _catch_up, storage, study_id)


def _patiently(storage: BaseStorage, read: Callable[..., T], *args: Any) -> T:
    owner = storage._backend if isinstance(storage, _CachedStorage) else storage
    patience: Patience | None = getattr(owner, "patience", None)
    if patience is None:  # a journal in Redis waits in its backend's reads
        return read(*args)
    return patience.call(read, *args)


def _catch_up(storage: BaseStorage, study_id: int) -> None:
    if isinstance(storage, JournalStorage):
        with storage._thread_lock:
            storage._sync_with_backend()
    elif isinstance(storage, GrpcStorageProxy):
        with storage._cache.lock:
            storage._cache._read_trials_from_remote_storage(study_id)
    elif isinstance(storage, _CachedStorage):
        storage._read_trials_from_remote_storage(study_id)  # takes the cache's lock itself


def _changed_trials(storage: BaseStorage, study_id: int, open_trials: Sequence[FrozenTrial], next_number: int
                    ) -> tuple[list[FrozenTrial], list[FrozenTrial]]:
    _catch_up(storage, study_id)  # then the trials are read from this process's copy (a thread may update it meanwhile)
    if isinstance(storage, JournalStorage):
        with storage._thread_lock:
            replay = storage._replay_result
            ids = replay._study_id_to_trial_ids[study_id]  # in number order
            return ([replay.get_trial(trial._trial_id) for trial in open_trials],
                    [replay.get_trial(trial_id) for trial_id in ids[next_number:]])
    if isinstance(storage, GrpcStorageProxy):
        with storage._cache.lock:
            return _cached_trials(storage._cache.studies[study_id].trials, open_trials, next_number)
    if isinstance(storage, _CachedStorage):
        with storage._lock:
            return _cached_trials(storage._studies[study_id].trials, open_trials, next_number)
    now = [storage.get_trial(trial._trial_id) for trial in open_trials]  # no copy here: trial by trial
    new: list[FrozenTrial] = []
    while True:
        try:
            trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, next_number + len(new))
        except KeyError:
            return now, new
        new.append(storage.get_trial(trial_id))


def _cached_trials(known: dict[int, FrozenTrial], open_trials: Sequence[FrozenTrial], next_number: int
                   ) -> tuple[list[FrozenTrial], list[FrozenTrial]]:
    """From a cache of a study's trials by number, kept up to date by the caller."""
    new: list[FrozenTrial] = []
    while next_number + len(new) in known:
        new.append(known[next_number + len(new)])
    return [known[trial.number] for trial in open_trials], new


def storage_of(study: optuna.Study) -> BaseStorage:
    """The storage a loaded study reads and writes (Study._storage)."""
    return study._storage


def database_url_of(study: optuna.Study) -> str | None:
    """The URL of the RDB storage a loaded study uses (Optuna wraps it in its private _CachedStorage), else None."""
    storage = study._storage
    backend = storage._backend if isinstance(storage, _CachedStorage) else storage
    return backend.url if isinstance(backend, RDBStorage) else None


def trial_id_of(trial: optuna.Trial | optuna.trial.FrozenTrial) -> int:
    """The storage's id of a trial (not its number): what the storage's trial methods take."""
    return trial._trial_id


def study_id_of(summary: FrozenStudy | optuna.Study) -> int:
    """The storage's id of a study listed by storage.get_all_studies(), or of a loaded one."""
    return summary._study_id


def storage_uses_heartbeat(storage: BaseStorage) -> bool:
    """Whether the storage records trials' heartbeats (an RDB storage with a heartbeat interval)."""
    return is_heartbeat_enabled(storage)


def fail_stale_trials_quietly(study: optuna.Study) -> None:
    """Optuna's fail_stale_trials (experimental): trials whose heartbeat stopped become FAIL, and retry."""
    with quiet_heartbeat_warnings():
        fail_stale_trials(study)


@contextmanager
def heartbeat_thread(trial: optuna.Trial) -> Iterator[None]:
    """Optuna's heartbeat thread for a trial that has just started running (a no-op on a storage without
    heartbeats). On a storage whose beat is a trial attribute (AttributeHeartbeat), the trial's start is its first
    beat: the first attribute is written an interval later, not at once (a write every other worker of a journal
    in Redis would replay, for every trial however short)."""
    storage = trial.study._storage
    if not isinstance(storage, AttributeHeartbeat):
        with get_heartbeat_thread(trial._trial_id, storage):
            yield
        return
    interval = storage.get_heartbeat_interval()
    stopped = threading.Event()

    def beat() -> None:
        while not stopped.wait(interval):
            storage.record_heartbeat(trial._trial_id)

    thread = threading.Thread(target=beat, name=f"sweep-heartbeat-{trial.number}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stopped.set()
        thread.join()


class JournalFileNoFsync(JournalFileBackend):
    """Optuna's journal file, appended without an fsync per operation.

    Optuna fsyncs every append, and a trial is about eight appends (create, one per parameter,
    attributes, tell): the largest cost of a trial after the trainer and the sampler. The lock and
    the single write() per append are kept, so concurrent workers and readers see whole lines, and
    a crash of the process loses nothing that was written; only a power cut can lose the last
    appends, the same trade as SQLite's synchronous=NORMAL. Overriding append_logs needs the
    backend's lock and file path, both private.
    """

    def read_logs(self, log_number_from: int) -> Iterator[dict[str, Any]]:
        """Optuna's read (the same lines, the same errors), with two things less kept for the life of the process.

        Optuna's backend remembers the byte offset of every line it has read, to seek to any of them later; its
        storage only ever asks for the lines after those it has read, so only the offset of the next unread line
        (and of the first) is kept here. And the keys of the attribute lines' objects are interned: the storage
        keeps the attribute values of every trial (sweep.metrics and its metric names among them), each a fresh
        copy of the same few names otherwise. Together most of what a process replaying a large journal kept per trial
        beside the trials themselves.
        """
        offsets = self._log_number_offset
        with open(self._file_path, "rb") as file:
            remaining = os.stat(self._file_path).st_size  # lines appended while this reads are left for the next
            start, position = 0, 0
            if log_number_from in offsets:
                position = offsets[log_number_from]
                file.seek(position)
                start, remaining = log_number_from, remaining - position
            decode_error: Exception | None = None
            for number, line in enumerate(file, start=start):
                remaining -= len(line)
                if remaining < 0:
                    break
                if decode_error is not None:  # a broken line followed by another: not a torn last write
                    raise decode_error
                if not line.endswith(b"\n"):
                    decode_error = ValueError("Invalid log format.")
                    continue
                position += len(line)
                if number < log_number_from:
                    continue
                try:
                    # attribute lines only: the storage keeps their dicts; a hook on every line slows a full replay
                    log = json.loads(line, object_pairs_hook=interned_keys) if b'_attr"' in line else json.loads(line)
                except json.JSONDecodeError as error:
                    decode_error = error
                    continue
                offsets.clear()
                offsets.update({0: 0, number + 1: position})
                yield log

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        with get_lock_file(self._lock):
            text = "\n".join(json.dumps(log, separators=(",", ":")) for log in logs) + "\n"
            try:
                with open(self._file_path, "ab") as file:
                    file.write(text.encode("utf-8"))
            except OSError as error:
                if error.errno not in (errno.ENOSPC, errno.EDQUOT):
                    raise
                # a part of the line may be written: the next open sets that torn line aside
                raise StorageError(f"cannot write the Optuna journal {self._file_path}: {error.strerror}; the sweep "
                                   f"stopped, every trial told before is kept: free space, then continue it "
                                   f"with `sweep run --resume`") from None


def interned_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    return {sys.intern(key): value for key, value in pairs}


class CompactJournalStorage(JournalStorage):
    """Optuna's journal storage, each finished trial kept in less memory.

    The storage replays the journal into one FrozenTrial per trial and keeps every one for the life of the
    process: in a long sweep, most of what the process holds. Optuna makes each trial's distributions anew from
    their JSON, one object per parameter per trial, each with its own attribute dict; here a trial that has just
    finished is replaced by an equal one (the same values, in the same order: samplers read exactly what they
    read before) with one shared object per distinct distribution, one shared dict per set of them, parameter
    names kept once, and a text attribute that repeats the last finished trial's (its worker) kept once.

    Only the trial the replay has just made is replaced, never one handed out: Optuna copies a trial on every
    update, and a finished trial is never updated again. Running and waiting trials stay as Optuna made
    them (Optuna's Trial writes into the dicts of the trial it runs). Reading the replay's trials as they are
    applied needs its private trial table; the two lines of Optuna's sync are repeated to see each record.
    """

    def __getstate__(self) -> dict[Any, Any]:
        state = super().__getstate__()
        state.pop("_shared", None)  # belongs to this process's replay: an unpickled storage replays anew
        return state

    def _sync_with_backend(self) -> None:
        replay = self._replay_result
        replay.apply_logs(self._compacting(self._backend.read_logs(replay.log_number_read)))

    def _compacting(self, logs: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        """``logs`` as they are, each trial that one of them finished compacted once the replay applied it."""
        trials: dict[int, FrozenTrial] = self._replay_result._trials
        shared: SharedTrialParts | None = getattr(self, "_shared", None)
        if shared is None:  # set here, not in __init__: Optuna's __init__ (and its unpickling) replays first
            shared = self._shared = SharedTrialParts()
        for log in logs:
            op, count = log["op_code"], len(trials)
            trial_id = log.get("trial_id") if op == JournalOperation.SET_TRIAL_STATE_VALUES else None
            before = trials.get(trial_id) if trial_id is not None else None
            yield log  # the replay applies it before it asks for the next one
            if op == JournalOperation.CREATE_TRIAL and len(trials) > count:  # a trial made finished (add_trial)
                trial_id, before = count, None
            trial = trials.get(trial_id) if trial_id is not None else None
            if trial is not None and trial is not before and trial.state.is_finished():
                trials[trial_id] = shared.compact(trial)


class SharedTrialParts:
    """What finished trials have in common, kept once: distributions, sets of them, parameter names, text
    attribute values that repeat from one trial to the next (the worker that ran it), the empty dict of a trial
    without system attributes or reports, a trial's number where it equals its id, the table of keys of their
    params, attributes and dict attribute values (the metrics), whose names repeat in every trial, and the values of
    a metric that repeat (RepeatedNumbers)."""

    def __init__(self) -> None:
        # one empty dict for every finished trial's empty system attributes and reports: Optuna updates no finished
        # trial (it refuses, and copies a trial's dicts on every update of a running one) and nothing writes into a
        # trial it read from the storage, so it stays empty
        self._empty: dict[Any, Any] = {}
        # by type and attributes' repr, which tells 1 from 1.0 and True from 1 (equality does not): of two
        # distributions with the same key, either can stand for the other
        self._distributions: dict[tuple[type, str], BaseDistribution] = {}
        self._sets: dict[tuple[tuple[str, int], ...], dict[str, BaseDistribution]] = {}  # by (name, id) pairs
        self._last_text: dict[str, str] = {}  # user attribute name -> its text value in the last finished trial
        self._params = KeySharingDicts()
        self._attrs = KeySharingDicts()  # user and system attributes, and the dicts among their values
        self._repeats = RepeatedNumbers()

    def compact(self, trial: FrozenTrial) -> FrozenTrial:
        """``trial`` made anew with the shared parts in place of its own. Made by FrozenTrial's constructor: a
        trial the replay copied (as it does on every update) carries a full attribute dict of its own; a
        constructed one keeps its attributes inline, in about half the space."""
        distributions = {sys.intern(name): self._distribution(distribution)
                         for name, distribution in trial.distributions.items()}
        key = tuple((name, id(distribution)) for name, distribution in distributions.items())
        found = self._sets.get(key)
        if found is None and len(self._sets) < SHARED_LIMIT:
            found = self._sets[key] = distributions
        # the id's int object for the number too where they are equal (a journal of one study): one int less a trial
        number = trial._trial_id if trial.number == trial._trial_id else trial.number
        user_attrs = self._user_attrs(trial.user_attrs)
        return FrozenTrial(number=number, state=trial.state, value=None, values=values_as_in(trial.values, user_attrs),
                           datetime_start=trial.datetime_start, datetime_complete=trial.datetime_complete,
                           params=self._params.like({sys.intern(name): value for name, value in trial.params.items()}),
                           distributions=distributions if found is None else found, user_attrs=user_attrs,
                           system_attrs=self._attrs.like(trial.system_attrs) if trial.system_attrs else self._empty,
                           intermediate_values=trial.intermediate_values or self._empty, trial_id=trial._trial_id)

    def _user_attrs(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """A copy of ``attrs`` in the same order, with shared keys (its dict values too), whose text values equal to
        the last finished trial's under the same name are that trial's string; never ``attrs`` changed (older copies
        of the trial hold it)."""
        last = self._last_text
        kept: dict[str, Any] = {}
        for name, value in attrs.items():
            if isinstance(value, str):
                if last.get(name) == value:
                    value = last[name]
                elif name in last or len(last) < SHARED_LIMIT:
                    last[name] = value
            elif type(value) is dict:  # a JSON object (the metrics): its names repeat from trial to trial
                value = self._attrs.like({key: self._repeats.shared(key, number) for key, number in value.items()})
            kept[name] = value
        return self._attrs.like(kept)

    def _distribution(self, distribution: BaseDistribution) -> BaseDistribution:
        key = (type(distribution), repr(vars(distribution)))
        found = self._distributions.get(key)
        if found is None:
            if len(self._distributions) >= SHARED_LIMIT:
                return distribution
            found = self._distributions[key] = distribution
        return found


class RepeatedNumbers:
    """One float object per distinct value of a metric whose values repeat from trial to trial: an accuracy over a
    fixed set, a size, a count. A metric that shows more than REPEATS_LIMIT distinct values (a loss, a duration) is
    given up: its table is dropped, and its values are kept as they come."""

    def __init__(self) -> None:
        self._seen: dict[str, dict[float, float] | None] = {}  # metric name -> its values by value; None: given up

    def shared(self, name: str, number: Any) -> Any:
        """``number``, or the float object equal to it that an earlier trial's ``name`` holds. Zero and NaN are
        kept as they come: equality does not tell 0.0 from -0.0, and no NaN equals another."""
        if type(number) is not float or number == 0.0 or number != number:
            return number
        seen = self._seen.get(name)
        if seen is None:
            if name in self._seen or len(self._seen) >= SHARED_LIMIT:
                return number
            seen = self._seen[name] = {}
        found = seen.setdefault(number, number)
        if len(seen) > REPEATS_LIMIT:
            self._seen[name] = None  # its values do not repeat: looking them up would only cost memory
        return found


def values_as_in(values: list[float] | None, attrs: dict[str, Any]) -> list[float] | None:
    """``values`` with each one equal to a number of a dict among ``attrs`` (the trial's metrics, the objective's
    among them) that number's object: one float object less per objective a finished trial keeps. Zero and NaN are
    kept as they come, as RepeatedNumbers keeps them."""
    if not values:
        return values
    numbers = {number: number for found in attrs.values() if type(found) is dict for number in found.values()
               if type(number) is float and number != 0.0}  # a NaN key is never found: no NaN equals another
    return [numbers.get(value, value) if type(value) is float else value for value in values]


class AttributeHeartbeat(BaseHeartbeat):
    """Optuna's heartbeat for a storage that has none (a journal in Redis, the gRPC storage proxy): the beat
    is a trial system attribute holding the worker's clock, and a running trial whose last beat (else its
    start) is older than the grace period is stale.

    Optuna's own machinery (its heartbeat thread, fail_stale_trials, the stale-trial callback) then works
    unchanged, as on an RDB storage; implementing it means subclassing Optuna's private BaseHeartbeat.
    Machines' clocks are compared, so they must agree to well within the grace period (NTP does).
    """

    def _set_heartbeat(self, interval: int, callback: Callable[[optuna.Study, FrozenTrial], None] | None) -> None:
        self._interval, self._grace, self._callback = interval, 3 * interval, callback

    def record_heartbeat(self, trial_id: int) -> None:
        with contextlib.suppress(UpdateFinishedTrialError):  # another worker failed it as stale a moment ago
            self.set_trial_system_attr(trial_id, BEAT_ATTR, time.time())  # type: ignore[attr-defined]

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        now = time.time()
        return [trial._trial_id for trial in self.get_all_trials(study_id, deepcopy=False,  # type: ignore[attr-defined]
                                                                  states=(TrialState.RUNNING,))
                if is_stale(trial, self._grace, now)]

    def get_heartbeat_interval(self) -> int | None:
        return self._interval

    def get_heartbeat_stale_trial_callback(self) -> Callable[[optuna.Study, FrozenTrial], None] | None:
        return self._callback


class BeatingJournalStorage(CompactJournalStorage, AttributeHeartbeat):
    """A journal storage (in Redis: workers on many machines) with the attribute heartbeat."""

    def __init__(self, backend: Any, *, heartbeat: int,
                 callback: Callable[[optuna.Study, FrozenTrial], None] | None) -> None:
        super().__init__(backend)
        self._set_heartbeat(heartbeat, callback)


class BeatingProxyStorage(GrpcStorageProxy, AttributeHeartbeat):
    """A client of the gRPC storage proxy with the attribute heartbeat (the proxy forwards no RDB heartbeat)."""

    def __init__(self, *, host: str, port: int, heartbeat: int,
                 callback: Callable[[optuna.Study, FrozenTrial], None] | None) -> None:
        super().__init__(host=host, port=port)
        self._set_heartbeat(heartbeat, callback)
        self._handed: FrozenTrial | None = None
        self._held: HeldWrites | None = None
        self._held_params: tuple[int, list[HeldParam]] | None = None  # (trial id, params): params_together
        self._serves_params = True  # until the proxy says it has no PARAMS_CALL (an older `sweep storage-proxy`)

    def hand_over(self, trial: FrozenTrial) -> None:
        """The trial the proxy has just started for this worker, as it sent it: the next read of it (optuna.Trial
        reads its trial once when made) takes this instead of a round trip."""
        self._handed = trial

    def get_trial(self, trial_id: int) -> FrozenTrial:
        handed, self._handed = self._handed, None
        if handed is not None and handed._trial_id == trial_id:
            return handed
        return super().get_trial(trial_id)

    @contextmanager
    def holding_back(self, held: HeldWrites, as_held: FrozenTrial) -> Iterator[None]:
        """The writes to the trial ``held`` names go into ``held`` inside the block; its next read is ``as_held``."""
        self._held = held
        self.hand_over(as_held)
        try:
            yield
        finally:
            self._held, self._handed = None, None

    @contextmanager
    def params_together(self, trial_id: int) -> Iterator[None]:
        """The params set on ``trial_id`` inside the block, sent in one call at its end (set_trial_params); those
        set before a failure inside it too, as they would have been one by one."""
        held: list[HeldParam] = []
        self._held_params = (trial_id, held)
        try:
            yield
        finally:
            self._held_params = None
            if held:
                self.set_trial_params(trial_id, held)

    def set_trial_param(self, trial_id: int, param_name: str, param_value_internal: float,
                        distribution: BaseDistribution) -> None:
        if self._held_params is not None and self._held_params[0] == trial_id:
            self._held_params[1].append((param_name, param_value_internal, distribution))
        else:
            super().set_trial_param(trial_id, param_name, param_value_internal, distribution)

    def set_trial_params(self, trial_id: int, params: Sequence[HeldParam]) -> None:
        """Several params of a trial in one call to the proxy; one call each to a proxy without that call. Raises
        as Optuna's set_trial_param does (KeyError, UpdateFinishedTrialError, ValueError)."""
        import grpc

        if self._serves_params:
            call = self._channel.unary_unary(PARAMS_CALL)
            try:
                call(encode_params(trial_id, params), timeout=PARAMS_CALL_SECONDS)
                return
            except grpc.RpcError as error:
                refused = {grpc.StatusCode.NOT_FOUND: KeyError, grpc.StatusCode.FAILED_PRECONDITION:
                           UpdateFinishedTrialError, grpc.StatusCode.INVALID_ARGUMENT: ValueError}.get(error.code())
                if refused is not None:
                    raise refused(error.details()) from error
                if error.code() != grpc.StatusCode.UNIMPLEMENTED:
                    raise
                self._serves_params = False
        for name, value, distribution in params:
            super().set_trial_param(trial_id, name, value, distribution)

    def set_trial_user_attr(self, trial_id: int, key: str, value: Any) -> None:
        if self._held is not None and self._held.trial_id == trial_id:
            self._held.user_attrs[key] = value
        else:
            super().set_trial_user_attr(trial_id, key, value)

    def set_trial_system_attr(self, trial_id: int, key: str, value: Any) -> None:
        if self._held is not None and self._held.trial_id == trial_id:
            self._held.system_attrs[key] = value
        else:
            super().set_trial_system_attr(trial_id, key, value)

    def set_trial_state_values(self, trial_id: int, state: TrialState, values: Sequence[float] | None = None) -> bool:
        if self._held is None or self._held.trial_id != trial_id:
            return super().set_trial_state_values(trial_id, state, values)
        self._held.state, self._held.values = state, None if values is None else list(values)
        return True  # as the storage answers a tell: the trial was running (the one this worker holds)


class JournalRedisBatched(JournalRedisBackend):
    """Optuna's journal in Redis, read a batch of entries per round trip (MGET) instead of one GET per entry.

    Every worker replays every other worker's entries (about eight per trial) before it counts the trials
    and asks, inside the trial gate: one round trip per entry made that part, so the gate's capacity,
    shrink as workers were added. Overriding read_logs needs the backend's client, prefix and key format,
    all private. An entry counted but not yet written (a cluster's two-step append) is waited for as
    Optuna's own read does. With ``patience``, a Redis that went away is waited for (a bounded time) by
    each read and append, here, below Optuna's journal: retrying a whole storage call could append twice.
    """

    patience: Patience | None = None

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        if self.patience is None:
            super().append_logs(logs)
        else:
            self.patience.call(super().append_logs, logs)

    def read_logs(self, log_number_from: int) -> Iterator[dict[str, Any]]:
        if self.patience is None:
            yield from self._read_logs_once(log_number_from)
        else:
            yield from self.patience.items(lambda: self._read_logs_once(log_number_from))

    def _read_logs_once(self, log_number_from: int) -> Iterator[dict[str, Any]]:
        last_bytes = self._redis.get(f"{self._prefix}:log_number")
        if last_bytes is None:
            return
        last = int(last_bytes)
        for start in range(log_number_from, last + 1, REDIS_READ_BATCH):
            numbers = range(start, min(start + REDIS_READ_BATCH, last + 1))
            for number, entry in zip(numbers, self._redis.mget([self._key_log_id(n) for n in numbers])):
                pause = 0.1
                while entry is None:
                    time.sleep(pause)
                    pause = min(2 * pause, 10)
                    entry = self._redis.get(self._key_log_id(number))
                try:
                    yield json.loads(entry)
                except json.JSONDecodeError:
                    if number != last:  # only the last entry may be partly written
                        raise


class StudyWithPrior:
    """A study as a sampler reads it, with ``prior`` trials (another sweep's, for warm_start) listed before its
    own: samplers read a study's trials through its private ``_get_trials`` (TPE, GP), so that is what is widened;
    everything else is the study's own. The prior trials carry negative numbers: they never meet one of the
    study's, which TPE's constant liar tells apart by number."""

    def __init__(self, study: optuna.Study, prior: tuple[FrozenTrial, ...]) -> None:
        self._study, self._prior = study, prior

    def __getattr__(self, name: str) -> Any:
        return getattr(self._study, name)

    def _get_trials(self, deepcopy: bool = True, states: Any = None, use_cache: bool = False) -> list[FrozenTrial]:
        own = self._study._get_trials(deepcopy=deepcopy, states=states, use_cache=use_cache)
        return [trial for trial in self._prior if states is None or trial.state in states] + own

    def get_trials(self, deepcopy: bool = True, states: Any = None) -> list[FrozenTrial]:
        return self._get_trials(deepcopy=deepcopy, states=states)

    @property
    def trials(self) -> list[FrozenTrial]:
        return self.get_trials()


class StudyOfTrials(optuna.Study):
    """A study whose trials, as Optuna's plots read them (its private ``_get_trials``, get_trials, trials), are
    ``trials``: a chosen part of its own. A Study (Optuna's plots tell one study from a list of them by type) that
    shares everything else with ``study``, whose state it takes instead of Study.__init__ opening a storage."""

    def __init__(self, study: optuna.Study, trials: list[FrozenTrial]) -> None:
        self.__dict__.update(vars(study))
        self._chosen = trials

    def _get_trials(self, deepcopy: bool = True, states: Any = None, use_cache: bool = False) -> list[FrozenTrial]:
        return [trial for trial in self._chosen if states is None or trial.state in states]

    def get_trials(self, deepcopy: bool = True, states: Any = None) -> list[FrozenTrial]:
        return self._get_trials(deepcopy=deepcopy, states=states)

    @property
    def trials(self) -> list[FrozenTrial]:
        return self.get_trials()


def contains(distribution: optuna.distributions.BaseDistribution, value: Any) -> bool:
    """Whether ``value`` is one ``distribution`` can propose (in its range, on its step, among its choices)."""
    try:
        return bool(distribution._contains(distribution.to_internal_repr(value)))
    except (ValueError, TypeError):  # a categorical's to_internal_repr refuses a value not among its choices
        return False
