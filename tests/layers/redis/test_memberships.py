"""RedisChannelLayer puts its own channels' group memberships back when Redis lost them.

Each server test runs its own redis-server without persistence (see ``_server``)
and restarts it by PID, so the new server starts empty; the shared Redis is
never touched.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from typing import cast

import pytest
import redis
from redis.asyncio.connection import AbstractConnection

from channels.layers.redis._memberships import Memberships
from channels.layers.redis.core import RedisChannelLayer
from tests.layers.redis._cluster import SentinelSet, command, fresh_sentinel_set
from tests.layers.redis._server import RedisServer, redis_server_available

__all__ = ["fresh_sentinel_set"]  # a fixture, imported to be found

WAIT = 10.0
"""Seconds a test waits for what it expects: the layer reconnects within ~1 s."""

PREFIX = "memberships"
MESSAGE = {"type": "room.message", "text": "still here"}


@pytest.fixture
def server() -> Iterator[RedisServer]:
    if not redis_server_available():
        pytest.skip("needs a redis-server executable to restart a private server")
    with RedisServer() as running:
        yield running


def members(server: RedisServer, group: str) -> dict[str, float]:
    """Return the group's members and scores, straight from ``server``."""
    client = redis.Redis(host="127.0.0.1", port=server.port)
    try:
        # redis-py types the reply loosely; with scores it is (member, score) pairs.
        pairs = cast(
            "list[tuple[bytes, float]]",
            client.zrange(f"{PREFIX}:group:{group}", 0, -1, withscores=True),  # pyright: ignore[reportUnknownMemberType] -- its score_cast_func is untyped
        )
        return {name.decode(): score for name, score in pairs}
    finally:
        client.close()


async def restart(server: RedisServer) -> None:
    await asyncio.to_thread(server.restart)
    assert members(server, "room") == {}, "the restarted server should start empty"


async def receive(layer: RedisChannelLayer, channel: str) -> object:
    return await asyncio.wait_for(layer.receive(channel), WAIT)


async def wait_for_time(moment: float) -> None:
    """Poll (bounded) until the wall clock passes ``moment``: group expiry reads it."""
    deadline = time.monotonic() + WAIT
    while time.time() <= moment:
        if time.monotonic() > deadline:
            pytest.fail(f"the clock did not pass {moment} within {WAIT} s")
        await asyncio.sleep(0.05)


class TestPutBackAfterARestart:
    async def test_a_member_gets_group_messages_without_a_new_group_add(
        self, server: RedisServer
    ) -> None:
        layer = RedisChannelLayer(hosts=[server.url], prefix=PREFIX)
        try:
            channel = await layer.new_channel()
            await layer.group_add("room", channel)
            before = members(server, "room")
            await restart(server)
            await layer.group_send("room", MESSAGE)
            assert await receive(layer, channel) == MESSAGE
            # Put back with its group_add time: its expiry is unchanged.
            assert members(server, "room") == before
        finally:
            await layer.close()

    async def test_a_receive_waiting_through_the_restart_gets_the_group_message(
        self, server: RedisServer
    ) -> None:
        layer = RedisChannelLayer(hosts=[server.url], prefix=PREFIX)
        try:
            channel = await layer.new_channel()
            await layer.group_add("room", channel)
            waiting = asyncio.ensure_future(layer.receive(channel))
            # Not restart(): the waiting reader reconnects while the server comes
            # back and may put the membership back before an emptiness check
            # could look (the other tests show a restart starts empty).
            await asyncio.to_thread(server.restart)
            await layer.group_send("room", MESSAGE)
            assert await asyncio.wait_for(waiting, WAIT) == MESSAGE
        finally:
            await layer.close()

    async def test_every_group_of_the_shard_comes_back_and_other_shards_are_untouched(
        self, server: RedisServer
    ) -> None:
        with RedisServer() as other:
            layer = RedisChannelLayer(hosts=[server.url, other.url], prefix=PREFIX)
            try:
                names = [f"room{n}" for n in range(20)]
                on_restarted = [g for g in names if layer.consistent_hash(g) == 0][:2]
                on_other = next(g for g in names if layer.consistent_hash(g) == 1)
                channel = await layer.new_channel()
                for group in [*on_restarted, on_other]:
                    await layer.group_add(group, channel)
                await asyncio.to_thread(server.restart)
                for group in [*on_restarted, on_other]:
                    await layer.group_send(group, {"type": "room.message", "group": group})
                    assert await receive(layer, channel) == {"type": "room.message", "group": group}
                assert [list(members(server, g)) for g in on_restarted] == [[channel]] * 2
            finally:
                await layer.close()


class TestPutBackAfterAFailover:
    async def test_a_member_the_promoted_replica_missed_gets_group_messages(
        self, fresh_sentinel_set: SentinelSet
    ) -> None:
        sentinels = fresh_sentinel_set
        layer = RedisChannelLayer(hosts=[sentinels.host()], prefix=PREFIX)
        try:
            channel = await layer.new_channel()
            await layer.group_add("room", channel)
            # The replica loses the membership as if replication had not carried it yet.
            replica, key = sentinels.replica.port, f"{PREFIX}:group:room"
            assert command(replica, "CONFIG", "SET", "replica-read-only", "no") == "OK"
            assert command(replica, "DEL", key) in (0, 1)
            assert command(replica, "EXISTS", key) == 0
            await asyncio.to_thread(sentinels.kill_master)
            await layer.group_send("room", MESSAGE)
            assert await receive(layer, channel) == MESSAGE
        finally:
            await layer.close()


class TestWhatIsNotPutBack:
    async def test_a_discarded_membership(self, server: RedisServer) -> None:
        layer = RedisChannelLayer(hosts=[server.url], prefix=PREFIX)
        try:
            left, stayed = await layer.new_channel(), await layer.new_channel()
            await layer.group_add("room", left)
            await layer.group_add("room", stayed)
            await layer.group_discard("room", left)
            await restart(server)
            await layer.group_send("room", MESSAGE)
            assert await receive(layer, stayed) == MESSAGE
            assert list(members(server, "room")) == [stayed]
        finally:
            await layer.close()

    async def test_an_expired_membership(self, server: RedisServer) -> None:
        layer = RedisChannelLayer(hosts=[server.url], prefix=PREFIX, group_expiry=0.5)
        try:
            channel = await layer.new_channel()
            await layer.group_add("room", channel)
            await wait_for_time(members(server, "room")[channel] + 0.5)
            await layer.group_add("kept", channel)  # still live when the server restarts
            await restart(server)
            await layer.group_add("other", channel)  # reconnects: the put-back runs first
            assert members(server, "room") == {}
            assert list(members(server, "kept")) == [channel]
        finally:
            await layer.close()

    async def test_a_flushed_membership(self, server: RedisServer) -> None:
        layer = RedisChannelLayer(hosts=[server.url], prefix=PREFIX)
        try:
            channel = await layer.new_channel()
            await layer.group_add("room", channel)
            await layer.flush()
            await layer.group_add("kept", channel)
            await restart(server)
            await layer.group_add("other", channel)
            assert members(server, "room") == {}
            assert list(members(server, "kept")) == [channel]
        finally:
            await layer.close()

    async def test_memberships_of_channels_this_layer_does_not_receive(
        self, server: RedisServer
    ) -> None:
        layer = RedisChannelLayer(hosts=[server.url], prefix=PREFIX)
        elsewhere = RedisChannelLayer(hosts=[server.url], prefix=PREFIX)
        try:
            own, foreign = await layer.new_channel(), await elsewhere.new_channel()
            for channel in ["worker", foreign, own]:
                await layer.group_add("room", channel)
            await restart(server)
            await layer.group_send("room", MESSAGE)
            assert list(members(server, "room")) == [own]
        finally:
            await layer.close()
            await elsewhere.close()


class TestConnectHook:
    async def test_a_group_the_server_refuses_is_logged_and_the_others_come_back(
        self, server: RedisServer, caplog: pytest.LogCaptureFixture
    ) -> None:
        layer = RedisChannelLayer(hosts=[server.url], prefix=PREFIX)
        try:
            channel = await layer.new_channel()
            await layer.group_add("broken", channel)
            await layer.group_add("room", channel)
            await restart(server)
            client = redis.Redis(host="127.0.0.1", port=server.port)
            client.set(f"{PREFIX}:group:broken", "not a sorted set")
            client.close()
            with caplog.at_level(logging.WARNING, logger="channels.layers.redis.core"):
                await layer.group_send("room", MESSAGE)
            assert await receive(layer, channel) == MESSAGE
            assert "could not put group 'memberships:group:broken' back" in caplog.text
        finally:
            await layer.close()

    async def test_a_hosts_own_connect_function_still_runs(self, server: RedisServer) -> None:
        calls: list[str] = []

        async def handshake(connection: AbstractConnection) -> None:
            calls.append("handshake")
            await connection.on_connect()

        host = {"address": server.url, "redis_connect_func": handshake}
        layer = RedisChannelLayer(hosts=[host], prefix=PREFIX)
        try:
            channel = await layer.new_channel()
            await layer.group_add("room", channel)
            await restart(server)
            await layer.group_send("room", MESSAGE)
            assert await receive(layer, channel) == MESSAGE
            assert len(calls) >= 2  # before the restart and after it
        finally:
            await layer.close()


class TestMemory:
    """What a Memberships object keeps: live memberships of its own channels, no more."""

    def test_other_channels_are_not_kept(self) -> None:
        kept = Memberships(group_expiry=60, owns=lambda channel: channel.startswith("a.x!"))
        kept.added(0, "g", "a.x!1", time.time())
        kept.added(0, "g", "worker", time.time())
        kept.added(0, "g", "a.y!1", time.time())
        assert len(kept) == 1

    def test_discard_forgets(self) -> None:
        kept = Memberships(group_expiry=60, owns=lambda channel: True)
        kept.added(0, "g", "a!1", time.time())
        kept.added(0, "h", "a!1", time.time())
        kept.discarded(0, "g", "a!1")
        kept.discarded(0, "g", "never-added")
        assert len(kept) == 1
        kept.clear()
        assert len(kept) == 0

    def test_expired_entries_are_forgotten_as_new_ones_come(self) -> None:
        kept = Memberships(group_expiry=60, owns=lambda channel: True)
        now = time.time()
        for n in range(100):
            kept.added(0, "g", f"a!old{n}", now - 61)
        kept.added(0, "g", "a!new", now)
        assert len(kept) == 1
