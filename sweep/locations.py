"""Where a sweep's records live: the Optuna storage and the MLflow tracking store, parsed and defaulted once.

Both values hide their password when shown (``str()``/``repr()``, as httpx's URL does); the real URL,
for the drivers only, is ``secret_url``. The defaults are decided here and nowhere else:

- storage: the given URL or journal file path, else the journal file ``./sweep.journal`` in the
  working folder (Optuna's journal file: safe for processes on one machine). Besides a journal file and
  the databases: ``redis://`` (a journal kept in Redis) and ``grpc://host:port`` (`sweep storage-proxy`);
- tracking: the given URI, else MLFLOW_TRACKING_URI, else MLflow's default ``sqlite:///mlflow.db``
  (MLflow itself decides the last two in the tracking process; ``url`` says what it will decide).

Each is parsed once (sweep.urls.URL): every property reads the parts, none parses the text again.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sweep.errors import SweepConfigError
from sweep.urls import URL

JOURNAL_FILE = "sweep.journal"  # the embedded store, in the working folder
DATABASE_SCHEMES = ("sqlite", "postgresql", "postgres", "mysql", "oracle", "mssql")  # what Optuna's RDBStorage opens
TRACKING_ENV = "MLFLOW_TRACKING_URI"
REDIS_SCHEMES = ("redis", "rediss")  # Optuna's journal in Redis (rediss: over TLS)
GRPC_SCHEME = "grpc"  # Optuna's gRPC storage proxy, served by `sweep storage-proxy`
GRPC_PORT = 13000  # Optuna's own default port for the proxy
REDIS_PREFIX_PARAM = "prefix"  # redis://...?prefix=KEY: the journal's key prefix (Optuna's default: none)
REMOTE_SCHEMES = ("http", "https")  # an MLflow tracking server
DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"  # MLflow's own default store, relative to the working folder
# what each store opens ("": a file path): anything else is a typo, refused before anything is written
STORAGE_SCHEMES = ("", *DATABASE_SCHEMES, *REDIS_SCHEMES, GRPC_SCHEME)
STORAGE_FORMS = "postgresql://..., sqlite:///..., redis://..., grpc://HOST:PORT or a journal file path"
TRACKING_SCHEMES = ("", "file", "sqlite", "postgresql", "mysql", "mssql", *REMOTE_SCHEMES, "databricks",
                    "databricks-uc", "uc")  # MLflow's own list
TRACKING_FORMS = "sqlite:///mlflow.db, http(s)://HOST:PORT, postgresql://..., mysql://... or a folder path"


def check_scheme(key: str, given: str, known: tuple[str, ...], forms: str) -> None:
    """``given`` (a storage or tracking URI) has a scheme its store opens; the message hides any password."""
    url = URL.parse(given)
    if url.kind not in known:
        raise SweepConfigError(f"{key}: unknown scheme {url.kind!r} in {url}; use {forms}")


@dataclass(frozen=True, repr=False)
class StorageLocation:
    """An Optuna storage: a journal file path, or a database URL (PostgreSQL for teams), Redis, a storage proxy.

    Parsed once (``url``), and what each kind of storage needs read from its parts then: the journal file, the
    local file, Redis's key prefix and the URL its driver takes, the storage proxy's address.
    """

    url: URL
    given: bool = True  # False: the default journal file (a resume hint then needs no --storage)
    journal_path: Path | None = field(init=False, compare=False)  # the journal file; None for a server's URL
    # the file the store lives in on this machine (journal or SQLite); None for a server (database, Redis, proxy)
    local_file: Path | None = field(init=False, compare=False)
    redis_prefix: str = field(init=False, compare=False)  # ``?prefix=`` of a Redis URL, else none (as Optuna's own)
    redis: URL | None = field(init=False, compare=False)  # a Redis URL without ``prefix`` (redis-py would refuse it)
    _grpc_address: tuple[str, int] | None = field(init=False, compare=False)  # None: not a well-formed grpc:// URL

    @classmethod
    def parse(cls, given: str | None) -> StorageLocation:
        """The storage ``given`` (a flag, SWEEP_STORAGE, the config), else ``./sweep.journal``."""
        if given:
            return cls(URL.parse(given))
        return cls(URL.parse(str(Path.cwd() / JOURNAL_FILE)), given=False)

    def __post_init__(self) -> None:
        url = self.url
        journal = Path(url.path.removeprefix("journal:")) if not url.kind else None
        sqlite_file = Path(url.path[1:]) if url.kind == "sqlite" and url.path[1:] else None  # none: in memory
        redis = prefix = None
        if url.kind in REDIS_SCHEMES:
            prefix = dict(url.params).get(REDIS_PREFIX_PARAM)
            redis = url.copy_with(params=[(key, value) for key, value in url.params if key != REDIS_PREFIX_PARAM])
        derived = {"journal_path": journal, "local_file": sqlite_file or journal, "redis_prefix": prefix or "",
                   "redis": redis, "_grpc_address": _grpc_address(url) if url.kind == GRPC_SCHEME else None}
        for name, value in derived.items():
            object.__setattr__(self, name, value)

    @property
    def scheme(self) -> str:
        """The URL's scheme without its driver; "" for a journal file path."""
        return self.url.kind

    @property
    def secret_url(self) -> str:
        """The real URL, password included: for the storage driver only."""
        return self.url.secret

    @property
    def is_journal(self) -> bool:
        return not self.scheme

    @property
    def is_database(self) -> bool:
        return self.scheme in DATABASE_SCHEMES

    @property
    def is_redis(self) -> bool:
        return self.scheme in REDIS_SCHEMES

    @property
    def is_grpc(self) -> bool:
        return self.scheme == GRPC_SCHEME

    @property
    def is_postgres(self) -> bool:
        return self.scheme in ("postgresql", "postgres")

    @property
    def is_sqlite(self) -> bool:
        return self.scheme == "sqlite"

    @property
    def redis_url(self) -> str:
        """The URL for redis-py, password included: the ``prefix`` parameter taken out; "" for another storage."""
        return self.redis.secret if self.redis is not None else ""

    @property
    def grpc_address(self) -> tuple[str, int]:
        """(host, port) of a ``grpc://host:port`` storage proxy; SweepConfigError when the URL is not one."""
        if self._grpc_address is None:
            raise SweepConfigError(f"storage {self}: a storage proxy is grpc://HOST:PORT (as `sweep storage-proxy` "
                                   f"prints it)")
        return self._grpc_address

    @property
    def flag(self) -> str:
        """`` --storage URL`` (redacted, shell-quoted: a ``?prefix=`` or ``***`` is a glob) for a command a
        user is told to run; "" for the default."""
        return f" --storage {shlex.quote(str(self))}" if self.given else ""

    def __str__(self) -> str:
        return str(self.url)

    def __repr__(self) -> str:
        return f"StorageLocation({str(self)!r})"


def _grpc_address(url: URL) -> tuple[str, int] | None:
    """(host, port) of ``grpc://HOST[:PORT]`` (Optuna's port by default), IPv6 in brackets; None when malformed."""
    port = url.port_number or GRPC_PORT  # port 0, like none, is the default one
    host = url.host.lower()
    malformed_port = bool(url.port) and url.port_number is None
    if malformed_port or host in ("", "[]") or url.path not in ("", "/") or url.query:
        return None
    return (f"[{host}]" if ":" in host and not host.startswith("[") else host), port


@dataclass(frozen=True)
class StoredTracking:
    """A tracking URI as a sweep stored it: redacted, so unusable when redaction removed a password."""

    shown: str  # redacted; maybe relative (sqlite:///mlflow.db is the working folder's)
    has_secret: bool  # the real URI held a password: the stored form cannot reach the store

    @property
    def usable(self) -> bool:
        return not self.has_secret


@dataclass(frozen=True, repr=False)
class TrackingLocation:
    """An MLflow tracking store: the URI given (or the sweep's own), else MLFLOW_TRACKING_URI, else MLflow's default.

    Parsed once (``url``: where the runs go, as decided now, password included); shown with its password hidden.
    """

    url: URL
    given: bool  # the URI was given (or is the sweep's own): MLflow is handed it, else MLflow decides the same

    @classmethod
    def resolve(cls, given: str | None = None, *, stored: StoredTracking | None = None,
                environ: Mapping[str, str] | None = None) -> TrackingLocation:
        """``given``, else the sweep's ``stored`` URI when it kept its password, else the environment's,
        else MLflow's default."""
        explicit = given or (stored.shown if stored is not None and stored.usable else None)
        environment = os.environ if environ is None else environ
        return cls(URL.parse(explicit or environment.get(TRACKING_ENV) or DEFAULT_TRACKING_URI), bool(explicit))

    @property
    def explicit(self) -> str | None:
        """The URI to hand MLflow, password included; None lets MLflow decide (MLFLOW_TRACKING_URI, then its
        default)."""
        return self.url.secret if self.given else None

    @property
    def secret_url(self) -> str:
        """Where the runs go, as decided now; password included."""
        return self.url.secret

    @property
    def scheme(self) -> str:
        return self.url.kind

    @property
    def is_remote(self) -> bool:
        """A tracking server (it has a UI of its own)."""
        return self.scheme in REMOTE_SCHEMES

    @property
    def has_secret(self) -> bool:
        """Whether the URI holds a password (or a token) that ``str()`` hides."""
        return self.url.has_secret

    def stored(self) -> StoredTracking:
        """What a sweep stores about where its runs are: never the password."""
        return StoredTracking(str(self), self.has_secret)

    def absolute_uri(self, base: Path | None = None) -> str:
        """The URI (password included) as seen from any working folder: a relative SQLite file or store path is
        made absolute (from ``base``, else the working folder), so a command running in its trial's folder
        reaches the same store."""
        folder, url = base or Path.cwd(), self.url
        if url.scheme == "sqlite" and url.username is None and not url.host and url.port is None \
                and url.path.startswith("/") and not url.path.startswith("//"):  # sqlite:///relative.db
            return url.copy_with(path="/" + str((folder / url.path[1:]).resolve())).secret
        if url.kind == "file" and not url.secret.startswith("file:///"):  # file://relative/folder
            return "file://" + str((folder / url.secret.removeprefix("file://")).resolve())
        if not url.kind and not url.path.startswith("file:"):  # a folder
            return str((folder / url.path).resolve())
        return url.secret

    def __str__(self) -> str:
        return str(self.url)

    def __repr__(self) -> str:
        return f"TrackingLocation({str(self)!r})"


def sweep_folder(name: str) -> Path:
    """Where a sweep's trials keep their files (``trial.workdir``): sweeps/<name>/ in the working folder."""
    return Path.cwd() / "sweeps" / name
