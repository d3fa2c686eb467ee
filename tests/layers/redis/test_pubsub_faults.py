"""RedisPubSubChannelLayer through Redis restarts, a cut-off subscriber, a paused Redis, ACLs.

Each test runs its own redis-server (see ``_server``), without persistence,
so it can restart it empty; the shared Redis is never touched.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
import threading
from collections.abc import AsyncIterator, Callable, Iterator

import pytest
import redis
from redis.exceptions import NoPermissionError

from channels.layers.redis import _subscriber
from channels.layers.redis._errors import LayerConnectionError
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


def _admin(server: RedisServer) -> redis.Redis:
    return redis.Redis(host="127.0.0.1", port=server.port)


ACK_TIMEOUT = 0.2
"""Seconds the paused-server test lets the subscriber wait for a confirmation."""


class TestUnansweredSubscribe:
    async def test_a_subscribe_a_paused_redis_never_confirms_fails_clearly_and_works_after(
        self, server: RedisServer, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(_subscriber, "_ACK_TIMEOUT", ACK_TIMEOUT)
        admin = _admin(server)
        try:
            pid = int(admin.info("server")["process_id"])  # pyright: ignore[reportUnknownMemberType] -- info() is untyped
        finally:
            admin.close()
        layer = RedisPubSubChannelLayer(hosts=[server.url])
        try:
            channel = await layer.new_channel()  # the connection is open and idle
            os.kill(pid, signal.SIGSTOP)  # the server reads nothing, answers nothing
            try:
                with pytest.raises(LayerConnectionError) as raised:
                    await layer.group_add("test.room", channel)
            finally:
                os.kill(pid, signal.SIGCONT)
            assert str(raised.value) == (
                f"cannot reach Redis at {server.url}: could not subscribe to "
                f"'asgi__group__test.room': no confirmation within {ACK_TIMEOUT}s"
            )
            assert raised.value.host == server.url
            # Redis answers the backlog in order: once this new channel is confirmed,
            # the late replies to the timed-out SUBSCRIBE have all arrived.
            await layer.new_channel()
            await layer.group_add("test.room", channel)
            await layer.group_send("test.room", {"type": "test.message"})
            assert await receive(layer, channel) == {"type": "test.message"}
        finally:
            await layer.close()


def _limited_url(server: RedisServer, *channel_patterns: str) -> str:
    """Create a user that may only subscribe to ``channel_patterns``; return its URL."""
    admin = _admin(server)
    try:
        # redis-py leaves execute_command's **options unannotated.
        admin.execute_command(  # type: ignore[no-untyped-call]
            "ACL", "SETUSER", "limited", "on", ">pw", "~*", "resetchannels",
            *(f"&{pattern}" for pattern in channel_patterns), "+@all",
        )  # fmt: skip
    finally:
        admin.close()
    return f"redis://limited:pw@127.0.0.1:{server.port}"


REFUSED = "NOPERM this user has no permissions to access one of the channels used as arguments"
"""Redis 7's reason for refusing a channel the ACL does not allow."""


class TestRefusedSubscribe:
    async def test_a_channel_the_acl_forbids_raises_no_permission_naming_the_host(
        self, server: RedisServer
    ) -> None:
        url = _limited_url(server, "nothing*")
        layer = RedisPubSubChannelLayer(hosts=[{"address": url}])
        try:
            with pytest.raises(NoPermissionError) as raised:
                await layer.new_channel()
            # The host as the layer names it, user and password masked.
            assert re.fullmatch(
                rf"Redis at redis://\*\*\*@127\.0\.0\.1:{server.port} refused to subscribe "
                rf"to 'specific\.[0-9a-f]{{32}}!': {REFUSED}",
                str(raised.value),
            ), str(raised.value)
            with pytest.raises(NoPermissionError, match="refused to subscribe"):
                await asyncio.wait_for(layer.receive("test.channel"), WAIT)
        finally:
            await layer.close()

    async def test_a_group_the_acl_forbids_is_refused_and_its_channels_still_work(
        self, server: RedisServer
    ) -> None:
        url = _limited_url(server, "specific.*")
        layer = RedisPubSubChannelLayer(hosts=[{"address": url}])
        try:
            channel = await layer.new_channel()
            with pytest.raises(
                NoPermissionError,
                match=rf"refused to subscribe to 'asgi__group__test\.room': {REFUSED}$",
            ):
                await layer.group_add("test.room", channel)
            await layer.send(channel, {"type": "test.message"})
            assert await receive(layer, channel) == {"type": "test.message"}
            other = await layer.new_channel()  # the subscriber still subscribes
            await layer.send(other, {"type": "test.other"})
            assert await receive(layer, other) == {"type": "test.other"}
        finally:
            await layer.close()

    async def test_a_refusal_fails_only_the_subscription_redis_refused(
        self, server: RedisServer
    ) -> None:
        url = _limited_url(server, "specific.*")
        layer = RedisPubSubChannelLayer(hosts=[{"address": url}])
        try:
            channel = await layer.new_channel()
            # All three SUBSCRIBEs are written before Redis answers the first.
            group_add, *created = await asyncio.gather(
                layer.group_add("test.room", channel),
                layer.new_channel(),
                layer.new_channel(),
                return_exceptions=True,
            )
            assert isinstance(group_add, NoPermissionError), group_add
            assert "refused to subscribe to 'asgi__group__test.room'" in str(group_add)
            for other in created:
                assert isinstance(other, str), other
                await layer.send(other, {"type": "test.message"})
                assert await receive(layer, other) == {"type": "test.message"}
        finally:
            await layer.close()
