"""Two server processes sharing rooms through the Redis channel layer."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.e2e._client import join
from tests.e2e._servers import ChatServer, chat_environment, serving

pytestmark = pytest.mark.slow

REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
REDIS_URL = f"redis://{REDIS_HOST}:{REDIS_PORT}"


def _delete_prefix(client: redis.Redis, prefix: str) -> None:
    keys = list(client.scan_iter(match=prefix + "*", count=1000))  # pyright: ignore[reportUnknownMemberType, reportUnknownArgumentType, reportUnknownVariableType] -- redis-py leaves scan_iter untyped
    if keys:
        client.delete(*keys)  # pyright: ignore[reportUnknownArgumentType] -- keys from above


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A key prefix of this test's own on the shared Redis, emptied afterwards."""
    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT)
    try:
        client.ping()  # pyright: ignore[reportUnknownMemberType] -- redis-py leaves **kwargs untyped
    except redis.ConnectionError as exc:
        client.close()
        pytest.fail(f"the scale-out test needs a Redis server at {REDIS_URL}: {exc}")
    prefix = f"chat-e2e-{uuid.uuid4().hex}:"
    try:
        yield prefix
    finally:
        _delete_prefix(client, prefix)
        client.close()


@pytest.fixture
def two_servers(
    chat_database: Path, log_dir: Path, redis_prefix: str
) -> Iterator[tuple[ChatServer, ChatServer]]:
    """daphne and uvicorn, each its own process, on one Redis layer."""
    env = chat_environment(chat_database, REDIS_URL=REDIS_URL, CHAT_REDIS_PREFIX=redis_prefix)
    with serving("daphne", env, log_dir) as first, serving("uvicorn", env, log_dir) as second:
        yield first, second


class TestScaleOut:
    async def test_a_message_crosses_processes(
        self, two_servers: tuple[ChatServer, ChatServer]
    ) -> None:
        first, second = two_servers
        room = f"room-{uuid.uuid4().hex[:12]}"
        async with join(first, room, "Ada") as ada, join(second, room, "Grace") as grace:
            assert await ada.wait_for_count(2) == ["Ada", "Grace"]
            assert await grace.wait_for_count(2) == ["Ada", "Grace"]
            await ada.say("hello from daphne")
            assert await grace.messages(1) == [("Ada", "hello from daphne")]
            await grace.say("hello from uvicorn")
            assert await ada.messages(2) == [
                ("Ada", "hello from daphne"),
                ("Grace", "hello from uvicorn"),
            ]
            grace.drop()
            assert await ada.wait_for_count(1) == ["Ada"]
