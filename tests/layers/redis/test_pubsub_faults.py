"""RedisPubSubChannelLayer's groups through Redis restarts and a subscriber Redis cuts off.

Each test runs its own redis-server (see ``_server``), without persistence,
so it can restart it empty; the shared Redis is never touched.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Callable, Iterator

import pytest
import redis

from channels.layers.redis.pubsub import RedisPubSubChannelLayer
from tests.layers.redis._server import RedisServer, redis_server_available

pytestmark = pytest.mark.skipif(
    not redis_server_available(), reason="needs a redis-server executable"
)

WAIT = 10.0
"""Seconds a test waits for a reconnection it expects: the layer retries within ~1s."""


class Hooks:
    """on_disconnect / on_reconnect hooks that count their calls and can be awaited."""

    def __init__(self) -> None:
        self.disconnects = 0
        self.reconnects = 0
        self.changed = asyncio.Event()

    async def on_disconnect(self) -> None:
        self.disconnects += 1
        self.changed.set()

    async def on_reconnect(self) -> None:
        self.reconnects += 1
        self.changed.set()

    async def wait_until(self, condition: Callable[[], bool]) -> None:
        async def until() -> None:
            while not condition():
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(until(), WAIT)

    async def wait_for_reconnects(self, count: int) -> None:
        await self.wait_until(lambda: self.reconnects >= count)


@pytest.fixture
def server() -> Iterator[RedisServer]:
    with RedisServer() as running:
        yield running


@pytest.fixture
async def hooked(server: RedisServer) -> AsyncIterator[tuple[RedisPubSubChannelLayer, Hooks]]:
    hooks = Hooks()
    layer = RedisPubSubChannelLayer(
        hosts=[server.url], on_disconnect=hooks.on_disconnect, on_reconnect=hooks.on_reconnect
    )
    try:
        yield layer, hooks
    finally:
        await layer.close()


async def receive(layer: RedisPubSubChannelLayer, channel: str) -> object:
    return await asyncio.wait_for(layer.receive(channel), WAIT)


class TestRestartWithoutPersistence:
    async def test_group_delivery_resumes_without_a_new_group_add(
        self, server: RedisServer, hooked: tuple[RedisPubSubChannelLayer, Hooks]
    ) -> None:
        layer, hooks = hooked
        members = [await layer.new_channel() for _ in range(3)]
        for channel in members:
            await layer.group_add("test.room", channel)
        await asyncio.to_thread(server.restart)
        await hooks.wait_for_reconnects(1)
        # The new server is empty and nothing was added again: the memberships are local.
        sender = RedisPubSubChannelLayer(hosts=[server.url])
        try:
            await sender.group_send("test.room", {"type": "test.message", "n": 1})
            await layer.group_send("test.room", {"type": "test.message", "n": 2})
        finally:
            await sender.close()
        for channel in members:
            assert await receive(layer, channel) == {"type": "test.message", "n": 1}
            assert await receive(layer, channel) == {"type": "test.message", "n": 2}

    async def test_a_group_add_during_the_outage_fails_clearly_and_works_after(
        self, server: RedisServer, hooked: tuple[RedisPubSubChannelLayer, Hooks]
    ) -> None:
        layer, hooks = hooked
        channel = await layer.new_channel()
        await asyncio.to_thread(server.stop)
        await hooks.wait_until(lambda: hooks.disconnects > 0)
        with pytest.raises(ConnectionError, match=rf"cannot reach Redis at .*{server.address}"):
            await layer.group_add("test.room", channel)
        await asyncio.to_thread(server.start)
        await hooks.wait_for_reconnects(1)
        await layer.group_add("test.room", channel)
        await layer.group_send("test.room", {"type": "test.message"})
        assert await receive(layer, channel) == {"type": "test.message"}


def _flood(url: str, name: str, payload: bytes, count: int) -> None:
    """Publish ``payload`` ``count`` times on the pub/sub channel ``name``, pipelined."""
    client = redis.Redis.from_url(url)  # pyright: ignore[reportUnknownMemberType] -- **kwargs untyped
    try:
        for start in range(0, count, 1000):
            pipe = client.pipeline(transaction=False)  # pyright: ignore[reportUnknownMemberType] -- shard_hint untyped
            for _ in range(start, min(count, start + 1000)):
                pipe.publish(name, payload)  # pyright: ignore[reportUnknownMemberType] -- **kwargs untyped
            pipe.execute()
    finally:
        client.close()


FLOOD = 20_000
"""Messages of about 1 KiB in the flood: far more than the socket buffers hold."""


class TestCutOffSubscriber:
    async def test_a_subscriber_redis_cut_off_for_falling_behind_comes_back(
        self, server: RedisServer, caplog: pytest.LogCaptureFixture
    ) -> None:
        admin = redis.Redis(host="127.0.0.1", port=server.port)
        try:
            # Redis closes a subscriber whose unsent replies pass 256 KiB.
            admin.config_set("client-output-buffer-limit", "pubsub 256kb 128kb 1")  # pyright: ignore[reportUnknownMemberType] -- **kwargs untyped
        finally:
            admin.close()
        hooks = Hooks()
        # Room for the whole flood: this test is about the connection, not the queues.
        layer = RedisPubSubChannelLayer(
            hosts=[server.url], on_reconnect=hooks.on_reconnect, capacity=FLOOD + 1
        )
        try:
            members = [await layer.new_channel() for _ in range(2)]
            for channel in members:
                await layer.group_add("test.room", channel)
            payload = layer.serialize({"type": "test.flood", "pad": "x" * 1000})
            flood = threading.Thread(
                target=_flood, args=(server.url, "asgi__group__test.room", payload, FLOOD)
            )
            with caplog.at_level(logging.WARNING, logger="channels.layers.redis.pubsub"):
                flood.start()
                # Joined on the event loop's own thread: the layer reads nothing while
                # the flood runs, as in a process too busy to keep up.
                flood.join()
                await hooks.wait_for_reconnects(1)
                await layer.group_send("test.room", {"type": "test.after"})
                for channel in members:
                    flooded = 0
                    while (await receive(layer, channel)) != {"type": "test.after"}:
                        flooded += 1
                    assert flooded < FLOOD, "Redis never cut the subscriber off"
            # One line for the lost connection and one for the reconnection.
            assert len(caplog.records) == 2, [r.getMessage() for r in caplog.records]
        finally:
            await layer.close()
