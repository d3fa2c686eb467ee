"""RedisChannelLayer: a channel layer on Redis, wire-compatible with channels_redis 4.x.

Layout in Redis (the same as channels_redis, so both can share a server):

* a channel's messages live in the sorted set ``{prefix}{channel}``, scored by
  send time (Unix seconds); a process-specific channel ``a.b!c`` is stored in
  its process's set ``{prefix}a.b!`` with the full name in the message under
  ``__asgi_channel__``;
* a group is the sorted set ``{prefix}:group:{group}`` of channel names scored
  by the time they were added.

Receiving: per event loop and shard, one background *reader* task pops, with a
single BZPOPMIN over every key that local receivers wait on, and hands each
message to its receiver. A receiver only waits on a local future, so
cancelling it never drops a message: one that arrives after the cancel goes to
the next receiver, or back to Redis with its original score (its place in the
queue). A reader stops once no receiver has waited for one blocking period,
and on close(). A receiver alone on a normal channel, on a single server,
first pops a message that is already there itself (a shielded pop, so a
cancel hands it to the next receiver too), saving the reader's turn.

group_send: with one server, plain msgpack and no ``channel_capacity``
patterns, one script reads the group and writes every member's copy inside
Redis; otherwise one round trip reads the members and one per shard writes
the copies built here.

Connections: each event loop has its own pools (a pool cannot cross loops);
they are closed by close() and when their loop closes, so code that runs the
layer through ``async_to_sync`` does not leak connections or hit "Event loop
is closed". A pool waits for a free connection rather than failing with "Too
many connections". A blocking read always ends before the socket timeout.

Sharding: a group, a process-specific channel's process key and a normal
channel live on the shard that channels_redis's CRC32 hash picks for the
group name, the name up to ``!``, and the channel name. channels_redis sends to
normal channels round-robin over all shards, so receivers here read a normal
channel on every shard.

Errors: a Redis host that cannot be reached raises LayerConnectionError (a
built-in ConnectionError and a redis-py one) naming the host. Receivers that
wait while a connection is down keep waiting while it reconnects, for up to
10 seconds, then get the error; a host never reached fails them at once. A
message that cannot be decrypted or decoded raises MessageDecodeError from one
receive() on its key; the reader goes on with the next message.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import hashlib
import itertools
import logging
import math
import time
import uuid
import weakref
from collections import Counter, deque
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, ClassVar, Final, TypeAlias, cast

import redis.exceptions
from redis.asyncio import ConnectionPool, Redis

from channels._asserted import AssertedValueError
from channels.exceptions import ChannelFull
from channels.layers.base import BaseChannelLayer, CapacityPattern, require_message
from channels.layers.redis._hosts import (
    HostConfig,
    consistent_hash,
    decode_hosts,
    describe_host,
    make_pool,
)
from channels.layers.redis._serializers import MAX_MESSAGE_SIZE, MessageDecodeError, Serializer
from channels.types import ChannelMessage, ReceivedMessage

__all__ = ["LayerConnectionError", "RedisChannelLayer"]

logger = logging.getLogger(__name__)

_CHANNEL_KEY: Final = "__asgi_channel__"

# redis-py's default read timeout (5 s since redis-py 6, none before): a
# blocking pop must return before it, or the read fails with TimeoutError.
_DEFAULT_SOCKET_TIMEOUT: Final = 5.0


# redis-py leaves its exceptions' __init__ unannotated; it sets attributes that
# redis-py reads back (its repr, among others), so it must run.
_redis_error_init = cast(Callable[..., None], redis.exceptions.ConnectionError.__init__)  # pyright: ignore[reportUnknownMemberType] -- see above


class LayerConnectionError(redis.exceptions.ConnectionError, ConnectionError):
    """The layer could not talk to a Redis host; ``host`` names it (no password).

    Both a redis-py ``ConnectionError`` and the built-in one, so either
    ``except`` clause catches it.
    """

    def __init__(self, host: str, reason: BaseException) -> None:
        self.host = host
        self.reason = reason
        _redis_error_init(self, f"cannot reach Redis at {host}: {reason}")


class _HostErrors:
    """A context that turns redis-py's connection and timeout errors into LayerConnectionError."""

    __slots__ = ("host",)

    def __init__(self, host: str) -> None:
        self.host = host

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if isinstance(
            error, (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)
        ) and not isinstance(error, LayerConnectionError):
            raise LayerConnectionError(self.host, error) from error


class _Script:
    """A Lua script run by SHA, loaded on first use on each server."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode("utf-8")).hexdigest()

    async def run(
        self, client: Redis, keys: Sequence[str], args: Sequence[str | bytes | float]
    ) -> Any:  # Any: a Lua reply
        try:
            return await client.evalsha(self.sha, len(keys), *keys, *args)
        except redis.exceptions.NoScriptError:
            return await client.eval(self.source, len(keys), *keys, *args)


# KEYS[1]: channel key. ARGV: message, now, expired-before, capacity, key TTL.
# Returns 1 when sent, 0 when the channel is full.
_SEND: Final = _Script("""
redis.call('ZREMRANGEBYSCORE', KEYS[1], 0, ARGV[3])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then
    return 0
end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[5])
return 1
""")

# KEYS: channel keys on one shard. ARGV: now, expired-before, key TTL, then a
# (message, capacity) pair per key. Returns the 1-based indexes of full keys.
_GROUP_SEND: Final = _Script("""
local full = {}
for i = 1, #KEYS do
    redis.call('ZREMRANGEBYSCORE', KEYS[i], 0, ARGV[2])
    if redis.call('ZCARD', KEYS[i]) < tonumber(ARGV[3 + 2 * i]) then
        redis.call('ZADD', KEYS[i], ARGV[1], ARGV[2 + 2 * i])
        redis.call('EXPIRE', KEYS[i], ARGV[3])
    else
        full[#full + 1] = i
    end
end
return full
""")

# The whole group_send in one script, when every key lives on one server and
# the payload is plain msgpack. KEYS[1]: group key. ARGV: memberships added
# before this have expired, the key prefix, now, messages sent before this have
# expired, key TTL, capacity, then the payload up to its last value: the
# message packed with its channel key last, whose value (the array of the
# key's channels) the script packs per key. Returns the channels of full keys.
_GROUP_SEND_ALL: Final = _Script("""
local capacity = tonumber(ARGV[6])
local full = {}
local function pack_str(s)
    if #s < 32 then return string.char(0xa0 + #s) .. s end
    return string.char(0xd9, #s) .. s
end
-- Trimmed on every send, as channels_redis does: its receivers rely on it.
local function push(key, array, names)
    redis.call('ZREMRANGEBYSCORE', key, 0, ARGV[4])
    if redis.call('ZCARD', key) < capacity then
        redis.call('ZADD', key, ARGV[3], ARGV[7] .. array)
        redis.call('EXPIRE', key, ARGV[5])
    else
        for _, name in ipairs(names) do full[#full + 1] = name end
    end
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], 0, ARGV[1])
local order, by_process = {}, {}
for _, channel in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
    local bang = string.find(channel, '!', 1, true)
    if bang then
        -- A process's channels share its key and one copy naming them all.
        local key = ARGV[2] .. string.sub(channel, 1, bang)
        if not by_process[key] then
            by_process[key] = {}
            order[#order + 1] = key
        end
        table.insert(by_process[key], channel)
    else
        push(ARGV[2] .. channel, string.char(0x91) .. pack_str(channel), {channel})
    end
end
for _, key in ipairs(order) do
    local names = by_process[key]
    local parts = {}
    if #names < 16 then
        parts[1] = string.char(0x90 + #names)
    else
        parts[1] = string.char(0xdc, math.floor(#names / 256), #names % 256)
    end
    for i, name in ipairs(names) do parts[i + 1] = pack_str(name) end
    push(key, table.concat(parts), names)
end
return full
""")


# KEYS[1]: group key. ARGV[1]: memberships added before this have expired.
_GROUP_MEMBERS: Final = _Script("""
redis.call('ZREMRANGEBYSCORE', KEYS[1], 0, ARGV[1])
return redis.call('ZRANGE', KEYS[1], 0, -1)
""")


_Popped: TypeAlias = "list[tuple[bytes | str, float]]"


@dataclass
class _Entry:
    """A received message waiting for its receiver, with its send time."""

    channel: str
    message: dict[str, Any]  # Any: messages are arbitrary serialisable mappings
    score: float
    shard: int  # where it was popped, and so where it goes back


@dataclass
class _Inbox:
    """One channel's messages and receivers in one event loop."""

    entries: deque[_Entry] = field(default_factory=deque[_Entry])
    waiters: deque[asyncio.Future[_Entry]] = field(default_factory=deque[asyncio.Future[_Entry]])


@dataclass
class _Reader:
    """The task that pops messages for one shard in one event loop."""

    wake_key: str
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    in_flight: frozenset[str] = frozenset()
    stopping: bool = False
    task: asyncio.Task[None] | None = None
    swept_at: float = field(default_factory=time.monotonic)


@dataclass
class _LoopState:
    """Everything the layer holds for one event loop."""

    pools: dict[int, ConnectionPool] = field(default_factory=dict[int, ConnectionPool])
    clients: dict[int, Redis] = field(default_factory=dict[int, Redis])
    reader_clients: dict[int, Redis] = field(default_factory=dict[int, Redis])
    inboxes: dict[str, _Inbox] = field(default_factory=dict[str, _Inbox])
    # Per shard: Redis key -> number of receivers waiting on it.
    watched: dict[int, Counter[str]] = field(default_factory=dict[int, Counter[str]])
    readers: dict[int, _Reader] = field(default_factory=dict[int, _Reader])
    # Shared channels holding messages that no local receiver waits for.
    stranded: set[str] = field(default_factory=set[str])
    # How many returns of such messages to Redis are under way.
    returning: int = 0
    # Shards that have answered at least once.
    reached: set[int] = field(default_factory=set[int])
    # Shared channel -> its receiver's pop from Redis, while it is out.
    popping: dict[str, asyncio.Future[_Popped]] = field(
        default_factory=dict[str, "asyncio.Future[_Popped]"]
    )


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
        serializer_format: ``"msgpack"`` or ``"json"``.

    Messages larger than ``max_message_size`` bytes once serialised (16 MiB by
    default) raise MessageTooLarge.

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
        if not isinstance(prefix, str):  # pyright: ignore[reportUnnecessaryIsInstance] -- settings are untyped
            raise TypeError(f"prefix must be a str; got {prefix!r}")
        for name, value in (("expiry", expiry), ("group_expiry", group_expiry)):
            if not value > 0:
                raise ValueError(f"{name} must be a number of seconds > 0; got {value!r}")
        self.prefix = prefix
        self.group_expiry = group_expiry
        self.hosts = decode_hosts(hosts)
        self.ring_size = len(self.hosts)
        self.__host_errors = [_HostErrors(describe_host(host)) for host in self.hosts]
        self.__serializer = Serializer(
            serializer_format,
            symmetric_encryption_keys=symmetric_encryption_keys,
            random_prefix_length=random_prefix_length,
            expiry=expiry,
            max_size=self.max_message_size,
        )
        self.client_prefix = uuid.uuid4().hex
        self.__states: dict[asyncio.AbstractEventLoop, _LoopState] = {}
        self.__rotation = itertools.count()

    def __repr__(self) -> str:
        hosts = [describe_host(host) for host in self.hosts]
        return f"{type(self).__name__}(hosts={hosts!r}, prefix={self.prefix!r})"

    # -- sending ---------------------------------------------------------------

    async def send(self, channel: str, message: ChannelMessage) -> None:
        """Send ``message`` to ``channel``; raise ChannelFull when it is at capacity."""
        self.require_valid_channel_name(channel)
        payload = self.__prepare(message)
        if "!" in channel:
            payload[_CHANNEL_KEY] = channel
        data = self.__serializer.dumps(payload)
        shard = self.__shard(channel)
        capacity = self.get_capacity(channel)
        now = time.time()
        sent = await self.__run(
            shard,
            _SEND,
            [self.__channel_key(channel)],
            [data, now, self.__expired_before(now), capacity, self.__ttl()],
        )
        if not sent:
            raise ChannelFull(channel, capacity)

    def __prepare(self, message: object) -> dict[str, Any]:
        require_message(message)
        payload: dict[str, Any] = dict(cast("Mapping[str, Any]", message))
        if _CHANNEL_KEY in payload:
            raise AssertedValueError(
                f"a message must not carry the reserved key {_CHANNEL_KEY!r}; got {message!r}"
            )
        return payload

    # -- groups ----------------------------------------------------------------

    async def group_add(self, group: str, channel: str) -> None:
        """Add ``channel`` to ``group``, or refresh its membership."""
        self.require_valid_group_name(group)
        self.require_valid_channel_name(channel)
        key = self._group_key(group)
        shard = self.__group_shard(group)
        with self.__errors(shard):
            pipe = self.__client(self.__state(), shard).pipeline(transaction=True)
            _ = pipe.zadd(key, {channel: time.time()})
            _ = pipe.expire(key, math.ceil(self.group_expiry))
            await pipe.execute()

    async def group_discard(self, group: str, channel: str) -> None:
        """Remove ``channel`` from ``group``; no error if it is not a member."""
        self.require_valid_group_name(group)
        self.require_valid_channel_name(channel)
        shard = self.__group_shard(group)
        with self.__errors(shard):
            await self.__client(self.__state(), shard).zrem(self._group_key(group), channel)

    async def group_send(self, group: str, message: ChannelMessage) -> None:
        """Send ``message`` to every member of ``group``; full members are skipped.

        One round trip reads the members, then one per shard that holds them
        writes every copy at once, whatever the group's size.
        """
        self.require_valid_group_name(group)
        payload = self.__prepare(message)
        shard = self.__group_shard(group)
        now = time.time()
        if self.__packs_in_script:
            await self.__group_send_in_script(group, payload, now)
            return
        raw = await self.__run(
            shard, _GROUP_MEMBERS, [self._group_key(group)], [now - self.group_expiry]
        )
        members = [bytes(name).decode("utf-8") for name in raw]
        if not members:
            self.__serializer.dumps(payload)  # still reject what could never be sent
            return
        # One copy per Redis key: a process key carries every local member.
        by_key: dict[str, list[str]] = {}
        for channel in members:
            by_key.setdefault(self.__channel_key(channel), []).append(channel)
        by_shard: dict[int, list[str]] = {}
        for key, channels in by_key.items():
            by_shard.setdefault(self.__shard(channels[0]), []).append(key)
        # Serialise every copy before writing any, so a bad message sends none.
        batches: list[tuple[int, list[str], list[str | bytes | float]]] = []
        for target, keys in by_shard.items():
            args: list[str | bytes | float] = [now, self.__expired_before(now), self.__ttl()]
            for key in keys:
                channels = by_key[key]
                args.append(self.__serializer.dumps({**payload, _CHANNEL_KEY: channels}))
                args.append(self.get_capacity(channels[0]))
            batches.append((target, keys, args))
        for target, keys, args in batches:
            full = await self.__run(target, _GROUP_SEND, keys, args)
            if full:
                logger.info(
                    "group_send to %r skipped %d full channel(s): %s",
                    group,
                    len(full),
                    ", ".join(by_key[keys[int(index) - 1]][0] for index in full),
                )

    @property
    def __packs_in_script(self) -> bool:
        """Whether group_send can build every copy inside Redis.

        It can when every key is on one server, copies are plain msgpack (not
        encrypted) and every channel has the default capacity.
        """
        return (
            self.ring_size == 1
            and self.__serializer.serializer_format == "msgpack"
            and not self.__serializer.encrypted
            and not self.channel_capacity
        )

    async def __group_send_in_script(self, group: str, payload: dict[str, Any], now: float) -> None:
        # Packed with an empty channel array last: the script replaces that
        # array (its final byte, 0x90) with each key's channels.
        head = self.__serializer.dumps({**payload, _CHANNEL_KEY: []})[:-1]
        full = await self.__run(
            0,
            _GROUP_SEND_ALL,
            [self._group_key(group)],
            [
                now - self.group_expiry,
                self.prefix,
                now,
                self.__expired_before(now),
                self.__ttl(),
                self.capacity,
                head,
            ],
        )
        if full:
            names = ", ".join(bytes(name).decode("utf-8") for name in full)
            logger.info("group_send to %r skipped %d full channel(s): %s", group, len(full), names)

    # -- receiving -------------------------------------------------------------

    async def new_channel(self, prefix: str = "specific") -> str:
        """Return a new process-specific channel name that this layer can receive on."""
        return f"{prefix}.{self.client_prefix}!{uuid.uuid4().hex}"

    async def receive(self, channel: str) -> ReceivedMessage:
        """Wait for and return the next message on ``channel``."""
        self.require_valid_channel_name(channel)
        if "!" in channel and not self.non_local_name(channel).endswith(f".{self.client_prefix}!"):
            raise ValueError(
                "receive() takes process-specific channels made by this layer's "
                f"new_channel() (containing {self.client_prefix!r}); got {channel!r}"
            )
        state = self.__state()
        pending = state.popping.get(channel)
        if pending is not None:
            # A cancelled receive's pop is still out: what it takes comes first.
            await asyncio.wait([pending])
        inbox = state.inboxes.setdefault(channel, _Inbox())
        entry = self.__take(inbox)
        if entry is None and self.__may_pop_now(state, channel, inbox):
            await self.__pop_now(state, channel)
            # The reader may have replaced the inbox while the pop was out.
            inbox = state.inboxes.setdefault(channel, _Inbox())
            entry = self.__take(inbox)
        if entry is not None:
            if not inbox.entries and not inbox.waiters:
                state.inboxes.pop(channel, None)
                state.stranded.discard(channel)
            return entry.message
        key = self.__channel_key(channel)
        future: asyncio.Future[_Entry] = asyncio.get_running_loop().create_future()
        inbox.waiters.append(future)
        shards = self.__read_shards(channel)
        for shard in shards:
            state.watched.setdefault(shard, Counter())[key] += 1
        try:
            for shard in shards:
                await self.__watch(state, shard, key)
            entry = await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled() and future.exception() is None:
                # Handed over as this receive was cancelled: give it to the next one.
                self.__deliver(state, future.result(), front=True)
            raise
        finally:
            if future in inbox.waiters:
                inbox.waiters.remove(future)
                self.__unwatch(state, channel)
            if not inbox.waiters:
                if not inbox.entries:
                    state.inboxes.pop(channel, None)
                elif "!" not in channel:
                    state.stranded.add(channel)
        return entry.message

    def __may_pop_now(self, state: _LoopState, channel: str, inbox: _Inbox) -> bool:
        """Whether a receive may pop ``channel`` itself instead of waiting for the reader.

        It may when it is alone on a shared channel on the only server and no
        earlier message of the channel can still arrive after it: none on its
        way back to Redis, none in a pop that is still out.
        """
        if "!" in channel or self.ring_size != 1 or inbox.waiters:
            return False
        if state.stranded or state.returning or channel in state.popping:
            return False
        reader = state.readers.get(0)
        return reader is None or self.__channel_key(channel) not in reader.in_flight

    async def __pop_now(self, state: _LoopState, channel: str) -> None:
        """Pop ``channel``'s oldest message from Redis into its inbox, if there is one."""
        key = self.__channel_key(channel)
        pop = asyncio.ensure_future(self.__run_pop(state, key))
        state.popping[channel] = pop
        pop.add_done_callback(lambda _: state.popping.pop(channel, None))
        try:
            popped = await asyncio.shield(pop)
        except asyncio.CancelledError:
            # The receive was cancelled while the pop was out: the message, if
            # any, is buffered and goes back to Redis for another receiver.
            pop.add_done_callback(lambda done: self.__strand(state, key, done))
            raise
        except LayerConnectionError:
            # Redis is away: the reader's path waits for it to come back.
            return
        for member, score in popped:
            self.__dispatch(state, 0, key, member, score, popped_by_receiver=True)

    async def __run_pop(self, state: _LoopState, key: str) -> _Popped:
        with self.__errors(0):
            popped = await self.__client(state, 0).zpopmin(key)
        state.reached.add(0)
        # Without a count, ZPOPMIN answers (member, score) pairs.
        return cast(_Popped, popped)

    def __strand(self, state: _LoopState, key: str, done: asyncio.Future[_Popped]) -> None:
        if done.cancelled() or done.exception() is not None:
            return
        for member, score in done.result():
            self.__dispatch(state, 0, key, member, score)
        if state.stranded:
            # The reader puts it back, in its turn with its own pops.
            self.__ensure_reader(state, 0)

    def __take(self, inbox: _Inbox) -> _Entry | None:
        expired_before = self.__expired_before(time.time())
        while inbox.entries:
            entry = inbox.entries.popleft()
            if entry.score >= expired_before:
                return entry
        return None

    def __deliver(self, state: _LoopState, entry: _Entry, front: bool = False) -> None:
        inbox = state.inboxes.setdefault(entry.channel, _Inbox())
        while inbox.waiters:
            future = inbox.waiters.popleft()
            self.__unwatch(state, entry.channel)
            if not future.done():
                future.set_result(entry)
                return
        if "!" not in entry.channel:
            state.stranded.add(entry.channel)
        if front:
            inbox.entries.appendleft(entry)
            return
        capacity = self.get_capacity(entry.channel)
        if len(inbox.entries) >= capacity:
            dropped = inbox.entries.popleft()
            logger.warning(
                "channel %r has %d unreceived messages: dropped the oldest (sent at %s)",
                entry.channel,
                capacity,
                dropped.score,
            )
        inbox.entries.append(entry)

    def __read_shards(self, channel: str) -> range | tuple[int]:
        """Return the shards a receiver on ``channel`` reads from.

        channels_redis sends to normal channels round-robin over every shard
        (this layer sends to the hash shard, which keeps their order), so a
        receiver reads a normal channel on every shard.
        """
        if "!" in channel or self.ring_size == 1:
            return (self.__shard(channel),)
        return range(self.ring_size)

    def __unwatch(self, state: _LoopState, channel: str) -> None:
        key = self.__channel_key(channel)
        for shard in self.__read_shards(channel):
            watched = state.watched.setdefault(shard, Counter())
            watched[key] -= 1
            if watched[key] <= 0:
                del watched[key]

    def __fail(self, state: _LoopState, error: BaseException, key: str | None, shard: int) -> bool:
        """Fail one receiver waiting on ``key``, or every one on ``shard`` if key is None."""
        failed = False
        for channel, inbox in list(state.inboxes.items()):
            if shard not in self.__read_shards(channel) or (
                key is not None and self.__channel_key(channel) != key
            ):
                continue
            while inbox.waiters:
                future = inbox.waiters.popleft()
                self.__unwatch(state, channel)
                if not future.done():
                    future.set_exception(error)
                    failed = True
                    if key is not None:
                        return True
        return failed

    async def __watch(self, state: _LoopState, shard: int, key: str) -> None:
        reader = self.__ensure_reader(state, shard)
        if reader is not None and reader.in_flight and key not in reader.in_flight:
            await self.__wake(state, shard, reader)

    def __ensure_reader(self, state: _LoopState, shard: int) -> _Reader | None:
        """Start the shard's reader, or tell the running one (returned) to look again."""
        reader = state.readers.get(shard)
        if reader is not None and not reader.stopping:
            reader.changed.set()
            return reader
        previous = reader.task if reader is not None else None
        reader = _Reader(wake_key=f"{self.prefix}#wake.{self.client_prefix}.{uuid.uuid4().hex}")
        state.readers[shard] = reader
        reader.task = asyncio.create_task(self.__read(state, shard, reader, previous))
        return None

    async def __wake(self, state: _LoopState, shard: int, reader: _Reader) -> None:
        # The reader blocks on its wake key too: a member there ends its BZPOPMIN
        # at once, and nothing else is popped, so no message is in flight.
        pipe = self.__client(state, shard).pipeline(transaction=False)
        _ = pipe.zadd(reader.wake_key, {b"wake": 0})
        _ = pipe.expire(reader.wake_key, 60)
        with self.__errors(shard):
            await pipe.execute()

    async def __read(
        self,
        state: _LoopState,
        shard: int,
        reader: _Reader,
        previous: asyncio.Task[None] | None,
    ) -> None:
        client = self.__reader_client(state, shard)
        timeout = self.__poll_timeout(state, shard)
        # A host this loop has reached before gets time to come back; a host
        # never reached fails at once.
        connected, failing_since, backoff = shard in state.reached, None, 0.05
        try:
            if previous is not None:
                # A stopping reader is still returning messages to Redis: pop
                # only after they are back in their places.
                await asyncio.wait({previous})
            while not reader.stopping:
                await self.__return_stranded(state, shard, only_shared=True)
                if time.monotonic() - reader.swept_at > self.expiry:
                    self.__sweep(state)
                    reader.swept_at = time.monotonic()
                keys = [
                    key
                    for key, count in state.watched.setdefault(shard, Counter()).items()
                    if count > 0
                ]
                if not keys:
                    reader.changed.clear()
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(reader.changed.wait(), timeout)
                    if not reader.changed.is_set():
                        break
                    continue
                # Rotate so that a busy key cannot starve the others.
                turn = next(self.__rotation) % len(keys)
                keys = keys[turn:] + keys[:turn]
                reader.in_flight = frozenset(keys)
                try:
                    with self.__errors(shard):
                        popped = await client.bzpopmin([reader.wake_key, *keys], timeout)
                except LayerConnectionError as exc:
                    reader.in_flight = frozenset()
                    if failing_since is None:
                        failing_since = time.monotonic()
                        logger.warning("lost Redis; receivers wait while it reconnects: %s", exc)
                    # A host never reached fails at once; a lost one gets time to return.
                    if not connected or time.monotonic() - failing_since > self._reconnect_timeout:
                        raise
                    reader.changed.clear()
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(reader.changed.wait(), backoff)
                    backoff = min(backoff * 2, 2.0)
                    continue
                reader.in_flight = frozenset()
                connected, failing_since, backoff = True, None, 0.05
                state.reached.add(shard)
                if popped is not None:
                    key, member, score = popped
                    key = key.decode("utf-8") if isinstance(key, bytes) else str(key)
                    if key != reader.wake_key:
                        self.__dispatch(state, shard, key, member, float(score))
        except Exception as exc:
            # Receivers get the error; the next receive starts a new reader.
            self.__fail(state, exc, None, shard)
            if not isinstance(exc, LayerConnectionError):
                logger.exception("the Redis reader for shard %d failed", shard)
        finally:
            reader.stopping = True
            if state.readers.get(shard) is reader:
                del state.readers[shard]
            await self.__return_stranded(state, shard, only_shared=False)

    def __sweep(self, state: _LoopState) -> None:
        """Forget expired buffered messages and the inboxes they leave empty."""
        expired_before = self.__expired_before(time.time())
        for channel, inbox in list(state.inboxes.items()):
            while inbox.entries and inbox.entries[0].score < expired_before:
                inbox.entries.popleft()
            if not inbox.entries and not inbox.waiters:
                del state.inboxes[channel]

    def __dispatch(
        self,
        state: _LoopState,
        shard: int,
        key: str,
        member: object,
        score: float,
        *,
        popped_by_receiver: bool = False,
    ) -> None:
        if score < self.__expired_before(time.time()):
            return
        if not isinstance(member, bytes):
            member = str(member).encode("utf-8")
        try:
            message = self.__serializer.loads(member)
        except MessageDecodeError as exc:
            if popped_by_receiver:
                raise
            # The channel is inside the unreadable message: fail any receiver on the key.
            if not self.__fail(state, exc, key, shard):
                logger.error("dropped an unreadable message from %r: %s", key, exc)
            return
        target = message.pop(_CHANNEL_KEY, None)
        channels: list[str]
        if isinstance(target, str):
            channels = [target]
        elif isinstance(target, list):
            channels = [str(name) for name in target]  # pyright: ignore[reportUnknownArgumentType, reportUnknownVariableType] -- whatever arrived
        else:
            channels = [key[len(self.prefix) :]]
        for index, channel in enumerate(channels):
            # Each receiver gets its own copy, as if each had been sent alone.
            own = message if index == len(channels) - 1 else copy.deepcopy(message)
            self.__deliver(state, _Entry(channel, own, score, shard))

    async def __return_stranded(self, state: _LoopState, shard: int, only_shared: bool) -> None:
        """Put messages no local receiver waits for back in Redis, in their places.

        Messages for shared (normal) channels go back at once, for other
        processes to take; with ``only_shared=False`` (the reader stopping),
        buffered process-specific ones too.
        """
        stranded: list[_Entry] = []
        candidates = list(state.stranded) if only_shared else list(state.inboxes)
        for channel in candidates:
            inbox = state.inboxes.get(channel)
            if inbox is None or inbox.waiters:
                state.stranded.discard(channel)
                continue
            mine = [entry for entry in inbox.entries if entry.shard == shard]
            if not mine:
                continue
            stranded.extend(mine)
            inbox.entries = deque(entry for entry in inbox.entries if entry.shard != shard)
            if not inbox.entries:
                del state.inboxes[channel]
                state.stranded.discard(channel)
        expired_before = self.__expired_before(time.time())
        stranded = [entry for entry in stranded if entry.score >= expired_before]
        if not stranded:
            return
        state.returning += 1
        try:
            await self.__put_back(state, shard, stranded)
        finally:
            state.returning -= 1

    async def __put_back(self, state: _LoopState, shard: int, stranded: list[_Entry]) -> None:
        pipe = self.__client(state, shard).pipeline(transaction=False)
        for entry in stranded:
            payload = dict(entry.message)
            if "!" in entry.channel:
                payload[_CHANNEL_KEY] = entry.channel
            key = self.__channel_key(entry.channel)
            _ = pipe.zadd(key, {self.__serializer.dumps(payload): entry.score})
            _ = pipe.expire(key, self.__ttl())
        try:
            with self.__errors(shard):
                await pipe.execute()
        except LayerConnectionError:
            logger.exception("lost %d received message(s) that no receiver took", len(stranded))

    # -- flush and close ---------------------------------------------------------

    async def flush(self) -> None:
        """Delete every message and group under this layer's prefix, on every shard."""
        pattern = _glob_escape(self.prefix) + "*"
        state = self.__state()
        for shard in range(self.ring_size):
            client = self.__client(state, shard)
            with self.__errors(shard):
                batch: list[bytes | str] = []
                async for key in _scan(client, pattern):
                    batch.append(key)
                    if len(batch) >= 1000:
                        await client.unlink(*batch)
                        batch.clear()
                if batch:
                    await client.unlink(*batch)
        for state in self.__states.values():
            for inbox in state.inboxes.values():
                inbox.entries.clear()

    async def close(self) -> None:
        """Stop this event loop's readers and close its connections.

        The layer stays usable: the next call opens new connections.
        """
        loop = asyncio.get_running_loop()
        for other in [other for other in self.__states if other.is_closed()]:
            del self.__states[other]
        state = self.__states.pop(loop, None)
        if state is not None:
            await self.__close_state(state)

    async def __close_state(self, state: _LoopState) -> None:
        for shard, reader in list(state.readers.items()):
            reader.stopping = True
            reader.changed.set()
            if reader.in_flight:
                with contextlib.suppress(LayerConnectionError):
                    await self.__wake(state, shard, reader)
        tasks = [reader.task for reader in state.readers.values() if reader.task is not None]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        for client in state.reader_clients.values():
            await client.aclose()
        for client in state.clients.values():
            await client.aclose()
        for pool in state.pools.values():
            await pool.aclose()

    # -- keys, shards and connections -------------------------------------------

    def consistent_hash(self, value: str) -> int:
        """Return the shard index of ``value``, as channels_redis computes it."""
        return consistent_hash(value, self.ring_size)

    def __shard(self, channel: str) -> int:
        # Process-specific channels live with their process's key.
        return self.consistent_hash(self.non_local_name(channel))

    def __group_shard(self, group: str) -> int:
        return self.consistent_hash(group)

    def __channel_key(self, channel: str) -> str:
        return self.prefix + self.non_local_name(channel)

    def _group_key(self, group: str) -> str:
        return f"{self.prefix}:group:{group}"

    def __expired_before(self, now: float) -> float:
        # Whole seconds, as channels_redis trims, so both drop the same messages.
        return int(now) - int(self.expiry)

    def __ttl(self) -> int:
        return max(1, math.ceil(self.expiry))

    def __state(self) -> _LoopState:
        loop = asyncio.get_running_loop()
        state = self.__states.get(loop)
        if state is None:
            state = self.__states[loop] = _LoopState()
            self.__close_with_loop(loop)
        return state

    def __close_with_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        """Close this layer's connections for ``loop`` just before the loop closes.

        asyncio has no close hook, so the loop's ``close`` is wrapped (as
        channels_redis does): ``async_to_sync`` closes a loop per call, and its
        connections must go with it.
        """
        layer_ref = weakref.ref(self)
        original = loop.close

        def close() -> None:
            layer = layer_ref()
            if layer is not None:
                state = layer.__states.pop(loop, None)
                if state is not None and not loop.is_running() and not loop.is_closed():
                    loop.run_until_complete(layer.__close_state(state))
            original()

        with contextlib.suppress(AttributeError):  # a loop class with fixed attributes
            setattr(loop, "close", close)  # noqa: B010 -- a method cannot be assigned directly

    def __pool(self, state: _LoopState, shard: int) -> ConnectionPool:
        pool = state.pools.get(shard)
        if pool is None:
            pool = state.pools[shard] = make_pool(self.hosts[shard])
        return pool

    def __client(self, state: _LoopState, shard: int) -> Redis:
        client = state.clients.get(shard)
        if client is None:
            client = state.clients[shard] = Redis(connection_pool=self.__pool(state, shard))
        return client

    def __reader_client(self, state: _LoopState, shard: int) -> Redis:
        client = state.reader_clients.get(shard)
        if client is None:
            client = state.reader_clients[shard] = Redis(
                connection_pool=self.__pool(state, shard), single_connection_client=True
            )
        return client

    def __poll_timeout(self, state: _LoopState, shard: int) -> float:
        socket_timeout = self.__pool(state, shard).connection_kwargs.get(
            "socket_timeout", _DEFAULT_SOCKET_TIMEOUT
        )
        if socket_timeout:
            return min(self._blocking_timeout, float(socket_timeout) / 2)
        return self._blocking_timeout

    async def __run(
        self, shard: int, script: _Script, keys: Sequence[str], args: Sequence[str | bytes | float]
    ) -> Any:  # Any: a Lua reply
        state = self.__state()
        with self.__errors(shard):
            reply = await script.run(self.__client(state, shard), keys, args)
        state.reached.add(shard)
        return reply

    def __errors(self, shard: int) -> _HostErrors:
        return self.__host_errors[shard]


async def _scan(client: Redis, pattern: str) -> AsyncIterator[bytes | str]:
    cursor = 0
    while True:
        # redis-py leaves scan's **kwargs unannotated.
        cursor, keys = await client.scan(cursor, match=pattern, count=1000)  # pyright: ignore[reportUnknownMemberType]
        for key in keys:
            yield key
        if not cursor:
            return


def _glob_escape(text: str) -> str:
    return "".join("\\" + char if char in "*?[]\\" else char for char in text)
