"""The reader of one shard for ``RedisChannelLayer``'s receiving, in one event loop.

A :class:`ShardReader` is owned by a ``_receiving.Receiver`` (its
:class:`ReaderOwner`), which keeps the rules; the reader only pops. It blocks
with one BZPOPMIN over every key a local receiver waits on, plus a wake key
of its own, hands each popped message to its owner, and stops once no
receiver has waited for one blocking period, or when told to.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from typing import Protocol, cast

from redis.asyncio.cluster import RedisCluster
from redis.exceptions import InvalidResponse

from channels.layers.redis._connections import Connections
from channels.layers.redis._errors import LayerConnectionError
from channels.layers.redis._layout import Layout
from channels.layers.redis._redirect import cluster_command

__all__ = ["ReaderOwner", "ShardReader"]

logger = logging.getLogger("channels.layers.redis.core")


class ReaderOwner(Protocol):
    """What a reader needs from the receiver that owns it."""

    def watched(self, shard: int) -> list[str]:
        """Return the keys local receivers wait on, on ``shard``."""
        ...

    def dispatch(self, shard: int, key: str, member: object, score: float) -> None:
        """Take a message popped from ``key``."""
        ...

    def fail(self, error: BaseException, key: str | None, shard: int) -> bool:
        """Fail the receivers reading ``shard`` (all of them when ``key`` is None)."""
        ...

    async def return_stranded(self, shard: int, only_shared: bool) -> None:
        """Put messages nobody here waits for back in Redis."""
        ...

    def sweep(self) -> None:
        """Forget expired buffered messages."""
        ...

    async def reader_done(self, reader: ShardReader) -> None:
        """Forget a reader that has stopped, and return what it was holding."""
        ...


class ShardReader:
    """The task that pops messages for one shard; see the module docstring.

    ``in_flight`` is the set of keys its current BZPOPMIN covers (empty
    between pops): a message of those keys may be on its way to the owner.
    """

    def __init__(
        self,
        owner: ReaderOwner,
        shard: int,
        layout: Layout,
        connections: Connections,
        previous: asyncio.Task[None] | None,
        key: str,
    ) -> None:
        self.shard = shard
        # On the slot of ``key``, the first key it pops, in a cluster.
        self.wake_key = layout.wake_key(key)
        self.in_flight: frozenset[str] = frozenset()
        self.stopping = False
        self._owner = owner
        self._layout = layout
        self._connections = connections
        self._changed = asyncio.Event()
        self._rotation = itertools.count()
        self.task = asyncio.create_task(self._run(previous))

    def look_again(self) -> None:
        """Tell the reader that the keys it should pop have changed."""
        self._changed.set()

    async def wake(self) -> None:
        """End the current BZPOPMIN now, popping nothing else.

        The reader blocks on its wake key too: a member there ends the pop at
        once, so no message is in flight.
        """
        commands = [("ZADD", self.wake_key, 0, b"wake"), ("EXPIRE", self.wake_key, 60)]
        with self._layout.errors(self.shard):
            await self._connections.pipeline(self.shard, commands)

    async def stop(self) -> None:
        """Ask the reader to stop, waking it if it blocks; wait with ``task``."""
        self.stopping = True
        self._changed.set()
        if self.in_flight:
            with contextlib.suppress(LayerConnectionError):
                await self.wake()

    def _poll_timeout(self) -> float:
        # A blocking pop must end before the socket's read timeout, or it fails.
        socket_timeout = self._connections.socket_timeout(self.shard)
        if socket_timeout:
            return min(self._layout.blocking_timeout, socket_timeout / 2)
        return self._layout.blocking_timeout

    async def _idle(self, timeout: float) -> bool:
        """Wait up to ``timeout`` for ``look_again()`` or ``stop()``; return whether it came."""
        self._changed.clear()
        if self.stopping:  # stop() came while the reader was busy: its wake-up is spent
            return False
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._changed.wait(), timeout)
        return self._changed.is_set()

    async def _run(self, previous: asyncio.Task[None] | None) -> None:
        shard, owner = self.shard, self._owner
        try:
            if previous is not None:
                # A stopping reader is still returning messages to Redis: pop
                # only after they are back in their places.
                await asyncio.wait({previous})
            await self._pop_until_idle()
        except Exception as exc:
            # Receivers get the error; the next receive starts a new reader.
            owner.fail(exc, None, shard)
            if not isinstance(exc, LayerConnectionError):
                logger.exception("the Redis reader for shard %d failed", shard)
        finally:
            self.stopping = True
            await owner.reader_done(self)

    async def _pop_until_idle(self) -> None:
        shard, owner, layout = self.shard, self._owner, self._layout
        client = self._connections.reader(shard)
        timeout = self._poll_timeout()
        failing_since: float | None = None
        backoff = 0.05
        swept_at = time.monotonic()
        while not self.stopping:
            await owner.return_stranded(shard, only_shared=True)
            if time.monotonic() - swept_at > layout.expiry:
                owner.sweep()
                swept_at = time.monotonic()
            keys = owner.watched(shard)
            if not keys:
                if not await self._idle(timeout):
                    return
                continue
            # Rotate so that a busy key cannot starve the others.
            turn = next(self._rotation) % len(keys)
            keys = keys[turn:] + keys[:turn]
            self.in_flight = frozenset(keys)
            try:
                with layout.errors(shard):
                    if isinstance(client, RedisCluster):
                        # Through a slot migration too (see _redirect.cluster_command).
                        reply = await cluster_command(
                            client, self.wake_key, "BZPOPMIN", self.wake_key, *keys, timeout
                        )
                    else:
                        # redis-py types the reply as Any.
                        reply = cast(object, await client.bzpopmin([self.wake_key, *keys], timeout))
            except LayerConnectionError as exc:
                self.in_flight = frozenset()
                if failing_since is None:
                    failing_since = time.monotonic()
                    logger.warning("lost Redis; receivers wait while it reconnects: %s", exc)
                # A host this loop has reached (by any command) gets time to come
                # back; a host never reached fails at once.
                reached = self._connections.reached(shard)
                if not reached or time.monotonic() - failing_since > layout.reconnect_timeout:
                    raise
                await self._idle(backoff)
                backoff = min(backoff * 2, 2.0)
                client = await self._connections.renew_reader(shard)
                continue
            self.in_flight = frozenset()
            failing_since, backoff = None, 0.05
            self._connections.answered.add(shard)
            popped = _popped(reply)
            if popped is not None:
                key, member, score = popped
                if key != self.wake_key:
                    owner.dispatch(shard, key, member, score)


def _popped(reply: object) -> tuple[str, object, float] | None:
    """BZPOPMIN's reply as key, member and score; None when it timed out.

    Raises:
        InvalidResponse: the reply has another shape.
    """
    if reply is None:
        return None
    items = cast("list[object] | tuple[object, ...]", reply)
    if not isinstance(reply, list | tuple) or len(items) != 3:
        raise InvalidResponse(f"Redis answered BZPOPMIN with {reply!r}")
    key, member, score = items
    if not isinstance(key, bytes | str) or not isinstance(score, bytes | str | float | int):
        raise InvalidResponse(f"Redis answered BZPOPMIN with {reply!r}")
    return key.decode("utf-8") if isinstance(key, bytes) else key, member, float(score)
