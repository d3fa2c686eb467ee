"""RedisPubSubChannelLayer against the shared Redis at 127.0.0.1:6379.

Every test uses its own prefix and fresh channel names, and never flushes the
server. Tests that count commands run a private redis-server (see ``_server``).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from typing import Any, cast

import pytest
from asgiref.sync import async_to_sync
from hypothesis import settings
from redis.asyncio import Redis
from redis.asyncio.connection import Connection as RedisConnection

from channels.layers.redis._drops import DropLog
from channels.layers.redis._hosts import HostConfig
from channels.layers.redis.pubsub import (
    ConnectionHook,
    RedisPubSubChannelLayer,
    _Inbox,  # pyright: ignore[reportPrivateUsage] -- its invariants are tested directly
)
from channels.layers.redis.serializers import MessageDecodeError
from channels.testing.layers import (
    Capability,
    LayerOptions,
    channel_layer_state_machine,
    check_channel_layer,
)
from channels.types import ChannelMessage, ReceivedMessage
from tests._stateful import run_state_machine_as_test
from tests.layers.redis._server import RedisServer, redis_server_available

SHARED: str = "redis://127.0.0.1:6379"

pytestmark = pytest.mark.usefixtures("redis_available")


class Layers:
    """Makes layers (each one a process, as far as Redis can tell) sharing one fresh prefix."""

    def __init__(self) -> None:
        self.prefix = f"test-pubsub-{uuid.uuid4().hex}"
        self.made: list[RedisPubSubChannelLayer] = []

    def __call__(
        self,
        *,
        hosts: Iterable[HostConfig] | None = None,
        capacity: int = 100,
        symmetric_encryption_keys: list[str] | None = None,
        on_disconnect: ConnectionHook | None = None,
        layer_class: type[RedisPubSubChannelLayer] = RedisPubSubChannelLayer,
    ) -> RedisPubSubChannelLayer:
        layer = layer_class(
            hosts=[SHARED] if hosts is None else hosts,
            prefix=self.prefix,
            on_disconnect=on_disconnect,
            capacity=capacity,
            symmetric_encryption_keys=symmetric_encryption_keys,
        )
        self.made.append(layer)
        return layer

    def group(self, group: str) -> str:
        """The Redis pub/sub channel that carries ``group``, as channels_redis names it."""
        return f"{self.prefix}__group__{group}"

    async def close(self) -> None:
        for layer in self.made:
            await layer.flush()
            await layer.close()


@pytest.fixture
async def layers() -> AsyncIterator[Layers]:
    made = Layers()
    try:
        yield made
    finally:
        await made.close()


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    client = Redis(host="127.0.0.1", port=6379)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
def private_server() -> Iterator[RedisServer]:
    if not redis_server_available():
        pytest.fail("these tests need a redis-server executable on PATH")
    with RedisServer() as running:
        yield running


async def subscribers(redis: Redis, name: str) -> int:
    """How many connections are subscribed to the Redis pub/sub channel ``name``."""
    # redis-py leaves the **kwargs of pubsub_numsub unannotated.
    reply = await redis.pubsub_numsub(name)  # pyright: ignore[reportUnknownMemberType]
    return reply[0][1]


async def wait_for_subscribers(redis: Redis, name: str, count: int) -> None:
    """Poll (bounded) until the pub/sub channel ``name`` has ``count`` subscribers."""
    for _ in range(500):
        if await subscribers(redis, name) == count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{name!r} never reached {count} subscribers")


async def receive(layer: RedisPubSubChannelLayer, channel: str) -> ReceivedMessage:
    return await asyncio.wait_for(layer.receive(channel), 5)


async def wait_for_queued(layer: RedisPubSubChannelLayer) -> None:
    """Return once every message published so far has reached ``layer``'s process.

    One subscriber connection delivers in order: once a probe sent now is in,
    so is everything sent before it (one host, so one connection).
    """
    probe = await layer.new_channel("test.probe.")
    await layer.send(probe, {"type": "test.probe"})
    await receive(layer, probe)


async def expect_nothing(layer: RedisPubSubChannelLayer, channel: str) -> None:
    """Check that ``channel`` holds nothing: a probe sent now is the next message."""
    await layer.send(channel, {"type": "test.probe"})
    assert await receive(layer, channel) == {"type": "test.probe"}


class TestConstruction:
    def test_prefix_must_be_a_string(self) -> None:
        with pytest.raises(TypeError, match=r"prefix must be a str; got 42"):
            RedisPubSubChannelLayer(prefix=42)  # type: ignore[arg-type]

    def test_hooks_must_be_callable_or_strings(self) -> None:
        with pytest.raises(TypeError, match=r"on_reconnect must be an async callable .*got 3"):
            RedisPubSubChannelLayer(on_reconnect=3)  # type: ignore[arg-type]

    def test_hosts_must_be_a_list(self) -> None:
        with pytest.raises(TypeError, match=r"hosts must be a list of Redis hosts"):
            RedisPubSubChannelLayer(hosts=SHARED)

    def test_settings_for_the_core_layer_are_accepted(self) -> None:
        layer = RedisPubSubChannelLayer(expiry=10, group_expiry=20)
        assert (layer.expiry, layer.group_expiry) == (10, 20)

    def test_extensions(self) -> None:
        assert list(RedisPubSubChannelLayer().extensions) == ["groups", "flush"]


class TestChannels:
    async def test_new_channel_subscribes_before_returning(
        self, layers: Layers, redis: Redis
    ) -> None:
        layer = layers()
        channel = await layer.new_channel("test.prefix.")
        assert channel.startswith("test.prefix.")
        assert channel.endswith("!")
        # The channel's Redis pub/sub channel has its own name, as in channels_redis.
        assert await subscribers(redis, channel) == 1
        await layer.send(channel, {"type": "test.message", "text": "héllo", "items": [1, [2]]})
        assert await receive(layer, channel) == {
            "type": "test.message",
            "text": "héllo",
            "items": [1, [2]],
        }

    async def test_new_channel_names_are_unique(self, layers: Layers) -> None:
        layer = layers()
        names = {await layer.new_channel() for _ in range(5)}
        assert len(names) == 5

    async def test_messages_arrive_in_send_order(self, layers: Layers) -> None:
        layer = layers()
        channel = await layer.new_channel()
        for n in range(5):
            await layer.send(channel, {"type": "test.message", "n": n})
        assert [(await receive(layer, channel))["n"] for _ in range(5)] == [0, 1, 2, 3, 4]

    async def test_another_process_receives(self, layers: Layers) -> None:
        reader, writer = layers(), layers()
        channel = await reader.new_channel()
        await writer.send(channel, {"type": "test.message"})
        assert await receive(reader, channel) == {"type": "test.message"}

    async def test_concurrent_receives_each_get_one_message(self, layers: Layers) -> None:
        layer = layers()
        channel = await layer.new_channel()
        waiting = [asyncio.ensure_future(layer.receive(channel)) for _ in range(3)]
        for n in range(3):
            await layer.send(channel, {"type": "test.message", "n": n})
        got = await asyncio.wait_for(asyncio.gather(*waiting), 5)
        assert sorted(message["n"] for message in got) == [0, 1, 2]


class TestAtMostOnce:
    async def test_a_message_sent_before_anyone_subscribed_is_lost(
        self, layers: Layers, redis: Redis
    ) -> None:
        layer = layers()
        channel = f"test.late.{uuid.uuid4().hex}"
        await layer.send(channel, {"type": "test.message", "n": 1})
        waiting = asyncio.ensure_future(layer.receive(channel))
        await wait_for_subscribers(redis, channel, 1)
        await layer.send(channel, {"type": "test.message", "n": 2})
        assert await asyncio.wait_for(waiting, 5) == {"type": "test.message", "n": 2}

    async def test_the_last_cancelled_receive_unsubscribes(
        self, layers: Layers, redis: Redis
    ) -> None:
        layer = layers()
        # Repeated: the second receive may still be subscribing when the first is
        # cancelled, and it must keep the channel open either way.
        for n in range(10):
            channel = f"test.cancel{n}.{uuid.uuid4().hex}"
            first = asyncio.ensure_future(layer.receive(channel))
            second = asyncio.ensure_future(layer.receive(channel))
            await wait_for_subscribers(redis, channel, 1)
            first.cancel()
            await asyncio.wait([first], timeout=5)
            assert first.cancelled()
            await layer.send(channel, {"type": "test.message"})
            assert await asyncio.wait_for(second, 5) == {"type": "test.message"}
            third = asyncio.ensure_future(layer.receive(channel))
            await wait_for_subscribers(redis, channel, 1)
            third.cancel()
            await asyncio.wait([third], timeout=5)
            await wait_for_subscribers(redis, channel, 0)

    async def test_a_full_local_queue_drops_the_newest(self, layers: Layers) -> None:
        layer = layers(capacity=2)
        channel = await layer.new_channel()
        for n in range(3):
            await layer.send(channel, {"type": "test.message", "n": n})
        await wait_for_queued(layer)
        assert (await receive(layer, channel))["n"] == 0
        assert (await receive(layer, channel))["n"] == 1
        await expect_nothing(layer, channel)


class TestInbox:
    """The local queue's own rules, driven directly: no Redis involved."""

    @staticmethod
    def inbox(capacity: int = 10, clock: Callable[[], float] = time.monotonic) -> _Inbox:
        loop = asyncio.get_running_loop()
        drops = DropLog(logging.getLogger("test.inbox"), interval=10, clock=clock)
        return _Inbox("test.chan", capacity=capacity, loop=loop, drops=drops)

    async def test_a_woken_get_that_is_cancelled_passes_the_message_on(self) -> None:
        inbox = self.inbox()
        first = asyncio.ensure_future(inbox.get())
        second = asyncio.ensure_future(inbox.get())
        await asyncio.sleep(0)  # both wait
        inbox.put(b"one")
        # The put woke the first get, which has not run yet: cancel it now.
        first.cancel()
        assert await asyncio.wait_for(second, 5) == b"one"
        assert first.cancelled()
        assert not inbox.waiters

    async def test_messages_come_out_in_arrival_order(self) -> None:
        inbox = self.inbox()
        for data in (b"1", b"2", b"3"):
            inbox.put(data)
        assert [await inbox.get() for _ in range(3)] == [b"1", b"2", b"3"]

    async def test_close_wakes_every_waiter_with_none(self) -> None:
        inbox = self.inbox()
        waiting = [asyncio.ensure_future(inbox.get()) for _ in range(2)]
        await asyncio.sleep(0)
        inbox.put(b"dropped by close")
        inbox.close()
        assert await asyncio.wait_for(asyncio.gather(*waiting), 5) == [None, None]


class TestDropLogging:
    async def test_a_flood_logs_one_line(
        self, layers: Layers, caplog: pytest.LogCaptureFixture
    ) -> None:
        layer = layers(capacity=1)
        channel = await layer.new_channel()
        with caplog.at_level(logging.WARNING, logger="channels.layers.redis.pubsub"):
            for n in range(50):
                await layer.send(channel, {"type": "test.message", "n": n})
            await wait_for_queued(layer)
        lines = [r.getMessage() for r in caplog.records if channel in r.getMessage()]
        assert len(lines) == 1
        assert lines[0].startswith(
            f"dropped 1 message(s) for {channel!r}: its local queue holds 1 messages"
        )
        assert (await receive(layer, channel))["n"] == 0

    async def test_later_drops_are_counted_and_logged_after_the_interval(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        now = [0.0]
        inbox = TestInbox.inbox(capacity=1, clock=lambda: now[0])
        with caplog.at_level(logging.WARNING, logger="test.inbox"):
            for data in (b"kept", b"1", b"2", b"3"):
                inbox.put(data)
            now[0] = 10.0
            inbox.put(b"4")
        assert [r.getMessage().split(":")[0] for r in caplog.records] == [
            "dropped 1 message(s) for 'test.chan'",
            "dropped 3 message(s) for 'test.chan' in the last 10.0 s",
        ]
        assert list(inbox.messages) == [b"kept"]


class TestValidation:
    @pytest.mark.parametrize(
        "name",
        [
            pytest.param("", id="empty"),
            pytest.param("has space", id="space"),
            pytest.param("x" * 200, id="too-long"),
        ],
    )
    async def test_bad_channel_names(self, layers: Layers, name: str) -> None:
        layer = layers()
        with pytest.raises(TypeError, match=r"channel name must be a string"):
            await layer.send(name, {"type": "test.message"})
        with pytest.raises(TypeError, match=r"channel name must be a string"):
            await layer.receive(name)
        with pytest.raises(TypeError, match=r"channel name must be a string"):
            await layer.group_add("test.group", name)
        with pytest.raises(TypeError, match=r"channel name must be a string"):
            await layer.group_discard("test.group", name)

    async def test_bad_group_name(self, layers: Layers) -> None:
        layer = layers()
        channel = await layer.new_channel()
        with pytest.raises(TypeError, match=r"group name must be a string.*got 'bang!'"):
            await layer.group_send("bang!", {"type": "test.message"})
        with pytest.raises(TypeError, match=r"group name must be a string.*got 'bang!'"):
            await layer.group_add("bang!", channel)
        with pytest.raises(TypeError, match=r"group name must be a string.*got 'bang!'"):
            await layer.group_discard("bang!", channel)

    async def test_message_must_be_a_mapping(self, layers: Layers) -> None:
        layer = layers()
        with pytest.raises(
            TypeError,
            match=r"message must be a mapping \(such as a dict with a 'type' key\); got str: 'x'",
        ):
            await layer.send("test.chan", "x")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match=r"message must be a mapping"):
            await layer.group_send("test.group", ["x"])  # type: ignore[arg-type]

    async def test_message_must_be_serialisable(self, layers: Layers) -> None:
        layer = layers()
        with pytest.raises(TypeError, match=r"message must hold only"):
            await layer.send("test.chan", {"type": "test.message", "bad": object()})


class TestGroups:
    async def test_group_send_reaches_members_of_every_process(self, layers: Layers) -> None:
        one, two = layers(), layers()
        a, b = await one.new_channel(), await two.new_channel()
        await one.group_add("test.group", a)
        await two.group_add("test.group", b)
        await one.group_send("test.group", {"type": "test.message"})
        assert await receive(one, a) == {"type": "test.message"}
        assert await receive(two, b) == {"type": "test.message"}

    async def test_a_process_without_members_can_group_send(self, layers: Layers) -> None:
        member, sender = layers(), layers()
        channel = await member.new_channel()
        await member.group_add("test.group", channel)
        await sender.group_send("test.group", {"type": "test.message"})
        assert await receive(member, channel) == {"type": "test.message"}

    async def test_the_process_subscribes_once_per_group(
        self, layers: Layers, redis: Redis
    ) -> None:
        layer = layers()
        members = [await layer.new_channel() for _ in range(3)]
        name = layers.group("test.group")
        for channel in members:
            await layer.group_add("test.group", channel)
            await layer.group_add("test.group", channel)
        assert await subscribers(redis, name) == 1
        for channel in members[:-1]:
            await layer.group_discard("test.group", channel)
        assert await subscribers(redis, name) == 1
        await layer.group_discard("test.group", members[-1])
        await wait_for_subscribers(redis, name, 0)

    async def test_group_send_is_one_publish_whatever_the_size(
        self, private_server: RedisServer
    ) -> None:
        layer = RedisPubSubChannelLayer(hosts=[private_server.url])
        admin = Redis(host="127.0.0.1", port=private_server.port)
        try:
            members = [await layer.new_channel() for _ in range(50)]
            for channel in members:
                await layer.group_add("test.group", channel)
            # redis-py leaves the **kwargs of config_resetstat and info unannotated.
            await admin.config_resetstat()  # pyright: ignore[reportUnknownMemberType]
            await layer.group_send("test.group", {"type": "test.message"})
            for channel in members:
                assert await receive(layer, channel) == {"type": "test.message"}
            stats = await admin.info("commandstats")  # pyright: ignore[reportUnknownMemberType]
            assert stats["cmdstat_publish"]["calls"] == 1
        finally:
            await admin.aclose()
            await layer.close()

    async def test_group_add_needs_a_channel_this_process_receives(self, layers: Layers) -> None:
        layer, other = layers(), layers()
        elsewhere = await other.new_channel()
        for channel in ("test.never-received", elsewhere):
            with pytest.raises(
                RuntimeError,
                match=rf"group_add\('test.group', '{channel}'\): this process does not receive "
                r".*call group_add from the consumer that owns the channel",
            ):
                await layer.group_add("test.group", channel)

    async def test_a_receiving_channel_may_join(self, layers: Layers, redis: Redis) -> None:
        layer = layers()
        channel = f"test.named.{uuid.uuid4().hex}"
        waiting = asyncio.ensure_future(layer.receive(channel))
        await wait_for_subscribers(redis, channel, 1)
        await layer.group_add("test.group", channel)
        await layer.group_send("test.group", {"type": "test.message"})
        assert await asyncio.wait_for(waiting, 5) == {"type": "test.message"}

    async def test_group_discard_stops_delivery(self, layers: Layers) -> None:
        layer = layers()
        a, b = await layer.new_channel(), await layer.new_channel()
        await layer.group_add("test.group", a)
        await layer.group_add("test.group", b)
        await layer.group_discard("test.group", a)
        await layer.group_discard("test.group", "test.never-added")
        await layer.group_discard("test.other-group", b)
        await layer.group_send("test.group", {"type": "test.message", "n": 1})
        assert await receive(layer, b) == {"type": "test.message", "n": 1}
        await expect_nothing(layer, a)

    async def test_a_cancelled_last_receive_leaves_its_groups(
        self, layers: Layers, redis: Redis
    ) -> None:
        layer = layers()
        channel = await layer.new_channel()
        await layer.group_add("test.group", channel)
        waiting = asyncio.ensure_future(layer.receive(channel))
        await asyncio.sleep(0)
        waiting.cancel()
        await asyncio.wait([waiting], timeout=5)
        await wait_for_subscribers(redis, layers.group("test.group"), 0)
        await wait_for_subscribers(redis, channel, 0)
        with pytest.raises(RuntimeError, match=r"this process does not receive"):
            await layer.group_add("test.group", channel)

    @pytest.mark.parametrize(
        "message",
        [
            pytest.param({"type": "test.message", "text": "hi", "n": 1}, id="flat"),
            pytest.param({"type": "test.message", "items": [1, {"a": [2]}]}, id="nested"),
        ],
    )
    async def test_each_member_gets_its_own_copy(
        self, layers: Layers, message: ChannelMessage
    ) -> None:
        layer = layers()
        members = [await layer.new_channel() for _ in range(3)]
        for channel in members:
            await layer.group_add("test.group", channel)
        await layer.group_send("test.group", message)
        first = await receive(layer, members[0])
        assert first == message
        first.clear()
        for channel in members[1:]:
            got = await receive(layer, channel)
            assert got == message
            assert got is not first

    async def test_a_group_message_that_fails_to_decode_fails_each_receive(
        self, layers: Layers
    ) -> None:
        sender = layers(symmetric_encryption_keys=["one"])
        reader = layers(symmetric_encryption_keys=["two"])
        members = [await reader.new_channel() for _ in range(2)]
        for channel in members:
            await reader.group_add("test.group", channel)
        await sender.group_send("test.group", {"type": "test.message"})
        for channel in members:
            with pytest.raises(MessageDecodeError, match=r"could not be decrypted"):
                await receive(reader, channel)


class TestFlush:
    async def test_flush_drops_groups_and_queued_messages(
        self, layers: Layers, redis: Redis
    ) -> None:
        layer = layers()
        channel = await layer.new_channel()
        await layer.group_add("test.group", channel)
        await layer.send(channel, {"type": "test.message"})
        await wait_for_queued(layer)
        await layer.flush()
        await wait_for_subscribers(redis, layers.group("test.group"), 0)
        await layer.group_send("test.group", {"type": "test.message"})
        await expect_nothing(layer, channel)

    async def test_a_waiting_receive_keeps_waiting_through_a_flush(self, layers: Layers) -> None:
        layer = layers()
        channel = await layer.new_channel()
        waiting = asyncio.ensure_future(layer.receive(channel))
        await asyncio.sleep(0)
        await layer.flush()
        await layer.send(channel, {"type": "test.message"})
        assert await asyncio.wait_for(waiting, 5) == {"type": "test.message"}


class TestClose:
    async def test_a_waiting_receive_goes_on_after_close(
        self, layers: Layers, redis: Redis
    ) -> None:
        layer = layers()
        channel = f"test.closed.{uuid.uuid4().hex}"
        waiting = asyncio.ensure_future(layer.receive(channel))
        await wait_for_subscribers(redis, channel, 1)
        await layer.close()
        # It subscribes again on fresh connections.
        await wait_for_subscribers(redis, channel, 1)
        await layer.send(channel, {"type": "test.message"})
        assert await asyncio.wait_for(waiting, 5) == {"type": "test.message"}


class UUIDLayer(RedisPubSubChannelLayer):
    """A subclass that carries ``uuid.UUID`` values, as channels_redis users do."""

    def serialize(self, message: dict[str, Any]) -> bytes:
        tagged = {
            key: {"__uuid__": value.hex} if isinstance(value, uuid.UUID) else value
            for key, value in message.items()
        }
        return super().serialize(tagged)

    def deserialize(self, message: bytes) -> dict[str, Any]:
        decoded = super().deserialize(message)
        for key, value in decoded.items():
            if isinstance(value, dict) and set(cast("dict[str, object]", value)) == {"__uuid__"}:
                decoded[key] = uuid.UUID(cast("dict[str, str]", value)["__uuid__"])
        return decoded


class TestSerializeOverride:
    async def test_send_and_group_send_go_through_the_override(self, layers: Layers) -> None:
        layer = layers(layer_class=UUIDLayer)
        ident = uuid.uuid4()
        members = [await layer.new_channel() for _ in range(3)]
        for channel in members:
            await layer.group_add("test.group", channel)
        await layer.send(members[0], {"type": "test.direct", "id": ident})
        await layer.group_send("test.group", {"type": "test.grouped", "id": ident})
        assert await receive(layer, members[0]) == {"type": "test.direct", "id": ident}
        for channel in members:
            assert await receive(layer, channel) == {"type": "test.grouped", "id": ident}

    async def test_without_the_override_a_uuid_is_refused(self, layers: Layers) -> None:
        layer = layers()
        with pytest.raises(TypeError, match=r"message must hold only"):
            await layer.send("test.chan", {"type": "test.message", "id": uuid.uuid4()})


class TestEncryption:
    async def test_keys_rotate(self, layers: Layers) -> None:
        old = layers(symmetric_encryption_keys=["old"])
        rotated = layers(symmetric_encryption_keys=["new", "old"])
        channel = await rotated.new_channel()
        await old.send(channel, {"type": "test.message"})
        assert await receive(rotated, channel) == {"type": "test.message"}

    async def test_a_foreign_key_fails_to_decode(self, layers: Layers) -> None:
        sender = layers(symmetric_encryption_keys=["one"])
        reader = layers(symmetric_encryption_keys=["two"])
        channel = await reader.new_channel()
        await sender.send(channel, {"type": "test.message"})
        with pytest.raises(MessageDecodeError, match=r"could not be decrypted"):
            await receive(reader, channel)


class TestSharding:
    async def test_channels_and_groups_spread_over_hosts(self, layers: Layers) -> None:
        # Two databases of one server are two shards; pub/sub ignores the
        # database, which is why every message still arrives exactly once.
        layer = layers(hosts=[f"{SHARED}/0", f"{SHARED}/1"])
        channels = [await layer.new_channel() for _ in range(8)]
        for n, channel in enumerate(channels):
            await layer.group_add(f"test.group{n % 3}", channel)
        for n in range(3):
            await layer.group_send(f"test.group{n}", {"type": "test.message", "group": n})
        for n, channel in enumerate(channels):
            assert await receive(layer, channel) == {"type": "test.message", "group": n % 3}


class TestEventLoops:
    def test_async_to_sync_calls_each_get_their_own_connections(self) -> None:
        layer = RedisPubSubChannelLayer(hosts=[SHARED], prefix=f"test-pubsub-{uuid.uuid4().hex}")

        async def round_trip(n: int) -> object:
            channel = await layer.new_channel()
            await layer.group_add("test.group", channel)
            await layer.group_send("test.group", {"type": "test.message", "n": n})
            return (await receive(layer, channel))["n"]

        assert async_to_sync(round_trip)(1) == 1
        # Warnings are errors: a connection left open by a closed loop would fail here.
        assert async_to_sync(round_trip)(2) == 2

    async def test_a_channel_received_in_another_loop_cannot_join_here(
        self, layers: Layers
    ) -> None:
        layer = layers()
        # Built in the thread, async_to_sync runs there on an event loop of its own.
        channel = await asyncio.to_thread(lambda: async_to_sync(layer.new_channel)())
        with pytest.raises(RuntimeError, match=r"in this event loop"):
            await layer.group_add("test.group", channel)


# Pub/sub keeps no message for a channel nobody subscribes to, and a cancelled
# last receive unsubscribes: it does not queue, and Redis keeps its own time.
CLAIMS = Capability.GROUPS | Capability.FLUSH | Capability.DEEP_COPY


class ConformanceLayers:
    """Makes kit layers, each with a fresh prefix, and cleans up after them."""

    def __init__(self) -> None:
        self.made: list[RedisPubSubChannelLayer] = []

    def __call__(self, options: LayerOptions) -> RedisPubSubChannelLayer:
        layer = RedisPubSubChannelLayer(
            hosts=[SHARED],
            prefix=f"test-pubsub-{uuid.uuid4().hex}",
            expiry=options.expiry,
            group_expiry=options.group_expiry,
            capacity=options.capacity,
        )
        self.made.append(layer)
        return layer

    async def close(self) -> None:
        for layer in self.made:
            await layer.flush()
            await layer.close()


class TestConformance:
    async def test_the_kit_passes_with_the_capabilities_it_claims(self) -> None:
        make_layer = ConformanceLayers()
        try:
            checked = await check_channel_layer(make_layer, CLAIMS)
        finally:
            await make_layer.close()
        assert checked == (
            "the layer has the methods and extensions it claims",
            "a sent message is received unchanged",
            "receive returns messages in send order",
            "channels are independent",
            "new_channel returns unique, valid names that receive",
            "invalid names and non-mapping messages raise TypeError",
            "concurrent receivers on one channel get distinct messages",
            "a cancelled receive stops waiting",
            "group_send reaches every member once",
            "group_discard stops delivery",
            "group_discard of a non-member does nothing",
            "group_send to an empty group does nothing",
            "flush drops every message and group",
            "receivers never share message objects",
        )

    async def test_claiming_queues_fails_at_messages_sent_before_a_subscription(self) -> None:
        make_layer = ConformanceLayers()
        try:
            with pytest.raises(
                AssertionError,
                match=r"^rule 'a message waits on a channel nobody has received from' broke: "
                r"sent \[1, 2\] to 'kit\.named', received \[\] and then receive\(\) waited 0\.5s",
            ):
                await check_channel_layer(make_layer, CLAIMS | Capability.QUEUES, timeout=0.5)
        finally:
            await make_layer.close()

    @pytest.mark.slow
    def test_the_state_machine_agrees(self) -> None:
        make_layer = ConformanceLayers()
        machine = channel_layer_state_machine(make_layer, CLAIMS)
        try:
            run_state_machine_as_test(
                machine, settings=settings(max_examples=20, stateful_step_count=30, deadline=None)
            )
        finally:
            # Each example closed its layer with its own event loop.
            async_to_sync(make_layer.close)()


class _WrappedWriter:
    """Stands in for a redis-py release that keeps something else behind ``_writer``."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer

    def __getattr__(self, name: str) -> object:
        return getattr(self.writer, name)


class _OtherConnection(RedisConnection):
    async def connect(self) -> None:
        # redis-py leaves connect() unannotated.
        await cast("Callable[[], Awaitable[None]]", super().connect)()
        writer = self._writer
        assert writer is not None
        self._writer = cast(asyncio.StreamWriter, _WrappedWriter(writer))


class TestRedisPyAssumption:
    async def test_a_connection_without_an_asyncio_stream_is_refused_and_closed(
        self, layers: Layers
    ) -> None:
        # The subscriber takes redis-py's stream over; should a release keep
        # another object there, the layer says so instead of failing obscurely.
        layer = layers(hosts=[{"address": SHARED, "connection_class": _OtherConnection}])
        with pytest.raises(RuntimeError, match=r"takes over the asyncio stream .* _WrappedWriter"):
            await layer.new_channel()
