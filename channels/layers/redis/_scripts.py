"""The Lua scripts of ``RedisChannelLayer``, and the limits of the one that packs msgpack.

Every script trims a key's expired messages before counting it, as
channels_redis does on every send: its receivers rely on that.

``GROUP_SEND`` writes copies that are a shared head plus a part of each key's
own: whole messages built by the caller after an empty head, or (the stock
codec) the message packed up to its channel array, then each key's array,
which the caller packs once per group (``_fanout``).

``GROUP_SEND_ALL`` assembles msgpack inside Redis, so it has limits of its
own, checked where input could exceed them:

* The message arrives packed with the reserved channel key (``__asgi_channel__``)
  as its *last* map entry, whose value is an empty array (the final byte,
  0x90). The caller sends everything before that byte (:func:`script_head`
  checks it is there); the script appends each copy's array of channel names.
* Names are packed as msgpack str8, str16 or str32, and a process's array of
  channels as a fixarray, array16 or array32, so any name and any number of
  members fit.
* Every key lives on the one server the script runs on, and every channel has
  the same capacity (no ``channel_capacity`` patterns): the caller checks both.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Final, TypeAlias, TypeVar, cast

import msgpack
import redis.exceptions
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from channels.layers.redis._publisher import Publisher
from channels.layers.redis._redirect import cluster_command

__all__ = [
    "GROUP_MEMBERS",
    "GROUP_MEMBERS_IF_CHANGED",
    "GROUP_SEND",
    "GROUP_SEND_ALL",
    "SEND",
    "Arg",
    "Script",
    "pack_channels",
    "reply_indexes",
    "reply_strings",
    "script_head",
]

_EMPTY_ARRAY: Final = 0x90

_T = TypeVar("_T")

Arg: TypeAlias = "str | bytes | float"
"""A script argument."""


class Script:
    """A Lua script run by SHA, and loaded on first use on each server."""

    __slots__ = ("sha", "source")

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode("utf-8")).hexdigest()

    async def run(
        self, client: Redis | RedisCluster, keys: Sequence[str], args: Sequence[str | bytes | float]
    ) -> object:
        """Run the script with ``keys`` and ``args`` on ``client``'s server (or the keys' node).

        On a cluster the keys share a slot, and an ASK redirection is followed
        even where redis-py would give up (see ``_redirect.cluster_command``).
        """
        if isinstance(client, RedisCluster):
            try:
                return await cluster_command(
                    client, keys[0], "EVALSHA", self.sha, len(keys), *keys, *args
                )
            except redis.exceptions.NoScriptError:
                return await cluster_command(
                    client, keys[0], "EVAL", self.source, len(keys), *keys, *args
                )
        try:
            return await client.evalsha(self.sha, len(keys), *keys, *args)
        except redis.exceptions.NoScriptError:
            return await client.eval(self.source, len(keys), *keys, *args)

    async def run_on(
        self, pipe: Publisher, doing: str, keys: Sequence[str], args: Sequence[Arg]
    ) -> object:
        """Run the script on ``pipe``'s connection (see ``_publisher``), loading it if needed."""
        try:
            return await pipe.command(doing, "EVALSHA", self.sha, len(keys), *keys, *args)
        except redis.exceptions.NoScriptError:
            return await pipe.command(doing, "EVAL", self.source, len(keys), *keys, *args)


def reply_strings(reply: object) -> list[bytes]:
    """A script's reply that is an array of strings (names), as bytes.

    Raises:
        InvalidResponse: the reply is something else.
    """
    return _array_of(reply, bytes, "strings")


def reply_indexes(reply: object) -> list[int]:
    """A script's reply that is an array of integers (1-based key indexes).

    Raises:
        InvalidResponse: the reply is something else.
    """
    return _array_of(reply, int, "integers")


def _array_of(reply: object, kind: type[_T], what: str) -> list[_T]:
    items = cast("list[object]", reply) if isinstance(reply, list) else None
    if items is None or not all(isinstance(item, kind) for item in items):
        raise redis.exceptions.InvalidResponse(f"expected an array of {what}, got {reply!r}")
    return cast("list[_T]", items)


def script_head(packed: bytes) -> bytes:
    """Return ``packed`` (a message packed with the channel key last, empty) minus that array.

    Raises:
        ValueError: if ``packed`` does not end with the empty array.
    """
    if not packed or packed[-1] != _EMPTY_ARRAY:
        raise ValueError(
            "group_send's script needs the message packed with the channel key last "
            f"and empty (ending in byte 0x90); got one ending in {packed[-1:]!r}"
        )
    return packed[:-1]


def pack_channels(head: bytes, channels: list[str]) -> bytes:
    """Return ``head`` (see :func:`script_head`) completed with ``channels``, like GROUP_SEND_ALL.

    The same bytes msgpack gives for the message with ``channels`` as its last value.
    """
    return head + msgpack.packb(channels)


SEND: Final = Script("""
-- KEYS[1]: channel key. ARGV: message, now, expired-before, capacity, key TTL.
-- Returns 1 when sent, 0 when the channel is full.
-- An empty key (the usual case) has nothing to trim: one call fewer.
local count = redis.call('ZCARD', KEYS[1])
if count > 0 then
    count = count - redis.call('ZREMRANGEBYSCORE', KEYS[1], 0, ARGV[3])
end
if count >= tonumber(ARGV[4]) then
    return 0
end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[5])
return 1
""")

GROUP_SEND: Final = Script("""
-- KEYS: channel keys of one shard (on a cluster, of one slot) that have the
-- same capacity. ARGV: now, messages sent before this have expired, key TTL,
-- a head every copy starts with, the keys' capacity, then per key the rest of
-- its copy. Returns the 1-based indexes of full keys.
local capacity = tonumber(ARGV[5])
local full = {}
for i = 1, #KEYS do
    local count = redis.call('ZCARD', KEYS[i])
    if count > 0 then
        count = count - redis.call('ZREMRANGEBYSCORE', KEYS[i], 0, ARGV[2])
    end
    if count < capacity then
        redis.call('ZADD', KEYS[i], ARGV[1], ARGV[4] .. ARGV[5 + i])
        redis.call('EXPIRE', KEYS[i], ARGV[3])
    else
        full[#full + 1] = i
    end
end
return full
""")

GROUP_SEND_ALL: Final = Script("""
-- The whole group_send in one script (see the limits in _scripts.py).
-- KEYS[1]: group key. ARGV: memberships added before this have expired, the
-- key prefix, now, messages sent before this have expired, key TTL, capacity,
-- then the message packed up to its last value (the channel key's array),
-- which the script packs per key. Returns the channels of full keys.
local capacity = tonumber(ARGV[6])
local full = {}
local function be(n, bytes)
    local out = {}
    for i = bytes, 1, -1 do
        out[i] = string.char(n % 256)
        n = math.floor(n / 256)
    end
    return table.concat(out)
end
local function pack_str(s)
    if #s < 32 then return string.char(0xa0 + #s) .. s end
    if #s < 256 then return string.char(0xd9, #s) .. s end
    if #s < 65536 then return string.char(0xda) .. be(#s, 2) .. s end
    return string.char(0xdb) .. be(#s, 4) .. s
end
local function pack_array_head(n)
    if n < 16 then return string.char(0x90 + n) end
    if n < 65536 then return string.char(0xdc) .. be(n, 2) end
    return string.char(0xdd) .. be(n, 4)
end
local function push(key, array, names)
    local count = redis.call('ZCARD', key)
    if count > 0 then
        count = count - redis.call('ZREMRANGEBYSCORE', key, 0, ARGV[4])
    end
    if count < capacity then
        redis.call('ZADD', key, ARGV[3], ARGV[7] .. array)
        redis.call('EXPIRE', key, ARGV[5])
    else
        for _, name in ipairs(names) do full[#full + 1] = name end
    end
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], 0, ARGV[1])
local members = redis.call('ZRANGE', KEYS[1], 0, -1)
local order, by_process = {}, {}
for _, channel in ipairs(members) do
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
        push(ARGV[2] .. channel, pack_array_head(1) .. pack_str(channel), {channel})
    end
end
for _, key in ipairs(order) do
    local names = by_process[key]
    local parts = {pack_array_head(#names)}
    for i, name in ipairs(names) do parts[i + 1] = pack_str(name) end
    push(key, table.concat(parts), names)
end
return full
""")

GROUP_MEMBERS_IF_CHANGED: Final = Script("""
-- On a cluster. KEYS[1]: group key; KEYS[2]: its version key (same slot),
-- which every change to the member list replaces with a new value. ARGV[1]:
-- memberships added before this have expired; ARGV[2]: the version the
-- caller has (or empty); ARGV[3]: a new version, taken when this call drops
-- expired members or the version is missing; ARGV[4]: the version key's TTL.
-- Returns the list's version, followed by the members unless that is
-- ARGV[2]. A group without members has the empty version.
local removed = redis.call('ZREMRANGEBYSCORE', KEYS[1], 0, ARGV[1])
if redis.call('EXISTS', KEYS[1]) == 0 then
    return {''}
end
local version = redis.call('GET', KEYS[2])
if removed > 0 or not version then
    version = ARGV[3]
    redis.call('SET', KEYS[2], version, 'EX', ARGV[4])
end
if version == ARGV[2] then
    return {version}
end
local members = redis.call('ZRANGE', KEYS[1], 0, -1)
table.insert(members, 1, version)
return members
""")

GROUP_MEMBERS: Final = Script("""
-- KEYS[1]: group key. ARGV[1]: memberships added before this have expired.
redis.call('ZREMRANGEBYSCORE', KEYS[1], 0, ARGV[1])
return redis.call('ZRANGE', KEYS[1], 0, -1)
""")
