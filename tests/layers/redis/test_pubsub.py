"""RedisPubSubChannelLayer against the shared Redis at 127.0.0.1:6379.

Every test uses its own key prefix and never flushes the server.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterable

import pytest
from asgiref.sync import async_to_sync
from hypothesis import settings
from redis.asyncio import Redis

from channels.layers.redis._hosts import HostConfig
from channels.layers.redis._serializers import MessageDecodeError
from channels.layers.redis.pubsub import ConnectionHook, RedisPubSubChannelLayer
from channels.testing.layers import (
    Capability,
    LayerOptions,
    channel_layer_state_machine,
    check_channel_layer,
)
from tests._stateful import run_state_machine_as_test

SHARED: str = "redis://127.0.0.1:6379"

pytestmark = pytest.mark.usefixtures("redis_available")


class Layers:
    """Makes layers that share one fresh prefix, and cleans up after them."""

    def __init__(self) -> None:
        self.prefix = f"test-pubsub-{uuid.uuid4().hex}"
        self.made: list[RedisPubSubChannelLayer] = []

    def __call__(
        self,
        *,
        hosts: Iterable[HostConfig] | None = None,
        group_expiry: float = 86400,
        capacity: int = 100,
        symmetric_encryption_keys: list[str] | None = None,
        on_disconnect: ConnectionHook | None = None,
    ) -> RedisPubSubChannelLayer:
        layer = RedisPubSubChannelLayer(
            hosts=[SHARED] if hosts is None else hosts,
            prefix=self.prefix,
            on_disconnect=on_disconnect,
            group_expiry=group_expiry,
            capacity=capacity,
            symmetric_encryption_keys=symmetric_encryption_keys,
        )
        self.made.append(layer)
        return layer

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


async def subscribers(redis: Redis, layer: RedisPubSubChannelLayer, channel: str) -> int:
    """How many connections are subscribed to ``channel``'s Redis pub/sub channel."""
    key = layer.channel_key(channel)
    # redis-py leaves the **kwargs of pubsub_numsub unannotated.
    reply = await redis.pubsub_numsub(key)  # pyright: ignore[reportUnknownMemberType]
    return reply[0][1]


async def wait_for_subscribers(
    redis: Redis, layer: RedisPubSubChannelLayer, channel: str, count: int
) -> None:
    """Poll (bounded) until ``channel`` has ``count`` subscribers."""
    for _ in range(200):
        if await subscribers(redis, layer, channel) == count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{channel!r} never reached {count} subscribers")


async def receive(layer: RedisPubSubChannelLayer, channel: str) -> dict[str, object]:
    return await asyncio.wait_for(layer.receive(channel), 5)


class TestConstruction:
    def test_prefix_must_be_a_string(self) -> None:
        with pytest.raises(TypeError, match=r"prefix must be a string; got 42"):
            RedisPubSubChannelLayer(prefix=42)  # type: ignore[arg-type]

    def test_hooks_must_be_callable_or_strings(self) -> None:
        with pytest.raises(TypeError, match=r"on_reconnect must be an async callable .*got 3"):
            RedisPubSubChannelLayer(on_reconnect=3)  # type: ignore[arg-type]

    def test_hosts_must_be_a_list(self) -> None:
        with pytest.raises(TypeError, match=r"hosts must be a list of Redis hosts"):
            RedisPubSubChannelLayer(hosts=SHARED)

    def test_group_expiry_must_be_positive(self) -> None:
        with pytest.raises(ValueError, match=r"group_expiry must be a number of seconds > 0"):
            RedisPubSubChannelLayer(group_expiry=0)

    def test_extensions(self) -> None:
        assert list(RedisPubSubChannelLayer().extensions) == ["groups", "flush"]


class TestChannels:
    async def test_new_channel_subscribes_before_returning(self, layers: Layers) -> None:
        layer = layers()
        channel = await layer.new_channel("test.prefix.")
        assert channel.startswith("test.prefix.")
        assert channel.endswith("!")
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

    async def test_each_receive_gets_its_own_copy(self, layers: Layers) -> None:
        layer = layers()
        first, second = await layer.new_channel(), await layer.new_channel()
        await layer.group_add("test.group", first)
        await layer.group_add("test.group", second)
        await layer.group_send("test.group", {"type": "test.message", "items": [1]})
        mine = await receive(layer, first)
        mine["items"] = "changed"
        assert await receive(layer, second) == {"type": "test.message", "items": [1]}


class TestAtMostOnce:
    async def test_a_message_sent_before_anyone_subscribed_is_lost(
        self, layers: Layers, redis: Redis
    ) -> None:
        layer = layers()
        await layer.send("test.late", {"type": "test.message", "n": 1})
        waiting = asyncio.ensure_future(layer.receive("test.late"))
        await wait_for_subscribers(redis, layer, "test.late", 1)
        await layer.send("test.late", {"type": "test.message", "n": 2})
        assert await asyncio.wait_for(waiting, 5) == {"type": "test.message", "n": 2}

    async def test_the_last_cancelled_receive_unsubscribes(
        self, layers: Layers, redis: Redis
    ) -> None:
        layer = layers()
        # Repeated: the second receive may still be subscribing when the first is
        # cancelled, and it must keep the channel open either way.
        for n in range(10):
            channel = f"test.cancel{n}"
            first = asyncio.ensure_future(layer.receive(channel))
            second = asyncio.ensure_future(layer.receive(channel))
            await wait_for_subscribers(redis, layer, channel, 1)
            first.cancel()
            await asyncio.wait([first], timeout=5)
            assert first.cancelled()
            await layer.send(channel, {"type": "test.message"})
            assert await asyncio.wait_for(second, 5) == {"type": "test.message"}
            third = asyncio.ensure_future(layer.receive(channel))
            await wait_for_subscribers(redis, layer, channel, 1)
            third.cancel()
            await asyncio.wait([third], timeout=5)
            await wait_for_subscribers(redis, layer, channel, 0)

    async def test_a_full_local_queue_drops_the_newest(self, layers: Layers) -> None:
        layer = layers(capacity=2)
        channel = await layer.new_channel()
        for n in range(3):
            await layer.send(channel, {"type": "test.message", "n": n})
        await layer.send(channel, {"type": "test.probe"})
        assert (await receive(layer, channel))["n"] == 0
        assert (await receive(layer, channel))["n"] == 1
        await layer.send(channel, {"type": "test.probe"})
        assert await receive(layer, channel) == {"type": "test.probe"}


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

    async def test_bad_group_name(self, layers: Layers) -> None:
        layer = layers()
        with pytest.raises(TypeError, match=r"group name must be a string.*got 'bang!'"):
            await layer.group_send("bang!", {"type": "test.message"})

    async def test_message_must_be_a_mapping(self, layers: Layers) -> None:
        layer = layers()
        with pytest.raises(
            TypeError,
            match=r"message must be a mapping \(such as a dict with a 'type' key\); got str: 'x'",
        ):
            await layer.send("test.chan", "x")  # type: ignore[arg-type]

    async def test_message_must_be_serialisable(self, layers: Layers) -> None:
        layer = layers()
        with pytest.raises(TypeError, match=r"message must hold only msgpack-serialisable"):
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

    async def test_group_discard_stops_delivery(self, layers: Layers) -> None:
        layer = layers()
        a, b = await layer.new_channel(), await layer.new_channel()
        await layer.group_add("test.group", a)
        await layer.group_add("test.group", b)
        await layer.group_discard("test.group", a)
        await layer.group_discard("test.group", "test.never-added")
        await layer.group_send("test.group", {"type": "test.message", "n": 1})
        await layer.send(a, {"type": "test.probe"})
        assert await receive(layer, a) == {"type": "test.probe"}
        assert await receive(layer, b) == {"type": "test.message", "n": 1}

    async def test_expired_memberships_are_skipped(self, layers: Layers, redis: Redis) -> None:
        layer = layers(group_expiry=100)
        old, fresh = await layer.new_channel(), await layer.new_channel()
        await layer.group_add("test.group", fresh)
        # Backdate one membership instead of waiting for it to expire.
        await redis.zadd(layer.group_key("test.group"), {old: time.time() - 101})
        await layer.group_send("test.group", {"type": "test.message"})
        assert await receive(layer, fresh) == {"type": "test.message"}
        await layer.send(old, {"type": "test.probe"})
        assert await receive(layer, old) == {"type": "test.probe"}
        assert await redis.zscore(layer.group_key("test.group"), old) is None

    async def test_group_keys_expire(self, layers: Layers, redis: Redis) -> None:
        layer = layers(group_expiry=100)
        await layer.group_add("test.group", "test.chan")
        assert 0 < await redis.ttl(layer.group_key("test.group")) <= 100


class TestFlush:
    async def test_flush_drops_groups_and_queued_messages(
        self, layers: Layers, redis: Redis
    ) -> None:
        layer = layers()
        channel = await layer.new_channel()
        await layer.group_add("test.group", channel)
        await layer.send(channel, {"type": "test.message"})
        await wait_for_queued(layer, channel)
        await layer.flush()
        assert await redis.exists(layer.group_key("test.group")) == 0
        await layer.group_send("test.group", {"type": "test.message"})
        await layer.send(channel, {"type": "test.probe"})
        assert await receive(layer, channel) == {"type": "test.probe"}


async def wait_for_queued(layer: RedisPubSubChannelLayer, channel: str) -> None:
    """Poll (bounded) until a message for ``channel`` has reached this process."""
    probe = await layer.new_channel("test.probe.")
    await layer.send(probe, {"type": "test.probe"})
    # One connection delivers in order: once the probe is in, so is the earlier message
    # when both channels share a shard, which they do with one host.
    await receive(layer, probe)


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
        # Two databases of one server are two shards for groups; pub/sub ignores
        # the database, which is why every message still arrives exactly once.
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
            await layer.send(channel, {"type": "test.message", "n": n})
            return (await receive(layer, channel))["n"]

        assert async_to_sync(round_trip)(1) == 1
        # Warnings are errors: a connection left open by a closed loop would fail here.
        assert async_to_sync(round_trip)(2) == 2


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
            # Each example closed its layer with its own event loop; its group keys
            # are still in Redis until flushed.
            async_to_sync(make_layer.close)()
