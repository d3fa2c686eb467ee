"""Fixtures for the Redis layer tests: a real Redis, a unique key prefix per test."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from channels.layers.redis import RedisChannelLayer

REDIS_URL = "redis://127.0.0.1:6379"

LayerMaker = Callable[..., RedisChannelLayer]


def _client() -> redis.Redis:
    return redis.Redis(host="127.0.0.1", port=6379)


def delete_prefix(prefix: str) -> None:
    """Delete the keys under ``prefix`` only: the server is shared."""
    client = _client()
    try:
        keys = list(client.scan_iter(match=prefix + "*", count=1000))  # pyright: ignore[reportUnknownMemberType, reportUnknownArgumentType, reportUnknownVariableType] -- redis-py leaves scan_iter untyped
        if keys:
            client.delete(*keys)  # pyright: ignore[reportUnknownArgumentType] -- keys from above
    finally:
        client.close()


@pytest.fixture(scope="session")
def redis_available() -> None:
    client = _client()
    try:
        client.ping()  # pyright: ignore[reportUnknownMemberType] -- redis-py leaves **kwargs untyped
    except redis.ConnectionError as exc:
        pytest.fail(f"these tests need a Redis server at {REDIS_URL}: {exc}")
    finally:
        client.close()


@pytest.fixture
def prefix(redis_available: None) -> Iterator[str]:
    """A key prefix of this test's own; its keys are deleted afterwards."""
    name = f"tc{uuid.uuid4().hex[:12]}"
    yield name
    delete_prefix(name)


@pytest.fixture
def make_layer(prefix: str) -> LayerMaker:
    """Build layers on the test Redis under the test's prefix."""

    def make(**options: Any) -> RedisChannelLayer:  # Any: RedisChannelLayer's keyword arguments
        options.setdefault("hosts", [REDIS_URL])
        options.setdefault("prefix", prefix)
        return RedisChannelLayer(**options)

    return make
