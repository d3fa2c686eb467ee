"""The private Redis Cluster of ``_cluster`` works as the cluster tests need it.

These check the fixture itself, with redis-py's own cluster client (the
layers have no cluster mode yet): every slot is served, keys of any slot
round-trip, sharded pub/sub delivers, and a killed master is replaced.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio.cluster import RedisCluster

from tests.layers.redis._cluster import (
    ClusterSet,
    cluster_set,
    fresh_cluster_set,
    needs_redis_server,
)

__all__ = ["cluster_set", "fresh_cluster_set"]  # fixtures, imported to be found

pytestmark = needs_redis_server


async def cluster_client(cluster: ClusterSet) -> RedisCluster:
    client = RedisCluster.from_url(cluster.startup_nodes[0])
    _ = await client.initialize()  # it returns the client itself
    return client


@pytest.fixture
async def client(cluster_set: ClusterSet) -> AsyncIterator[RedisCluster]:
    made = await cluster_client(cluster_set)
    try:
        yield made
    finally:
        await made.aclose()


class TestClusterSet:
    def test_three_masters_each_with_a_replica_serve_every_slot(
        self, cluster_set: ClusterSet
    ) -> None:
        masters = cluster_set.masters()
        assert len(masters) == 3
        for node in cluster_set.nodes:
            info = cluster_set.info(node)
            assert info["cluster_state"] == "ok"
            assert info["cluster_slots_ok"] == "16384"
        for master in masters:
            assert cluster_set.replica_of(master).running

    async def test_keys_of_every_master_round_trip(self, client: RedisCluster) -> None:
        keys = [f"tcc.key{index}" for index in range(30)]
        owners = [client.get_node_from_key(key) for key in keys]
        nodes = {owner.name for owner in owners if owner is not None}
        assert len(nodes) == 3
        for key in keys:
            await client.set(key, key)
        assert [await client.get(key) for key in keys] == [key.encode() for key in keys]

    async def test_sharded_pubsub_delivers(self, client: RedisCluster) -> None:
        pubsub = client.pubsub()
        try:
            await pubsub.ssubscribe("tcc.shard")
            confirmation = await pubsub.get_sharded_message(timeout=5.0)
            assert confirmation is not None
            await client.spublish("tcc.shard", b"hello")
            message = await pubsub.get_sharded_message(ignore_subscribe_messages=True, timeout=5.0)
            assert message is not None
            assert message["data"] == b"hello"
        finally:
            await pubsub.aclose()


class TestClusterFailover:
    async def test_a_killed_master_is_replaced_by_its_replica(
        self, fresh_cluster_set: ClusterSet
    ) -> None:
        client = await cluster_client(fresh_cluster_set)
        try:
            key = "tcc.failover"
            await client.set(key, b"before")
            owner = client.get_node_from_key(key)
            assert owner is not None
            master = next(node for node in fresh_cluster_set.nodes if node.port == owner.port)
            replica = fresh_cluster_set.replica_of(master)
            promoted, _ = await asyncio.to_thread(fresh_cluster_set.kill_master, master)
            assert promoted is replica
            assert fresh_cluster_set.role(promoted) == "master"
            await client.set(key, b"after")
            assert await client.get(key) == b"after"
        finally:
            await client.aclose()
