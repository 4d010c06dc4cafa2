"""Where a sweep's records live: the Optuna storage and the MLflow tracking store, parsed and defaulted once.

Both values hide their password when shown (``str()``/``repr()``, as httpx's URL does); the real URL,
for the drivers only, is ``secret_url``. The defaults are decided here and nowhere else:

- storage: the given URL or journal file path, else the journal file ``./sweep.journal`` in the
  working folder (Optuna's journal file: safe for processes on one machine). Besides a journal file and
  the databases: ``redis://`` (a journal kept in Redis) and ``grpc://host:port`` (`sweep storage-proxy`);
- tracking: the given URI, else MLFLOW_TRACKING_URI, else MLflow's default ``sqlite:///mlflow.db``
  (MLflow itself decides the last two in the tracking process; ``uri`` says what it will decide).
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from sweep.errors import SweepConfigError
from sweep.urls import redact_url

JOURNAL_FILE = "sweep.journal"  # the embedded store, in the working folder
DATABASE_SCHEMES = ("sqlite", "postgresql", "postgres", "mysql", "oracle", "mssql")  # what Optuna's RDBStorage opens
TRACKING_ENV = "MLFLOW_TRACKING_URI"
REDIS_SCHEMES = ("redis", "rediss")  # Optuna's journal in Redis (rediss: over TLS)
GRPC_SCHEME = "grpc"  # Optuna's gRPC storage proxy, served by `sweep storage-proxy`
GRPC_PORT = 13000  # Optuna's own default port for the proxy
REDIS_PREFIX_PARAM = "prefix"  # redis://...?prefix=KEY: the journal's key prefix (Optuna's default: none)
REMOTE_SCHEMES = ("http", "https")  # an MLflow tracking server
DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"  # MLflow's own default store, relative to the working folder


def url_scheme(url: str) -> str:
    """``postgresql+psycopg://...`` -> ``postgresql``; "" for a plain path (no ``://``)."""
    return url.split(":", 1)[0].split("+", 1)[0].lower() if "://" in url else ""


@dataclass(frozen=True, repr=False)
class StorageLocation:
    """An Optuna storage: a journal file path, or a database URL (PostgreSQL for teams)."""

    secret_url: str  # the real URL, password included: for the storage driver only
    given: bool = True  # False: the default journal file (a resume hint then needs no --storage)

    @classmethod
    def parse(cls, given: str | None) -> StorageLocation:
        """The storage ``given`` (a flag, SWEEP_STORAGE, the config), else ``./sweep.journal``."""
        if given:
            return cls(given)
        return cls(str(Path.cwd() / JOURNAL_FILE), given=False)

    @property
    def scheme(self) -> str:
        """The URL's scheme without its driver; "" for a journal file path."""
        return url_scheme(self.secret_url)

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
    def redis_url(self) -> str:
        """The URL for redis-py: the ``prefix`` parameter (which redis-py would refuse) taken out."""
        parts = urlsplit(self.secret_url)
        query = [(key, value) for key, value in parse_qsl(parts.query) if key != REDIS_PREFIX_PARAM]
        return urlunsplit(parts._replace(query=urlencode(query)))

    @property
    def redis_prefix(self) -> str:
        """The key prefix of the journal in Redis: ``?prefix=`` of the URL, else none (as Optuna's own)."""
        return dict(parse_qsl(urlsplit(self.secret_url).query)).get(REDIS_PREFIX_PARAM, "")

    @property
    def grpc_address(self) -> tuple[str, int]:
        """(host, port) of a ``grpc://host:port`` storage proxy; SweepConfigError when the URL is not one."""
        parts = urlsplit(self.secret_url)
        try:
            port = parts.port or GRPC_PORT
        except ValueError:
            port = 0
        if not parts.hostname or not 0 < port < 65536 or parts.path not in ("", "/") or parts.query:
            raise SweepConfigError(f"storage {self}: a storage proxy is grpc://HOST:PORT (as `sweep storage-proxy` "
                                   f"prints it)")
        return (f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname), port  # IPv6 in brackets

    @property
    def is_postgres(self) -> bool:
        return self.scheme in ("postgresql", "postgres")

    @property
    def is_sqlite(self) -> bool:
        return self.scheme == "sqlite"

    @property
    def journal_path(self) -> Path | None:
        """The journal file this location names; None for a database URL."""
        return Path(self.secret_url.removeprefix("journal:")) if self.is_journal else None

    @property
    def local_file(self) -> Path | None:
        """The file the store lives in on this machine (journal or SQLite); None for a server (database,
        Redis, storage proxy)."""
        if self.is_sqlite:
            return Path(self.secret_url.split("///", 1)[-1])
        return self.journal_path

    @property
    def flag(self) -> str:
        """`` --storage URL`` (redacted, shell-quoted: a ``?prefix=`` or ``***`` is a glob) for a command a
        user is told to run; "" for the default."""
        return f" --storage {shlex.quote(str(self))}" if self.given else ""

    def __str__(self) -> str:
        return redact_url(self.secret_url)

    def __repr__(self) -> str:
        return f"StorageLocation({str(self)!r})"


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
    """An MLflow tracking store: the URI given (or the sweep's own), else MLFLOW_TRACKING_URI, else MLflow's default."""

    explicit: str | None  # the URI to hand MLflow; None lets MLflow decide (MLFLOW_TRACKING_URI, then its default)
    secret_url: str  # where the runs go, as decided now; password included

    @classmethod
    def resolve(cls, given: str | None = None, *, stored: StoredTracking | None = None,
                environ: Mapping[str, str] | None = None) -> TrackingLocation:
        """``given``, else the sweep's ``stored`` URI when it kept its password, else the environment's,
        else MLflow's default."""
        explicit = given or (stored.shown if stored is not None and stored.usable else None)
        environment = os.environ if environ is None else environ
        return cls(explicit, explicit or environment.get(TRACKING_ENV) or DEFAULT_TRACKING_URI)

    @property
    def scheme(self) -> str:
        return url_scheme(self.secret_url)

    @property
    def is_remote(self) -> bool:
        """A tracking server (it has a UI of its own)."""
        return self.scheme in REMOTE_SCHEMES

    @property
    def has_secret(self) -> bool:
        """Whether the URI holds a password (or a token) that ``str()`` hides."""
        return redact_url(self.secret_url) != self.secret_url

    def stored(self) -> StoredTracking:
        """What a sweep stores about where its runs are: never the password."""
        return StoredTracking(str(self), self.has_secret)

    def __str__(self) -> str:
        return redact_url(self.secret_url)

    def __repr__(self) -> str:
        return f"TrackingLocation({str(self)!r})"


def sweep_folder(name: str) -> Path:
    """Where a sweep's trials keep their files (``trial.workdir``): sweeps/<name>/ in the working folder."""
    return Path.cwd() / "sweeps" / name


def absolute_tracking_uri(url: str, base: Path | None = None) -> str:
    """The tracking URI as seen from any working folder: a relative SQLite file or store path is made absolute
    (from ``base``, else the working folder), so a command running in its trial's folder reaches the same store."""
    folder = base or Path.cwd()
    scheme = url_scheme(url)
    if scheme == "sqlite" and url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        return "sqlite:///" + str((folder / url.removeprefix("sqlite:///")).resolve())
    if scheme == "file" and not url.startswith("file:///"):
        return "file://" + str((folder / url.removeprefix("file://")).resolve())
    if not scheme and not url.startswith("file:"):
        return str((folder / url).resolve())
    return url
