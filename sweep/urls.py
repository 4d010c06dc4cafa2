"""Storage URLs and tracking URIs carry passwords: everything shown or stored goes through redact_url."""

from __future__ import annotations

import re
from urllib.parse import unquote

_SCHEME = r"[a-zA-Z][a-zA-Z0-9+.\-]*://"
# the password runs to the LAST '@': a password with an unencoded '@', '/', space or quote is still hidden whole
_USERINFO = re.compile(rf"^(?P<scheme>{_SCHEME})(?P<user>[^:/@\s]*):(?P<password>.*)@(?P<rest>[^@]*)\Z", re.DOTALL)
_QUERY_SECRET = re.compile(r"(?i)([?&][a-z_]*(?:password|passwd|pwd|token|secret)=)[^&\s'\"]*")
_URL_START = re.compile(_SCHEME)
_URL_END = re.compile(r"[\s'\"]")
_NEXT_URL = re.compile(rf"(?<=[\s'\"=(,<\[])(?:{_SCHEME})")  # a URL that starts a word, not one inside a password


def redact_url(url: str) -> str:
    """postgresql://alice:s3cret@db/optuna -> postgresql://alice:***@db/optuna (also ?password=...).

    Redaction never depends on the URL being well-formed: everything between ``user:`` and the last
    '@' is the password, so an unencoded '@' or '/' in it cannot leave a part of it shown.
    """
    match = _USERINFO.match(url)
    if match is not None:
        url = f"{match['scheme']}{match['user']}:***@{match['rest']}"
    return _QUERY_SECRET.sub(r"\1***", url)


def password_of(url: str) -> str | None:
    """The password a URL holds (everything between ``user:`` and the last '@'), None without one."""
    match = _USERINFO.match(url)
    return match["password"] if match is not None else None


def misread_password(url: str) -> bool:
    """True when a database driver would take a part of the password for the host (an unencoded '@').

    Connecting anyway would only fail with the rest of the password in the driver's message.
    """
    password = password_of(url)
    if password is None:
        return False
    from sqlalchemy.engine import make_url  # only database URLs reach here; sqlalchemy comes with optuna

    try:
        parsed = make_url(url).password
    except Exception:  # not a URL SQLAlchemy reads: the caller's own error path reports it
        return False
    return parsed is None or str(parsed) != unquote(password)


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
