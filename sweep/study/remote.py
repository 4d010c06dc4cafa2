"""Storages reached over the network besides the databases: Optuna's journal in Redis, and the client of
`sweep storage-proxy` (Optuna's gRPC storage proxy). Neither has a heartbeat of its own: both get the
trial-attribute heartbeat (optuna_internals.AttributeHeartbeat), so a worker lost on another machine has its
trial failed and retried as on PostgreSQL. An unreachable endpoint is one line within CONNECT_SECONDS.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import Any

import optuna
from optuna.storages import BaseStorage, JournalStorage

from sweep.errors import StorageError, first_line
from sweep.locations import StorageLocation
from sweep.study.optuna_internals import (
    BeatingJournalStorage,
    BeatingProxyStorage,
    JournalRedisBatched,
    quiet_experimental_warnings,
)
from sweep.study.patience import Patience, PatientStorage
from sweep.urls import URL

CONNECT_SECONDS = 5  # Redis and the storage proxy: how long an unreachable endpoint may take to say so
REDIS_READ_SECONDS = 30  # a Redis command that gets no answer for this long fails instead of hanging

StaleCallback = Callable[[optuna.Study, optuna.trial.FrozenTrial], None]  # called for each trial failed as stale


def open_redis_journal(location: StorageLocation, *, heartbeat: int, callback: StaleCallback) -> JournalStorage:
    """Optuna's journal kept in Redis: the same log as a journal file, shared by workers on any machine,
    with a heartbeat per running trial (a trial attribute: the journal has none of its own).

    The connection is checked first, with bounded timeouts written into the URL (the backend reconnects
    from it), so an unreachable server is one line, never a hang.
    """
    import redis

    url = redis_url(location)
    try:
        redis.Redis.from_url(url).ping()
    except redis.RedisError as error:
        raise StorageError(f"cannot reach Redis at {location}: {first_line(error).rstrip('.')}; "
                           f"is redis-server running there, and its address, password and db in the URL right?"
                           ) from None
    with quiet_experimental_warnings():
        backend = JournalRedisBatched(url, prefix=location.redis_prefix)
        backend.patience = Patience(str(location))  # a Redis restarted mid-sweep is waited for
        return BeatingJournalStorage(backend, heartbeat=heartbeat, callback=callback)


def redis_url(location: StorageLocation) -> str:
    """The URL redis-py connects with (password included): bounded timeouts added, unless the user's URL sets its
    own; StorageError for a storage that is not in Redis."""
    if location.redis is None:
        raise StorageError(f"storage {location} is not a redis:// URL")
    return with_query_defaults(location.redis, socket_connect_timeout=CONNECT_SECONDS,
                               socket_timeout=REDIS_READ_SECONDS).secret


def open_storage_proxy(location: StorageLocation, *, heartbeat: int, callback: StaleCallback) -> BaseStorage:
    """A client of `sweep storage-proxy` (Optuna's gRPC storage proxy); StorageError when nothing answers.

    The proxy forwards no heartbeat of the storage behind it, so its clients beat with a trial attribute.
    """
    host, port = location.grpc_address
    import grpc

    refused = proxy_unreachable(grpc, f"{host}:{port}")
    if refused is not None:
        raise StorageError(f"cannot reach the storage proxy at {location}: {refused}; start it there with "
                           f"`sweep storage-proxy --storage URL --port {port}`")
    with quiet_experimental_warnings():
        proxy = PatientProxyStorage(Patience(str(location)), host=host, port=port, heartbeat=heartbeat,
                                    callback=callback)
    try:
        proxy.get_study_id_from_name(f"sweep-probe-{uuid.uuid4().hex}")  # a proxy answers: no such study
    except KeyError:
        return proxy
    except grpc.RpcError as error:
        proxy.close()
        raise StorageError(f"{location} answers, but not as an Optuna storage proxy ({error.code().name}); check "
                           f"the host and port `sweep storage-proxy` printed") from None
    return proxy


class PatientProxyStorage(PatientStorage, BeatingProxyStorage):
    """A client of the storage proxy whose calls wait (a bounded time) for a proxy that went away (patience.py)."""

    def __init__(self, patience: Patience, **options: Any) -> None:
        self.patience = patience
        super().__init__(**options)


def proxy_unreachable(grpc: Any, target: str) -> str | None:
    """Why nothing answers at ``target`` (a refused connection shows at once), else None once connected."""
    settled = threading.Event()
    states: list[Any] = []

    def watch(state: Any) -> None:
        states.append(state)
        if state in (grpc.ChannelConnectivity.READY, grpc.ChannelConnectivity.TRANSIENT_FAILURE,
                     grpc.ChannelConnectivity.SHUTDOWN):
            settled.set()

    channel = grpc.insecure_channel(target)
    try:
        channel.subscribe(watch, try_to_connect=True)
        if not settled.wait(CONNECT_SECONDS):
            return f"no answer in {CONNECT_SECONDS} s"
        return None if states[-1] == grpc.ChannelConnectivity.READY else "connection refused or host unknown"
    finally:
        channel.unsubscribe(watch)
        channel.close()


def with_query_defaults(url: URL, **defaults: object) -> URL:
    """``url`` with each of ``defaults`` as a query parameter, unless the URL sets it already."""
    query = dict(url.params)
    for key, value in defaults.items():
        query.setdefault(key, str(value))
    return url.copy_with(params=query)
