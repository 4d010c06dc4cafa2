"""URLs parsed once (``URL``), and passwords hidden in everything shown or stored (redact_url, redact_text)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode

_SCHEME = r"[a-zA-Z][a-zA-Z0-9+.\-]*://"
# the password runs to the LAST '@': a password with an unencoded '@', '/', space or quote is still hidden whole
_USERINFO = re.compile(rf"^(?P<scheme>{_SCHEME})(?P<user>[^:/@\s]*):(?P<password>.*)@(?P<rest>[^@]*)\Z", re.DOTALL)
_QUERY_SECRET = re.compile(r"(?i)([?&][a-z_]*(?:password|passwd|pwd|token|secret)=)[^&\s'\"]*")
_URL_START = re.compile(_SCHEME)
_URL_END = re.compile(r"[\s'\"]")
_NEXT_URL = re.compile(rf"(?<=[\s'\"=(,<\[])(?:{_SCHEME})")  # a URL that starts a word, not one inside a password
_AFTER_USER = re.compile(r"(?P<user>[^:/@\s]*):(?P<password>.*)@(?P<rest>[^@]*)\Z", re.DOTALL)  # _USERINFO's rule
_AUTHORITY_END = re.compile(r"[/?#]")
MASK = "***"
MAX_PORT = 65535

Params = Iterable[tuple[str, str]] | Mapping[str, Any]


@dataclass(frozen=True, repr=False)
class URL:
    """A URL (or a plain path) parsed once into its parts, as httpx's URL is: immutable, changed with
    ``copy_with``, its password masked in ``str()`` and ``repr()``; ``secret`` is the full text, for drivers.

    Every part is kept as written (nothing decoded or normalised), so ``secret`` gives back exactly the
    text parsed, and a part is read without parsing anything again. A text without ``://`` is a path: its
    ``scheme`` is "" and ``path`` holds it whole. The password runs from ``user:`` to the last '@' (as
    redact_url reads it): a password with an unencoded '@' or '/' is still one part, hidden whole.
    """

    scheme: str = ""  # as written, driver included ("postgresql+psycopg"); "" for a plain path
    username: str | None = None  # None: no user part ("" for ``://:pw@host``)
    password: str | None = None  # as written (percent-encoded or not); None: none given
    host: str = ""  # as written; an IPv6 address keeps its brackets
    port: str | None = None  # as written; None: no ':' after the host
    path: str = ""
    query: str | None = None  # without its '?'; None: no '?'
    fragment: str | None = None  # without its '#'; None: no '#'
    # derived once, when the URL is made
    kind: str = field(init=False, compare=False)  # the scheme without its driver, lower case: "postgresql"
    port_number: int | None = field(init=False, compare=False)  # None: no port, or not a number of a port
    params: tuple[tuple[str, str], ...] = field(init=False, compare=False)  # the query's (key, value) pairs
    secret: str = field(init=False, compare=False)  # the whole URL, password included: for drivers only
    shown: str = field(init=False, compare=False)  # the whole URL with its password and secret query values masked

    @classmethod
    def parse(cls, text: str) -> URL:
        """Split ``text`` once; any text is accepted (a malformed part is the reader's to refuse)."""
        scheme, separator, rest = text.partition("://")
        if not (separator and scheme):
            return cls(path=text)
        username = password = None
        credentials = _AFTER_USER.match(rest) if re.fullmatch(_SCHEME, scheme + "://") else None
        if credentials is not None:
            username, password, rest = credentials["user"], credentials["password"], credentials["rest"]
        end = _AUTHORITY_END.search(rest)
        authority, rest = (rest[:end.start()], rest[end.start():]) if end else (rest, "")
        if credentials is None and "@" in authority:
            userinfo, _, authority = authority.rpartition("@")
            username, colon, secret = userinfo.partition(":")
            password = secret if colon else None
        host, port = _host_and_port(authority)
        rest, hash_mark, fragment = rest.partition("#")
        path, question_mark, query = rest.partition("?")
        return cls(scheme, username, password, host, port, path, query if question_mark else None,
                   fragment if hash_mark else None)

    def __post_init__(self) -> None:
        derived = {
            "kind": self.scheme.split(":", 1)[0].split("+", 1)[0].lower(),
            "port_number": _port_number(self.port),
            "params": tuple(parse_qsl(self.query or "")),
            "secret": self._text(self.password),
            "shown": _QUERY_SECRET.sub(r"\1" + MASK, self._text(None if self.password is None else MASK)),
        }
        for name, value in derived.items():
            object.__setattr__(self, name, value)

    def _text(self, password: str | None) -> str:
        if not self.scheme:
            return self.path
        userinfo = ""
        if self.username is not None:
            userinfo = self.username + (f":{password}" if password is not None else "") + "@"
        port = f":{self.port}" if self.port is not None else ""
        query = f"?{self.query}" if self.query is not None else ""
        fragment = f"#{self.fragment}" if self.fragment is not None else ""
        return f"{self.scheme}://{userinfo}{self.host}{port}{self.path}{query}{fragment}"

    @property
    def has_secret(self) -> bool:
        """Whether ``str()`` hides anything: a password, or a secret query value (``?token=``)."""
        return self.shown != self.secret

    def copy_with(self, *, params: Params | None = None, **changes: Any) -> URL:
        """This URL with some parts replaced; ``params`` (pairs or a mapping) replaces the whole query, encoded
        (none left: no '?')."""
        if params is not None:
            pairs = list(params.items() if isinstance(params, Mapping) else params)
            changes["query"] = urlencode(pairs) if pairs else None
        return replace(self, **changes)

    def __str__(self) -> str:
        return self.shown

    def __repr__(self) -> str:
        return f"URL({self.shown!r})"


def _host_and_port(authority: str) -> tuple[str, str | None]:
    """``[::1]:5`` -> ("[::1]", "5"); ``db`` -> ("db", None); the port as written, checked by its reader."""
    if authority.startswith("["):
        close = authority.find("]")
        if close >= 0 and (close + 1 == len(authority) or authority[close + 1] == ":"):
            after = authority[close + 1:]
            return authority[:close + 1], (after[1:] if after else None)
        return authority, None
    host, colon, port = authority.rpartition(":")
    return (host, port) if colon else (authority, None)


def _port_number(port: str | None) -> int | None:
    if port is None or not (port.isascii() and port.isdigit()):
        return None
    number = int(port)
    return number if number <= MAX_PORT else None


def redact_url(url: str) -> str:
    """postgresql://alice:s3cret@db/optuna -> postgresql://alice:***@db/optuna (also ?password=...).

    Redaction never depends on the URL being well-formed: everything between ``user:`` and the last
    '@' is the password, so an unencoded '@' or '/' in it cannot leave a part of it shown.
    """
    match = _USERINFO.match(url)
    if match is not None:
        url = f"{match['scheme']}{match['user']}:***@{match['rest']}"
    return _QUERY_SECRET.sub(r"\1***", url)


def misread_password(url: URL) -> bool:
    """True when a database driver would take a part of the password for the host (an unencoded '@').

    Connecting anyway would only fail with the rest of the password in the driver's message.
    """
    if url.password is None:
        return False
    from sqlalchemy.engine import make_url  # only database URLs reach here; sqlalchemy comes with optuna

    try:
        parsed = make_url(url.secret).password
    except Exception:  # not a URL SQLAlchemy reads: the caller's own error path reports it
        return False
    return parsed is None or str(parsed) != unquote(url.password)


def redact_text(text: str) -> str:
    """Every URL inside a longer text (a command line, an error message) with its password hidden.

    A URL with ``user:`` runs to the last '@' before the next URL (a password may hold spaces and
    quotes), then to the next space or quote; any other URL ends at the next space or quote.
    """
    out: list[str] = []
    position = 0
    while (start := _URL_START.search(text, position)) is not None:
        out.append(text[position:start.start()])
        end = _url_end(text, start.start(), start.end())
        out.append(redact_url(text[start.start():end]))
        position = end
    out.append(text[position:])
    return "".join(out)


def _url_end(text: str, start: int, after_scheme: int) -> int:
    user = re.compile(r"[^:/@\s]*:").match(text, after_scheme)
    first_at = text.find("@", user.end()) if user is not None else -1
    if first_at < 0:  # no credentials: the URL ends at a space or quote
        found = _URL_END.search(text, after_scheme)
        return found.start() if found else len(text)
    following = _NEXT_URL.search(text, first_at)  # the next URL bounds where this one's password can end
    bound = following.start() if following else len(text)
    last_at = text.rfind("@", first_at, bound)
    found = _URL_END.search(text, last_at, bound)
    return found.start() if found else bound


SECRET_NAME = re.compile(r"(?i)(PASSWORD|PASSWD|TOKEN|SECRET|ACCESS_KEY|CONNECTION_STRING)")  # AWS_SECRET_ACCESS_KEY
MIN_SECRET = 4  # shorter values ("1", "true") would hide ordinary words, not secrets


def secrets_in(environment: Mapping[str, str]) -> tuple[str, ...]:
    """The secrets a process given ``environment`` knows: the values of variables named like one
    (MLFLOW_TRACKING_PASSWORD, AWS_SECRET_ACCESS_KEY, ...) and the passwords of the URLs in any value, as
    written and decoded; longest first, so that hiding one never leaves part of a longer one."""
    found: set[str] = set()
    for name, value in environment.items():
        if SECRET_NAME.search(name):
            found.add(value)
        url = URL.parse(value) if "://" in value else None
        if url is not None and url.password:
            found.update((url.password, unquote(url.password)))
    return tuple(sorted((secret for secret in found if len(secret) >= MIN_SECRET), key=lambda s: (-len(s), s)))


def hide_secrets(text: str, secrets: Iterable[str]) -> str:
    """``text`` with URL passwords and each of ``secrets`` masked: for output captured from a user's program."""
    text = redact_text(text)
    for secret in secrets:
        text = text.replace(secret, MASK)
    return text
