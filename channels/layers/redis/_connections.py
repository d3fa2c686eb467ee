"""One event loop's connections to every shard: pools and clients, made on first use.

A redis-py pool cannot cross event loops, so a layer keeps one
:class:`Connections` per loop (see ``_loops``). Each shard gets one pool
(``_hosts.make_pool``: waits when full, retries once after a lost
connection), a client for commands, and on request a single-connection client
for a blocking reader, which must not hold a pooled connection that commands
wait for.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from redis.asyncio import ConnectionPool, Redis

from channels.layers.redis._hosts import close_pool, make_pool

__all__ = ["Connections"]

_DEFAULT_SOCKET_TIMEOUT: Final = 5.0
"""redis-py's read timeout when the host's options set none (since redis-py 6)."""


class Connections:
    """Pools and clients for each shard, for one event loop; ``answered`` shards have replied."""

    __slots__ = ("_clients", "_hosts", "_pools", "_readers", "answered")

    # Any: redis-py connection options, which redis-py itself types loosely.
    def __init__(self, hosts: Sequence[Mapping[str, Any]]) -> None:
        # Any: redis-py connection options.
        self._hosts = hosts
        self._pools: dict[int, ConnectionPool] = {}
        self._clients: dict[int, Redis] = {}
        self._readers: dict[int, Redis] = {}
        self.answered: set[int] = set()
        """Shards that have answered at least once in this loop: their failure is an outage."""

    def pool(self, shard: int) -> ConnectionPool:
        """Return the shard's pool."""
        pool = self._pools.get(shard)
        if pool is None:
            pool = self._pools[shard] = make_pool(self._hosts[shard])
        return pool

    def client(self, shard: int) -> Redis:
        """Return the shard's client for commands (each takes a pooled connection)."""
        client = self._clients.get(shard)
        if client is None:
            client = self._clients[shard] = Redis(connection_pool=self.pool(shard))
        return client

    def reader(self, shard: int) -> Redis:
        """Return the shard's client for blocking reads: one connection of its own, kept."""
        client = self._readers.get(shard)
        if client is None:
            client = self._readers[shard] = Redis(
                connection_pool=self.pool(shard), single_connection_client=True
            )
        return client

    async def renew_reader(self, shard: int) -> Redis:
        """Replace the shard's blocking-read client after a lost connection; return the new one.

        The new client takes a connection from the pool, which connects it as
        the host says (for a Sentinel host: to the master the Sentinels name
        now). The old connection would reconnect to the address it had, which
        after a failover is the dead master.
        """
        old = self._readers.pop(shard, None)
        if old is not None:
            await old.aclose()
        return self.reader(shard)

    def socket_timeout(self, shard: int) -> float | None:
        """Return how long a read on the shard may wait before redis-py gives up (None: forever)."""
        timeout = self.pool(shard).connection_kwargs.get("socket_timeout", _DEFAULT_SOCKET_TIMEOUT)
        return float(timeout) if timeout else None

    async def aclose(self) -> None:
        """Close every client and pool; the next call makes new ones."""
        clients = [*self._readers.values(), *self._clients.values()]
        pools = list(self._pools.values())
        self._readers.clear()
        self._clients.clear()
        self._pools.clear()
        for client in clients:
            await client.aclose()
        for pool in pools:
            await close_pool(pool)
