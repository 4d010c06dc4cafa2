"""Storage URLs and tracking URIs carry passwords: everything shown or stored goes through redact_url."""

from __future__ import annotations

import re

_USERINFO = re.compile(r"^(?P<scheme>[a-zA-Z][a-zA-Z0-9+.\-]*://)(?P<user>[^:/@]*):(?P<password>[^@/]*)@")
_QUERY_SECRET = re.compile(r"(?i)([?&][a-z_]*(?:password|passwd|pwd|token|secret)=)[^&]*")
_DATABASE_SCHEMES = ("postgresql", "postgres", "mysql", "mariadb", "oracle", "mssql", "sqlite", "cockroachdb")


def redact_url(url: str) -> str:
    """postgresql://alice:s3cret@db/optuna -> postgresql://alice:***@db/optuna (also ?password=...)."""
    scheme = url.split("://", 1)[0].split("+", 1)[0].lower() if "://" in url else ""
    if scheme in _DATABASE_SCHEMES:
        # SQLAlchemy's own parser: a password may hold an unencoded '/', which a regex would cut short
        try:
            from sqlalchemy.engine import make_url

            parsed = make_url(url)
            if parsed.password is not None:
                url = parsed.render_as_string(hide_password=True)
        except Exception:  # not a URL SQLAlchemy reads: the patterns below still apply
            pass
    redacted = _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:***@", url)
    return _QUERY_SECRET.sub(r"\1***", redacted)


_URL_IN_TEXT = re.compile(r"[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s'\"]+")


def redact_text(text: str) -> str:
    """Every URL inside a longer text (a command line, an error message) goes through redact_url."""
    return _URL_IN_TEXT.sub(lambda match: redact_url(match.group(0)), text)
