"""Both Redis layers while their Redis server stops, restarts or was never there.

Each test runs its own redis-server (see ``_server``) so it can stop and restart
it; the shared Redis is never touched.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
import redis

from channels.layers.redis.core import RedisChannelLayer
from channels.layers.redis.pubsub import RedisPubSubChannelLayer
from tests.layers.redis._server import RedisServer, redis_server_available

pytestmark = pytest.mark.skipif(
    not redis_server_available(), reason="needs a redis-server executable"
)

WAIT = 10.0
"""Seconds a test waits for a reconnection it expects: the layers retry within ~1s."""


@pytest.fixture
def server() -> Iterator[RedisServer]:
    with RedisServer() as running:
        yield running


@pytest.fixture
def unreachable() -> Iterator[str]:
    """The URL of a loopback port that no server listens on."""
    stopped = RedisServer()
    try:
        yield stopped.url
    finally:
        stopped.close()


class Hooks:
    """Async on_disconnect / on_reconnect hooks that record their calls."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.disconnected = asyncio.Event()
        self.reconnected = asyncio.Event()

    async def on_disconnect(self) -> None:
        self.calls.append("disconnect")
        self.disconnected.set()

    async def on_reconnect(self) -> None:
        self.calls.append("reconnect")
        self.reconnected.set()


@pytest.fixture
async def hooks_layer(server: RedisServer) -> AsyncIterator[tuple[RedisPubSubChannelLayer, Hooks]]:
    hooks = Hooks()
    layer = RedisPubSubChannelLayer(
        hosts=[server.url],
        prefix="faults",
        on_disconnect=hooks.on_disconnect,
        on_reconnect=hooks.on_reconnect,
    )
    try:
        yield layer, hooks
    finally:
        await layer.close()


async def receive(layer: RedisPubSubChannelLayer | RedisChannelLayer, channel: str) -> object:
    return await asyncio.wait_for(layer.receive(channel), WAIT)


class TestUnreachableAtFirstUse:
    async def test_pubsub_send_names_the_host(self, unreachable: str) -> None:
        layer = RedisPubSubChannelLayer(hosts=[unreachable])
        port = unreachable.rsplit(":", 1)[1]
        try:
            with pytest.raises(ConnectionError, match=rf"cannot reach Redis at .*:{port}"):
                await layer.send("test.chan", {"type": "test.message"})
            with pytest.raises(ConnectionError, match=rf"cannot reach Redis at .*:{port}"):
                await layer.new_channel()
            with pytest.raises(ConnectionError, match=rf"cannot reach Redis at .*:{port}"):
                await layer.group_send("test.group", {"type": "test.message"})
            with pytest.raises(ConnectionError, match=rf"cannot reach Redis at .*:{port}"):
                await layer.receive("test.chan")
        finally:
            await layer.close()

    async def test_core_send_names_the_host(self, unreachable: str) -> None:
        layer = RedisChannelLayer(hosts=[unreachable])
        port = unreachable.rsplit(":", 1)[1]
        try:
            with pytest.raises(ConnectionError, match=rf"{port}") as raised:
                await layer.send("test.chan", {"type": "test.message"})
            # redis-py's repr of its errors reads attributes its __init__ sets.
            assert "LayerConnectionError" in repr(raised.value)
        finally:
            await layer.close()


class TestPubSubRestart:
    async def test_hooks_fire_and_subscriptions_come_back(
        self, server: RedisServer, hooks_layer: tuple[RedisPubSubChannelLayer, Hooks]
    ) -> None:
        layer, hooks = hooks_layer
        channel = await layer.new_channel()
        await layer.send(channel, {"type": "test.message", "n": 1})
        assert await receive(layer, channel) == {"type": "test.message", "n": 1}

        await asyncio.to_thread(server.stop)
        await asyncio.wait_for(hooks.disconnected.wait(), WAIT)
        with pytest.raises(ConnectionError, match=rf"cannot reach Redis at .*{server.address}"):
            await layer.send(channel, {"type": "test.message", "n": 2})

        await asyncio.to_thread(server.start)
        await asyncio.wait_for(hooks.reconnected.wait(), WAIT)
        assert hooks.calls == ["disconnect", "reconnect"]
        await layer.send(channel, {"type": "test.message", "n": 3})
        assert await receive(layer, channel) == {"type": "test.message", "n": 3}

    async def test_traffic_through_a_restart_loses_but_never_repeats_or_reorders(
        self, server: RedisServer, hooks_layer: tuple[RedisPubSubChannelLayer, Hooks]
    ) -> None:
        layer, hooks = hooks_layer
        channel = await layer.new_channel()
        received: list[object] = []

        async def collect() -> None:
            for _ in range(100_001):
                message = await layer.receive(channel)
                received.append(message["n"])
                if message["n"] == "last":
                    return

        collecting = asyncio.ensure_future(collect())
        sent: list[int] = []
        failures: list[ConnectionError] = []

        async def send(n: int) -> None:
            try:
                await layer.send(channel, {"type": "test.message", "n": n})
            except ConnectionError as exc:
                failures.append(exc)
            else:
                sent.append(n)
            # Yield so the reader and the restart make progress between sends.
            await asyncio.sleep(0)

        for n in range(100):
            await send(n)
        restarting = asyncio.ensure_future(asyncio.to_thread(server.restart))
        for n in range(100, 100_000):
            if restarting.done():
                break
            await send(n)
        await asyncio.wait_for(restarting, WAIT)
        await asyncio.wait_for(hooks.reconnected.wait(), WAIT)
        after = len(sent) + len(failures)
        for n in range(after, after + 100):
            await send(n)
        await layer.send(channel, {"type": "test.message", "n": "last"})
        await asyncio.wait_for(collecting, WAIT)

        numbers = [n for n in received if isinstance(n, int)]
        assert numbers == sorted(set(numbers)), "a message arrived twice or out of order"
        assert set(numbers) <= set(sent)
        assert numbers[:100] == list(range(100))
        assert numbers[-100:] == list(range(after, after + 100))
        assert all(server.address in str(exc) for exc in failures)

    async def test_a_receive_waiting_through_the_restart_gets_later_messages(
        self, server: RedisServer, hooks_layer: tuple[RedisPubSubChannelLayer, Hooks]
    ) -> None:
        layer, hooks = hooks_layer
        channel = await layer.new_channel()
        waiting = asyncio.ensure_future(layer.receive(channel))
        await asyncio.to_thread(server.restart)
        await asyncio.wait_for(hooks.reconnected.wait(), WAIT)
        await layer.send(channel, {"type": "test.message"})
        assert await asyncio.wait_for(waiting, WAIT) == {"type": "test.message"}

    async def test_groups_work_again_after_the_restart(
        self, server: RedisServer, hooks_layer: tuple[RedisPubSubChannelLayer, Hooks]
    ) -> None:
        layer, hooks = hooks_layer
        channel = await layer.new_channel()
        await layer.group_add("test.group", channel)
        await asyncio.to_thread(server.restart)
        await asyncio.wait_for(hooks.reconnected.wait(), WAIT)
        # The new server is empty: memberships live in Redis and went with it.
        await layer.group_add("test.group", channel)
        await layer.group_send("test.group", {"type": "test.message"})
        assert await receive(layer, channel) == {"type": "test.message"}

    async def test_string_hooks_arrive_as_messages(self, server: RedisServer) -> None:
        layer = RedisPubSubChannelLayer(
            hosts=[server.url],
            on_disconnect="redis.disconnect",
            on_reconnect="redis.reconnect",
        )
        try:
            channel = await layer.new_channel()
            await asyncio.to_thread(server.stop)
            assert await receive(layer, channel) == {"type": "redis.disconnect"}
            await asyncio.to_thread(server.start)
            assert await receive(layer, channel) == {"type": "redis.reconnect"}
        finally:
            await layer.close()

    async def test_a_failing_hook_does_not_stop_the_reconnection(self, server: RedisServer) -> None:
        reconnected = asyncio.Event()

        async def broken() -> None:
            raise RuntimeError("hook failed")

        async def on_reconnect() -> None:
            reconnected.set()

        layer = RedisPubSubChannelLayer(
            hosts=[server.url], on_disconnect=broken, on_reconnect=on_reconnect
        )
        try:
            channel = await layer.new_channel()
            await asyncio.to_thread(server.restart)
            await asyncio.wait_for(reconnected.wait(), WAIT)
            await layer.send(channel, {"type": "test.message"})
            assert await receive(layer, channel) == {"type": "test.message"}
        finally:
            await layer.close()


class TestCoreRestart:
    async def test_sends_fail_clearly_while_down_and_work_after(self, server: RedisServer) -> None:
        layer = RedisChannelLayer(hosts=[server.url], prefix="faults")
        try:
            await layer.send("test.chan", {"type": "test.message", "n": 1})
            assert await receive(layer, "test.chan") == {"type": "test.message", "n": 1}
            await asyncio.to_thread(server.stop)
            with pytest.raises(ConnectionError, match=rf"{server.port}"):
                await layer.send("test.chan", {"type": "test.message", "n": 2})
            await asyncio.to_thread(server.start)
            await layer.send("test.chan", {"type": "test.message", "n": 3})
            assert await receive(layer, "test.chan") == {"type": "test.message", "n": 3}
        finally:
            await layer.close()

    async def test_a_receive_started_while_down_waits_for_the_restart(
        self, server: RedisServer
    ) -> None:
        layer = RedisChannelLayer(hosts=[server.url], prefix="faults")
        try:
            await layer.send("test.chan", {"type": "test.message", "n": 1})
            assert await receive(layer, "test.chan") == {"type": "test.message", "n": 1}
            await asyncio.to_thread(server.stop)
            waiting = asyncio.ensure_future(layer.receive("test.chan"))
            await asyncio.wait([waiting], timeout=0.5)
            assert not waiting.done(), f"a receive during the outage ended: {waiting!r}"
            await asyncio.to_thread(server.start)
            await layer.send("test.chan", {"type": "test.message", "n": 2})
            assert await asyncio.wait_for(waiting, WAIT) == {"type": "test.message", "n": 2}
        finally:
            await layer.close()

    async def test_a_receive_waiting_before_any_reply_rides_out_the_restart(
        self, server: RedisServer
    ) -> None:
        layer = RedisChannelLayer(hosts=[server.url], prefix="faults")
        try:
            # Its reader blocks before any command of this loop has had a reply
            # (new_channel() asks Redis nothing); the send's reply then shows
            # the host was reached.
            channel = await layer.new_channel()
            waiting = asyncio.ensure_future(layer.receive(channel))
            await layer.send("test.other", {"type": "test.message"})
            await asyncio.to_thread(server.stop)
            await asyncio.wait([waiting], timeout=0.5)
            assert not waiting.done(), f"a receive during the outage ended: {waiting!r}"
            await asyncio.to_thread(server.start)
            await layer.send(channel, {"type": "test.message"})
            assert await asyncio.wait_for(waiting, WAIT) == {"type": "test.message"}
        finally:
            await layer.close()

    async def test_a_message_sent_after_the_restart_is_received(self, server: RedisServer) -> None:
        layer = RedisChannelLayer(hosts=[server.url], prefix="faults")
        try:
            waiting = asyncio.ensure_future(layer.receive("test.chan"))
            await asyncio.to_thread(server.restart)
            # Messages sent while it reconnects wait in Redis, so a bounded
            # retry of the send is all the test needs.
            for attempt in range(100):
                try:
                    await layer.send("test.chan", {"type": "test.message"})
                    break
                except ConnectionError:
                    if attempt == 99:
                        raise
                    await asyncio.sleep(0.05)
            # The waiting receive either rides out the restart or fails clearly; the
            # message is kept in Redis either way, for it or for the next receive.
            await asyncio.wait([waiting], timeout=WAIT)
            assert waiting.done(), f"receive waited {WAIT}s through the restart"
            error = waiting.exception()
            if error is None:
                received: object = waiting.result()
            else:
                assert isinstance(error, ConnectionError)
                assert server.address in str(error)
                received = await receive(layer, "test.chan")
            assert received == {"type": "test.message"}
        finally:
            await layer.close()


def _connections_named(server: RedisServer, name: str) -> int:
    client = redis.Redis(host="127.0.0.1", port=server.port)
    try:
        clients = client.client_list()  # pyright: ignore[reportUnknownMemberType] -- **kwargs untyped
        return sum(1 for entry in clients if entry.get("name") == name)
    finally:
        client.close()


POOLED = 8
"""Connections each restart test grows a pool to, then uses again after the restart."""


class TestPooledConnectionsAfterARestart:
    """Connections pooled before a restart work on their next use: each retries once, fresh.

    The restart closes every pooled connection; redis-py notices only when one
    is used. Each test grows a pool to POOLED connections with as many commands
    at once, restarts the server, then runs as many at once again, so every
    pooled connection is used; none may fail.
    """

    async def test_every_pooled_connection_works_after_a_restart(self, server: RedisServer) -> None:
        # Pooled: the core layer's group commands (its sends have a connection of their own).
        name = f"pooled-{uuid.uuid4().hex[:8]}"
        layer = RedisChannelLayer(
            hosts=[{"address": server.url, "client_name": name}], prefix="faults"
        )
        try:

            async def add_all(round_: int) -> None:
                await asyncio.gather(
                    *(layer.group_add(f"test.group{round_}", f"test.c{n}") for n in range(POOLED))
                )

            await add_all(1)
            assert _connections_named(server, name) == POOLED
            await asyncio.to_thread(server.restart)
            assert _connections_named(server, name) == 0
            await add_all(2)
            assert _connections_named(server, name) == POOLED
        finally:
            await layer.close()

    @pytest.mark.parametrize(
        "layer_class", [RedisChannelLayer, RedisPubSubChannelLayer], ids=["core", "pubsub"]
    )
    async def test_sends_share_one_connection_that_comes_back_after_a_restart(
        self, server: RedisServer, layer_class: type[RedisChannelLayer | RedisPubSubChannelLayer]
    ) -> None:
        # Both layers send on one pipelined connection per host (``_publisher``).
        name = f"sends-{uuid.uuid4().hex[:8]}"
        layer = layer_class(hosts=[{"address": server.url, "client_name": name}], prefix="faults")
        try:

            async def send_all(round_: int) -> None:
                await asyncio.gather(
                    *(
                        layer.send(f"test.pooled{n}", {"type": "test.message", "n": round_})
                        for n in range(POOLED)
                    )
                )

            await send_all(1)
            assert _connections_named(server, name) == 1
            await asyncio.to_thread(server.restart)
            assert _connections_named(server, name) == 0
            await send_all(2)
            assert _connections_named(server, name) == 1
        finally:
            await layer.close()

    async def test_core_receivers_and_groups_after_a_restart(self, server: RedisServer) -> None:
        layer = RedisChannelLayer(hosts=[server.url], prefix="faults")
        try:
            channels = [f"test.pooled{n}" for n in range(POOLED)]
            await asyncio.gather(*(layer.send(name, {"type": "before"}) for name in channels))
            assert (
                await asyncio.gather(*(receive(layer, name) for name in channels))
                == [{"type": "before"}] * POOLED
            )
            await asyncio.to_thread(server.restart)
            for name in channels:
                await layer.group_add("test.group", name)
            await layer.group_send("test.group", {"type": "after"})
            assert (
                await asyncio.gather(*(receive(layer, name) for name in channels))
                == [{"type": "after"}] * POOLED
            )
        finally:
            await layer.close()
