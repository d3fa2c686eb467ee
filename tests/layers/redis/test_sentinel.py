"""Both Redis layers through a real Sentinel set: traffic, the conformance kit, and a failover.

A ``hosts`` entry ``{"sentinels": [...], "master_name": ...}`` makes a layer
ask the Sentinels for the master. The set (see ``_cluster``) runs on free
ports; the tests that kill its master get a set of their own.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

import pytest

from channels.layers.redis import RedisChannelLayer, RedisPubSubChannelLayer
from channels.testing.layers import Capability, LayerOptions, check_channel_layer
from tests.layers.redis._cluster import (
    SentinelSet,
    command,
    fresh_sentinel_set,
    needs_redis_server,
    sentinel_set,
)
from tests.layers.redis._traffic import Traffic, sends_to

__all__ = ["fresh_sentinel_set", "sentinel_set"]  # fixtures, imported to be found

pytestmark = needs_redis_server

WAIT = 10.0
"""Seconds a test waits for a message it expects; the layers reconnect within that."""

CORE_CLAIMS = (
    Capability.QUEUES
    | Capability.GROUPS
    | Capability.FLUSH
    | Capability.CAPACITY
    | Capability.DEEP_COPY
)
PUBSUB_CLAIMS = Capability.GROUPS | Capability.FLUSH | Capability.DEEP_COPY

AnyLayer = RedisChannelLayer | RedisPubSubChannelLayer


def unique(name: str) -> str:
    return f"{name}{uuid.uuid4().hex[:10]}"


async def receive(layer: AnyLayer, channel: str) -> dict[str, object]:
    return dict(await asyncio.wait_for(layer.receive(channel), WAIT))


class TestCoreLayerThroughSentinel:
    async def test_messages_go_through_the_master_the_sentinels_name(
        self, sentinel_set: SentinelSet
    ) -> None:
        prefix = unique("tcs")
        layer = RedisChannelLayer(hosts=[sentinel_set.host()], prefix=prefix)
        try:
            await layer.send("plain", {"type": "hello", "n": 1})
            keys = command(sentinel_set.master.port, "KEYS", f"{prefix}*")
            assert isinstance(keys, list)
            assert keys, "the message is not on the Sentinel master"
            assert await receive(layer, "plain") == {"type": "hello", "n": 1}
            specific = await layer.new_channel()
            await layer.send(specific, {"type": "mine"})
            assert await receive(layer, specific) == {"type": "mine"}
        finally:
            await layer.close()

    async def test_groups(self, sentinel_set: SentinelSet) -> None:
        layer = RedisChannelLayer(hosts=[sentinel_set.host()], prefix=unique("tcs"))
        try:
            first, second = await layer.new_channel(), await layer.new_channel()
            await layer.group_add("room", first)
            await layer.group_add("room", second)
            await layer.group_send("room", {"type": "all"})
            assert await receive(layer, first) == {"type": "all"}
            assert await receive(layer, second) == {"type": "all"}
            await layer.group_discard("room", first)
            await layer.group_send("room", {"type": "second only"})
            assert await receive(layer, second) == {"type": "second only"}
            await layer.send(first, {"type": "direct"})
            assert await receive(layer, first) == {"type": "direct"}
        finally:
            await layer.close()

    async def test_conformance_kit(self, sentinel_set: SentinelSet) -> None:
        base = unique("tck")
        count = 0

        def make(options: LayerOptions) -> RedisChannelLayer:
            nonlocal count
            count += 1
            return RedisChannelLayer(
                hosts=[sentinel_set.host()],
                prefix=f"{base}.{count}.",
                expiry=options.expiry,
                group_expiry=options.group_expiry,
                capacity=options.capacity,
            )

        assert await check_channel_layer(make, CORE_CLAIMS)


class TestPubSubLayerThroughSentinel:
    async def test_messages_go_through_the_master_the_sentinels_name(
        self, sentinel_set: SentinelSet
    ) -> None:
        layer = RedisPubSubChannelLayer(hosts=[sentinel_set.host()], prefix=unique("tcp"))
        try:
            channel = await layer.new_channel()
            subscribed = command(sentinel_set.master.port, "PUBSUB", "CHANNELS", channel)
            assert subscribed == [channel], (
                f"new_channel() did not subscribe on the Sentinel master (port "
                f"{sentinel_set.master.port}); PUBSUB CHANNELS there: {subscribed!r}"
            )
            await layer.send(channel, {"type": "hello"})
            assert await receive(layer, channel) == {"type": "hello"}
        finally:
            await layer.close()

    async def test_groups(self, sentinel_set: SentinelSet) -> None:
        layer = RedisPubSubChannelLayer(hosts=[sentinel_set.host()], prefix=unique("tcp"))
        try:
            first, second = await layer.new_channel(), await layer.new_channel()
            await layer.group_add("room", first)
            await layer.group_add("room", second)
            await layer.group_send("room", {"type": "all"})
            assert await receive(layer, first) == {"type": "all"}
            assert await receive(layer, second) == {"type": "all"}
        finally:
            await layer.close()

    async def test_conformance_kit(self, sentinel_set: SentinelSet) -> None:
        made: list[RedisPubSubChannelLayer] = []

        def make(options: LayerOptions) -> RedisPubSubChannelLayer:
            layer = RedisPubSubChannelLayer(
                hosts=[sentinel_set.host()],
                prefix=unique("tck"),
                expiry=options.expiry,
                group_expiry=options.group_expiry,
                capacity=options.capacity,
            )
            made.append(layer)
            return layer

        try:
            assert await check_channel_layer(make, PUBSUB_CLAIMS)
        finally:
            for layer in made:
                await layer.close()


async def failover_during(sentinels: SentinelSet, layer: AnyLayer, traffic: Traffic) -> float:
    """Kill the master while ``traffic`` runs; return the seconds until the promotion."""
    traffic.start()
    await _until(lambda: bool(traffic.acknowledged), "the first send before the failover")
    seconds = await asyncio.to_thread(sentinels.kill_master)
    await traffic.stop()
    return seconds


async def _until(condition: Callable[[], bool], what: str) -> None:
    for _ in range(int(WAIT / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    pytest.fail(f"gave up after {WAIT} s waiting for {what}")


class TestFailover:
    async def test_core_layer_keeps_working_when_sentinel_promotes_the_replica(
        self, fresh_sentinel_set: SentinelSet
    ) -> None:
        sentinels = fresh_sentinel_set
        layer = RedisChannelLayer(hosts=[sentinels.host()], prefix=unique("tcf"), capacity=100_000)
        try:
            waiting_channel = await layer.new_channel()
            # Started before the kill: failover_during's first send makes it wait.
            waiting = asyncio.create_task(receive(layer, waiting_channel))
            traffic = Traffic(sends_to(layer, "traffic"))
            await failover_during(sentinels, layer, traffic)

            # Sends failed only while no master answered, and only with LayerConnectionError.
            assert traffic.phases() in (["ok", "error", "ok"], ["ok", "error"]), traffic.phases()
            # Once the Sentinels name the new master, the same layer object sends at once.
            await layer.send("after", {"type": "after"})
            assert await receive(layer, "after") == {"type": "after"}
            # The receiver that waited through the failover carries on.
            assert not waiting.done()
            await layer.send(waiting_channel, {"type": "for the waiter"})
            assert await waiting == {"type": "for the waiter"}
        finally:
            await layer.close()

    async def test_core_layer_messages_sent_after_the_promotion_all_arrive(
        self, fresh_sentinel_set: SentinelSet
    ) -> None:
        sentinels = fresh_sentinel_set
        layer = RedisChannelLayer(hosts=[sentinels.host()], prefix=unique("tcf"), capacity=100_000)
        try:
            traffic = Traffic(sends_to(layer, "traffic"))
            await failover_during(sentinels, layer, traffic)
            # Those sent before the kill may be lost (replication is asynchronous);
            # every send that returned after the outage reached the new master.
            await layer.send("traffic", {"type": "t", "n": -1})
            later = [*traffic.after_outage, -1]
            received: list[int] = []
            while received[-1:] != [-1]:
                number = (await receive(layer, "traffic"))["n"]
                assert isinstance(number, int)
                received.append(number)
            assert set(later) <= set(received), sorted(set(later) - set(received))
            assert received[:-1] == sorted(received[:-1]), "per-channel order broke"
        finally:
            await layer.close()

    async def test_pubsub_layer_keeps_working_when_sentinel_promotes_the_replica(
        self, fresh_sentinel_set: SentinelSet
    ) -> None:
        sentinels = fresh_sentinel_set
        reconnected = asyncio.Event()

        async def on_reconnect() -> None:
            reconnected.set()

        layer = RedisPubSubChannelLayer(
            hosts=[sentinels.host()], prefix=unique("tcf"), on_reconnect=on_reconnect
        )
        try:
            waiting_channel = await layer.new_channel()
            waiting = asyncio.create_task(receive(layer, waiting_channel))
            traffic = Traffic(sends_to(layer, unique("traffic")))
            await failover_during(sentinels, layer, traffic)

            assert traffic.phases() in (["ok", "error", "ok"], ["ok", "error"]), traffic.phases()
            await layer.send("nobody", {"type": "after"})
            # The subscriber resubscribes on the new master, then the waiter gets its message.
            await asyncio.wait_for(reconnected.wait(), WAIT)
            assert not waiting.done()
            await layer.send(waiting_channel, {"type": "for the waiter"})
            assert await waiting == {"type": "for the waiter"}
        finally:
            await layer.close()
