"""A pipelined command connection per Redis host and event loop: publishes, and core sends.

redis-py opens the connection, as for the subscriber (``_subscriber``), so
every option the host's settings allow (TLS, Unix sockets, AUTH, RESP version,
client name, Sentinel) is honoured; ``_connections.take_over`` then hands its transport
to a :class:`Replies` protocol, which parses each reply as it arrives and
gives it to the oldest PUBLISH still waiting. Redis answers in order, so
concurrent publishes share the connection, pipelined, with no pool in between.

:class:`Publisher` keeps these rules:

* ``publish`` returns the number of subscribers Redis reached, once Redis has
  answered. An error reply raises the exception redis-py raises for it
  (NoPermissionError for an ACL refusal).
* A publish that finds no live connection opens a new one, once; publishes
  that found it lost while that attempt ran share the attempt's failure. A
  refused or lost connection raises LayerConnectionError naming the host.
* A PUBLISH is written once: if its connection is lost, or Redis does not
  answer within the connection's ``socket_timeout``, it fails and is never
  sent again (at most once). A timeout drops the connection, since the late
  reply would be taken for the next command's.
* A cancelled publish keeps its place in the queue, so replies stay matched.
* Once closed, it refuses to publish: its loop state is released for good.
"""

from __future__ import annotations

import asyncio
import functools
from collections import deque
from collections.abc import Callable, Sequence
from typing import NamedTuple, TypeAlias, cast

from redis._parsers import BaseParser
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import InvalidResponse, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from channels.layers.redis._connections import Connections, ConnectionSource, take_over
from channels.layers.redis._errors import CONNECTION_ERRORS, HostErrors
from channels.layers.redis._resp import Push, ReplyProtocol, pack_command

__all__ = ["Lost", "Popped", "Publisher", "Publishers", "Replies"]

Popped: TypeAlias = "list[tuple[bytes, float]]"
"""What a ZPOPMIN without a count took: (member, score) pairs, none or one."""

# redis-py's own mapping of an error reply to its exception; redis-py leaves it unannotated.
_parse_error = cast("Callable[[str], Exception]", BaseParser.parse_error)  # pyright: ignore[reportUnknownMemberType] -- see above


class Lost(NamedTuple):
    """What a publish gets instead of a reply when its connection was lost: the reason."""

    reason: BaseException


class Replies(ReplyProtocol):
    """One connection's replies, each handed to the oldest waiter, until the connection is cut.

    A waiter gets the reply (an error reply as a ResponseError object) or
    :class:`Lost`: results, not exceptions, as a cancelled publish leaves
    nobody to retrieve one.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self.waiting: deque[asyncio.Future[object]] = deque()
        self.transport: asyncio.WriteTransport | None = None
        self.timeout: float | None = None
        """Seconds a reply may take before the connection is cut (None: no limit)."""
        self._loop = loop
        self._deadlines: deque[float] = deque()
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Keep the transport: commands are written to it."""
        self.transport = cast("asyncio.WriteTransport", transport)

    def usable(self) -> bool:
        """Whether a command written now can reach Redis: neither cut nor closing."""
        return self.live and self.transport is not None and not self.transport.is_closing()

    def expect(self) -> asyncio.Future[object]:
        """Return the waiter for the reply to the command written next."""
        waiter: asyncio.Future[object] = self._loop.create_future()
        self.waiting.append(waiter)
        if self.timeout:
            self._deadlines.append(self._loop.time() + self.timeout)
            if self._timer is None:
                self._timer = self._loop.call_at(self._deadlines[0], self._check_deadline)
        return waiter

    def replied(self, reply: object) -> None:
        """Hand ``reply`` to the oldest waiter (a RESP3 push is no reply: it is skipped)."""
        if isinstance(reply, Push):
            return
        if not self.waiting:
            raise InvalidResponse(f"a reply no command waits for: {reply!r}")
        waiter = self.waiting.popleft()
        if self._deadlines:
            self._deadlines.popleft()
        if not waiter.done():
            waiter.set_result(reply)

    def cut(self, reason: BaseException) -> None:
        """Give every waiter ``reason`` and close the connection; later cuts do nothing."""
        if not self.live:
            return
        self.live = False
        if self._timer is not None:
            self._timer.cancel()
        for waiter in self.waiting:
            if not waiter.done():
                waiter.set_result(Lost(reason))
        self.waiting.clear()
        if self.transport is not None:
            self.transport.close()

    def _check_deadline(self) -> None:
        self._timer = None
        if not self._deadlines:
            return
        if self._deadlines[0] > self._loop.time():
            self._timer = self._loop.call_at(self._deadlines[0], self._check_deadline)
        else:
            self.cut(RedisTimeoutError(f"no reply within {self.timeout}s"))


class Publisher:
    """The publishing connection to one Redis host for one event loop (rules: module docstring).

    Args:
        pool: returns the host's pool (or another source), whose options open the connection.
        errors: names the host in connection errors.
    """

    def __init__(self, pool: Callable[[], ConnectionSource], errors: HostErrors) -> None:
        self._pool = pool
        self._errors = errors
        self._conn: AbstractConnection | None = None
        self._replies: Replies | None = None
        self._lock = asyncio.Lock()
        self._attempts: int = 0
        self._failure: BaseException | None = None
        self._closed = False
        self._encoding: tuple[str, str] = ("utf-8", "strict")

    async def publish(self, name: str, data: bytes) -> int:
        """PUBLISH ``data`` on the pub/sub channel ``name``; return how many subscribers got it."""
        replies = self._replies
        if replies is None or not replies.usable():
            replies = await self._connected(f"publish on {name!r}")
        waiter = replies.expect()
        key = name.encode(*self._encoding)
        # Packed here: redis-py's pack_command costs several times more.
        cast("asyncio.WriteTransport", replies.transport).write(
            b"*3\r\n$7\r\nPUBLISH\r\n$%d\r\n%b\r\n$%d\r\n%b\r\n" % (len(key), key, len(data), data)
        )
        reply = self.result(await waiter, f"publish on {name!r}")
        if isinstance(reply, int):
            return reply
        raise InvalidResponse(f"Redis answered PUBLISH with {reply!r}")

    async def command(self, doing: str, *args: str | bytes | float) -> object:
        """Run one command, pipelined like a publish; return its reply.

        ``doing`` says what failed in a LayerConnectionError ("could not <doing>").
        The same rules hold as for a publish: written once, never resent.
        """
        return await self.commands(doing, [args])

    async def commands(
        self, doing: str, commands: Sequence[Sequence[str | bytes | float]]
    ) -> object:
        """Run ``commands`` as :meth:`command` does, in one write; return the last one's reply."""
        return self.result(await (await self.write(doing, commands)), doing)

    async def write(
        self, doing: str, commands: Sequence[Sequence[str | bytes | float]]
    ) -> asyncio.Future[object]:
        """Write ``commands`` in one go (connecting first if needed); return the last one's waiter.

        Redis runs them in order, before anything written later on this
        connection. The waiter gets the raw reply (see :meth:`result`) even
        if the caller is cancelled, as long as the caller shields it. Earlier
        commands' replies are not kept: several commands suit only where the
        last one's reply is enough.
        """
        replies = self._replies
        if replies is None or not replies.usable():
            replies = await self._connected(doing)
        packed: dict[tuple[type, str | bytes | float], bytes] = {}
        waiter = replies.expect()
        for _ in commands[1:]:
            waiter = replies.expect()
        cast("asyncio.WriteTransport", replies.transport).write(
            b"".join(pack_command(command, packed) for command in commands)
        )
        return waiter

    async def pop_min(self, key: str, doing: str) -> asyncio.Future[Popped]:
        """Write a ZPOPMIN of ``key``; return its outcome, the (member, score) pairs popped.

        The outcome is a future of its own, not the caller's: a caller that
        shields it and is cancelled still leaves it to be read.
        """
        waiter = await self.write(doing, [("ZPOPMIN", key)])
        popped: asyncio.Future[Popped] = asyncio.get_running_loop().create_future()

        def finish(done: asyncio.Future[object]) -> None:
            try:
                popped.set_result(_pairs(self.result(done.result(), doing)))
            except Exception as exc:
                popped.set_exception(exc)

        waiter.add_done_callback(finish)
        return popped

    def result(self, reply: object, doing: str) -> object:
        """Return a waiter's ``reply``; raise for a lost connection or an error reply."""
        if isinstance(reply, Lost):
            raise self._errors.about(doing).error(reply.reason) from reply.reason
        if isinstance(reply, ResponseError):
            raise _parse_error(str(reply)) from None
        return reply

    async def connect(self, doing: str) -> None:
        """Open the connection now unless it is open; LayerConnectionError if it cannot be."""
        if not self.connected:
            await self._connected(doing)

    @property
    def connected(self) -> bool:
        """Whether a connection is open and usable: the next publish will not have to connect."""
        return self._replies is not None and self._replies.usable()

    async def aclose(self) -> None:
        """Close the connection for good; publishes still waiting fail."""
        self._closed = True
        async with self._lock:
            conn, replies = self._conn, self._replies
            self._conn = self._replies = None
            if replies is not None:
                replies.cut(ConnectionError("the layer was closed"))
            if conn is not None:
                await conn.disconnect(nowait=True)

    async def _connected(self, doing: str) -> Replies:
        attempts = self._attempts
        errors = self._errors.about(doing)
        async with self._lock:
            conn, replies = self._conn, self._replies
            if replies is not None and replies.usable():
                return replies
            if self._closed:
                raise errors.error("the layer was closed")
            if self._attempts != attempts and self._failure is not None:
                # A connection attempt began after this publish found none, and failed.
                raise errors.error(self._failure) from self._failure
            self._conn = self._replies = None
            if conn is not None:
                await conn.disconnect(nowait=True)
            self._attempts += 1
            self._failure = None
            pool = self._pool()
            replies = Replies(asyncio.get_running_loop())
            try:
                conn, _ = await take_over(pool, replies)
            except CONNECTION_ERRORS as exc:
                self._failure = exc
                raise errors.error(exc) from exc
            replies.timeout = conn.socket_timeout
            # The connection's own encoding for channel names, as redis-py would use it.
            encoder = conn.encoder
            self._encoding = (str(encoder.encoding), str(encoder.encoding_errors))
            self._conn, self._replies = conn, replies
            return replies


class Publishers:
    """One loop's :class:`Publisher` for each shard of its connections, made on first use.

    On a Redis Cluster, one per master node instead (:meth:`on_node_of`).
    """

    __slots__ = ("_connections", "_errors", "_made", "_nodes")

    def __init__(self, connections: Connections, errors: Sequence[HostErrors]) -> None:
        self._connections = connections
        self._errors = errors
        self._made: dict[int, Publisher] = {}
        self._nodes: dict[str, Publisher] = {}

    def of(self, shard: int) -> Publisher:
        """Return the shard's publisher (for the core layer: its sending connection)."""
        publisher = self._made.get(shard)
        if publisher is None:
            pool = functools.partial(self._connections.pool, shard)
            publisher = self._made[shard] = Publisher(pool, self._errors[shard])
        return publisher

    async def on_node_of(self, slot: int) -> Publisher:
        """Return the publisher of the cluster node that the slot map says serves ``slot``.

        Raises redis-py's errors when no slot map can be loaded or no node serves the slot.
        """
        cluster = self._connections.cluster()
        _ = await cluster.initialize()  # a no-op once the slot map is known
        # redis-py leaves one optional parameter's type unresolved; it is not passed.
        node = cluster.nodes_manager.get_node_from_slot(slot)  # pyright: ignore[reportUnknownMemberType]
        publisher = self._nodes.get(node.name)
        if publisher is None:
            publisher = self._nodes[node.name] = Publisher(lambda: node, self._errors[0])
        return publisher

    async def aclose(self) -> None:
        """Close every publisher made (see Publisher.aclose)."""
        for publisher in [*self._made.values(), *self._nodes.values()]:
            await publisher.aclose()


def _pairs(reply: object) -> Popped:
    """ZPOPMIN's raw reply (``[member, score]`` or empty) as redis-py gives it: pairs."""
    items = cast("list[bytes | float]", reply) if isinstance(reply, list) else None
    if items is None or len(items) not in (0, 2):
        raise InvalidResponse(f"Redis answered ZPOPMIN with {reply!r}")
    if not items:
        return []
    member, score = items
    return [(cast(bytes, member), float(score))]
