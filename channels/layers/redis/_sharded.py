"""The pub/sub layer on a Redis Cluster: sharded pub/sub, one subscriber per master node.

A shard channel hashes to a slot like a key does, and only the master that
owns the slot carries it: ``SPUBLISH`` goes there (redis-py's cluster client
routes it, following MOVED and reloading its slot map after a lost node), and
so does ``SSUBSCRIBE``. :class:`ClusterSubscribers` keeps one push-driven
:class:`~channels.layers.redis._subscriber.Subscriber` per master node this
event loop needs, and uses the cluster client only for its slot map.

Topology changes reach it in two ways:

* A node pushes ``sunsubscribe`` for a name it no longer holds (its slot
  moved to another master, or the node became a replica). The name is
  subscribed again where the slot lives now: first at the owner the slot map
  names, which, if stale, answers MOVED with the new owner.
* A node's connection is lost (a crashed master). Its names are subscribed
  again on their owners after the slot map is reloaded, retrying with a delay
  doubling from 0.05 s to 1 s until the cluster has promoted a replica. The
  layer's ``on_disconnect`` hook runs when the loss is seen, and
  ``on_reconnect`` once every name of that node has a home again.

Messages published in between are lost, as pub/sub delivers at most once.
Meanwhile a name already subscribed stays subscribed for the layer (a receive
waits on), and subscribing a new name on the missing node raises
LayerConnectionError.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Collection
from typing import Final

from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.crc import key_slot
from redis.exceptions import (
    MovedError,
)

from channels.layers.redis._connections import Connections
from channels.layers.redis._errors import HostErrors
from channels.layers.redis._subscriber import Listener, Subscriber

__all__ = ["ClusterSubscribers"]

logger = logging.getLogger("channels.layers.redis.pubsub")

_REDIRECTS: Final = 5
"""How many MOVED answers one subscribe follows before it gives up."""
_RETRY_FIRST_DELAY: Final = 0.05
_RETRY_MAX_DELAY: Final = 1.0


class _Outage:
    """A node subscriber whose connection was lost, and the names it held then."""

    __slots__ = ("exc", "names", "notified", "subscriber")

    def __init__(self, subscriber: Subscriber, names: set[str], exc: BaseException) -> None:
        self.subscriber = subscriber
        self.names = names
        self.exc = exc
        self.notified = False


class ClusterSubscribers:
    """The pub/sub channels of one event loop on a Redis Cluster (rules: module docstring).

    Each name the listener wants is in one of two places:

    * ``_held``: the node subscriber asked to subscribe it, the one that
      unsubscribes it later;
    * ``_orphans``: its node was lost or its slot moved. Only the re-homing
      task (``_rehoming``, one at a time) takes names out, by subscribing
      them on their new owner; a name is in both only while it does that.

    ``_nodes`` holds a live subscriber per master node; a lost one leaves it at
    once and stays in ``_outages`` until the re-homing task has closed it and
    run the hooks.
    """

    def __init__(self, listener: Listener, connections: Connections, errors: HostErrors) -> None:
        self._listener = listener
        self._connections = connections
        self._errors = errors
        self._nodes: dict[str, Subscriber] = {}
        self._held: dict[str, Subscriber] = {}
        self._orphans: set[str] = set()
        self._outages: list[_Outage] = []
        self._stale = False
        """Whether the slot map must be reloaded before the next re-homing round."""
        self._rehoming: asyncio.Task[None] | None = None

    # -- the Subscribers interface ---------------------------------------------------

    async def subscribe(self, name: str) -> None:
        """SSUBSCRIBE ``name`` on the master that owns its slot; return once confirmed."""
        errors: HostErrors | None = None
        for _ in range(_REDIRECTS):
            if name in self._orphans:
                return  # subscribed before, and being subscribed again on its new owner
            subscriber = self._held.get(name)
            if subscriber is None:
                errors = errors or self._errors.about(f"subscribe to {name!r}")
                owner = await self._owner(name, errors)
                subscriber = self._held.setdefault(name, owner)
            try:
                await subscriber.subscribe(name)
            except MovedError as moved:
                self._release(name, subscriber)
                errors = errors or self._errors.about(f"subscribe to {name!r}")
                with errors:
                    await self._cluster().nodes_manager.move_slot(moved)
            else:
                return
        errors = errors or self._errors.about(f"subscribe to {name!r}")
        raise errors.error(f"the cluster redirected it {_REDIRECTS} times")

    async def unsubscribe(self, name: str) -> None:
        """SUNSUBSCRIBE ``name`` unless the listener wants it again."""
        if self._listener.wants(name):
            return
        self._orphans.discard(name)
        subscriber = self._held.pop(name, None)
        if subscriber is not None:
            await subscriber.unsubscribe(name)

    async def publish(self, name: str, data: bytes) -> None:
        """SPUBLISH ``data`` on the shard channel ``name``, at the master that owns its slot."""
        with self._errors:
            await self._cluster().spublish(name, data)

    async def aclose(self) -> None:
        """Stop re-homing and close every node subscriber; every subscription ends."""
        task, self._rehoming = self._rehoming, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        subscribers = [*self._nodes.values(), *(outage.subscriber for outage in self._outages)]
        self._nodes.clear()
        self._held.clear()
        self._orphans.clear()
        self._outages.clear()
        for subscriber in subscribers:
            await subscriber.aclose()

    # -- the ShardRouter interface, for the node subscribers -------------------------

    def lost(self, subscriber: Subscriber, exc: BaseException) -> None:
        """Take ``subscriber``'s names back; the re-homing task finds them new nodes."""
        for node, held in list(self._nodes.items()):
            if held is subscriber:
                del self._nodes[node]
        names = {name for name, held in self._held.items() if held is subscriber}
        for name in names:
            del self._held[name]
        self._orphans.update(name for name in names if self._listener.wants(name))
        self._outages.append(_Outage(subscriber, names, exc))
        self._stale = True
        self._wake()

    def dropped(self, subscriber: Subscriber, name: str) -> None:
        """Subscribe ``name``, which its node let go (its slot moved), where it lives now."""
        if self._held.get(name) is not subscriber:
            return
        del self._held[name]
        if self._listener.wants(name):
            self._orphans.add(name)
            self._wake()

    # -- routing -----------------------------------------------------------------

    def _cluster(self) -> RedisCluster:
        return self._connections.cluster()

    async def _owner(self, name: str, errors: HostErrors) -> Subscriber:
        """Return the subscriber of the master that owns ``name``'s slot, per the slot map."""
        cluster = self._cluster()
        with errors:
            _ = await cluster.initialize()  # reads the slot map the first time only
            return self._subscriber(_owner_node(cluster, name))

    def _subscriber(self, node: ClusterNode) -> Subscriber:
        subscriber = self._nodes.get(node.name)
        if subscriber is None:
            errors = HostErrors(f"cluster node {node.name}")
            subscriber = self._nodes[node.name] = Subscriber(
                self._listener, lambda: node, errors, router=self
            )
        return subscriber

    def _release(self, name: str, subscriber: Subscriber) -> None:
        """Forget that ``subscriber`` holds ``name``: its node refused or no longer has it."""
        if self._held.get(name) is subscriber:
            del self._held[name]
        subscriber.drop(name)

    # -- re-homing ---------------------------------------------------------------

    def _wake(self) -> None:
        if self._rehoming is None:
            self._rehoming = self._listener.loop.create_task(self._rehome())

    async def _rehome(self) -> None:
        """Subscribe every orphan on its slot's owner, running the hooks of lost nodes."""
        delay = _RETRY_FIRST_DELAY
        try:
            while self._orphans or self._outages:
                for outage in self._outages:
                    if not outage.notified:
                        outage.notified = True
                        await self._disconnected(outage)
                if self._orphans and not await self._rehome_round():
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, _RETRY_MAX_DELAY)
                    continue
                delay = _RETRY_FIRST_DELAY
                for outage in list(self._outages):
                    if outage.notified and outage.names.isdisjoint(self._orphans):
                        self._outages.remove(outage)
                        await self._reconnected(outage)
        finally:
            if self._rehoming is asyncio.current_task():
                self._rehoming = None

    async def _disconnected(self, outage: _Outage) -> None:
        host = outage.subscriber.host
        logger.warning("lost the subscriber connection to Redis at %s: %s", host, outage.exc)
        try:
            await outage.subscriber.aclose()
        except Exception:
            logger.exception("could not close the subscriber connection to %s", host)
        await self._listener.notify("on_disconnect", host)

    async def _reconnected(self, outage: _Outage) -> None:
        host = outage.subscriber.host
        logger.warning("subscribed again, on the cluster's current masters, to what %s held", host)
        await self._listener.notify("on_reconnect", host)

    async def _rehome_round(self) -> bool:
        """Subscribe each orphan once on the owner the slot map names; True if none is left."""
        cluster = self._cluster()
        for name in [name for name in self._orphans if not self._listener.wants(name)]:
            self._orphans.discard(name)
        try:
            _ = await cluster.initialize()  # it returns the client itself
            if self._stale:
                await cluster.nodes_manager.initialize()
                self._stale = False
            nodes = {name: _owner_node(cluster, name) for name in self._orphans}
        except Exception as exc:
            logger.debug("could not read the cluster's slot map: %s", exc)
            self._stale = True
            return False
        owners: dict[Subscriber, list[str]] = {}
        for name, node in nodes.items():
            subscriber = self._held[name] = self._subscriber(node)
            owners.setdefault(subscriber, []).append(name)
        await asyncio.gather(*(self._home(owner, names) for owner, names in owners.items()))
        return not self._orphans

    async def _home(self, subscriber: Subscriber, names: Collection[str]) -> None:
        """Subscribe ``names`` on ``subscriber``'s node; those it refuses stay orphans."""
        try:
            failures = await subscriber.subscribe_many(names)
        except Exception as exc:
            failures = dict.fromkeys(names, exc)
        moved: dict[int, MovedError] = {}
        for name in names:
            failure = failures.get(name)
            if failure is None:
                self._orphans.discard(name)
                continue
            self._release(name, subscriber)
            if isinstance(failure, MovedError):
                moved[failure.slot_id] = failure
            else:
                logger.debug("could not subscribe to %r at %s: %s", name, subscriber.host, failure)
                self._stale = True
        for redirect in moved.values():
            try:
                await self._cluster().nodes_manager.move_slot(redirect)
            except Exception:
                self._stale = True


def _owner_node(cluster: RedisCluster, name: str) -> ClusterNode:
    """The master that ``cluster``'s slot map names for the slot of the shard channel ``name``."""
    # redis-py leaves the load-balancing parameter of get_node_from_slot unannotated.
    return cluster.nodes_manager.get_node_from_slot(key_slot(name.encode()))  # pyright: ignore[reportUnknownMemberType]
