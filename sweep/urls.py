"""Storage URLs and tracking URIs carry passwords: everything shown or stored goes through redact_url."""

from __future__ import annotations

import re

_USERINFO = re.compile(r"^(?P<scheme>[a-zA-Z][a-zA-Z0-9+.\-]*://)(?P<user>[^:/@]*):(?P<password>[^@/]*)@")
_QUERY_SECRET = re.compile(r"(?i)([?&](?:password|passwd|pwd|token|secret)=)[^&]*")


def redact_url(url: str) -> str:
    """postgresql://alice:s3cret@db/optuna -> postgresql://alice:***@db/optuna (also ?password=...)."""
    redacted = _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:***@", url)
    return _QUERY_SECRET.sub(r"\1***", redacted)
