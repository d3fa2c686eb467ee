"""RedisPubSubChannelLayer on a real Redis Cluster: sharded pub/sub, slot moves and a failover.

A ``{"cluster": [...]}`` hosts entry makes channels and groups shard
channels: SPUBLISH and SSUBSCRIBE at the master that owns each name's slot.
The cluster (see ``_cluster``) runs on free ports; tests that leave it whole
share one per module, and the failover test gets one of its own.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Final, cast

import pytest
from redis.crc import key_slot

from channels.layers.redis import LayerConnectionError, RedisPubSubChannelLayer
from channels.testing.layers import Capability, LayerOptions, check_channel_layer
from channels.types import ReceivedMessage
from tests._processes import free_port
from tests.layers.redis._cluster import (
    ClusterSet,
    RedisProcess,
    cluster_set,
    command,
    fresh_cluster_set,
    needs_redis_server,
)
from tests.layers.redis._traffic import Traffic, sends_to
from tests.layers.redis.test_pubsub_faults import Hooks

__all__ = ["cluster_set", "fresh_cluster_set"]  # fixtures, imported to be found

pytestmark = needs_redis_server

WAIT: Final = 10.0
"""Seconds a test waits for a message or a re-subscription it expects."""

PUBSUB_CLAIMS: Final = Capability.GROUPS | Capability.FLUSH | Capability.DEEP_COPY


def unique(name: str) -> str:
    return f"{name}{uuid.uuid4().hex[:10]}"


def cluster_host(cluster: ClusterSet) -> dict[str, object]:
    """A layer's hosts entry for ``cluster``, naming every node as a startup node."""
    return {"cluster": cluster.startup_nodes}


def owner(cluster: ClusterSet, name: str) -> RedisProcess:
    """The master that carries the shard channel ``name``."""
    return cluster.owner_of(key_slot(name.encode()))


def group_channel(layer: RedisPubSubChannelLayer, group: str) -> str:
    """The shard channel that carries ``group``, named as on a single server."""
    return f"{layer.prefix}__group__{group}"


def shard_subscribers(node: RedisProcess, name: str) -> int:
    """How many connections on ``node`` are subscribed to the shard channel ``name``."""
    reply = command(node.port, "PUBSUB", "SHARDNUMSUB", name)
    if not isinstance(reply, list) or len(cast("list[object]", reply)) != 2:
        raise AssertionError(f"PUBSUB SHARDNUMSUB on port {node.port} answered {reply!r}")
    return int(str(cast("list[object]", reply)[1]))


def shard_connections(node: RedisProcess) -> int:
    """How many client connections on ``node`` hold at least one shard subscription."""
    reply = command(node.port, "CLIENT", "LIST")
    if not isinstance(reply, str):
        raise AssertionError(f"CLIENT LIST on port {node.port} answered {reply!r}")
    clients = [dict(field.split("=", 1) for field in line.split()) for line in reply.splitlines()]
    return sum(1 for client in clients if client.get("ssub", "0") != "0")


async def until(condition: Callable[[], bool], what: str) -> None:
    """Poll ``condition`` (which may ask Redis, off the event loop) until it holds, bounded."""
    for _ in range(int(WAIT / 0.05)):
        if await asyncio.to_thread(condition):
            return
        await asyncio.sleep(0.05)
    pytest.fail(f"gave up after {WAIT} s waiting until {what}")


async def receive(layer: RedisPubSubChannelLayer, channel: str) -> ReceivedMessage:
    return await asyncio.wait_for(layer.receive(channel), WAIT)


async def channels_on_every_master(
    cluster: ClusterSet, layer: RedisPubSubChannelLayer
) -> dict[int, str]:
    """New channels of ``layer``, one carried by each master: ``{master port: channel}``."""
    found: dict[int, str] = {}
    masters = {master.port for master in cluster.masters()}
    for _ in range(200):
        channel = await layer.new_channel()
        found.setdefault(owner(cluster, channel).port, channel)
        if found.keys() == masters:
            return found
    raise AssertionError(f"200 new channels did not cover the masters {sorted(masters)}")


def groups_on_every_master(cluster: ClusterSet, layer: RedisPubSubChannelLayer) -> dict[int, str]:
    """Group names whose shard channels land one on each master: ``{master port: group}``."""
    found: dict[int, str] = {}
    masters = {master.port for master in cluster.masters()}
    for number in range(200):
        group = f"room{number}"
        found.setdefault(owner(cluster, group_channel(layer, group)).port, group)
        if found.keys() == masters:
            return found
    raise AssertionError(f"200 group names did not cover the masters {sorted(masters)}")


def name_on(cluster: ClusterSet, master: RedisProcess) -> str:
    """A fresh shard channel name that ``master`` carries."""
    for _ in range(200):
        name = unique("test.traffic.")
        if owner(cluster, name) is master:
            return name
    raise AssertionError(f"200 names did not land on the master on port {master.port}")


class Layers:
    """Makes pub/sub layers (each one a process, as Redis sees it) on one cluster."""

    def __init__(self, cluster: ClusterSet) -> None:
        self.cluster = cluster
        self.prefix = unique("tcp")
        self.made: list[RedisPubSubChannelLayer] = []

    def __call__(
        self, hooks: Hooks | None = None, *, capacity: int = 100
    ) -> RedisPubSubChannelLayer:
        layer = RedisPubSubChannelLayer(
            hosts=[cluster_host(self.cluster)],
            prefix=self.prefix,
            on_disconnect=None if hooks is None else hooks.on_disconnect,
            on_reconnect=None if hooks is None else hooks.on_reconnect,
            capacity=capacity,
        )
        self.made.append(layer)
        return layer

    async def close(self) -> None:
        for layer in self.made:
            await layer.close()


@pytest.fixture
async def layers(cluster_set: ClusterSet) -> AsyncIterator[Layers]:
    made = Layers(cluster_set)
    try:
        yield made
    finally:
        await made.close()


class TestConfiguration:
    def test_a_cluster_entry_must_be_the_only_host(self) -> None:
        with pytest.raises(ValueError, match=r"a Redis Cluster entry must be the only host"):
            RedisPubSubChannelLayer(
                hosts=[{"cluster": ["redis://127.0.0.1:7000"]}, "redis://127.0.0.1:6379"]
            )

    async def test_an_unreachable_cluster_raises_layer_connection_error(self) -> None:
        port = free_port()  # nothing listens there
        layer = RedisPubSubChannelLayer(hosts=[{"cluster": [f"redis://127.0.0.1:{port}"]}])
        where = rf"cannot reach Redis at cluster redis://127\.0\.0\.1:{port}: "
        try:
            with pytest.raises(LayerConnectionError, match=where + "could not subscribe to"):
                await layer.new_channel()
            with pytest.raises(LayerConnectionError, match=where):
                await layer.send("test.channel", {"type": "test.message"})
        finally:
            await layer.close()


class TestChannelsAndGroups:
    async def test_the_conformance_kit_passes(self, cluster_set: ClusterSet) -> None:
        made: list[RedisPubSubChannelLayer] = []

        def make(options: LayerOptions) -> RedisPubSubChannelLayer:
            layer = RedisPubSubChannelLayer(
                hosts=[cluster_host(cluster_set)],
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

    async def test_channels_on_every_master_are_shard_channels_there(
        self, cluster_set: ClusterSet, layers: Layers
    ) -> None:
        layer = layers()
        channels = await channels_on_every_master(cluster_set, layer)
        for port, channel in channels.items():
            master = next(node for node in cluster_set.nodes if node.port == port)
            assert shard_subscribers(master, channel) == 1, (port, channel)
            await layer.send(channel, {"type": "test.message", "port": port})
        for port, channel in channels.items():
            assert await receive(layer, channel) == {"type": "test.message", "port": port}

    async def test_one_subscriber_connection_per_master(
        self, cluster_set: ClusterSet, layers: Layers
    ) -> None:
        layer = layers()
        channels = await channels_on_every_master(cluster_set, layer)
        for channel in channels.values():
            for group in groups_on_every_master(cluster_set, layer).values():
                await layer.group_add(group, channel)
        for master in cluster_set.masters():
            assert shard_connections(master) == 1, master.port

    async def test_groups_on_every_master(self, cluster_set: ClusterSet, layers: Layers) -> None:
        layer = layers()
        groups = groups_on_every_master(cluster_set, layer)
        members = [await layer.new_channel() for _ in range(3)]
        for group in groups.values():
            for channel in members:
                await layer.group_add(group, channel)
        for port, group in groups.items():
            master = next(node for node in cluster_set.nodes if node.port == port)
            assert shard_subscribers(master, group_channel(layer, group)) == 1
            await layer.group_send(group, {"type": "test.group", "port": port})
        for channel in members:
            got = [(await receive(layer, channel))["port"] for _ in groups]
            assert sorted(cast("list[int]", got)) == sorted(groups)

    async def test_group_fan_out_is_one_spublish(
        self, cluster_set: ClusterSet, layers: Layers
    ) -> None:
        layer = layers()
        members = [await layer.new_channel() for _ in range(50)]
        for channel in members:
            await layer.group_add("test.fanout", channel)
        masters = cluster_set.masters()
        for master in masters:
            command(master.port, "CONFIG", "RESETSTAT")
        await layer.group_send("test.fanout", {"type": "test.message"})
        for channel in members:
            assert await receive(layer, channel) == {"type": "test.message"}
        calls: dict[str, int] = {}
        for master in masters:
            stats = command(master.port, "INFO", "commandstats")
            assert isinstance(stats, dict)
            for name in ("cmdstat_spublish", "cmdstat_publish"):
                entry = cast("dict[str, dict[str, int]]", stats).get(name, {"calls": 0})
                calls[name] = calls.get(name, 0) + entry["calls"]
        assert calls == {"cmdstat_spublish": 1, "cmdstat_publish": 0}

    async def test_two_processes_reach_each_others_channels_and_groups(
        self, layers: Layers
    ) -> None:
        first, second = layers(), layers()
        mine, theirs = await first.new_channel(), await second.new_channel()
        await first.group_add("test.shared", mine)
        await second.group_add("test.shared", theirs)
        await first.send(theirs, {"type": "test.to", "from": "first"})
        await second.send(mine, {"type": "test.to", "from": "second"})
        assert await receive(second, theirs) == {"type": "test.to", "from": "first"}
        assert await receive(first, mine) == {"type": "test.to", "from": "second"}
        for sender in (first, second):
            await sender.group_send("test.shared", {"type": "test.all", "by": sender is first})
            assert await receive(first, mine) == {"type": "test.all", "by": sender is first}
            assert await receive(second, theirs) == {"type": "test.all", "by": sender is first}

    async def test_the_last_group_discard_unsubscribes_the_group(
        self, cluster_set: ClusterSet, layers: Layers
    ) -> None:
        layer = layers()
        channel = await layer.new_channel()
        await layer.group_add("test.leaving", channel)
        master = owner(cluster_set, group_channel(layer, "test.leaving"))
        assert shard_subscribers(master, group_channel(layer, "test.leaving")) == 1
        await layer.group_discard("test.leaving", channel)
        await until(
            lambda: shard_subscribers(master, group_channel(layer, "test.leaving")) == 0,
            "the group's shard channel has no subscriber",
        )
        # The channel itself stays subscribed.
        await layer.send(channel, {"type": "test.still"})
        assert await receive(layer, channel) == {"type": "test.still"}

    async def test_resp3_connections(self, cluster_set: ClusterSet) -> None:
        layer = RedisPubSubChannelLayer(
            hosts=[{**cluster_host(cluster_set), "protocol": 3}], prefix=unique("tcp")
        )
        try:
            channel = await layer.new_channel()
            await layer.group_add("test.resp3", channel)
            await layer.send(channel, {"type": "test.direct"})
            await layer.group_send("test.resp3", {"type": "test.group"})
            assert await receive(layer, channel) == {"type": "test.direct"}
            assert await receive(layer, channel) == {"type": "test.group"}
        finally:
            await layer.close()


class TestSlotMigration:
    def test_the_helper_moves_a_slot_and_its_keys(self, cluster_set: ClusterSet) -> None:
        tag = unique("tcm")
        keys = [f"{{{tag}}}key{number}" for number in range(250)]  # one slot: the hash tag
        slot = key_slot(keys[0].encode())
        source = cluster_set.owner_of(slot)
        for key in keys:
            assert command(source.port, "SET", key, key) is True
        target = next(master for master in cluster_set.masters() if master is not source)
        cluster_set.migrate_slot(slot, target)
        assert cluster_set.owner_of(slot) is target
        assert command(target.port, "CLUSTER", "COUNTKEYSINSLOT", str(slot)) == len(keys)
        assert command(source.port, "CLUSTER", "COUNTKEYSINSLOT", str(slot)) == 0
        assert command(target.port, "GET", keys[-1]) == keys[-1]

    async def test_delivery_goes_on_after_the_slots_of_a_channel_and_a_group_move(
        self, cluster_set: ClusterSet, layers: Layers
    ) -> None:
        hooks = Hooks()
        layer, sender = layers(hooks), layers()
        channel = await layer.new_channel()
        await layer.group_add("test.moving", channel)
        names = [channel, group_channel(layer, "test.moving")]
        traffic = Traffic(sends_to(sender, unique("traffic")))
        traffic.start()
        try:
            for name in names:
                slot = key_slot(name.encode())
                source = cluster_set.owner_of(slot)
                target = next(master for master in cluster_set.masters() if master is not source)
                await asyncio.to_thread(cluster_set.migrate_slot, slot, target)
                # The old owner let the name go; the layer subscribes it at the new one.
                await until(
                    lambda: shard_subscribers(target, name) == 1,  # noqa: B023 -- awaited here
                    f"{name!r} is subscribed on its new owner, port {target.port}",
                )
                assert shard_subscribers(source, name) == 0
        finally:
            await traffic.stop()
        # Senders followed the moves without a failure: a move is not an outage.
        assert traffic.phases() == ["ok"], traffic.phases()
        assert (hooks.disconnects, hooks.reconnects) == (0, 0)
        await sender.send(channel, {"type": "test.direct"})
        assert await receive(layer, channel) == {"type": "test.direct"}
        await sender.group_send("test.moving", {"type": "test.group"})
        assert await receive(layer, channel) == {"type": "test.group"}

    async def test_a_subscription_made_with_a_stale_slot_map_follows_moved(
        self, cluster_set: ClusterSet, layers: Layers
    ) -> None:
        layer = layers()
        channel = await layer.new_channel()  # the layer has read the slot map
        group = unique("test.stale")
        name = group_channel(layer, group)
        slot = key_slot(name.encode())
        source = cluster_set.owner_of(slot)
        target = next(master for master in cluster_set.masters() if master is not source)
        await asyncio.to_thread(cluster_set.migrate_slot, slot, target)
        command(source.port, "CONFIG", "RESETSTAT")
        # The layer's slot map still names the old owner, which answers MOVED.
        await layer.group_add(group, channel)
        stats = command(source.port, "INFO", "commandstats")
        assert isinstance(stats, dict)
        refused = cast("dict[str, dict[str, int]]", stats)["cmdstat_ssubscribe"]
        assert refused["rejected_calls"] == 1, refused
        assert shard_subscribers(target, name) == 1
        await layer.group_send(group, {"type": "test.group"})
        assert await receive(layer, channel) == {"type": "test.group"}


class TestFailover:
    async def test_the_same_layer_keeps_delivering_after_a_master_fails_over(
        self, fresh_cluster_set: ClusterSet
    ) -> None:
        cluster = fresh_cluster_set
        made = Layers(cluster)
        hooks, bystander_hooks = Hooks(), Hooks()
        layer, bystander = made(hooks), made(bystander_hooks)
        try:
            channels = await channels_on_every_master(cluster, layer)
            groups = groups_on_every_master(cluster, layer)
            victim = next(master for master in cluster.masters() if master.port in channels)
            doomed, group = channels[victim.port], groups[victim.port]
            await layer.group_add(group, channels[victim.port])
            await channels_on_every_master(cluster, bystander)
            # Started before the kill, waiting on a channel of the killed master.
            waiting = asyncio.create_task(receive(layer, doomed))
            traffic = Traffic(sends_to(layer, name_on(cluster, victim)))
            traffic.start()
            await until(lambda: bool(traffic.acknowledged), "the first send before the failover")
            failover = asyncio.create_task(asyncio.to_thread(cluster.kill_master, victim))
            # A layer closed while it waits for the promotion stops cleanly.
            await asyncio.wait_for(bystander_hooks.changed.wait(), WAIT)
            await bystander.close()
            promoted, _ = await failover
            await traffic.stop()

            # Sends failed only while no master answered, and only with LayerConnectionError.
            assert traffic.phases() in (["ok", "error", "ok"], ["ok", "error"]), traffic.phases()
            # Once the replica is promoted, the same layer object sends at once...
            await layer.send(unique("nobody"), {"type": "test.after"})
            # ... and, once it has subscribed again on the new master, receives.
            await hooks.wait_for_reconnects(1)
            assert hooks.disconnects == 1
            assert shard_subscribers(promoted, doomed) == 1
            assert shard_subscribers(promoted, group_channel(layer, group)) == 1
            assert not waiting.done()
            await layer.send(doomed, {"type": "test.for the waiter"})
            assert await waiting == {"type": "test.for the waiter"}
            await layer.group_send(group, {"type": "test.group"})
            assert await receive(layer, doomed) == {"type": "test.group"}
            # Channels on the masters that stayed up were never disturbed.
            for port, channel in channels.items():
                if port != victim.port:
                    await layer.send(channel, {"type": "test.alive"})
                    assert await receive(layer, channel) == {"type": "test.alive"}
            # New channels land on every master again, the promoted one included.
            fresh = await channels_on_every_master(cluster, layer)
            assert promoted.port in fresh
        finally:
            await made.close()
