"""RedisChannelLayer: a channel layer on Redis, wire-compatible with channels_redis 4.x.

Layout in Redis (the same as channels_redis, so both can share a server):

* a channel's messages live in the sorted set ``{prefix}{channel}``, scored by
  send time (Unix seconds); a process-specific channel ``a.b!c`` is stored in
  its process's set ``{prefix}a.b!`` with the full name in the message under
  ``__asgi_channel__``;
* a group is the sorted set ``{prefix}:group:{group}`` of channel names scored
  by the time they were added.

Receiving: per event loop, a ``_receiving.Receiver`` owns the inboxes and the
readers, and states the rules it keeps (order, cancellation, who pops when).

Groups survive lost Redis state: the layer remembers the memberships of its
own process-specific channels and puts them back on a shard whose server
restarted or failed over (``_memberships``).

group_send reads the members and writes their copies in one of three ways,
chosen when the layer is built (``_group_send``): in one script on one
server, planned once per member list on a cluster, or built here.

Connections: each event loop has its own pools (a pool cannot cross loops),
released by close() and when the loop shuts down (``_loops``), so code that
runs the layer through ``async_to_sync`` does not leak connections. A pool
waits for a free connection rather than failing with "Too many connections",
and retries a command once on a fresh connection after a lost one. Sends go
over a pipelined connection of their own per host (``_runner``), written
once and never resent; a receive's own pop and put-backs share it.

Sharding: a group, a process-specific channel's process key and a normal
channel live on the shard that channels_redis's CRC32 hash picks for the
group name, the name up to ``!``, and the channel name. channels_redis sends to
normal channels round-robin over all shards, so receivers here read a normal
channel on every shard.

Errors: a Redis host that cannot be reached raises LayerConnectionError (a
built-in ConnectionError and a redis-py one) naming the host.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import ClassVar

from redis.crc import key_slot

from channels.exceptions import ChannelFull
from channels.layers.base import BaseChannelLayer, CapacityPattern
from channels.layers.redis._connections import Connections
from channels.layers.redis._drops import DropLog
from channels.layers.redis._errors import HostErrors, LayerConnectionError
from channels.layers.redis._group_send import Groups, GroupSender
from channels.layers.redis._hosts import (
    HostConfig,
    consistent_hash,
    decode_hosts,
    describe_host,
    is_cluster,
)
from channels.layers.redis._keys import (
    check_prefix,
    check_seconds,
    delete_prefixed,
    new_group_version,
    ttl_seconds,
)
from channels.layers.redis._layout import Layout
from channels.layers.redis._loops import LoopStates
from channels.layers.redis._memberships import Memberships
from channels.layers.redis._publisher import Publishers
from channels.layers.redis._receiving import Receiver
from channels.layers.redis._runner import LoopState, Runner
from channels.layers.redis._scripts import SEND, Arg
from channels.layers.redis._serializers import (
    CHANNEL_KEY,
    MAX_MESSAGE_SIZE,
    Serializer,
    check_size,
    outgoing,
    received,
)
from channels.layers.redis.serializers import MessageDecodeError
from channels.types import ChannelMessage, ReceivedMessage

__all__ = ["LayerConnectionError", "RedisChannelLayer"]

logger = logging.getLogger(__name__)


class RedisChannelLayer(BaseChannelLayer):
    """A channel layer on one or more Redis servers, compatible with channels_redis.

    Args:
        hosts: Redis servers to shard over (URLs, ``(host, port)`` pairs or
            dicts of connection options); default ``redis://localhost:6379``.
        prefix: the prefix of every Redis key the layer writes.
        expiry: seconds a message waits to be received before it is dropped.
        group_expiry: seconds a group membership lasts after its group_add.
        capacity: messages a channel holds before send raises ChannelFull.
            Process-specific channels count together in their process's key,
            as in channels_redis.
        channel_capacity: per-channel capacities by glob or regex.
        symmetric_encryption_keys: Fernet keys: encrypt with the first,
            decrypt with any (needs the ``crypto`` extra).
        random_prefix_length: random bytes before each message, which keep
            equal messages distinct in Redis sorted sets.
        serializer_format: a format registered in
            ``channels.layers.redis.serializers.registry``: ``"msgpack"``,
            ``"json"`` or one of your own.

    Messages larger than ``max_message_size`` bytes once serialised (16 MiB by
    default) raise MessageTooLarge. ``serialize()`` and ``deserialize()`` turn
    every message into bytes and back, on every path: a subclass may override
    them (to carry UUIDs, say).

    The layer's state and helpers are name-mangled, so a subclass may use any
    ``_name`` of its own; ``_group_key`` keeps channels_redis's name and
    meaning, and ``_blocking_timeout`` / ``_reconnect_timeout`` are class
    attributes a subclass may shorten.
    """

    extensions: Sequence[str] = ["groups", "flush"]

    max_message_size: ClassVar[int] = MAX_MESSAGE_SIZE
    # How long one BZPOPMIN blocks, at most; tests shorten it.
    _blocking_timeout: float = 5.0
    # How long waiting receivers outlive a lost connection before they fail.
    _reconnect_timeout: float = 10.0

    def __init__(
        self,
        hosts: Iterable[HostConfig] | None = None,
        prefix: str = "asgi",
        expiry: float = 60,
        group_expiry: float = 86400,
        capacity: int = 100,
        channel_capacity: Mapping[CapacityPattern, int] | None = None,
        symmetric_encryption_keys: Iterable[str | bytes] | None = None,
        random_prefix_length: int = 12,
        serializer_format: str = "msgpack",
    ) -> None:
        super().__init__(expiry=expiry, capacity=capacity, channel_capacity=channel_capacity)
        self.prefix = check_prefix(prefix)
        check_seconds("expiry", expiry)
        self.group_expiry = check_seconds("group_expiry", group_expiry)
        self.hosts = decode_hosts(hosts)
        self.ring_size = len(self.hosts)
        self.__cluster = is_cluster(self.hosts)
        if self.__cluster and ("{" in self.prefix or "}" in self.prefix):
            raise ValueError(
                "on a Redis Cluster the prefix cannot contain '{' or '}', which would change "
                f"the keys' hash tags; got {self.prefix!r}"
            )
        self.client_prefix = uuid.uuid4().hex
        # Its checks are applied around serialize()/deserialize(), which may be overridden.
        self.__codec = Serializer(
            serializer_format,
            symmetric_encryption_keys=symmetric_encryption_keys,
            random_prefix_length=random_prefix_length,
            expiry=expiry,
        )
        own_codec = (
            type(self).serialize is RedisChannelLayer.serialize
            and type(self).deserialize is RedisChannelLayer.deserialize
        )
        # Copies of a group message can be built from one packing (in Python or Lua).
        plain_codec = own_codec and self.__codec.plain_msgpack
        self.__host_errors = [HostErrors(describe_host(host)) for host in self.hosts]
        self.__layout = Layout(
            prefix=self.prefix,
            client_prefix=self.client_prefix,
            ring_size=self.ring_size,
            expiry=expiry,
            host_errors=self.__host_errors,
            non_local_name=self.non_local_name,
            capacity=self.get_capacity,
            encode=self.__encode,
            decode=self.__decode,
            blocking_timeout=self._blocking_timeout,
            reconnect_timeout=self._reconnect_timeout,
            cluster=self.__cluster,
        )
        self.__drops = DropLog(logger)
        self.__memberships = Memberships(self.group_expiry, self.__receives)
        self.__states = LoopStates(self.__new_state)
        self.__runner = Runner(self.__layout, self.__states)
        self.__group_sender = GroupSender(
            self.__layout,
            self.__runner,
            Groups(self._group_key, self.__group_shard, self.group_expiry),
            self.__drops,
            plain_codec=plain_codec,
            in_script=(
                # group_send may build every copy inside Redis: see the module docstring.
                self.ring_size == 1
                and not self.__cluster
                and plain_codec
                and not self.channel_capacity
            ),
            capacity=self.capacity,
        )

    def __repr__(self) -> str:
        hosts = [describe_host(host) for host in self.hosts]
        return f"{type(self).__name__}(hosts={hosts!r}, prefix={self.prefix!r})"

    # -- serialisation -------------------------------------------------------------

    def serialize(self, message: ReceivedMessage) -> bytes:
        """Turn ``message`` into the bytes stored in Redis; override to carry other types."""
        return self.__codec.inner.serialize(message)

    def deserialize(self, message: bytes) -> ReceivedMessage:
        """Turn bytes read from Redis back into a message; override with ``serialize``."""
        return received(self.__codec.inner.deserialize(message))

    def __encode(self, message: ReceivedMessage) -> bytes:
        return check_size(self.serialize(message), self.max_message_size)

    def __decode(self, data: bytes) -> ReceivedMessage:
        try:
            # A subclass's deserialize() is checked too.
            return received(self.deserialize(data))
        except MessageDecodeError:
            raise
        except Exception as exc:
            # A subclass's deserialize() may raise anything: one message, one failure.
            raise MessageDecodeError(
                f"a message could not be deserialized: {type(exc).__name__}: {exc}"
            ) from exc

    # -- sending ---------------------------------------------------------------

    async def send(self, channel: str, message: ChannelMessage) -> None:
        """Send ``message`` to ``channel``; raise ChannelFull when it is at capacity."""
        self.require_valid_channel_name(channel)
        payload = outgoing(message)
        if "!" in channel:
            payload[CHANNEL_KEY] = channel
        data = self.__encode(payload)
        layout = self.__layout
        capacity = self.get_capacity(channel)
        now = time.time()
        shard = layout.shard(channel)
        keys = [layout.key(channel)]
        args: list[Arg] = [data, now, layout.expired_before(now), capacity, layout.ttl()]
        # In order after what this loop popped of the channel and nobody took.
        await self.__state().receiver.settle(channel)
        sent = await self.__runner.pipelined(shard, f"send to {channel!r}", SEND, keys, args)
        if not sent:
            raise ChannelFull(channel, capacity)

    # -- groups ----------------------------------------------------------------

    async def group_add(self, group: str, channel: str) -> None:
        """Add ``channel`` to ``group``, or refresh its membership."""
        self.require_valid_group_name(group)
        self.require_valid_channel_name(channel)
        key = self._group_key(group)
        shard = self.__group_shard(group)
        now = time.time()
        connections = self.__state().connections
        ttl = ttl_seconds(self.group_expiry)
        commands: list[tuple[str | float, ...]] = [
            ("ZADD", key, now, channel),
            ("EXPIRE", key, ttl),
        ]
        if connections.clustered:
            commands.append(new_group_version(key, ttl))
        with self.__layout.errors(shard):
            # No MULTI on a cluster (redis-py's cluster client would run it in a
            # thread of its own, on another event loop): one round trip to the key's node.
            await connections.pipeline(shard, commands, transaction=not connections.clustered)
        # A consumer that joined and waits has reached the host: its receive rides out a restart.
        connections.answered.add(shard)
        self.__memberships.added(shard, key, channel, now)

    async def group_discard(self, group: str, channel: str) -> None:
        """Remove ``channel`` from ``group``; no error if it is not a member."""
        self.require_valid_group_name(group)
        self.require_valid_channel_name(channel)
        shard = self.__group_shard(group)
        key = self._group_key(group)
        # Forgotten first, so that no membership put back after a restart revives it.
        self.__memberships.discarded(shard, key, channel)
        connections = self.__state().connections
        with self.__layout.errors(shard):
            if connections.clustered:
                ttl = ttl_seconds(self.group_expiry)
                commands = [("ZREM", key, channel), new_group_version(key, ttl)]
                await connections.pipeline(shard, commands)
            else:
                await connections.client(shard).zrem(key, channel)

    async def group_send(self, group: str, message: ChannelMessage) -> None:
        """Send ``message`` to every member of ``group``; full members are skipped and logged.

        One round trip reads the members (or reads them and writes every copy,
        in one script), then one per shard (or cluster node) that holds them
        writes the copies, whatever the group's size (see ``_group_send``).
        """
        self.require_valid_group_name(group)
        await self.__group_sender.send(group, outgoing(message), time.time())

    # -- receiving -------------------------------------------------------------

    async def new_channel(self, prefix: str = "specific") -> str:
        """Return a new process-specific channel name that this layer can receive on."""
        return f"{prefix}.{self.client_prefix}!{uuid.uuid4().hex}"

    def __receives(self, channel: str) -> bool:
        """Whether ``channel`` is a process-specific channel of this layer's new_channel()."""
        return "!" in channel and self.non_local_name(channel).endswith(f".{self.client_prefix}!")

    async def receive(self, channel: str) -> ReceivedMessage:
        """Wait for and return the next message on ``channel``."""
        self.require_valid_channel_name(channel)
        if "!" in channel and not self.__receives(channel):
            raise ValueError(
                "receive() takes process-specific channels made by this layer's "
                f"new_channel() (containing {self.client_prefix!r}); got {channel!r}"
            )
        return await self.__state().receiver.receive(channel)

    # -- flush and close ---------------------------------------------------------

    async def flush(self) -> None:
        """Delete every message and group under this layer's prefix, on every shard."""
        connections = self.__state().connections
        self.__memberships.clear()
        for shard in range(self.ring_size):
            with self.__layout.errors(shard):
                await delete_prefixed(connections.client(shard), self.prefix)
        for state in self.__states:
            state.receiver.clear()

    async def close(self) -> None:
        """Stop this event loop's readers and close its connections.

        The layer stays usable: the next call opens new connections.
        """
        await self.__states.close()

    async def close_pools(self) -> None:
        """Do what ``close()`` does: channels_redis's name for it."""
        await self.close()

    # -- keys, shards and connections -------------------------------------------

    def consistent_hash(self, value: str) -> int:
        """Return the shard index of ``value``, as channels_redis computes it."""
        return consistent_hash(value, self.ring_size)

    def _group_key(self, group: str) -> str:
        if self.__cluster:
            return f"{self.prefix}:group:{{{group}}}"
        return f"{self.prefix}:group:{group}"

    def __group_shard(self, group: str) -> int:
        """The shard of ``group``'s key: by channels_redis's hash, or its slot on a cluster."""
        if self.__cluster:
            return key_slot(self._group_key(group).encode("utf-8"))
        return self.consistent_hash(group)

    def __new_state(self) -> LoopState:
        connections = Connections(self.__memberships.hook(self.hosts))
        senders = Publishers(connections, self.__host_errors)
        receiver = Receiver(self.__layout, connections, senders, self.__drops)
        return LoopState(connections, senders, receiver)

    def __state(self) -> LoopState:
        return self.__runner.state()
