"""One event loop's connections to every shard: pools and clients, made on first use.

A redis-py pool cannot cross event loops, so a layer keeps one
:class:`Connections` per loop (see ``_loops``). Each shard gets one pool
(``_hosts.make_pool``: waits when full, retries once after a lost
connection), a client for commands, and on request a single-connection client
for a blocking reader, which must not hold a pooled connection that commands
wait for.

For a Redis Cluster (``_hosts.is_cluster``) there is one redis-py
``RedisCluster`` per loop instead, for every shard index: it keeps the slot
map and a pool per node, and finds the new master after a failover. The
layer's commands go through ``_redirect``, which follows MOVED, ASK and
TRYAGAIN itself (redis-py 8.1's async client loses ASK, see there). A blocking read then
holds one of its node's connections, which that node's pool replaces for
other commands.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Final, Protocol, TypeAlias, cast

from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import AbstractConnection

from channels.layers.redis._hosts import close_pool, is_cluster, make_cluster, make_pool
from channels.layers.redis._redirect import cluster_pipeline

__all__ = [
    "Client",
    "ConnectionSource",
    "Connections",
    "take_over",
]

Client: TypeAlias = "Redis | RedisCluster"
"""A client for one shard: a server's (or Sentinel master's), or a whole cluster's."""

_DEFAULT_SOCKET_TIMEOUT: Final = 5.0
"""redis-py's read timeout when the host's options set none (since redis-py 6)."""
_CONNECT_TIMEOUT: Final = 2.0
"""Seconds a taken-over connection may take to connect, unless the host's options say."""


class ConnectionSource(Protocol):
    """Where a connection's class and options come from: a pool, a cluster node."""

    @property
    def connection_class(self) -> type[AbstractConnection]:
        """The redis-py connection class to open."""
        ...

    # Any: redis-py connection options, which redis-py itself types loosely.
    @property
    def connection_kwargs(self) -> dict[str, Any]:
        """The options to open it with."""
        ...


async def take_over(
    source: ConnectionSource, protocol: asyncio.Protocol
) -> tuple[AbstractConnection, asyncio.WriteTransport]:
    """Open a connection as ``source`` says, then make ``protocol`` its transport's own.

    redis-py connects (TLS, Unix sockets, AUTH, RESP version, client name,
    Sentinel: every option the host's settings allow) and answers the
    handshake; the pub/sub subscriber and publisher then read the socket
    themselves, which costs far less per message than redis-py's reads.
    """
    options = dict(source.connection_kwargs)
    if options.get("socket_connect_timeout") is None:
        options["socket_connect_timeout"] = _CONNECT_TIMEOUT
    conn = source.connection_class(**options)
    try:
        # connect(), not connect_check_health(): a Sentinel connection finds its master
        # there. redis-py leaves connect() unannotated.
        await cast("Callable[[], Awaitable[None]]", conn.connect)()
    except BaseException:
        await conn.disconnect(nowait=True)
        raise
    # redis-py keeps the transport behind its private stream writer; refuse
    # clearly should a redis-py release keep it elsewhere.
    writer: object = getattr(conn, "_writer", None)
    if not isinstance(writer, asyncio.StreamWriter):
        await conn.disconnect(nowait=True)
        raise RuntimeError(
            f"the Redis pub/sub layer cannot read from a {type(conn).__qualname__}: it "
            "takes over the asyncio stream of redis-py's connection (redis-py 5 to 8 "
            f"keep one), and this connection has {type(writer).__qualname__} there"
        )
    writer.transport.set_protocol(protocol)
    protocol.connection_made(writer.transport)
    return conn, writer.transport


class Connections:
    """Pools and clients for each shard, for one event loop; ``answered`` shards have replied."""

    __slots__ = ("_clients", "_cluster", "_hosts", "_pools", "_readers", "answered", "clustered")

    # Any: redis-py connection options, which redis-py itself types loosely.
    def __init__(self, hosts: Sequence[Mapping[str, Any]]) -> None:
        # Any: redis-py connection options.
        self._hosts = hosts
        self._pools: dict[int, ConnectionPool] = {}
        self._clients: dict[int, Redis] = {}
        self._readers: dict[int, Redis] = {}
        self._cluster: RedisCluster | None = None
        self.clustered = is_cluster(hosts)
        """Whether the hosts are one Redis Cluster: then every shard index means all of it."""
        self.answered: set[int] = set()
        """Shards that have answered at least once in this loop: their failure is an outage."""

    def reached(self, shard: int) -> bool:
        """Whether ``shard`` (for a cluster: any node) has answered in this loop."""
        return bool(self.answered) if self.clustered else shard in self.answered

    def cluster(self) -> RedisCluster:
        """Return the loop's cluster client (only when ``clustered``).

        Unless the host says otherwise, it patches its slot map on each MOVED
        instead of reloading it every fifth (``reinitialize_steps=0``): redis-py
        reloads by closing every connection of the client, in use or not, so a
        command of another task whose reply was on its way would be sent again
        (a second copy of a message) or its reply lost (a message popped by a
        reader, gone). A slot migration answers MOVED many times.
        """
        if self._cluster is None:
            cluster = make_cluster(self._hosts[0])
            if "reinitialize_steps" not in self._hosts[0]:
                cluster.reinitialize_steps = 0
            self._cluster = cluster
        return self._cluster

    def pool(self, shard: int) -> ConnectionPool:
        """Return the shard's pool."""
        pool = self._pools.get(shard)
        if pool is None:
            pool = self._pools[shard] = make_pool(self._hosts[shard])
        return pool

    def client(self, shard: int) -> Client:
        """Return the shard's client for commands (each takes a pooled connection)."""
        if self.clustered:
            return self.cluster()
        client = self._clients.get(shard)
        if client is None:
            client = self._clients[shard] = Redis(connection_pool=self.pool(shard))
        return client

    def reader(self, shard: int) -> Client:
        """Return the shard's client for blocking reads: one connection of its own, kept."""
        if self.clustered:
            return self.cluster()
        client = self._readers.get(shard)
        if client is None:
            client = self._readers[shard] = Redis(
                connection_pool=self.pool(shard), single_connection_client=True
            )
        return client

    async def renew_reader(self, shard: int) -> Client:
        """Replace the shard's blocking-read client after a lost connection; return the new one.

        The new client takes a connection from the pool, which connects it as
        the host says (for a Sentinel host: to the master the Sentinels name
        now). The old connection would reconnect to the address it had, which
        after a failover is the dead master. A cluster client finds the new
        owner of the slot itself.
        """
        if self.clustered:
            return self.cluster()
        old = self._readers.pop(shard, None)
        if old is not None:
            await old.aclose()
        return self.reader(shard)

    async def pipeline(
        self,
        shard: int,
        commands: Sequence[Sequence[str | bytes | float]],
        *,
        transaction: bool = False,
    ) -> None:
        """Run ``commands`` (each on the key ``command[1]``) on the shard in one round trip.

        ``transaction`` wraps them in
        MULTI/EXEC on one server. On a cluster the keys must share a slot (the
        shard), and the batch is never a transaction (see ``_redirect``).
        """
        client = self.client(shard)
        if isinstance(client, RedisCluster):
            await cluster_pipeline(client, str(commands[0][1]), commands)
            return
        pipe = client.pipeline(transaction=transaction)
        for command in commands:
            _ = pipe.execute_command(*command)  # pyright: ignore[reportUnknownMemberType] -- redis-py leaves its **options untyped
        _ = await pipe.execute()

    def socket_timeout(self, shard: int) -> float | None:
        """Return how long a read on the shard may wait before redis-py gives up (None: forever)."""
        options = (
            self.cluster().connection_kwargs
            if self.clustered
            else self.pool(shard).connection_kwargs
        )
        timeout = options.get("socket_timeout", _DEFAULT_SOCKET_TIMEOUT)
        return float(timeout) if timeout else None

    async def aclose(self) -> None:
        """Close every client and pool; the next call makes new ones."""
        clients: list[Client] = [*self._readers.values(), *self._clients.values()]
        if self._cluster is not None:
            clients.append(self._cluster)
            self._cluster = None
        pools = list(self._pools.values())
        self._readers.clear()
        self._clients.clear()
        self._pools.clear()
        for client in clients:
            await client.aclose()
        for pool in pools:
            await close_pool(pool)
