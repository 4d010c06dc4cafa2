"""Trial starts decided by the storage proxy: the census, the decision and the ask in one call from a worker.

Through the trial gate, every worker holds the lock while it reads what the others changed since its last
look, decides and asks: a few round trips to the proxy each, one worker at a time, and every look carries
every trial that started or ended meanwhile, so the proxy's work per start grew with the number of workers.
The proxy holds the study itself: here it keeps one census of each sweep (census.Tally over its own storage,
one read of the changes per start whoever asks), decides as every loop does (stopping.may_start) and creates
the trial marked with the asking worker's name, under one lock of its own, in one call. The worker receives
the census and the trial as the proxy read it; it samples and trains as before.

The dead-worker look comes with the same call when the worker's is due: the proxy names the running trials
whose attribute heartbeat is older than the worker's grace period, and those whose worker runs on the asking
worker's host (only that host can tell whether the process is alive); the worker fails them as before.

A worker's tell goes with its next start: the storage writes of the tell (the trial's attributes, its state and
values) in the same call (FinishRequest), which the proxy writes in order before it decides the start. Optuna's
tell itself (its checks, the sampler's after_trial) runs in the worker as before; only its writes travel later, by
as long as the loop takes to ask for the next start (a worker killed meanwhile leaves the trial running, as one
killed just before its tell does: it is found dead and retried). A loop that asks for no further start writes them
on its own (SweepStudy.write_held_tell), as does a worker whose proxy is older than the call.

A sampler that must sample under the gate (QMC) and `repeats: reuse` (each worker notes the trials its own
looks saw finish) keep the gate (SweepStudy.starts_can_be_served).
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

import optuna
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, TrialState

from sweep.config import SweepConfig, config_from_yaml
from sweep.records import BestTrial, Counts
from sweep.study.attrs import TrialAttrs
from sweep.study.census import Census, Tally
from sweep.study.optuna_internals import (
    HeldWrites,
    create_trial,
    is_stale,
    quiet_experimental_warnings,
    study_id_of,
    take_waiting,
    trial_from_bytes,
    trial_id_of,
    trial_to_bytes,
    write_held,
)
from sweep.study.stopping import may_start

CONFIGS_KEPT = 64  # parsed configs the proxy keeps (one per sweep and config text its workers run with)
Hold = Callable[[str], AbstractContextManager[None]]  # holds a sweep's lease (proxy.Leases.held) for a block


@dataclass(frozen=True)
class StartRequest:
    """What a worker asks the proxy: a trial of ``study`` for ``worker``, decided with its config."""

    study: str
    worker: str
    config: str  # the worker's config as YAML (SweepConfig.to_yaml): its stop rules, target and ranking
    own_target: bool = False  # a `sweep worker --trials N`: its N, not the study's stored target
    grace: float | None = None  # look for dead workers' trials: a heartbeat silent this long is stale
    host: str | None = None  # ... and list the running trials of workers on this host


@dataclass(frozen=True)
class FinishRequest:
    """A worker's finished trial (what its tell writes) and its next start, in one call."""

    finish: HeldWrites
    start: StartRequest


@dataclass(frozen=True)
class StartReply:
    """The census after the look, the trial to run (None: none starts), and what the dead-worker look found."""

    census: Census
    trial: FrozenTrial | None = None  # as the proxy read it once started: the worker need not read it again
    stale: tuple[int, ...] = ()  # running trials whose heartbeat went silent past the grace period
    on_host: tuple[tuple[int, str], ...] = ()  # (trial id, worker) of running trials of the asking worker's host


class StartDesk:
    """One sweep's census and the lock its starts take, in the proxy."""

    def __init__(self, storage: BaseStorage, study_name: str, config: SweepConfig, hold: Hold) -> None:
        with quiet_experimental_warnings():
            study = optuna.load_study(study_name=study_name, storage=storage,
                                      sampler=optuna.samplers.RandomSampler())  # samples nothing here
        self.storage, self.study_id, self.config = storage, study_id_of(study), config
        self.lock = threading.Lock()
        self.hold, self.study_name = hold, study_name
        self.tally = Tally(study, config)  # reads every trial once; each start after, what changed

    def start(self, request: StartRequest) -> StartReply:
        # the sweep's lease too: a worker that counts under it (an older sweep's, a QMC sweep's) is kept out
        with self.lock, self.hold(self.study_name):
            census = self.tally.look()
            trial = None
            if may_start(census, self.config, own_target=request.own_target):
                trial_id = self._take(census, request.worker)
                trial = self.storage.get_trial(trial_id) if trial_id is not None else None
            stale: tuple[int, ...] = ()
            on_host: tuple[tuple[int, str], ...] = ()
            if request.grace is not None:
                now = time.time()
                running = self.tally.running
                stale = tuple(trial_id_of(other) for other in running if is_stale(other, request.grace, now))
                on_host = tuple((trial_id_of(other), worker) for other in running
                                if (worker := str(TrialAttrs.read(other).worker or "")).rpartition(":")[0]
                                == request.host)
            return StartReply(census, trial, stale, on_host)

    def _take(self, census: Census, worker: str) -> int | None:
        marked = TrialAttrs(worker=worker)
        if census.waiting:  # a retry first, as Optuna's ask takes one from the queue
            trial_id = take_waiting(self.storage, self.tally.waiting)
            if trial_id is not None:
                marked.write_to_storage(self.storage, trial_id)
                return trial_id
        return create_trial(self.storage, self.study_id, marked.items())


class StartService:
    """The proxy's side: a desk per sweep and config, made at the first start that names them."""

    def __init__(self, storage: BaseStorage, hold: Hold) -> None:
        self.storage, self._hold = storage, hold
        self._desks: dict[tuple[str, str], StartDesk] = {}
        self._lock = threading.Lock()

    def start(self, request: StartRequest) -> StartReply:
        key = (request.study, request.config)
        with self._lock:
            desk = self._desks.get(key)
            if desk is None:
                desk = self._desks[key] = StartDesk(self.storage, request.study, parsed_config(request.config),
                                                       self._hold)
        return desk.start(request)

    def finish_and_start(self, request: FinishRequest) -> StartReply:
        """The finished trial written (before the sweep's lock: the writes need no census), then the start decided
        from a census that counts it finished."""
        write_held(self.storage, request.finish)
        return self.start(request.start)


@lru_cache(maxsize=CONFIGS_KEPT)
def parsed_config(text: str) -> SweepConfig:
    return config_from_yaml(text, source="a worker's config")


# -- the messages as JSON (the gate's service speaks JSON: no generated code to keep in step with grpcio) -----


def encode_request(request: StartRequest) -> bytes:
    return json.dumps(asdict(request)).encode()


def decode_request(data: bytes) -> StartRequest:
    return StartRequest(**json.loads(data.decode()))


def encode_finish_request(request: FinishRequest) -> bytes:
    finish = request.finish
    return json.dumps({"start": asdict(request.start), "trial_id": finish.trial_id, "user_attrs": finish.user_attrs,
                       "system_attrs": finish.system_attrs, "values": finish.values,
                       "state": finish.state.name if finish.state is not None else None}).encode()


def decode_finish_request(data: bytes) -> FinishRequest:
    message = json.loads(data.decode())
    state = message["state"]
    finish = HeldWrites(message["trial_id"], message["user_attrs"], message["system_attrs"],
                        TrialState[state] if state is not None else None, message["values"])
    return FinishRequest(finish, StartRequest(**message["start"]))


def encode_reply(reply: StartReply) -> bytes:
    trial = base64.b64encode(trial_to_bytes(reply.trial)).decode() if reply.trial is not None else None
    return json.dumps({"census": asdict(reply.census), "trial": trial, "stale": reply.stale,
                       "on_host": reply.on_host}).encode()


def decode_reply(data: bytes) -> StartReply:
    message = json.loads(data.decode())
    census: dict[str, Any] = message["census"]
    best = census["best"]
    census.update(finished=Counts(**census["finished"]), best=BestTrial(**best) if best is not None else None,
                  running_since=tuple(census["running_since"]))
    trial = trial_from_bytes(base64.b64decode(message["trial"])) if message["trial"] is not None else None
    return StartReply(Census(**census), trial, tuple(message["stale"]),
                      tuple((trial_id, worker) for trial_id, worker in message["on_host"]))
