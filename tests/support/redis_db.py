"""Redis for tests: a journal under a key prefix of its own per test, its keys deleted after.

Where no Redis answers, tests skip with the reason; CI sets SWEEP_REQUIRE_REDIS=1, so there a missing
server fails the tests instead of hiding them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

SERVER_URL = os.environ.get("SWEEP_TEST_REDIS", "redis://127.0.0.1:6379/0")


def require_redis() -> None:
    import redis

    try:
        redis.Redis.from_url(SERVER_URL, socket_connect_timeout=3).ping()
    except redis.RedisError as error:
        if os.environ.get("SWEEP_REQUIRE_REDIS"):
            raise
        pytest.skip(f"no Redis at {SERVER_URL} ({type(error).__name__}); set SWEEP_TEST_REDIS")


@contextmanager
def journal() -> Iterator[str]:
    """A storage URL for a fresh journal in Redis (its own key prefix); every key under it deleted after."""
    import redis

    require_redis()
    prefix = f"sweep-test-{uuid.uuid4().hex[:12]}"
    try:
        yield f"{SERVER_URL}?prefix={prefix}"
    finally:
        client = redis.Redis.from_url(SERVER_URL)
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        if keys:
            client.delete(*keys)
