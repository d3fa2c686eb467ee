"""RedisPubSubChannelLayer: a channel layer over Redis publish/subscribe.

Each channel is a Redis pub/sub channel. A process subscribes to the channels
it reads (``new_channel`` or its first ``receive``), and one reader task per
Redis host and event loop feeds the messages into local per-channel queues.
Groups are Redis sorted sets of channel names, scored by the time of the last
``group_add``; ``group_send`` publishes the message to each live member.
Channels and groups are spread over several hosts by a stable hash of the name.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, Final, TypeAlias, cast

from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from channels.layers.base import BaseChannelLayer, CapacityPattern, require_message
from channels.layers.redis._hosts import (
    HostConfig,
    consistent_hash,
    decode_hosts,
    describe_host,
    make_pool,
)
from channels.layers.redis._serializers import Serializer
from channels.layers.redis.core import LayerConnectionError
from channels.types import ChannelMessage, ReceivedMessage

__all__ = ["ConnectionHook", "RedisPubSubChannelLayer"]

logger = logging.getLogger(__name__)

ConnectionHook: TypeAlias = "str | Callable[[], Awaitable[None]]"
"""``on_disconnect`` / ``on_reconnect``: an async callable to await, or a message type
to deliver to every channel this process is subscribed to (as channels_redis does)."""

_REDIS_ERRORS: Final = (RedisConnectionError, RedisTimeoutError, OSError)
_CONNECT_TIMEOUT: Final = 2.0
_ACK_TIMEOUT: Final = 5.0
_RETRY_FIRST_DELAY: Final = 0.05
_RETRY_MAX_DELAY: Final = 1.0


_Command: TypeAlias = "tuple[str | bytes | float, ...]"


def _unreachable(label: str, doing: str, reason: object) -> LayerConnectionError:
    return LayerConnectionError(label, ConnectionError(f"could not {doing}: {reason}"))


async def _pipeline(client: Redis, commands: Sequence[_Command]) -> list[object]:
    """Run ``commands`` in one round trip and return their replies."""
    async with client.pipeline(transaction=False) as pipe:
        for command in commands:
            # redis-py leaves execute_command's arguments unannotated; ours are typed above.
            pipe.execute_command(*command)  # pyright: ignore[reportUnknownMemberType]
        replies: list[object] = await pipe.execute()
        return replies


def _pool(host: Mapping[str, Any]) -> ConnectionPool:
    """Build one host's pool: raw bytes, a bounded connect, one immediate retry.

    A failed command is retried once at once (a pooled connection may predate
    a Redis restart), then raises.
    """
    defaults: dict[str, Any] = {
        "socket_connect_timeout": _CONNECT_TIMEOUT,
        "retry": Retry(NoBackoff(), 1),
    }
    return make_pool({**defaults, **host, "decode_responses": False})


class _Inbox:
    """The local queue of one subscribed channel, and how many receivers wait on it."""

    def __init__(self, capacity: int) -> None:
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()
        self.capacity = capacity
        self.waiting = 0

    def put(self, channel: str, data: bytes) -> None:
        if self.queue.qsize() >= self.capacity:
            # At most once: a reader that falls this far behind loses the newest
            # messages rather than growing without limit.
            logger.warning(
                "dropped a message for %r: its local queue holds %d messages",
                channel,
                self.capacity,
            )
            return
        self.queue.put_nowait(data)


class _Shard:
    """One Redis host as seen from one event loop: commands and one subscriber."""

    def __init__(self, host: Mapping[str, Any], state: _LoopState) -> None:
        self.label = describe_host(host)
        self.pool = _pool(host)
        self.client = Redis(connection_pool=self.pool)
        self._state = state
        self._conn: AbstractConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._up = False
        self._lock = asyncio.Lock()
        self._names: set[str] = set()
        # Each resolves to None once Redis confirms, or to the error that lost it;
        # a result rather than an exception, as nobody may be left to retrieve it.
        self._acks: dict[str, asyncio.Future[LayerConnectionError | None]] = {}

    async def run(self, doing: str, *commands: _Command) -> list[object]:
        """Run ``commands`` in one round trip; a connection failure names the host."""
        try:
            return await _pipeline(self.client, commands)
        except _REDIS_ERRORS as exc:
            raise _unreachable(self.label, doing, exc) from exc

    async def subscribe(self, name: str) -> None:
        """Subscribe to ``name`` and return once Redis has confirmed it."""
        async with self._lock:
            ack = self._acks.get(name)
            if ack is None and name not in self._names:
                conn = await self._connected(f"subscribe to {name!r}")
                ack = self._acks[name] = asyncio.get_running_loop().create_future()
                self._names.add(name)
                try:
                    await conn.send_command("SUBSCRIBE", name)
                except _REDIS_ERRORS as exc:
                    self._names.discard(name)
                    self._acks.pop(name, None)
                    raise _unreachable(self.label, f"subscribe to {name!r}", exc) from exc
        if ack is None:
            return
        try:
            error = await asyncio.wait_for(asyncio.shield(ack), _ACK_TIMEOUT)
        except asyncio.TimeoutError:
            raise _unreachable(
                self.label, f"subscribe to {name!r}", f"no confirmation within {_ACK_TIMEOUT}s"
            ) from None
        if error is not None:
            raise error

    async def unsubscribe(self, name: str) -> None:
        """Stop receiving ``name``; a lost connection drops the subscription anyway."""
        async with self._lock:
            self._names.discard(name)
            if self._conn is not None and self._up:
                with contextlib.suppress(*_REDIS_ERRORS):
                    await self._conn.send_command("UNSUBSCRIBE", name)

    async def _connected(self, doing: str) -> AbstractConnection:
        if self._conn is not None:
            if not self._up:
                raise _unreachable(self.label, doing, "the connection is being re-established")
            return self._conn
        conn = self.pool.connection_class(**self.pool.connection_kwargs)
        try:
            await conn.connect_check_health()
        except _REDIS_ERRORS as exc:
            await conn.disconnect()
            raise _unreachable(self.label, doing, exc) from exc
        self._conn, self._up = conn, True
        self._reader = asyncio.get_running_loop().create_task(self._read(conn))
        return conn

    async def _read(self, conn: AbstractConnection) -> None:
        # Runs until close(): each read waits for Redis, and each reconnection
        # attempt is bounded by the connect timeout.
        while True:
            try:
                reply = cast(object, await conn.read_response(timeout=math.inf, push_request=True))
            except Exception as exc:
                # Anything but a reply (a lost connection, a garbled stream)
                # leaves the connection unusable: start over on a new one.
                await self._recover(conn, exc)
                continue
            self._dispatch(reply)

    def _dispatch(self, reply: object) -> None:
        if not isinstance(reply, list) or len(cast("list[object]", reply)) != 3:
            return
        kind, raw_name, data = cast("list[object]", reply)
        if not isinstance(raw_name, bytes):
            return
        name = raw_name.decode()
        if kind == b"message" and isinstance(data, bytes):
            self._state.deliver(name, data)
        elif kind == b"subscribe":
            ack = self._acks.pop(name, None)
            if ack is not None and not ack.done():
                ack.set_result(None)

    async def _recover(self, conn: AbstractConnection, exc: BaseException) -> None:
        self._up = False
        logger.warning("lost the subscriber connection to Redis at %s: %s", self.label, exc)
        error = _unreachable(self.label, "keep the subscription", exc)
        for ack in self._acks.values():
            if not ack.done():
                ack.set_result(error)
        self._acks.clear()
        await self._state.notify("on_disconnect", self.label)
        delay = _RETRY_FIRST_DELAY
        while not await self._resubscribe(conn):
            await asyncio.sleep(delay)
            delay = min(delay * 2, _RETRY_MAX_DELAY)
        logger.warning("reconnected to Redis at %s", self.label)
        await self._state.notify("on_reconnect", self.label)

    async def _resubscribe(self, conn: AbstractConnection) -> bool:
        async with self._lock:
            try:
                await conn.disconnect()
                await conn.connect_check_health()
                names = sorted(self._names)
                if names:
                    await conn.send_command("SUBSCRIBE", *names)
                    # A fresh connection carries nothing but these confirmations,
                    # so once they are read every channel is live again.
                    for _ in names:
                        reply = cast(
                            object,
                            await conn.read_response(timeout=_ACK_TIMEOUT, push_request=True),
                        )
                        if not isinstance(reply, list):
                            return False
            except Exception:
                return False
            self._up = True
            return True

    async def close(self) -> None:
        """Stop the reader and close every connection to this host."""
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
        conn, self._conn = self._conn, None
        self._up = False
        self._names.clear()
        self._acks.clear()
        if conn is not None:
            await conn.disconnect()
        await self.client.aclose()
        await self.pool.disconnect()


class _LoopState:
    """Everything the layer holds for one event loop: shards and local queues."""

    def __init__(self, layer: RedisPubSubChannelLayer, loop: asyncio.AbstractEventLoop) -> None:
        self.layer = layer
        self.loop = loop
        self.shards = [_Shard(host, self) for host in layer.hosts]
        self.inboxes: dict[str, _Inbox] = {}
        # Loops closed by asyncio.run (and so by async_to_sync) cancel their tasks
        # first: this one then releases the connections while the loop still runs.
        self.keeper = loop.create_task(self._keep())

    def shard(self, name: str) -> _Shard:
        """Return the shard that holds ``name``: a stable hash of it."""
        return self.shards[consistent_hash(name, len(self.shards))]

    async def _keep(self) -> None:
        try:
            await asyncio.Event().wait()
        finally:
            self.layer.forget(self)
            await self.release()

    async def release(self) -> None:
        """Close every shard; messages still queued locally are dropped."""
        self.inboxes.clear()
        for shard in self.shards:
            await shard.close()

    async def close(self) -> None:
        """Release everything and stop the keeper task."""
        self.keeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.keeper

    async def open(self, channel: str, *, waiting: bool = False) -> _Inbox:
        """Return the inbox of ``channel``, subscribed; ``waiting`` counts a receiver in."""
        inbox = self.inboxes.get(channel)
        if inbox is None:
            # Registered before SUBSCRIBE so no message after the confirmation is lost.
            inbox = self.inboxes[channel] = _Inbox(self.layer.get_capacity(channel))
        # Counted before subscribing, so a receiver still subscribing keeps the
        # channel open when another one is cancelled.
        inbox.waiting += waiting
        try:
            await self.shard(channel).subscribe(self.layer.channel_key(channel))
        except BaseException:
            await self.leave(channel, inbox, waiting=waiting)
            raise
        return inbox

    async def leave(self, channel: str, inbox: _Inbox, *, waiting: bool) -> None:
        """Count a receiver out; with none left waiting, unsubscribe from ``channel``."""
        inbox.waiting -= waiting
        if inbox.waiting == 0 and self.inboxes.get(channel) is inbox:
            try:
                await self.discard(channel)
            except Exception:
                logger.exception("could not unsubscribe from %r", channel)

    async def discard(self, channel: str) -> None:
        """Drop the inbox of ``channel`` and unsubscribe from it."""
        self.inboxes.pop(channel, None)
        await self.shard(channel).unsubscribe(self.layer.channel_key(channel))

    def deliver(self, name: str, data: bytes) -> None:
        """Queue a published message for its local channel, if still subscribed."""
        channel = self.layer.channel_from_key(name)
        inbox = None if channel is None else self.inboxes.get(channel)
        if channel is not None and inbox is not None:
            inbox.put(channel, data)

    async def notify(self, hook_name: str, label: str) -> None:
        """Run the layer's ``on_disconnect`` or ``on_reconnect`` hook, if any."""
        hook = getattr(self.layer, hook_name)
        if hook is None:
            return
        if isinstance(hook, str):
            data = self.layer.serializer.dumps({"type": hook})
            for channel, inbox in self.inboxes.items():
                inbox.put(channel, data)
            return
        try:
            await cast("Callable[[], Awaitable[None]]", hook)()
        except Exception:
            logger.exception("%s hook failed for Redis at %s", hook_name, label)


class RedisPubSubChannelLayer(BaseChannelLayer):
    """A channel layer over Redis pub/sub: low latency, at-most-once delivery.

    Delivery is at most once. A message reaches only the processes subscribed
    to its channel when it is published: a message sent before the receiver
    subscribed (its ``new_channel`` or first ``receive``), or while the
    connection to Redis is down, is lost, and nothing is stored in Redis but
    group memberships. A receive that is cancelled while no other receive
    waits on its channel unsubscribes from it and drops what it had queued.

    When the subscriber connection to a host is lost, the reader awaits
    ``on_disconnect``, reconnects (retrying with a delay that doubles from
    0.05s up to 1s, for as long as it takes), resubscribes to every channel
    and awaits ``on_reconnect``. A hook that is a string is instead delivered
    as a ``{"type": hook}`` message to every subscribed channel. Commands
    (send, group operations) retry once at once, then raise ConnectionError
    naming the host; so does subscribing while the host is being reconnected.

    The layer keeps separate connections and queues for each event loop that
    uses it, so it works from ``async_to_sync``; a loop's connections are
    released when its tasks are cancelled at shutdown, or by ``close()``.
    ``capacity`` and ``channel_capacity`` bound each local queue: past it the
    newest messages are dropped. ``send`` never raises ChannelFull.

    The layer's state and helpers are name-mangled, so a subclass may use any
    ``_name`` of its own.
    """

    extensions: Sequence[str] = ["groups", "flush"]

    def __init__(
        self,
        hosts: Iterable[HostConfig] | None = None,
        prefix: str = "asgi",
        on_disconnect: ConnectionHook | None = None,
        on_reconnect: ConnectionHook | None = None,
        *,
        expiry: float = 60,
        group_expiry: float = 86400,
        capacity: int = 100,
        channel_capacity: Mapping[CapacityPattern, int] | None = None,
        serializer_format: str = "msgpack",
        symmetric_encryption_keys: Iterable[str | bytes] | None = None,
    ) -> None:
        super().__init__(expiry=expiry, capacity=capacity, channel_capacity=channel_capacity)
        if not group_expiry > 0:
            raise ValueError(f"group_expiry must be a number of seconds > 0; got {group_expiry!r}")
        # Settings are untyped at run time, whatever the annotations say.
        if not isinstance(cast(object, prefix), str):
            raise TypeError(f"prefix must be a string; got {prefix!r}")
        for hook_name, hook in (("on_disconnect", on_disconnect), ("on_reconnect", on_reconnect)):
            if hook is not None and not isinstance(hook, str) and not callable(hook):
                raise TypeError(
                    f"{hook_name} must be an async callable or a message type string; got {hook!r}"
                )
        self.hosts = decode_hosts(hosts)
        self.prefix = prefix
        self.on_disconnect = on_disconnect
        self.on_reconnect = on_reconnect
        self.group_expiry = group_expiry
        self.serializer = Serializer(
            serializer_format=serializer_format,
            symmetric_encryption_keys=symmetric_encryption_keys,
        )
        self.__channel_prefix = f"{prefix}:"
        self.__states: dict[asyncio.AbstractEventLoop, _LoopState] = {}

    # -- names and state -----------------------------------------------------

    def channel_key(self, channel: str) -> str:
        """Return the Redis pub/sub channel that carries ``channel``."""
        return self.__channel_prefix + channel

    def channel_from_key(self, name: str) -> str | None:
        """Return the layer channel a Redis pub/sub channel carries, or None if foreign."""
        if name.startswith(self.__channel_prefix):
            return name[len(self.__channel_prefix) :]
        return None

    def group_key(self, group: str) -> str:
        """Return the Redis key of the sorted set holding ``group``'s members."""
        return f"{self.prefix}:pubsub-group:{group}"

    def __state(self) -> _LoopState:
        loop = asyncio.get_running_loop()
        state = self.__states.get(loop)
        if state is None:
            for old in [old for old in self.__states if old.is_closed()]:
                del self.__states[old]
            state = self.__states[loop] = _LoopState(self, loop)
        return state

    def forget(self, state: _LoopState) -> None:
        """Drop ``state`` if it is the current state of its loop."""
        if self.__states.get(state.loop) is state:
            del self.__states[state.loop]

    # -- the channel layer interface -------------------------------------------

    async def send(self, channel: str, message: ChannelMessage) -> None:
        """Publish ``message`` on ``channel``; it reaches only current subscribers."""
        self.require_valid_channel_name(channel)
        require_message(message)
        data = self.serializer.dumps(message)
        await (
            self.__state()
            .shard(channel)
            .run(f"send to {channel!r}", ("PUBLISH", self.channel_key(channel), data))
        )

    async def receive(self, channel: str) -> ReceivedMessage:
        """Wait for the next message on ``channel``, subscribing to it first if needed."""
        self.require_valid_channel_name(channel)
        state = self.__state()
        inbox = await state.open(channel, waiting=True)
        try:
            data = await inbox.queue.get()
        except BaseException:
            await state.leave(channel, inbox, waiting=True)
            raise
        inbox.waiting -= 1
        return self.serializer.loads(data)

    async def new_channel(self, prefix: str = "specific.") -> str:
        """Return a new channel name and subscribe to it: ``<prefix><random>!``."""
        channel = f"{prefix}{uuid.uuid4().hex}!"
        self.require_valid_channel_name(channel)
        await self.__state().open(channel)
        return channel

    # -- groups ----------------------------------------------------------------

    async def group_add(self, group: str, channel: str) -> None:
        """Add ``channel`` to ``group`` (any process may read it), or renew it."""
        self.require_valid_group_name(group)
        self.require_valid_channel_name(channel)
        key = self.group_key(group)
        await (
            self.__state()
            .shard(group)
            .run(
                f"add {channel!r} to group {group!r}",
                ("ZADD", key, time.time(), channel),
                ("EXPIRE", key, math.ceil(self.group_expiry)),
            )
        )

    async def group_discard(self, group: str, channel: str) -> None:
        """Remove ``channel`` from ``group``; nothing happens if it is not a member."""
        self.require_valid_group_name(group)
        self.require_valid_channel_name(channel)
        await (
            self.__state()
            .shard(group)
            .run(
                f"discard {channel!r} from group {group!r}",
                ("ZREM", self.group_key(group), channel),
            )
        )

    async def group_send(self, group: str, message: ChannelMessage) -> None:
        """Publish ``message`` on the channel of every live member of ``group``."""
        self.require_valid_group_name(group)
        require_message(message)
        data = self.serializer.dumps(message)
        state = self.__state()
        key = self.group_key(group)
        _, members = await state.shard(group).run(
            f"read group {group!r}",
            ("ZREMRANGEBYSCORE", key, "-inf", time.time() - self.group_expiry),
            ("ZRANGE", key, 0, -1),
        )
        by_shard: dict[_Shard, list[_Command]] = {}
        for raw in cast("list[bytes]", members):
            channel = raw.decode()
            publish: _Command = ("PUBLISH", self.channel_key(channel), data)
            by_shard.setdefault(state.shard(channel), []).append(publish)
        for shard, commands in by_shard.items():
            await shard.run(f"send to group {group!r}", *commands)

    # -- flush and close ---------------------------------------------------------

    async def flush(self) -> None:
        """Delete this prefix's groups and drop messages queued in this process.

        Subscriptions stay: channels this process reads keep receiving.
        """
        state = self.__state()
        for inbox in state.inboxes.values():
            while not inbox.queue.empty():
                inbox.queue.get_nowait()
        pattern = re.sub(r"([*?\[\]\\])", r"\\\1", self.group_key("")) + "*"
        for shard in state.shards:
            cursor = b"0"
            # SCAN visits every key once and ends by returning cursor 0.
            while True:
                ((cursor, keys),) = cast(
                    "list[tuple[bytes, list[bytes]]]",
                    await shard.run(
                        "flush groups",
                        ("SCAN", cursor, "MATCH", pattern, "COUNT", 500),
                    ),
                )
                if keys:
                    await shard.run("flush groups", ("DEL", *keys))
                if cursor in (b"0", 0):
                    break

    async def close(self) -> None:
        """Close this event loop's connections and subscriptions; usable again after."""
        state = self.__states.pop(asyncio.get_running_loop(), None)
        if state is not None:
            await state.close()
