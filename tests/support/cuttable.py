"""A TCP forwarder in front of a real server (PostgreSQL, Redis, a `sweep storage-proxy`) that a test can cut and
restore: to the client, a cut is the server dying (every open connection reset, new ones refused) and a restore
is the server back on the same address. The server itself is shared by other tests and keeps running.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from collections.abc import Iterator


class CuttableLink:
    """Listens on 127.0.0.1:<port> and forwards every connection to ``target`` (host, port) until cut."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self._lock = threading.Lock()
        self._connections: list[socket.socket] = []
        self._listener: socket.socket | None = None
        self.port = self._listen(0)

    def _listen(self, port: int) -> int:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port))
        listener.listen(128)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return listener.getsockname()[1]

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:  # closed by cut()
                return
            try:
                server = socket.create_connection(self.target, timeout=10)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            with self._lock:
                if self._listener is not listener:  # cut while connecting
                    client.close()
                    server.close()
                    return
                self._connections += [client, server]
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=_pump, args=(source, sink), daemon=True).start()

    def cut(self) -> None:
        """The server dies: the listener closes (new connections are refused) and open ones are reset."""
        with self._lock:
            listener, self._listener = self._listener, None
            connections, self._connections = self._connections, []
        if listener is not None:
            with contextlib.suppress(OSError):  # wakes the thread blocked in accept(): close() alone would not
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                connection.shutdown(socket.SHUT_RDWR)
            connection.close()

    def restore(self) -> None:
        """The server is back, on the same port."""
        if self._listener is None:
            self._listen(self.port)

    def close(self) -> None:
        self.cut()


def _pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for end in (source, sink):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)


@contextlib.contextmanager
def cuttable(host: str, port: int) -> Iterator[CuttableLink]:
    link = CuttableLink((host, port))
    try:
        yield link
    finally:
        link.close()


class Outage:
    """One storage outage for an in-process sweep: ``cut()`` (called by a test's fit or listener) takes the server
    away; it comes back as soon as the sweep says it is waiting for it (patience.py's warning), unless ``lasting``.
    """

    WAITING = "is not answering"
    BACK = "answers again"

    def __init__(self, link: CuttableLink, *, lasting: bool = False) -> None:
        self.link, self.lasting = link, lasting
        self.messages: list[str] = []
        self.cuts = 0

    def cut(self) -> None:
        self.cuts += 1
        self.link.cut()

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        self.messages.append(message)
        if self.WAITING in message and not self.lasting:
            self.link.restore()

    @contextlib.contextmanager
    def watching(self) -> Iterator[Outage]:
        """While inside, the sweep's storage warnings reach this outage."""
        handler = _Relay(self)
        logger = logging.getLogger("sweep.study.patience")
        logger.addHandler(handler)
        try:
            yield self
        finally:
            logger.removeHandler(handler)


class _Relay(logging.Handler):
    def __init__(self, outage: Outage) -> None:
        super().__init__(logging.WARNING)
        self.outage = outage

    def emit(self, record: logging.LogRecord) -> None:
        self.outage.emit(record)


ACTIVE: list[Outage] = []  # the outage an in-process test's fit cuts (the fit is loaded from a file of its own)


def cut_now() -> None:
    """Called from a test's fit: the active outage begins."""
    ACTIVE[-1].cut()
