"""RedisPubSubChannelLayer: a channel layer over Redis publish/subscribe.

On the wire it is channels_redis's pub/sub layer: a channel is the Redis
pub/sub channel of the same name, a group is the pub/sub channel
``<prefix>__group__<group>``, both placed on a shard by channels_redis's hash
of that name, and messages are serialised the same way. Processes on either
implementation reach each other's channels and groups.

Group membership lives in the process that receives the member. ``group_add``
records the member locally and subscribes this process to the group's
channel; ``group_send`` is one PUBLISH whatever the group's size; the
subscriber of each subscribed process (``_subscriber``) hands a copy to each
of its local members. Redis stores nothing, so a Redis restarted without its
data loses no group: the subscriber resubscribes and delivery resumes.

On a Redis Cluster (a ``{"cluster": [...]}`` hosts entry) the same names are
shard channels: SPUBLISH and SSUBSCRIBE at the master that owns each name's
slot, one subscriber connection per master (``_sharded``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import ClassVar, Final, TypeAlias, cast

from channels.layers.base import BaseChannelLayer, CapacityPattern, require_message
from channels.layers.redis._connections import Connections
from channels.layers.redis._drops import DropLog
from channels.layers.redis._errors import HostErrors
from channels.layers.redis._hosts import HostConfig, decode_hosts, describe_host
from channels.layers.redis._keys import check_prefix
from channels.layers.redis._loops import LoopStates
from channels.layers.redis._placement import HostSubscribers, Subscribers
from channels.layers.redis._serializers import MAX_MESSAGE_SIZE, Serializer, check_size, received
from channels.layers.redis._sharded import ClusterSubscribers
from channels.types import ChannelMessage, ReceivedMessage

__all__ = ["ConnectionHook", "RedisPubSubChannelLayer"]

logger = logging.getLogger(__name__)

ConnectionHook: TypeAlias = "str | Callable[[], Awaitable[None]]"
"""``on_disconnect`` / ``on_reconnect``: an async callable to await, or a message type
to deliver to every channel this process is subscribed to (as channels_redis does)."""

# Values that a shallow copy of a message duplicates completely.
_SCALARS: Final = frozenset({str, bytes, int, float, bool, type(None)})

_Encode: TypeAlias = "Callable[[ReceivedMessage], bytes]"
_Decode: TypeAlias = "Callable[[bytes], ReceivedMessage]"


class _Inbox:
    """The messages that arrived for one channel this process receives, and its waiters.

    Each message is the bytes from Redis, or a message a group delivery
    already decoded for this inbox alone. ``put`` never blocks: past
    ``capacity`` it drops the newest message, and ``drops`` logs that. ``get``
    hands messages out in arrival order; a waiter woken and then cancelled
    passes its wake-up on, so no message is stranded while others wait.
    """

    def __init__(
        self, channel: str, *, capacity: int, loop: asyncio.AbstractEventLoop, drops: DropLog
    ) -> None:
        self.channel = channel
        self.capacity = capacity
        self.messages: deque[bytes | ReceivedMessage] = deque()
        self.waiters: deque[asyncio.Future[None]] = deque()
        self.receivers = 0
        # The pub/sub names of the groups this channel is a local member of.
        self.groups: set[str] = set()
        self.closed = False
        self._loop = loop
        self._drops = drops
        self._full = (
            f"its local queue holds {capacity} messages, and its receivers are not keeping up"
        )

    def put(self, data: bytes | ReceivedMessage) -> None:
        """Queue ``data`` and wake one waiter; drop it if the queue is full."""
        if len(self.messages) >= self.capacity:
            self._drops.dropped(self.channel, self._full)
            return
        self.messages.append(data)
        if self.waiters:
            self._wake()

    def put_copy(self, message: ReceivedMessage) -> None:
        """Queue a shallow copy of ``message`` (made only if there is room), as ``put``."""
        if len(self.messages) >= self.capacity:
            self._drops.dropped(self.channel, self._full)
            return
        self.messages.append(message.copy())
        if self.waiters:
            self._wake()

    async def get(self) -> bytes | ReceivedMessage | None:
        """Wait for the next message; None once the inbox is closed."""
        while not self.messages:
            if self.closed:
                return None
            waiter = self._loop.create_future()
            self.waiters.append(waiter)
            try:
                await waiter
            except BaseException:
                if waiter.done() and not waiter.cancelled():
                    self._wake()
                with contextlib.suppress(ValueError):
                    self.waiters.remove(waiter)
                raise
        return self.messages.popleft()

    def close(self) -> None:
        """Drop queued messages and wake every waiter (their ``get`` returns None)."""
        self.closed = True
        self.messages.clear()
        for waiter in self.waiters:
            if not waiter.done():
                waiter.set_result(None)
        self.waiters.clear()

    def _wake(self) -> None:
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return


class _LoopState:
    """Everything the layer holds for one event loop: connections, inboxes, local groups.

    - ``subscribers`` places each pub/sub channel on a host (or cluster node)
      and subscribes it there.
    - ``inboxes`` holds an open inbox for each channel this loop receives; the
      channel is subscribed (or being subscribed) while it is there.
    - ``groups`` maps a group's pub/sub name to its local members, each an
      inbox in ``inboxes`` that lists the group in its ``groups``; a group is
      subscribed while it has a member.
    - An inbox leaves when its last waiting receive is cancelled, and then
      leaves its groups too: nothing outlives the receiver that needed it.
    - ``wants(name)`` says whether a subscription is still needed, so an
      unsubscribe that races a new subscription to the same name keeps it.
    """

    def __init__(
        self, layer: RedisPubSubChannelLayer, *, encode: _Encode, decode: _Decode, drops: DropLog
    ) -> None:
        self.layer = layer
        self.loop = asyncio.get_running_loop()
        self.connections = Connections(layer.hosts)
        self.subscribers: Subscribers = (
            ClusterSubscribers(self, self.connections, HostErrors(describe_host(layer.hosts[0])))
            if self.connections.clustered
            else HostSubscribers(self, self.connections, layer.hosts)
        )
        self.inboxes: dict[str, _Inbox] = {}
        self.groups: dict[str, dict[str, _Inbox]] = {}
        self._encode = encode
        self._decode = decode
        self._drops = drops

    def wants(self, name: str) -> bool:
        """Whether the pub/sub channel ``name`` is still needed by a channel or a group."""
        return name in self.inboxes or name in self.groups

    async def aclose(self) -> None:
        """Close every inbox (waiting receives start over) and every connection."""
        inboxes, self.inboxes = self.inboxes, {}
        self.groups.clear()
        for inbox in inboxes.values():
            inbox.close()
        try:
            await self.subscribers.aclose()
        finally:
            await self.connections.aclose()

    async def open(self, channel: str, *, receiver: bool) -> _Inbox:
        """Return the inbox of ``channel``, subscribed; ``receiver`` counts a receive in."""
        inbox = self.inboxes.get(channel)
        if inbox is None:
            # Registered before SUBSCRIBE so no message after the confirmation is lost.
            inbox = self.inboxes[channel] = _Inbox(
                channel,
                capacity=self.layer.get_capacity(channel),
                loop=self.loop,
                drops=self._drops,
            )
        # Counted before subscribing, so a receive still subscribing keeps the
        # channel open when another one is cancelled.
        inbox.receivers += receiver
        try:
            await self.subscribers.subscribe(channel)
        except BaseException:
            await self.leave(inbox, receiver=receiver)
            raise
        return inbox

    async def leave(self, inbox: _Inbox, *, receiver: bool) -> None:
        """Count a receive out; with none left, drop the inbox and its memberships."""
        inbox.receivers -= receiver
        if inbox.receivers or inbox.closed:
            return
        inbox.close()
        if self.inboxes.get(inbox.channel) is inbox:
            del self.inboxes[inbox.channel]
        try:
            for name in list(inbox.groups):
                await self.part(name, inbox)
            await self.subscribers.unsubscribe(inbox.channel)
        except Exception:
            logger.exception("could not unsubscribe from %r", inbox.channel)

    async def join(self, name: str, inbox: _Inbox) -> None:
        """Make ``inbox`` a local member of the group whose pub/sub channel is ``name``."""
        members = self.groups.setdefault(name, {})
        new = inbox.channel not in members
        members[inbox.channel] = inbox
        inbox.groups.add(name)
        try:
            await self.subscribers.subscribe(name)
        except BaseException:
            if new:
                await self.part(name, inbox)
            raise

    async def part(self, name: str, inbox: _Inbox) -> None:
        """Remove ``inbox`` from the group ``name``; unsubscribe once it has no member."""
        inbox.groups.discard(name)
        members = self.groups.get(name)
        if members is None or members.pop(inbox.channel, None) is None:
            return
        if not members:
            del self.groups[name]
            await self.subscribers.unsubscribe(name)

    async def flush(self) -> None:
        """Drop every queued message and every local membership."""
        for inbox in self.inboxes.values():
            inbox.messages.clear()
        for name, members in list(self.groups.items()):
            for inbox in list(members.values()):
                await self.part(name, inbox)

    def deliver(self, name: str, data: bytes) -> None:
        """Hand a published message to the channel ``name``, or to the group's local members."""
        inbox = self.inboxes.get(name)
        if inbox is not None:
            inbox.put(data)
            return
        members = self.groups.get(name)
        if members is None:
            return
        message = self._decode_once(data) if len(members) > 1 else None
        if message is None:
            for member in members.values():
                member.put(data)
            return
        # Every value is immutable, so a shallow copy is a copy of its own for each member.
        for member in members.values():
            member.put_copy(message)

    def _decode_once(self, data: bytes) -> ReceivedMessage | None:
        """Decode a group message once for all local members, if copies can share it.

        None when each member must decode its own copy: a message that holds
        lists, dicts or other objects, or one that fails to decode (each
        receive then raises the error itself).
        """
        try:
            message = self._decode(data)
        except Exception:
            return None
        return message if _SCALARS.issuperset(map(type, message.values())) else None

    async def notify(self, hook_name: str, host: str) -> None:
        """Run the layer's ``on_disconnect`` or ``on_reconnect`` hook, if any."""
        hook = getattr(self.layer, hook_name)
        if hook is None:
            return
        if isinstance(hook, str):
            data = self._encode({"type": hook})
            for inbox in self.inboxes.values():
                inbox.put(data)
            return
        try:
            await cast("Callable[[], Awaitable[None]]", hook)()
        except Exception:
            logger.exception("%s hook failed for Redis at %s", hook_name, host)


class RedisPubSubChannelLayer(BaseChannelLayer):
    """A channel layer over Redis pub/sub: low latency, at-most-once delivery.

    Delivery is at most once. A message reaches only the processes subscribed
    to its channel when it is published: a message sent before the receiver
    subscribed (its ``new_channel`` or first ``receive``), or while the
    connection to Redis is down, is lost. A receive that is cancelled while no
    other receive waits on its channel unsubscribes from it, drops what it
    had queued and leaves the channel's groups.

    Groups are local: ``group_add`` takes only a channel this event loop
    receives (RuntimeError otherwise), subscribes to the group's pub/sub
    channel and records the member; ``group_send`` publishes once on it, and
    each subscribed process delivers to its own members.

    When the subscriber connection to a host is lost, the reader awaits
    ``on_disconnect``, reconnects (retrying with a delay that doubles from
    0.05s up to 1s, for as long as it takes), resubscribes to every channel
    and group and awaits ``on_reconnect``. A hook that is a string is instead
    delivered as a ``{"type": hook}`` message to every subscribed channel.
    Publishing uses one pipelined connection per host (``_publisher``): a
    publish that finds it lost opens a new one, once, then raises
    ConnectionError naming the host; a PUBLISH written but not answered is
    never resent (at most once). Subscribing while the host is being
    reconnected raises that error too.

    On a Redis Cluster (one ``{"cluster": [...]}`` hosts entry) channels and
    groups are shard channels: ``send`` and ``group_send`` are one SPUBLISH at
    the master that owns the name's slot, and each event loop keeps one
    subscriber connection per master it needs. A name whose slot moves, or
    whose master is lost, is subscribed again at its new owner (the hooks run
    for a lost master); messages published in between are lost, and sends
    raise ConnectionError while no master serves the name's slot.

    The layer keeps separate connections, inboxes and groups for each event
    loop that uses it, so it works from ``async_to_sync``; a loop's
    connections are released when the loop shuts down, or by ``close()``.
    ``capacity`` and ``channel_capacity`` bound each local queue: past it the
    newest messages are dropped, and each channel's drops are logged at most
    once per 10 seconds with their count. ``send`` never raises ChannelFull.
    ``expiry`` and ``group_expiry`` are accepted, for settings shared with
    RedisChannelLayer, and have no effect.

    ``serialize()`` and ``deserialize()`` turn every message into bytes and
    back, on every path: a subclass may override them (to carry UUIDs, say).
    Serialised messages over ``max_message_size`` bytes raise MessageTooLarge.
    The layer's state and helpers are name-mangled, so a subclass may use any
    ``_name`` of its own.
    """

    extensions: Sequence[str] = ["groups", "flush"]

    max_message_size: ClassVar[int] = MAX_MESSAGE_SIZE

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
        for hook_name, hook in (("on_disconnect", on_disconnect), ("on_reconnect", on_reconnect)):
            if hook is not None and not isinstance(hook, str) and not callable(hook):
                raise TypeError(
                    f"{hook_name} must be an async callable or a message type string; got {hook!r}"
                )
        self.hosts = decode_hosts(hosts)
        self.prefix = check_prefix(prefix)
        self.on_disconnect = on_disconnect
        self.on_reconnect = on_reconnect
        self.group_expiry = group_expiry
        self.__drops = DropLog(logger)
        self.__codec = Serializer(
            serializer_format, symmetric_encryption_keys=symmetric_encryption_keys
        )
        self.__group_prefix = f"{prefix}__group__"
        self.__states = LoopStates(
            lambda: _LoopState(self, encode=self.__encode, decode=self.__decode, drops=self.__drops)
        )

    def __repr__(self) -> str:
        hosts = [describe_host(host) for host in self.hosts]
        return f"{type(self).__name__}(hosts={hosts!r}, prefix={self.prefix!r})"

    # -- serialisation -------------------------------------------------------------

    def serialize(self, message: ReceivedMessage) -> bytes:
        """Turn ``message`` into the bytes published on Redis; override to carry other types."""
        return self.__codec.inner.serialize(message)

    def deserialize(self, message: bytes) -> ReceivedMessage:
        """Turn bytes received from Redis back into a message; override with ``serialize``."""
        return received(self.__codec.inner.deserialize(message))

    def __encode(self, message: ReceivedMessage) -> bytes:
        return check_size(self.serialize(message), self.max_message_size)

    def __decode(self, data: bytes) -> ReceivedMessage:
        # A subclass's deserialize() is checked too.
        return received(self.deserialize(data))

    # -- the channel layer interface -------------------------------------------

    async def send(self, channel: str, message: ChannelMessage) -> None:
        """Publish ``message`` on ``channel``; it reaches only current subscribers."""
        self.require_valid_channel_name(channel)
        require_message(message)
        data = self.__encode(dict(message))
        await self.__states.get().subscribers.publish(channel, data)

    async def receive(self, channel: str) -> ReceivedMessage:
        """Wait for the next message on ``channel``, subscribing to it first if needed."""
        state = self.__states.get()
        inbox = state.inboxes.get(channel)
        if inbox is not None and inbox.messages:
            queued = inbox.messages.popleft()
            return queued if isinstance(queued, dict) else self.__decode(queued)
        self.require_valid_channel_name(channel)
        while True:
            inbox = await state.open(channel, receiver=True)
            try:
                data: bytes | ReceivedMessage | None = await inbox.get()
            except BaseException:
                await state.leave(inbox, receiver=True)
                raise
            inbox.receivers -= 1
            if isinstance(data, bytes):
                return self.__decode(data)
            if data is not None:
                return data
            # close() released this loop's state while we waited: start over.
            state = self.__states.get()

    async def new_channel(self, prefix: str = "specific.") -> str:
        """Return a new channel name and subscribe to it: ``<prefix><random>!``."""
        channel = f"{prefix}{uuid.uuid4().hex}!"
        self.require_valid_channel_name(channel)
        await self.__states.get().open(channel, receiver=False)
        return channel

    # -- groups ----------------------------------------------------------------

    async def group_add(self, group: str, channel: str) -> None:
        """Add ``channel``, which this event loop receives, to ``group``."""
        self.require_valid_group_name(group)
        self.require_valid_channel_name(channel)
        state = self.__states.get()
        inbox = state.inboxes.get(channel)
        if inbox is None:
            raise RuntimeError(
                f"group_add({group!r}, {channel!r}): this process does not receive "
                f"{channel!r} in this event loop. RedisPubSubChannelLayer delivers group "
                "messages through the process that receives each member, so a member "
                "must be a channel this process got from new_channel() or is receiving; "
                "call group_add from the consumer that owns the channel, with its "
                "self.channel_name"
            )
        await state.join(self.__group_prefix + group, inbox)

    async def group_discard(self, group: str, channel: str) -> None:
        """Remove ``channel`` from ``group``; nothing happens if it is not a local member."""
        self.require_valid_group_name(group)
        self.require_valid_channel_name(channel)
        state = self.__states.get()
        inbox = state.inboxes.get(channel)
        if inbox is not None:
            await state.part(self.__group_prefix + group, inbox)

    async def group_send(self, group: str, message: ChannelMessage) -> None:
        """Publish ``message`` once on ``group``'s channel; each process delivers it locally."""
        self.require_valid_group_name(group)
        require_message(message)
        data = self.__encode(dict(message))
        name = self.__group_prefix + group
        await self.__states.get().subscribers.publish(name, data)

    # -- flush and close ---------------------------------------------------------

    async def flush(self) -> None:
        """Drop the messages queued in this event loop and all its group memberships.

        Subscriptions to channels stay: channels this process reads keep receiving.
        """
        await self.__states.get().flush()

    async def close(self) -> None:
        """Close this event loop's connections and subscriptions; usable again after."""
        await self.__states.close()
