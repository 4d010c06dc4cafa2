"""`sweep storage-proxy`: Optuna's gRPC storage proxy in front of any storage, and the trial gate it serves.

Hundreds of workers reach one study through the proxy (``--storage grpc://HOST:PORT``) instead of each
holding connections to the database. Workers count the trials and ask for one under a lock so that
exactly the target starts (sharing.TrialGate); the proxy process is the one place every such worker
reaches, so it serves that lock too, as a second gRPC service on the same port: a lease per sweep,
given to one worker at a time. A lease runs out on its own (LEASE_SECONDS) so a worker killed while
holding it delays the others, never blocks them for good. The same service decides trial starts for
its workers in one call each (served.py), taking the sweep's lease itself while it does, and takes a worker's
finished trial with its next start (FinishAndStart): the tell's writes and the start in one call; and the params
of a trial's search space in one call (SetTrialParameters, optuna_internals.params_together).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from optuna.exceptions import UpdateFinishedTrialError

from sweep.errors import StorageError
from sweep.locations import StorageLocation
from sweep.study.optuna_internals import (
    PARAMS_CALL,
    decode_params,
    proxy_server,
    quiet_experimental_warnings,
    write_params,
)
from sweep.study.served import (
    FinishRequest,
    StartReply,
    StartRequest,
    StartService,
    decode_finish_request,
    decode_reply,
    decode_request,
    encode_finish_request,
    encode_reply,
    encode_request,
)

if TYPE_CHECKING:
    from optuna.storages import BaseStorage

SERVICE = "sweep.TrialGate"  # beside Optuna's optuna.StorageService on the proxy's port
assert PARAMS_CALL.startswith(f"/{SERVICE}/")  # the storage client (optuna_internals) calls it by its full name
LEASE_SECONDS = 30.0  # a gate holder's lease: the count and one ask take far less; a dead holder's runs out
WAIT_SECONDS = 1.0  # one Acquire call waits at most this long (a server thread is busy meanwhile), then asks again
# the proxy's server threads: a worker waiting at the gate holds one for up to WAIT_SECONDS, and the holder's
# storage calls must still find one free, so there are several per worker (idle threads cost memory only)
PROXY_THREADS = 512
STOP_GRACE_SECONDS = 5.0  # calls in flight when the proxy is stopped get this long to finish


class Leases:
    """One lease per key, held by one owner at a time; the server side of the gate."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._held: dict[str, tuple[str, float]] = {}  # key -> (owner, monotonic time the lease runs out)

    def acquire(self, key: str, owner: str, *, lease: float = LEASE_SECONDS, wait: float = WAIT_SECONDS) -> bool:
        """Whether ``owner`` holds ``key`` now (for ``lease`` seconds); False after ``wait`` seconds without it."""
        deadline = time.monotonic() + wait
        with self._changed:
            while True:
                now = time.monotonic()
                holder = self._held.get(key)
                if holder is None or holder[0] == owner or holder[1] <= now:
                    self._held[key] = (owner, now + lease)
                    return True
                if now >= deadline:
                    return False
                self._changed.wait(min(deadline, holder[1]) - now)

    @contextmanager
    def held(self, key: str) -> Iterator[None]:
        """``key``'s lease for the caller's block, waited for as long as another owner holds it (the proxy's own
        starts, served.py)."""
        owner = f"proxy:{uuid.uuid4().hex}"
        while not self.acquire(key, owner):
            continue
        try:
            yield
        finally:
            self.release(key, owner)

    def release(self, key: str, owner: str) -> bool:
        """Give the lease back; False when ``owner`` no longer held it (it ran out, and another took it)."""
        with self._changed:
            holder = self._held.get(key)
            if holder is None or holder[0] != owner:
                return False
            del self._held[key]
            self._changed.notify_all()
            return True


def _encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message).encode()


def _decode(data: bytes) -> dict[str, Any]:
    return json.loads(data.decode())


def gate_handler(leases: Leases, starts: StartService) -> Any:
    """The gate as a gRPC service (JSON messages: no generated code to keep in step with grpcio), and the starts
    the proxy decides for its workers (served.py)."""
    import grpc

    def acquire(request: dict[str, Any], _context: Any) -> dict[str, Any]:
        return {"granted": leases.acquire(request["key"], request["owner"], lease=float(request["lease"]),
                                          wait=min(float(request["wait"]), WAIT_SECONDS))}

    def release(request: dict[str, Any], _context: Any) -> dict[str, Any]:
        return {"released": leases.release(request["key"], request["owner"])}

    def set_params(data: bytes, context: Any) -> bytes:
        trial_id, params = decode_params(data)
        try:
            write_params(starts.storage, trial_id, params)
        except KeyError as error:  # each refusal answered as Optuna's proxy answers SetTrialParameter
            context.abort(grpc.StatusCode.NOT_FOUND, str(error))
        except UpdateFinishedTrialError as error:
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(error))
        except ValueError as error:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(error))
        return b""

    def finish_and_start(request: FinishRequest, context: Any) -> StartReply:
        try:
            return starts.finish_and_start(request)
        except UpdateFinishedTrialError as error:  # as Optuna's proxy answers a write to a finished trial
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(error))
            raise  # abort raises; this line is never reached

    methods = {name: grpc.unary_unary_rpc_method_handler(function, request_deserializer=_decode,
                                                         response_serializer=_encode)
               for name, function in (("Acquire", acquire), ("Release", release))}
    methods["Start"] = grpc.unary_unary_rpc_method_handler(lambda request, _context: starts.start(request),
                                                           request_deserializer=decode_request,
                                                           response_serializer=encode_reply)
    methods["FinishAndStart"] = grpc.unary_unary_rpc_method_handler(finish_and_start,
                                                                    request_deserializer=decode_finish_request,
                                                                    response_serializer=encode_reply)
    methods[PARAMS_CALL.rpartition("/")[2]] = grpc.unary_unary_rpc_method_handler(set_params)  # bytes in and out
    return grpc.method_handlers_generic_handler(SERVICE, methods)


class ProxyGate:
    """The client side of the gate: a worker's lease on its sweep, through the storage proxy."""

    def __init__(self, location: StorageLocation, key: str, owner: str) -> None:
        import grpc

        host, port = location.grpc_address
        self._location = location
        self._channel = grpc.insecure_channel(f"{host}:{port}")
        self._acquire = self._channel.unary_unary(f"/{SERVICE}/Acquire", request_serializer=_encode,
                                                  response_deserializer=_decode)
        self._release = self._channel.unary_unary(f"/{SERVICE}/Release", request_serializer=_encode,
                                                  response_deserializer=_decode)
        self._start = self._channel.unary_unary(f"/{SERVICE}/Start", request_serializer=encode_request,
                                                response_deserializer=decode_reply)
        self._finish_and_start = self._channel.unary_unary(f"/{SERVICE}/FinishAndStart",
                                                           request_serializer=encode_finish_request,
                                                           response_deserializer=decode_reply)
        self._key, self._owner = key, f"{owner}:{uuid.uuid4().hex[:8]}"
        self.serves_starts = True  # until the proxy says it does not (an older `sweep storage-proxy`)
        self.serves_finish = True  # ... and the same for FinishAndStart

    def acquire(self, while_waiting: Callable[[], None] | None = None) -> None:
        """Hold the lease; when another worker holds it, ``while_waiting`` is called once before waiting for it."""
        import grpc

        request = {"key": self._key, "owner": self._owner, "lease": LEASE_SECONDS, "wait": WAIT_SECONDS}
        try:
            if while_waiting is not None:
                if self._acquire({**request, "wait": 0.0}, timeout=WAIT_SECONDS + LEASE_SECONDS)["granted"]:
                    return
                while_waiting()
            while not self._acquire(request, timeout=WAIT_SECONDS + LEASE_SECONDS)["granted"]:
                continue
        except grpc.RpcError as error:
            if error.code() == grpc.StatusCode.UNIMPLEMENTED:
                raise StorageError(f"the storage proxy at {self._location} serves no trial gate (started with "
                                   f"Optuna's own run_grpc_proxy_server?): serve the storage with "
                                   f"`sweep storage-proxy`, so parallel workers start exactly the target") from None
            raise StorageError(f"the storage proxy at {self._location} stopped answering: {error.code().name}; "
                               f"restart it, then `sweep run --resume`") from None

    def start(self, request: StartRequest) -> StartReply | None:
        """A trial started by the proxy for this worker (served.py); None when the proxy decides no starts (the
        caller then takes the gate)."""
        import grpc

        try:
            return self._start(request, timeout=LEASE_SECONDS)
        except grpc.RpcError as error:
            if error.code() == grpc.StatusCode.UNIMPLEMENTED:
                self.serves_starts = False
                return None
            raise self._failure(error) from None

    def finish_and_start(self, request: FinishRequest) -> StartReply | None:
        """A finished trial written and the next start decided by the proxy (served.py); None when the proxy has no
        such call (an older `sweep storage-proxy`: the caller writes the finish itself, then asks with start).
        UpdateFinishedTrialError when the trial had ended already (failed as stale by another worker)."""
        import grpc

        try:
            return self._finish_and_start(request, timeout=LEASE_SECONDS)
        except grpc.RpcError as error:
            if error.code() == grpc.StatusCode.UNIMPLEMENTED:
                self.serves_finish = False
                return None
            if error.code() == grpc.StatusCode.FAILED_PRECONDITION:
                raise UpdateFinishedTrialError(error.details()) from None
            raise self._failure(error) from None

    def _failure(self, error: Any) -> StorageError:
        import grpc

        if error.code() == grpc.StatusCode.UNKNOWN:  # the proxy's own failure: its details say what
            return StorageError(f"the storage proxy at {self._location} could not start a trial: {error.details()}")
        return StorageError(f"the storage proxy at {self._location} stopped answering: {error.code().name}; "
                            f"restart it, then `sweep run --resume`")

    def release(self) -> None:
        self._release({"key": self._key, "owner": self._owner}, timeout=WAIT_SECONDS + LEASE_SECONDS)

    def close(self) -> None:
        self._channel.close()


def serve_storage(location: StorageLocation, *, host: str, port: int, on_ready: Callable[[str], None],
                  threads: int = PROXY_THREADS) -> None:
    """Serve the storage at ``location`` on host:port until Ctrl-C or SIGTERM (KeyboardInterrupt), then stop.

    ``on_ready`` gets the URL workers give as --storage, once the port is bound.
    """
    from optuna.storages import get_storage

    from sweep.study.storage import open_storage

    if location.is_grpc:
        raise StorageError(f"storage {location} is a storage proxy already: give the storage it serves "
                           f"(postgresql://..., redis://..., a journal file)")
    check_bindable(host, port)  # before grpcio tries: its own failure is a log line on stderr and a vague error
    storage = get_storage(open_storage(location))  # an RDB storage gets Optuna's in-process cache, as Optuna advises
    try:
        server = storage_server(storage, host, port, threads)
    except RuntimeError:  # taken between the check and now
        raise StorageError(f"cannot listen on {host}:{port}: choose another port with --port") from None
    server.start()
    try:
        on_ready(f"grpc://{_reachable_host(host)}:{port}")
        server.wait_for_termination()
    finally:
        server.stop(STOP_GRACE_SECONDS).wait()


def storage_server(storage: BaseStorage, host: str, port: int, threads: int) -> Any:
    """Optuna's proxy server for ``storage`` on host:port, with the trial gate and the served starts beside it; not
    started yet. RuntimeError when the port cannot be bound."""
    with quiet_experimental_warnings():
        server = proxy_server(storage, host, port, threads)
    leases = Leases()
    server.add_generic_rpc_handlers((gate_handler(leases, StartService(storage, leases.held)),))
    return server


def check_bindable(host: str, port: int) -> None:
    """StorageError (one line) when this process cannot listen on host:port."""
    import socket

    try:
        addresses = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, kind, protocol, _, address = addresses[0]
        with socket.socket(family, kind, protocol) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as grpcio binds: TIME_WAIT is no obstacle
            probe.bind(address)
    except OSError as error:
        raise StorageError(f"cannot listen on {host}:{port}: {error.strerror or error}; choose another --port, or a "
                           f"--host of this machine") from None


def _reachable_host(host: str) -> str:
    """How workers name this host: an any-address means this machine's name."""
    import socket

    if host in ("0.0.0.0", "::", "[::]", ""):
        return socket.getfqdn()
    return f"[{host}]" if ":" in host and not host.startswith("[") else host
