"""One tracking process for a machine's workers: the workers of `sweep run --jobs N` send their records to the
sweep's own tracking process instead of each starting one (and importing MLflow) of its own.

Asked once (the OpenHub request), the tracking server listens on a local socket. Each worker that connects gets a
session: a TrackingServer of its own on a thread, with its own requests, replies and open child runs, sharing the
process's MLflow import and store. A worker that dies without closing is noticed when its connection ends: its
session ends the runs it had open, as a tracking process does when its sweep dies. Requests and replies are the
same objects the tracking queues carry (sweep/tracking/protocol.py), pickled over the socket; the socket only
accepts a peer that proves it holds the hub's key, which travels to the workers in their environment.

This module imports no mlflow: the sessions' trackers come from the server's own factory.
"""

from __future__ import annotations

import contextlib
import os
import queue
import secrets
import socket
import threading
import time
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from multiprocessing.connection import Client, Connection, answer_challenge, deliver_challenge
from typing import TYPE_CHECKING, Any

from sweep.tracking.protocol import Reply, Request
from sweep.tracking.retry import RetryPolicy

if TYPE_CHECKING:
    from sweep.records import SweepIdentity, TrackingReport
    from sweep.tracking.tracker import SweepTracker

HUB_ENV = "SWEEP_TRACKING_HUB"  # the hub's socket name, for the workers a `sweep run --jobs` starts
HUB_KEY_ENV = "SWEEP_TRACKING_HUB_KEY"  # the key a worker proves it holds (hex): never in argv, where `ps` shows it
SESSION_POLL_SECONDS = 0.2  # how often an idle session checks that its worker's connection is still there
SESSIONS_END_SECONDS = 60.0  # a session ending its worker's runs at close: one MLflow call, retries included
ACCEPT_POLL_SECONDS = 0.5  # how soon the accepting thread notices that the hub is closing


@dataclass(frozen=True)
class HubAddress:
    """Where a hub listens (a Linux abstract socket: no file to leave behind) and the key its peers must hold."""

    name: str
    key: bytes

    @classmethod
    def new(cls) -> HubAddress:
        return cls(f"\0sweep-hub-{os.getpid()}-{secrets.token_hex(8)}", secrets.token_bytes(32))

    def environment(self) -> dict[str, str]:
        """What a worker's environment carries to reach the hub."""
        return {HUB_ENV: self.name.lstrip("\0"), HUB_KEY_ENV: self.key.hex()}

    @classmethod
    def taken_from(cls, environ: MutableMapping[str, str]) -> HubAddress | None:
        """The hub a worker was told to use, removed from ``environ`` so that the trainer's own processes do not
        inherit the key; None when there is none (or it is garbled: the worker then tracks on its own)."""
        name, key = environ.pop(HUB_ENV, None), environ.pop(HUB_KEY_ENV, None)
        if not name or not key:
            return None
        try:
            return cls("\0" + name, bytes.fromhex(key))
        except ValueError:
            return None


class ConnectionReplies:
    """A session's replies, sent back over its worker's connection (a worker gone meanwhile is not an error)."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def put(self, obj: Any, block: bool = True, timeout: float | None = None) -> None:
        try:
            self._connection.send(obj)
        except OSError:
            return None  # the worker died: its session notices at its next look and ends its runs


class Hub:
    """The listening socket and the worker sessions of one tracking process."""

    def __init__(self, address: HubAddress, open_tracker: Callable[[SweepIdentity], SweepTracker],
                 retry: RetryPolicy) -> None:
        self.address = address
        self._open_tracker = open_tracker
        self._retry = retry
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._socket.bind(address.name)
        self._socket.listen(socket.SOMAXCONN)
        self._socket.settimeout(ACCEPT_POLL_SECONDS)  # the accepting thread looks at _closing between waits
        self._closing = threading.Event()
        self._lock = threading.Lock()
        self._sessions: list[threading.Thread] = []
        self._ended: list[TrackingReport] = []  # what each ended session could not write
        self._idle_since: float | None = time.monotonic()  # None while a session is open
        self._accepting = threading.Thread(target=self._accept, name="sweep-hub", daemon=True)
        self._accepting.start()

    def _accept(self) -> None:
        while not self._closing.is_set():
            try:
                accepted, _ = self._socket.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # the socket was closed
            accepted.setblocking(True)
            connection = Connection(accepted.detach())
            try:  # the peer proves it holds the key, and checks that this end does
                deliver_challenge(connection, self.address.key)
                answer_challenge(connection, self.address.key)
            except Exception:  # a peer without the key, or one that hung up mid-handshake: refused, go on
                connection.close()
                continue
            session = threading.Thread(target=self._serve, args=(connection,), name="sweep-hub-session", daemon=True)
            with self._lock:
                self._sessions.append(session)
                self._idle_since = None
            session.start()

    def _serve(self, connection: Connection) -> None:
        """One worker's session: its requests in order, until it closes, quits, or its connection ends."""
        from sweep.tracking.server import TrackingServer

        requests: queue.Queue[Request[Any]] = queue.Queue()
        gone = threading.Event()
        threading.Thread(target=read_until_end, args=(connection, requests, gone), name="sweep-hub-reader",
                         daemon=True).start()
        server = TrackingServer(self._open_tracker, ConnectionReplies(connection), retry=self._retry,
                                poll_seconds=SESSION_POLL_SECONDS)
        try:
            server.loop(requests, lambda: not gone.is_set())
        finally:
            hang_up(connection)  # the worker sees the end at once (its reader, and ours, are blocked reading it)
            connection.close()
            with self._lock:
                self._sessions.remove(threading.current_thread())
                self._ended.append(server.report)
                if not self._sessions:
                    self._idle_since = time.monotonic()

    def session_reports(self) -> list[TrackingReport]:
        """What the ended sessions could not write (their trials' records): the sweep's own report says it too."""
        with self._lock:
            return list(self._ended)

    def idle_seconds(self) -> float:
        """How long no worker has had a session open (0 while one has)."""
        with self._lock:
            return 0.0 if self._idle_since is None else time.monotonic() - self._idle_since

    def close(self, timeout: float | None = SESSIONS_END_SECONDS) -> None:
        """Accept no more workers; wait for the sessions still open to end (``timeout`` each; None: however long
        their workers run). A `--jobs` sweep's workers end before it closes its own session, or die with it."""
        self._closing.set()
        self._accepting.join()
        self._socket.close()
        if not self.address.name.startswith("\0"):
            with contextlib.suppress(OSError):
                os.unlink(self.address.name)
        with self._lock:
            sessions = list(self._sessions)
        for session in sessions:
            session.join(timeout=timeout)


class HubTransport:
    """A worker's tracking transport: its requests to the hub of the sweep's tracking process, over one
    connection; replies come back on a reader thread."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._replies: queue.Queue[Reply] = queue.Queue()
        self._gone = threading.Event()
        self._reader = threading.Thread(target=read_until_end, args=(connection, self._replies, self._gone),
                                        name="sweep-hub-replies", daemon=True)

    @classmethod
    def connect(cls, address: HubAddress) -> HubTransport:
        """Reach the hub; raises OSError (or multiprocessing's AuthenticationError) when it cannot be reached."""
        return cls(Client(address.name, family="AF_UNIX", authkey=address.key))

    def start(self) -> None:
        self._reader.start()

    def put(self, request: Request[Any]) -> None:
        try:
            self._connection.send(request)
        except OSError:
            self._gone.set()  # the tracking process is gone: the Recorder says so at its next wait

    def get(self, timeout: float) -> Reply:
        return self._replies.get(timeout=timeout)

    def alive(self) -> bool:
        return not self._gone.is_set()

    def join(self, timeout: float) -> None:
        self._reader.join(timeout=timeout)

    def kill(self) -> None:
        hang_up(self._connection)
        self._reader.join(timeout=5)
        self._connection.close()

    def closed(self) -> None:
        self._reader.join(timeout=5)  # the session closes its end once it has answered Close
        self._connection.close()


def read_until_end(connection: Connection, into: queue.Queue[Any], gone: threading.Event) -> None:
    """What ``connection`` brings, into ``into``, until the other end has gone (then ``gone`` is set): both ends of a
    hub connection read this way, a session its worker's requests and a worker its session's replies."""
    while True:
        try:
            into.put(connection.recv())
        except (EOFError, OSError):
            gone.set()
            return


def hang_up(connection: Connection) -> None:
    """End the socket under ``connection`` for both sides: a thread blocked reading it gets EOF at once (closing
    the descriptor alone does not wake it)."""
    # already closed, or the peer is gone: nothing left to wake
    with contextlib.suppress(OSError), socket.socket(fileno=os.dup(connection.fileno())) as duplicate:
        duplicate.shutdown(socket.SHUT_RDWR)
