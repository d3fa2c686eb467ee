"""RedisChannelLayer on a real Redis Cluster (three masters, one replica each).

A ``hosts`` entry ``{"cluster": [startup node URLs]}`` puts the layer in
cluster mode: every key carries a hash tag and no command touches two slots
(see ``_layout``). The module shares one cluster; tests that kill a master or
move slots get a cluster of their own. The configuration checks at the end
need no server.
"""

from __future__ import annotations

import asyncio
import binascii
import os
import re
import signal
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import cast

import pytest
import redis
import redis.asyncio
from redis.crc import key_slot

from channels.exceptions import ChannelFull
from channels.layers.redis import LayerConnectionError, RedisChannelLayer
from channels.layers.redis._layout import NORMAL_BUCKETS
from channels.layers.redis._memberships import Memberships
from channels.testing.layers import Capability, LayerOptions, check_channel_layer
from tests.layers.redis._cluster import (
    ClusterSet,
    cluster_set,
    command,
    fresh_cluster_set,
    needs_redis_server,
)
from tests.layers.redis._traffic import Traffic

__all__ = ["cluster_set", "fresh_cluster_set"]  # fixtures, imported to be found

WAIT = 10.0
"""Seconds a test waits for a message it expects; the layer follows a failover within that."""

CLAIMS = (
    Capability.QUEUES
    | Capability.GROUPS
    | Capability.FLUSH
    | Capability.CAPACITY
    | Capability.DEEP_COPY
)


def unique(name: str) -> str:
    return f"{name}{uuid.uuid4().hex[:10]}"


def layer_on(cluster: ClusterSet, **options: object) -> RedisChannelLayer:
    prefix = str(options.pop("prefix", unique("tcc")))
    # The options are RedisChannelLayer's keyword arguments, each test's own types.
    return RedisChannelLayer(hosts=[{"cluster": cluster.startup_nodes}], prefix=prefix, **options)  # type: ignore[arg-type]


async def receive(layer: RedisChannelLayer, channel: str) -> dict[str, object]:
    return dict(await asyncio.wait_for(layer.receive(channel), WAIT))


def channel_key(prefix: str, channel: str) -> str:
    """The key of ``channel`` in cluster mode, as the README's table has it.

    A process's channels share ``P{proc!}``; a normal channel ``c`` is
    ``P{b}c``, ``b`` being its CRC32 bucket.
    """
    bang = channel.find("!")
    if bang != -1:
        return f"{prefix}{{{channel[: bang + 1]}}}"
    return f"{prefix}{{{binascii.crc32(channel.encode()) % NORMAL_BUCKETS}}}{channel}"


def group_key(prefix: str, group: str) -> str:
    return f"{prefix}:group:{{{group}}}"


def slot(key: str) -> int:
    return key_slot(key.encode("utf-8"))


def raw(port: int, *args: str) -> object:
    """Run one command on the node at ``port`` and return the reply undecoded (bytes)."""
    client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=2.0)
    try:
        # redis-py leaves execute_command (and its reply) unannotated.
        return cast(object, client.execute_command(*args))  # type: ignore[no-untyped-call]
    finally:
        client.close()


def keys_on(port: int, prefix: str) -> list[str]:
    """The keys under ``prefix`` on one node (KEYS is fine on a test's own cluster)."""
    reply = command(port, "KEYS", prefix.replace("[", "\\[") + "*")
    assert isinstance(reply, list), f"KEYS on port {port} answered {reply!r}"
    return sorted(str(key) for key in cast("list[object]", reply))


def stats(port: int, section: str) -> dict[str, object]:
    reply = command(port, "INFO", section)
    assert isinstance(reply, dict), f"INFO {section} on port {port} answered {reply!r}"
    return cast("dict[str, object]", reply)


def calls(port: int, command_name: str) -> int:
    """How many times the node has run ``command_name`` (INFO commandstats)."""
    entry = stats(port, "commandstats").get(f"cmdstat_{command_name}")
    if not isinstance(entry, dict):
        return 0
    return int(str(cast("dict[str, object]", entry)["calls"]))


class Slots:
    """The cluster's slot map as one master reports it: which master's port owns each slot."""

    def __init__(self, cluster: ClusterSet) -> None:
        reply = command(cluster.masters()[0].port, "CLUSTER", "SLOTS")
        assert isinstance(reply, list)
        self.ranges: list[tuple[int, int, int]] = []
        for entry in cast("list[list[object]]", reply):
            primary = cast("list[object]", entry[2])
            self.ranges.append((int(str(entry[0])), int(str(entry[1])), int(str(primary[1]))))

    def port(self, slot_number: int) -> int:
        for start, end, port in self.ranges:
            if start <= slot_number <= end:
                return port
        raise AssertionError(f"no master owns slot {slot_number}: {self.ranges}")

    def port_of(self, key: str) -> int:
        return self.port(slot(key))

    def pick(self, port: int, names: Callable[[int], str], key: Callable[[str], str]) -> str:
        """The first of ``names(0), names(1), ...`` whose ``key`` is on the master at ``port``."""
        for number in range(100_000):
            name = names(number)
            if self.port_of(key(name)) == port:
                return name
        raise AssertionError(f"no name lands on the master at port {port}")


async def until(condition: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    """Poll ``condition`` (which may ask a server) until it holds; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up after {timeout} s waiting until {what}")
        await asyncio.sleep(0.02)


def blocked_on(port: int) -> int:
    """How many clients of the node at ``port`` are blocked in BZPOPMIN."""
    listing = command(port, "CLIENT", "LIST")
    assert isinstance(listing, str), f"CLIENT LIST on port {port} answered {listing!r}"
    return sum(
        "cmd=bzpopmin" in line and "b" in line.split(" flags=")[1].split(" ")[0]
        for line in listing.splitlines()
    )


async def wait_for_time(moment: float) -> None:
    """Poll (bounded) until the wall clock passes ``moment``: expiry reads it."""
    deadline = time.monotonic() + WAIT
    while time.time() <= moment:
        if time.monotonic() > deadline:
            pytest.fail(f"the clock did not pass {moment} within {WAIT} s")
        await asyncio.sleep(0.05)


@needs_redis_server
class TestConformance:
    async def test_conformance_kit(self, cluster_set: ClusterSet) -> None:
        base = unique("tck")
        count = 0

        def make(options: LayerOptions) -> RedisChannelLayer:
            nonlocal count
            count += 1
            return RedisChannelLayer(
                hosts=[{"cluster": cluster_set.startup_nodes}],
                prefix=f"{base}.{count}.",
                expiry=options.expiry,
                group_expiry=options.group_expiry,
                capacity=options.capacity,
            )

        assert await check_channel_layer(make, CLAIMS)


@needs_redis_server
class TestKeyLayout:
    async def test_every_key_has_one_hash_tag_and_a_process_shares_one_key(
        self, cluster_set: ClusterSet
    ) -> None:
        layer = layer_on(cluster_set)
        prefix = layer.prefix
        slots = Slots(cluster_set)
        masters = cluster_set.masters()
        normal = [
            slots.pick(m.port, lambda n: f"plain{n}.x", lambda c: channel_key(prefix, c))
            for m in masters
        ]
        groups = [
            slots.pick(m.port, lambda n: f"room{n}", lambda g: group_key(prefix, g))
            for m in masters
        ]
        try:
            specific = [await layer.new_channel() for _ in range(3)]
            for channel in [*normal, *specific]:
                await layer.send(channel, {"type": "direct", "to": channel})
            for group in groups:
                for channel in [*normal, *specific]:
                    await layer.group_add(group, channel)

            found: dict[int, list[str]] = {m.port: keys_on(m.port, prefix) for m in masters}
            every = [key for keys in found.values() for key in keys]
            expected = {
                *(channel_key(prefix, c) for c in normal),
                channel_key(prefix, specific[0]),
                *(group_key(prefix, g) for g in groups),
                *(f"{group_key(prefix, g)}:v" for g in groups),
            }
            assert set(every) == expected
            assert len(every) == len(expected), "a key is on two masters"
            for port, keys in found.items():
                assert keys, f"the master at port {port} holds none of the layer's keys"
                for key in keys:
                    assert key.count("{") == key.count("}") == 1, key
                    assert key.index("{") < key.index("}") - 1, key
                    server_slot = command(port, "CLUSTER", "KEYSLOT", key)
                    assert server_slot == slot(key)
                    assert slots.port(slot(key)) == port
            # Every process-specific channel of the layer is in one key (one slot).
            process_keys = [key for key in every if "!" in key]
            assert process_keys == [channel_key(prefix, specific[0])]
            owner = slots.port_of(process_keys[0])
            assert command(owner, "ZCARD", process_keys[0]) == len(specific)

            # Channels and groups on every master work together.
            for channel in [*normal, *specific]:
                assert await receive(layer, channel) == {"type": "direct", "to": channel}
            for group in groups:
                await layer.group_send(group, {"type": "group", "group": group})
            for channel in [*normal, *specific]:
                got = [(await receive(layer, channel))["group"] for _ in groups]
                assert sorted(cast("list[str]", got)) == sorted(groups)
            await layer.group_discard(groups[0], normal[1])
            await layer.group_send(groups[0], {"type": "after discard"})
            await layer.send(normal[1], {"type": "marker"})
            assert await receive(layer, normal[1]) == {"type": "marker"}
            assert await receive(layer, normal[0]) == {"type": "after discard"}
        finally:
            await layer.flush()
            await layer.close()


@needs_redis_server
class TestAsOnOneServer:
    async def test_expired_messages_and_memberships_are_dropped(
        self, cluster_set: ClusterSet
    ) -> None:
        layer = layer_on(cluster_set, expiry=1, group_expiry=1)
        try:
            specific = await layer.new_channel()
            channels = ["expiring.a", "expiring.b", specific]
            sent_at = time.time()
            for channel in channels:
                await layer.send(channel, {"type": "old"})
                await layer.group_add("lapsing", channel)
            # The layer trims messages by whole seconds, memberships to the moment.
            await wait_for_time(max(int(sent_at) + 2, time.time() + 1))
            # The memberships have lapsed: this reaches nobody.
            await layer.group_send("lapsing", {"type": "group"})
            for channel in channels:
                await layer.send(channel, {"type": "new"})
            for channel in channels:
                assert await receive(layer, channel) == {"type": "new"}
        finally:
            await layer.flush()
            await layer.close()

    async def test_capacity_and_channel_capacity_patterns(self, cluster_set: ClusterSet) -> None:
        layer = layer_on(
            cluster_set,
            capacity=2,
            channel_capacity={"tight.*": 1, re.compile(r"^wide\."): 4},
        )
        try:
            for channel, capacity in (("plain.c", 2), ("tight.c", 1), ("wide.c", 4)):
                for number in range(capacity):
                    await layer.send(channel, {"type": "fill", "n": number})
                with pytest.raises(ChannelFull):
                    await layer.send(channel, {"type": "one too many"})
            # A process's channels count together, in their shared key.
            first, second = await layer.new_channel(), await layer.new_channel()
            await layer.send(first, {"type": "one"})
            await layer.send(second, {"type": "two"})
            with pytest.raises(ChannelFull):
                await layer.send(first, {"type": "three"})
            # group_send skips full members and reaches the others.
            for channel in ("plain.c", "tight.c", "roomy.c"):
                await layer.group_add("mixed", channel)
            await layer.group_send("mixed", {"type": "group"})
            assert await receive(layer, "roomy.c") == {"type": "group"}
            assert [(await receive(layer, "plain.c"))["n"] for _ in range(2)] == [0, 1]
            await layer.send("plain.c", {"type": "marker"})
            assert await receive(layer, "plain.c") == {"type": "marker"}
            assert await receive(layer, first) == {"type": "one"}
            assert await receive(layer, second) == {"type": "two"}
        finally:
            await layer.flush()
            await layer.close()

    async def test_symmetric_encryption(self, cluster_set: ClusterSet) -> None:
        pytest.importorskip("cryptography", reason="symmetric encryption needs cryptography")
        keys = ["first secret", "older secret"]
        layer = layer_on(cluster_set, symmetric_encryption_keys=keys)
        older = layer_on(cluster_set, prefix=layer.prefix, symmetric_encryption_keys=keys[1:])
        slots = Slots(cluster_set)
        try:
            specific = await layer.new_channel()
            await layer.send("secret.c", {"type": "hush", "text": "plaintext marker"})
            key = channel_key(layer.prefix, "secret.c")
            stored = raw(slots.port_of(key), "ZRANGE", key, "0", "-1")
            assert isinstance(stored, list)
            assert len(cast("list[bytes]", stored)) == 1
            assert b"plaintext marker" not in cast("list[bytes]", stored)[0]
            assert await receive(layer, "secret.c") == {"type": "hush", "text": "plaintext marker"}
            # Sent with the older key, read with the list that still has it.
            await older.send(specific, {"type": "from older"})
            assert await receive(layer, specific) == {"type": "from older"}
            await layer.group_add("hushed", specific)
            await layer.group_add("hushed", "secret.c")
            await layer.group_send("hushed", {"type": "group"})
            assert await receive(layer, specific) == {"type": "group"}
            assert await receive(layer, "secret.c") == {"type": "group"}
        finally:
            await layer.flush()
            await layer.close()
            await older.close()

    async def test_flush_removes_the_keys_on_every_master(self, cluster_set: ClusterSet) -> None:
        layer = layer_on(cluster_set)
        prefix = layer.prefix
        masters = cluster_set.masters()
        slots = Slots(cluster_set)
        try:
            specific = await layer.new_channel()
            for index, master in enumerate(masters):
                channel = slots.pick(
                    master.port, lambda n: f"flushed{n}", lambda c: channel_key(prefix, c)
                )
                await layer.send(channel, {"type": "gone"})
                await layer.group_add(f"room{index}", channel)
                await layer.group_add(f"room{index}", specific)
            await layer.send(specific, {"type": "gone"})
            assert all(keys_on(master.port, prefix) for master in masters)

            await layer.flush()
            assert {master.port: keys_on(master.port, prefix) for master in masters} == {
                master.port: [] for master in masters
            }
            # Still usable, and the groups are gone.
            await layer.group_send("room0", {"type": "nobody"})
            await layer.send(specific, {"type": "after"})
            assert await receive(layer, specific) == {"type": "after"}
        finally:
            await layer.flush()
            await layer.close()

    async def test_close_then_reuse(self, cluster_set: ClusterSet) -> None:
        layer = layer_on(cluster_set)
        masters = cluster_set.masters()
        try:
            specific = await layer.new_channel()
            await layer.send("kept.c", {"type": "before close"})
            await layer.send(specific, {"type": "before close"})
            waiting = asyncio.create_task(receive(layer, await layer.new_channel()))
            await until(
                lambda: sum(blocked_on(master.port) for master in masters) == 1,
                "the waiting receive's reader blocks",
            )
            await layer.close()
            waiting.cancel()
            # New connections, same messages: close() took nothing from Redis.
            assert await receive(layer, "kept.c") == {"type": "before close"}
            assert await receive(layer, specific) == {"type": "before close"}
            await layer.close()
            await layer.send("kept.c", {"type": "after close"})
            assert await receive(layer, "kept.c") == {"type": "after close"}
        finally:
            await layer.flush()
            await layer.close()


@needs_redis_server
class TestCost:
    async def test_group_send_to_300_members_costs_one_pipeline_per_node(
        self, cluster_set: ClusterSet
    ) -> None:
        prefix = unique("tcg")
        sender = layer_on(cluster_set, prefix=prefix)
        others = [layer_on(cluster_set, prefix=prefix) for _ in range(4)]
        masters = cluster_set.masters()
        slots = Slots(cluster_set)
        try:
            normal = [f"fan{number}.c" for number in range(200)]
            specific: dict[RedisChannelLayer, list[str]] = {}
            for other in others:  # no await in a nested comprehension: Python 3.10
                specific[other] = [await other.new_channel() for _ in range(25)]
            members = [*normal, *(c for channels in specific.values() for c in channels)]
            for channel in members:
                await sender.group_add("crowd", channel)

            member_slots = {slot(channel_key(prefix, channel)) for channel in members}
            expected = Counter(slots.port(number) for number in member_slots)
            expected[slots.port_of(group_key(prefix, "crowd"))] += 1  # reading the members
            assert set(expected) == {master.port for master in masters}
            # Normal channels share at most NORMAL_BUCKETS slots; each process has one.
            assert sum(expected.values()) <= NORMAL_BUCKETS + len(others) + 1

            async def fan_out(message: dict[str, object]) -> None:
                await sender.group_send("crowd", message)
                for channel in normal:
                    assert await receive(sender, channel) == message
                for other, channels in specific.items():
                    got = await asyncio.gather(*(receive(other, c) for c in channels))
                    assert got == [message] * len(channels)

            # The first group_send loads the scripts on each master.
            await fan_out({"type": "warm"})
            before = {m.port: (calls(m.port, "evalsha"), calls(m.port, "eval")) for m in masters}
            reads_before = {
                m.port: int(str(stats(m.port, "stats")["total_reads_processed"])) for m in masters
            }
            await sender.group_send("crowd", {"type": "counted"})
            reads = {
                m.port: int(str(stats(m.port, "stats")["total_reads_processed"]))
                - reads_before[m.port]
                for m in masters
            }
            after = {m.port: (calls(m.port, "evalsha"), calls(m.port, "eval")) for m in masters}
            # One script call per slot holding members, per node: not one per member.
            assert {port: after[port][0] - before[port][0] for port in after} == dict(expected)
            assert all(after[port][1] == before[port][1] for port in after)
            # All of them came to each node in a batch: a handful of socket reads
            # (this test's own INFO included; 5 or 6 seen, 7 once under load), not
            # one per call (at least 10 on every node: the buckets' slots are fixed).
            for port, count in reads.items():
                assert count <= 8 < expected[port], (port, count, expected[port])

            # Each member got it exactly once: the next message is a marker.
            for channel in normal:
                assert await receive(sender, channel) == {"type": "counted"}
                await sender.send(channel, {"type": "marker"})
                assert await receive(sender, channel) == {"type": "marker"}
            for other, channels in specific.items():
                got = await asyncio.gather(*(receive(other, c) for c in channels))
                assert got == [{"type": "counted"}] * len(channels)
                for channel in channels:
                    await sender.send(channel, {"type": "marker"})
                got = await asyncio.gather(*(receive(other, c) for c in channels))
                assert got == [{"type": "marker"}] * len(channels)
        finally:
            await sender.flush()
            for layer in [sender, *others]:
                await layer.close()

    async def test_receivers_on_many_process_channels_share_one_connection(
        self, cluster_set: ClusterSet
    ) -> None:
        layer = layer_on(cluster_set)
        masters = cluster_set.masters()

        def blocked() -> int:
            return sum(blocked_on(master.port) for master in masters)

        def connected() -> int:
            return sum(int(str(stats(m.port, "clients")["connected_clients"])) for m in masters)

        try:
            channels = [await layer.new_channel() for _ in range(50)]
            await layer.send("warm.c", {"type": "warm"})  # the layer's command connection
            assert await receive(layer, "warm.c") == {"type": "warm"}
            before = connected()
            waiting = [asyncio.create_task(receive(layer, c)) for c in channels]
            await until(lambda: blocked() >= 1, "a reader blocks in BZPOPMIN")
            assert blocked() == 1
            # One more connection for the reader (and one for this count), not 50.
            assert connected() - before <= 2
            for number, channel in enumerate(channels):
                await layer.send(channel, {"type": "yours", "n": number})
            got = await asyncio.gather(*waiting)
            assert got == [{"type": "yours", "n": number} for number in range(len(channels))]
        finally:
            await layer.flush()
            await layer.close()


async def drain(layer: RedisChannelLayer, channel: str, last: int) -> list[int]:
    """Receive ``channel``'s numbered messages up to the one numbered ``last``."""
    received: list[int] = []
    while received[-1:] != [last]:
        number = (await receive(layer, channel))["n"]
        assert isinstance(number, int)
        received.append(number)
    return received


@needs_redis_server
class TestGroupSendPlans:
    async def test_members_who_join_or_leave_between_sends_are_followed(
        self, cluster_set: ClusterSet
    ) -> None:
        # group_send keeps each group's calls while its members stay (_fanout).
        layer = layer_on(cluster_set)
        other = layer_on(cluster_set, prefix=layer.prefix)
        try:
            names = [f"plan{number}.c" for number in range(40)]
            process = [await other.new_channel() for _ in range(3)]
            for name in [*names[:30], *process[:2]]:
                await layer.group_add("room", name)
            await layer.group_send("room", {"type": "one"})
            for name in names[:30]:
                assert await receive(layer, name) == {"type": "one"}
            for name in process[:2]:
                assert await receive(other, name) == {"type": "one"}
            for name in [*names[30:], process[2]]:
                await layer.group_add("room", name)
            for name in [*names[:5], process[0]]:
                await layer.group_discard("room", name)
            await layer.group_send("room", {"type": "two"})
            for name in names[5:]:
                assert await receive(layer, name) == {"type": "two"}
            for name in process[1:]:
                assert await receive(other, name) == {"type": "two"}
            # Those who left got nothing more: the next message is a marker.
            for name in names[:5]:
                await layer.send(name, {"type": "marker"})
                assert await receive(layer, name) == {"type": "marker"}
            await layer.send(process[0], {"type": "marker"})
            assert await receive(other, process[0]) == {"type": "marker"}
        finally:
            await layer.flush()
            await layer.close()
            await other.close()

    @pytest.mark.parametrize("how", ["discarded", "expired"])
    async def test_a_member_gone_between_sends_gets_nothing(
        self, cluster_set: ClusterSet, how: str
    ) -> None:
        # The group takes a new version, so the kept plan is not used. Time
        # passing writes nothing: the send that drops the expired member does.
        layer = layer_on(cluster_set, group_expiry=60)
        key = group_key(layer.prefix, "room")
        try:
            for name in ("stays.c", "leaves.c"):
                await layer.group_add("room", name)
            await layer.group_send("room", {"type": "one"})
            for name in ("stays.c", "leaves.c"):
                assert await receive(layer, name) == {"type": "one"}
            if how == "discarded":
                await layer.group_discard("room", "leaves.c")
            else:
                # As if its 60 seconds had passed: an older score, and no new version.
                port = Slots(cluster_set).port_of(key)
                assert command(port, "ZADD", key, "XX", str(time.time() - 120), "leaves.c") == 0
            await layer.group_send("room", {"type": "two"})
            assert await receive(layer, "stays.c") == {"type": "two"}
            await layer.send("leaves.c", {"type": "marker"})
            assert await receive(layer, "leaves.c") == {"type": "marker"}
        finally:
            await layer.flush()
            await layer.close()

    async def test_a_group_whose_version_is_gone_has_its_members_read_again(
        self, cluster_set: ClusterSet
    ) -> None:
        # The version key can expire or be lost with the server's state.
        layer = layer_on(cluster_set)
        key = group_key(layer.prefix, "room")
        port = Slots(cluster_set).port_of(key)
        try:
            await layer.group_add("room", "first.c")
            await layer.group_send("room", {"type": "one"})
            assert await receive(layer, "first.c") == {"type": "one"}
            assert command(port, "EXISTS", f"{key}:v") == 1
            # A member written without a version (as a restore from an older
            # release would), then the version lost.
            assert command(port, "ZADD", key, str(time.time()), "late.c") == 1
            assert command(port, "DEL", f"{key}:v") == 1
            await layer.group_send("room", {"type": "two"})
            for name in ("first.c", "late.c"):
                assert await receive(layer, name) == {"type": "two"}
        finally:
            await layer.flush()
            await layer.close()

    async def test_groups_put_back_after_lost_state_take_a_new_version(
        self, cluster_set: ClusterSet
    ) -> None:
        # A sender that kept the partial list read before the put-back must not keep using it.
        prefix = unique("tcv")
        key = group_key(prefix, "room")
        port = Slots(cluster_set).port_of(key)
        assert command(port, "SET", f"{key}:v", "before") is True
        memberships = Memberships(60, lambda channel: True)
        memberships.added(slot(key), key, "member.c", time.time())
        [options] = memberships.hook([{"cluster": cluster_set.startup_nodes}])
        # The first connection to a master not met before puts the memberships back.
        connection = redis.asyncio.Connection(
            host="127.0.0.1", port=port, redis_connect_func=options["redis_connect_func"]
        )
        try:
            # redis-py leaves connect() unannotated: it connects and runs the hook.
            await cast(Callable[[], Awaitable[None]], connection.connect)()
            assert command(port, "ZRANGE", key, "0", "-1") == ["member.c"]
            assert command(port, "GET", f"{key}:v") not in (None, "before")
        finally:
            await connection.disconnect()
            command(port, "DEL", key, f"{key}:v")


class TestFailover:
    async def test_a_killed_master_is_replaced_and_the_same_layer_carries_on(
        self, fresh_cluster_set: ClusterSet
    ) -> None:
        cluster = fresh_cluster_set
        master = cluster.masters()[0]
        replica = cluster.replica_of(master)
        slots = Slots(cluster)
        prefix = unique("tcf")
        layer = layer_on(cluster, prefix=prefix, capacity=100_000)
        # Its only startup node is the replica: it meets that server process
        # (as a replica) before the failover makes it a master.
        members = RedisChannelLayer(hosts=[{"cluster": [replica.url]}], prefix=prefix)

        def on_master(names: Callable[[int], str], key: Callable[[str], str]) -> str:
            return slots.pick(master.port, names, key)

        busy = on_master(lambda n: f"busy{n}.c", lambda c: channel_key(prefix, c))
        head = on_master(
            lambda n: f"w{n}", lambda p: channel_key(prefix, f"{p}.{layer.client_prefix}!")
        )
        room = on_master(lambda n: f"room{n}", lambda g: group_key(prefix, g))
        try:
            member = await members.new_channel()
            await members.group_add(room, member)
            waiting_channel = await layer.new_channel(head)
            assert slots.port_of(channel_key(prefix, waiting_channel)) == master.port
            waiting = asyncio.create_task(
                asyncio.wait_for(layer.receive(waiting_channel), 3 * WAIT)
            )
            await until(lambda: blocked_on(master.port) == 1, "the receiver blocks on the master")

            traffic = Traffic(lambda n: layer.send(busy, {"type": "t", "n": n}))
            traffic.start()
            await until(lambda: bool(traffic.acknowledged), "the first send before the kill")
            killed_at = time.monotonic()
            promoted, _ = await asyncio.to_thread(cluster.kill_master, master)
            promoted_at = time.monotonic()
            assert promoted is replica
            await until(
                lambda: any(started > promoted_at for _, _, started in traffic.outcomes),
                "a send after the promotion",
            )
            await traffic.stop()

            # Sends failed only while no master served the slot, and only with
            # LayerConnectionError (anything else would have ended the traffic).
            assert traffic.phases() in (["ok"], ["ok", "error", "ok"]), traffic.phases()
            errors = [started for _, outcome, started in traffic.outcomes if outcome == "error"]
            assert all(killed_at <= started <= promoted_at for started in errors)
            # Every send acknowledged after the outage reached the new master, in order.
            await layer.send(busy, {"type": "t", "n": -1})
            received = await drain(layer, busy, -1)
            later = [number for number, _, started in traffic.outcomes if started > killed_at]
            assert set(later) & set(traffic.acknowledged) <= set(received)
            assert received[:-1] == sorted(received[:-1]), "per-channel order broke"
            assert len(received) == len(set(received)), "a message arrived twice"

            # The receiver that waited through the failover carries on.
            assert not waiting.done()
            await layer.send(waiting_channel, {"type": "for the waiter"})
            assert await waiting == {"type": "for the waiter"}

            # The promoted replica lacks the group, as if the group_add had not
            # reached it before the kill. The member's layer has not talked to
            # that server as a master yet: its first connection puts the group back.
            assert command(promoted.port, "DEL", group_key(prefix, room)) == 1
            await members.group_send(room, {"type": "restored"})
            assert await receive(members, member) == {"type": "restored"}
            # Later group messages, from any layer, reach the member too.
            await layer.group_send(room, {"type": "later"})
            assert await receive(members, member) == {"type": "later"}
        finally:
            await layer.flush()
            await layer.close()
            await members.close()

    async def test_a_master_that_stops_answering_fails_group_send_within_the_socket_timeout(
        self, cluster_set: ClusterSet
    ) -> None:
        slots = Slots(cluster_set)
        prefix = unique("tcs")
        hosts = [{"cluster": cluster_set.startup_nodes, "socket_timeout": 0.3}]
        layer = RedisChannelLayer(hosts=hosts, prefix=prefix)
        group_port = slots.port_of(group_key(prefix, "room"))
        stopped = next(node for node in cluster_set.masters() if node.port != group_port)
        on_stopped = slots.pick(
            stopped.port, lambda n: f"slow{n}.c", lambda c: channel_key(prefix, c)
        )
        answering = slots.pick(group_port, lambda n: f"fast{n}.c", lambda c: channel_key(prefix, c))
        try:
            for member in (on_stopped, answering):
                await layer.group_add("room", member)
            # Both masters know the script and the layer knows the members.
            await layer.group_send("room", {"type": "first"})
            for member in (on_stopped, answering):
                assert await receive(layer, member) == {"type": "first"}
            pid = int(str(stats(stopped.port, "server")["process_id"]))
            # It reads nothing and answers nothing, for less than the cluster's failover timeout.
            os.kill(pid, signal.SIGSTOP)
            try:
                with pytest.raises(LayerConnectionError) as raised:
                    await asyncio.wait_for(layer.group_send("room", {"type": "late"}), WAIT)
            finally:
                os.kill(pid, signal.SIGCONT)
            assert f"127.0.0.1:{stopped.port} did not answer 1 calls in time" in str(raised.value)
            # The other master's copy was written; the stopped one's batch may
            # have run once it woke up, but on a connection the layer dropped.
            assert await receive(layer, answering) == {"type": "late"}
            await layer.group_send("room", {"type": "after"})
            assert await receive(layer, answering) == {"type": "after"}
            got = [(await receive(layer, on_stopped))["type"]]
            if got == ["late"]:
                got.append((await receive(layer, on_stopped))["type"])
            assert got[-1] == "after"
        finally:
            await layer.flush()
            await layer.close()


@needs_redis_server
class TestAskRedirection:
    async def test_commands_on_keys_already_moved_follow_ask(self, cluster_set: ClusterSet) -> None:
        """A slot held half way through a migration: keys not on the source are asked for.

        The layer's client holds several free connections to the target, as
        under concurrent traffic. The slot is moved for good at the end, so
        the shared cluster stays whole.
        """
        cluster = cluster_set
        layer = layer_on(cluster, capacity=100_000)
        prefix = layer.prefix
        slots = Slots(cluster)

        def empty(channel: str) -> bool:
            moving = slot(channel_key(prefix, channel))
            owner = slots.port(moving)
            return command(owner, "CLUSTER", "COUNTKEYSINSLOT", str(moving)) == 0

        # A slot no other test has keys in (normal channels share 64), so it moves empty.
        channel = next(f"asked{n}.c" for n in range(1000) if empty(f"asked{n}.c"))
        moving = slot(channel_key(prefix, channel))
        group = next(
            f"asked{n}" for n in range(10**6) if slot(group_key(prefix, f"asked{n}")) == moving
        )
        source = cluster.owner_of(moving)
        target = next(m for m in cluster.masters() if m is not source)
        on_target = slots.pick(
            target.port, lambda n: f"busy{n}.c", lambda c: channel_key(prefix, c)
        )
        source_id, target_id = cluster.node_id(source), cluster.node_id(target)
        try:
            # Several connections to the target, all free again afterwards.
            await layer.send(on_target, {"type": "x"})
            await asyncio.gather(*(layer.send(on_target, {"type": "x"}) for _ in range(8)))
            assert command(target.port, "CLUSTER", "SETSLOT", str(moving), "IMPORTING", source_id)
            assert command(source.port, "CLUSTER", "SETSLOT", str(moving), "MIGRATING", target_id)

            # No key of the slot is on the source: it answers ASK, and the layer asks the target.
            for number in range(3):
                await layer.send(channel, {"type": "asked", "n": number})
            await asyncio.gather(
                *(layer.send(channel, {"type": "asked", "n": n}) for n in range(3, 9))
            )
            await layer.group_add(group, channel)
            await layer.group_send(group, {"type": "asked", "n": 9})
            moved = sorted(
                [
                    channel_key(prefix, channel),
                    group_key(prefix, group),
                    f"{group_key(prefix, group)}:v",
                ]
            )
            assert [key for key in keys_on(target.port, prefix) if slot(key) == moving] == moved
            assert [key for key in keys_on(source.port, prefix) if slot(key) == moving] == []
        finally:
            others = [m for m in cluster.masters() if m not in (source, target)]
            for master in (target, source, *others):
                command(master.port, "CLUSTER", "SETSLOT", str(moving), "NODE", target_id)
        try:
            got = [(await receive(layer, channel))["n"] for _ in range(10)]
            assert got[:3] == [0, 1, 2]
            assert sorted(cast("list[int]", got[3:9])) == list(range(3, 9))
            assert got[9] == 9
        finally:
            await layer.flush()
            await layer.close()


@needs_redis_server
class TestSlotMigration:
    async def test_slots_move_while_sending_and_nothing_acknowledged_is_lost(
        self, fresh_cluster_set: ClusterSet
    ) -> None:
        cluster = fresh_cluster_set
        prefix = unique("tcm")
        sender = layer_on(cluster, prefix=prefix, capacity=100_000)
        consumer = layer_on(cluster, prefix=prefix, capacity=100_000)
        try:
            direct, member = await consumer.new_channel(), await consumer.new_channel()
            worker = "worker.c"
            await sender.group_add("moving", member)
            await sender.group_add("moving", worker)
            process_slot = slot(channel_key(prefix, direct))
            group_slot = slot(group_key(prefix, "moving"))
            worker_slot = slot(channel_key(prefix, worker))
            assert len({process_slot, group_slot, worker_slot}) == 3

            async def collect(channel: str) -> list[int]:
                received: list[int] = []
                while received[-1:] != [-1]:
                    number = (await receive(consumer, channel))["n"]
                    assert isinstance(number, int)
                    received.append(number)
                return received[:-1]

            collectors = {c: asyncio.create_task(collect(c)) for c in (direct, member, worker)}
            sends = Traffic(lambda n: sender.send(direct, {"type": "d", "n": n}))
            group_sends = Traffic(lambda n: sender.group_send("moving", {"type": "g", "n": n}))
            sends.start()
            group_sends.start()
            await until(
                lambda: len(sends.acknowledged) > 20 and len(group_sends.acknowledged) > 20,
                "traffic before the first migration",
            )

            def migrate_all() -> None:
                masters = cluster.masters()
                for moved in (process_slot, group_slot, worker_slot):
                    owner = cluster.owner_of(moved)
                    target = next(m for m in masters if m is not owner)
                    cluster.migrate_slot(moved, target)
                    assert cluster.owner_of(moved) is target

            counts = (len(sends.acknowledged), len(group_sends.acknowledged))
            await asyncio.to_thread(migrate_all)
            # Traffic went on through the migrations and after them.
            await until(
                lambda: (
                    len(sends.acknowledged) > counts[0] + 20
                    and len(group_sends.acknowledged) > counts[1] + 20
                ),
                "traffic after the migrations",
            )
            await sends.stop()
            await group_sends.stop()
            assert sends.phases() == ["ok"]
            assert group_sends.phases() == ["ok"]
            await sender.send(direct, {"type": "d", "n": -1})
            await sender.group_send("moving", {"type": "g", "n": -1})

            got = {c: await asyncio.wait_for(task, 3 * WAIT) for c, task in collectors.items()}
            # Every acknowledged send arrived exactly once, in order.
            assert got[direct] == sends.acknowledged
            assert got[member] == group_sends.acknowledged
            assert got[worker] == group_sends.acknowledged
        finally:
            await sender.flush()
            await sender.close()
            await consumer.close()


class TestConfiguration:
    """Refused before any connection: these need no server."""

    NODES = ["redis://127.0.0.1:7000", "redis://127.0.0.1:7001"]

    def test_a_cluster_next_to_other_hosts_is_refused(self) -> None:
        for others in (["redis://127.0.0.1:6379"], [{"cluster": self.NODES}]):
            with pytest.raises(ValueError, match="must be the only host"):
                RedisChannelLayer(hosts=[{"cluster": self.NODES}, *others])

    @pytest.mark.parametrize(
        ("entry", "error", "words"),
        [
            ({"cluster": []}, TypeError, "non-empty list of startup node URLs"),
            ({"cluster": "redis://127.0.0.1:7000"}, TypeError, "non-empty list"),
            (
                {"cluster": ["unix:///tmp/redis.sock"]},
                ValueError,
                "must all be redis:// or all rediss://",
            ),
            (
                {"cluster": ["redis://127.0.0.1:7000", "rediss://127.0.0.1:7001"]},
                ValueError,
                "must all be redis:// or all rediss://",
            ),
            ({"cluster": ["http://127.0.0.1:7000"]}, ValueError, "must start with one of"),
            ({"cluster": NODES, "no_such_option": 1}, ValueError, "unknown Redis Cluster option"),
            ({"cluster": NODES, "db": 1}, ValueError, r"cannot also have \['db'\]"),
            ({"cluster": NODES, "master_name": "m"}, ValueError, "cannot also have"),
            ({"cluster": NODES, "read_from_replicas": True}, ValueError, "only masters serve"),
        ],
    )
    def test_bad_cluster_entries_are_refused(
        self, entry: dict[str, object], error: type[Exception], words: str
    ) -> None:
        with pytest.raises(error, match=words):
            RedisChannelLayer(hosts=[entry])

    @pytest.mark.parametrize("prefix", ["app{1}", "app{", "app}"])
    def test_a_prefix_with_braces_is_refused_on_a_cluster(self, prefix: str) -> None:
        with pytest.raises(ValueError, match=re.escape(repr(prefix))):
            RedisChannelLayer(hosts=[{"cluster": self.NODES}], prefix=prefix)
        # On one server braces are only characters.
        assert RedisChannelLayer(hosts=["redis://127.0.0.1:6379"], prefix=prefix).prefix == prefix
