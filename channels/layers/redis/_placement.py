"""Where each pub/sub channel lives, for one event loop: its subscriber and its server.

The pub/sub layer reaches its channels through a :class:`Subscribers`:

* :class:`HostSubscribers`, for one host or client-side shards over several:
  each name lives on the host channels_redis's hash picks, for subscribing
  and publishing alike, so processes on either implementation meet there
  (each host has a subscriber and a publisher, ``_publisher``, of its own);
* ``_sharded.ClusterSubscribers``, for a Redis Cluster: each name lives on
  the master that owns its hash slot.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Mapping, Sequence
from typing import Any, Protocol

from channels.layers.redis._connections import Connections
from channels.layers.redis._errors import HostErrors
from channels.layers.redis._hosts import consistent_hash, describe_host
from channels.layers.redis._publisher import Publishers
from channels.layers.redis._subscriber import Listener, Subscriber

__all__ = ["HostSubscribers", "Subscribers"]


class Subscribers(Protocol):
    """Where each pub/sub channel lives for one event loop: its subscriber and its server."""

    def subscribe(self, name: str) -> Awaitable[None]:
        """Subscribe to ``name``; return once it is confirmed (see Subscriber.subscribe)."""
        ...

    def unsubscribe(self, name: str) -> Awaitable[None]:
        """Stop receiving ``name`` unless the listener wants it again."""
        ...

    def publish(self, name: str, data: bytes) -> Awaitable[None]:
        """Publish ``data`` on ``name``, on the server that carries it."""
        ...

    def aclose(self) -> Awaitable[None]:
        """Close every subscriber connection; every subscription ends."""
        ...


class HostSubscribers:
    """The subscribers of client-side sharding: one per host, a name on its host by hash."""

    # Any: redis-py connection options, which redis-py itself types loosely.
    def __init__(
        self, listener: Listener, connections: Connections, hosts: Sequence[Mapping[str, Any]]
    ) -> None:
        self._errors = [HostErrors(describe_host(host)) for host in hosts]
        self._subscribers = [
            Subscriber(listener, functools.partial(connections.pool, index), errors)
            for index, errors in enumerate(self._errors)
        ]
        self._publishers = Publishers(connections, self._errors)

    def subscribe(self, name: str) -> Awaitable[None]:
        """Subscribe to ``name`` on its host (see Subscriber.subscribe)."""
        return self._subscribers[consistent_hash(name, len(self._subscribers))].subscribe(name)

    def unsubscribe(self, name: str) -> Awaitable[None]:
        """Stop receiving ``name`` on its host unless it is wanted again."""
        return self._subscribers[consistent_hash(name, len(self._subscribers))].unsubscribe(name)

    async def publish(self, name: str, data: bytes) -> None:
        """PUBLISH ``data`` on the pub/sub channel ``name``, on its host (see Publisher)."""
        index = consistent_hash(name, len(self._subscribers))
        await self._publishers.of(index).publish(name, data)

    async def aclose(self) -> None:
        """Close every host's publisher and subscriber."""
        await self._publishers.aclose()
        for subscriber in self._subscribers:
            await subscriber.aclose()
