"""Many single-slot script calls on a Redis Cluster: one raw pipeline per node, all at once.

``group_send`` to members spread over a cluster runs its script once per
slot, so a group of 1,000 normal channels makes about 1,000 calls. Through
redis-py's cluster pipeline each call costs a policy and slot lookup, a
packing and a timed read of its own, which made such a send ten times slower
than on one server. Here the calls are bucketed by the node that owns their
slot, packed in one go, written on one connection of that node's pool, and
the replies are split from the bytes as they arrive; every node's batch runs
at the same time.

What redis-py's client would have followed is handed back to it: a call a
node answers MOVED, ASK or TRYAGAIN (a slot migrating or moved) or NOSCRIPT
(a promoted replica's empty script cache) was not run there, and runs again,
alone, through the cluster client, which follows the redirection. Nothing
else is retried: a lost connection raises, as a single call would.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Final, TypeAlias, cast

from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.crc import key_slot
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from channels.layers.redis._resp import pack_command, parse_items, parse_reply
from channels.layers.redis._scripts import Arg, Script

__all__ = ["run_on_nodes"]

Call: TypeAlias = "tuple[Sequence[str], Sequence[Arg]]"
"""One script call: its keys (all of one slot) and its arguments."""

_REDIRECTED: Final = ("MOVED ", "ASK ", "TRYAGAIN", "NOSCRIPT")
"""Error replies for a call the node did not run, which the cluster client runs again."""
_READ_TIMEOUT: Final = 5.0
"""Seconds a node may take to answer its whole batch, unless its options say otherwise."""
_READ_SIZE: Final = 65536
_ARRAY: Final = ord("*")


async def run_on_nodes(
    cluster: RedisCluster,
    script: Script,
    calls: Sequence[Call],
    packed: Sequence[bytes] | None = None,
) -> list[object]:
    """Run ``script`` once per call on the node owning its keys' slot; return the replies in order.

    ``packed``, if given, holds each call's EVALSHA command in RESP, packed
    by the caller (see ``_fanout``); otherwise the calls are packed here.

    The batches go to the nodes the client's cached slot map names. A node
    that cannot be reached or drops the connection makes it reload the map:
    if the map then names another node for those calls (a promoted replica),
    they run there, once; if not, no master serves them and the error is
    raised. Batches other nodes answered are never sent again, nor is one a
    node answered late (a timeout): it may have run. (A batch whose replies
    were lost after the node ran it may so arrive twice, as a single command
    retried by redis-py may.)

    Raises:
        ResponseError: a call failed for another reason than a redirection.
        redis.exceptions.ConnectionError, TimeoutError: a node could not be reached.
    """
    _ = await cluster.initialize()  # a no-op once the slot map is known
    if packed is None:
        cache: dict[tuple[type, Arg], bytes] = {}  # arguments repeat from call to call
        packed = [
            pack_command(("EVALSHA", script.sha, len(keys), *keys, *args), cache)
            for keys, args in calls
        ]
    replies: list[object] = [None] * len(calls)
    lost = await _run_by_node(cluster, calls, packed, range(len(calls)), replies)
    if lost:
        failure, indexes = lost
        owners = [_node_of(cluster, calls[index]).name for index in indexes]
        await cluster.nodes_manager.initialize()
        if any(_node_of(cluster, calls[i]).name == o for i, o in zip(indexes, owners, strict=True)):
            raise failure  # no other master serves those slots (yet)
        again = await _run_by_node(cluster, calls, packed, indexes, replies)
        if again:
            raise again[0]
    for index, reply in enumerate(replies):
        if isinstance(reply, ResponseError):
            if not str(reply).startswith(_REDIRECTED):
                raise reply
            keys, args = calls[index]
            replies[index] = await script.run(cluster, keys, args)
    return replies


async def _run_by_node(
    cluster: RedisCluster,
    calls: Sequence[Call],
    packed: Sequence[bytes],
    indexes: Iterable[int],
    replies: list[object],
) -> tuple[BaseException, list[int]] | None:
    """Run the ``indexes`` calls, a batch per node at once, into ``replies``.

    Returns the first lost connection's error and the calls of the nodes
    lost, or None when every node answered. Raises any other error.
    """
    by_node: dict[str, tuple[ClusterNode, list[int]]] = {}
    for index in indexes:
        node = _node_of(cluster, calls[index])
        by_node.setdefault(node.name, (node, []))[1].append(index)
    batches = list(by_node.values())
    results: list[list[object] | BaseException]
    if len(batches) == 1:  # one node (a group's member list): no task needed
        node, batch = batches[0]
        try:
            results = [await _run_batch(node, [packed[index] for index in batch])]
        except Exception as error:  # handled below, as gather's would be
            results = [error]
    else:
        results = await asyncio.gather(
            *(_run_batch(node, [packed[index] for index in batch]) for node, batch in batches),
            return_exceptions=True,
        )
    failure: BaseException | None = None
    lost: list[int] = []
    for (_, batch), result in zip(batches, results, strict=True):
        if isinstance(result, BaseException):
            if not _lost_connection(result):
                raise result
            failure = failure or result
            lost.extend(batch)
            continue
        for index, reply in zip(batch, result, strict=True):
            replies[index] = reply
    return None if failure is None else (failure, lost)


def _node_of(cluster: RedisCluster, call: Call) -> ClusterNode:
    """The master that ``cluster``'s slot map says holds the keys of ``call``."""
    slot = key_slot(call[0][0].encode("utf-8"))
    # redis-py leaves one optional parameter's type unresolved; it is not passed.
    return cluster.nodes_manager.get_node_from_slot(slot)  # pyright: ignore[reportUnknownMemberType]


def _lost_connection(error: BaseException) -> bool:
    """Whether ``error`` means a node could not be reached or dropped the connection.

    Not a timeout: a node that answers late may have run what it was sent.
    """
    if isinstance(error, TimeoutError | RedisTimeoutError):
        return False
    return isinstance(error, ConnectionError | RedisConnectionError)


async def _run_batch(node: ClusterNode, calls: Sequence[bytes]) -> list[object]:
    """Write every call (packed) to ``node`` on one of its connections and read every reply."""
    connection = node.acquire_connection()
    try:
        # One redis-py marked for reconnecting after a topology change is renewed first.
        await node.disconnect_if_needed(connection)
        if not connection.is_connected:
            # redis-py leaves connect() unannotated: it connects and runs the handshake.
            await cast(Callable[[], Awaitable[None]], connection.connect)()
        exchange = _exchange(connection, calls)
        timeout = connection.socket_timeout or _READ_TIMEOUT
        try:
            if sys.version_info >= (3, 11):
                # No task per batch, as wait_for makes before Python 3.12.
                async with asyncio.timeout(timeout):
                    return await exchange
            else:
                return await asyncio.wait_for(exchange, timeout)
        except asyncio.TimeoutError:
            raise RedisTimeoutError(
                f"{node.name} did not answer {len(calls)} calls in time"
            ) from None
    except BaseException:
        # Replies may still be on their way: the connection cannot be reused.
        await connection.disconnect()
        raise
    finally:
        node.release(connection)


async def _exchange(connection: object, calls: Sequence[bytes]) -> list[object]:
    """Write ``calls`` and read their replies on the streams of a connected ``connection``.

    redis-py keeps the socket behind its private stream reader and writer:
    used directly, as the subscriber does, the replies are split in one pass,
    and the write makes no task (redis-py's times out with ``wait_for``).
    """
    reader = getattr(connection, "_reader", None)
    writer = getattr(connection, "_writer", None)
    if not isinstance(reader, asyncio.StreamReader) or not isinstance(writer, asyncio.StreamWriter):
        raise ConnectionError("the cluster connection has no asyncio streams to send calls on")
    writer.writelines(calls)
    await writer.drain()
    replies = _Replies(reader)
    return [await replies.next() for _ in range(len(calls))]


class _Replies:
    """The replies read from one stream; an array's items read on as they arrive.

    A large array (a group's thousand members) comes over many reads:
    reading on from the first incomplete item, rather than parsing the whole
    array again after each read, keeps the cost linear in its size.
    """

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self._reader = reader
        self._buffer = b""
        self._position = 0

    async def next(self) -> object:
        """Return the next reply."""
        while True:
            buffer, position = self._buffer, self._position
            if position < len(buffer):
                if buffer[position] != _ARRAY:
                    parsed = parse_reply(buffer, position)
                    if not isinstance(parsed, int):
                        reply, self._position = parsed
                        return reply
                elif (end := buffer.find(b"\r\n", position)) >= 0:
                    self._position = end + 2
                    return await self._items(int(buffer[position + 1 : end]))
            await self._fill()

    async def _items(self, count: int) -> list[object]:
        items: list[object] = []
        while True:
            self._position, needed = parse_items(
                self._buffer, self._position, count - len(items), items
            )
            if not needed:
                return items
            await self._fill()

    async def _fill(self) -> None:
        chunk = await self._reader.read(_READ_SIZE)
        if not chunk:
            raise ConnectionError("the cluster node closed the connection mid-batch")
        self._buffer = self._buffer[self._position :] + chunk
        self._position = 0
