"""Where ``RedisChannelLayer``'s channels live in Redis, and how their messages are encoded.

One :class:`Layout` per layer, fixed when the layer is built: the layer sends
with it and its receivers read with it, so both agree on every key and shard.

On a Redis Cluster (``cluster``) a key carries a hash tag (``P`` is the prefix):

* ``P{proc.abc!}`` holds every process-specific channel of a process, so one
  blocking pop serves all its consumers;
* a normal channel ``c`` is ``P{b}c``, ``b`` being one of ``NORMAL_BUCKETS``
  buckets picked by a CRC32 of the name. Normal channels thus share at most
  that many slots: a process receiving many of them blocks on at most that
  many connections, and a group_send to many normal channels makes one
  script call per bucket, not per member, while the buckets still spread
  over every master.

A *shard* there is the key's hash slot rather than a host: a reader pops the
keys of one slot, as BZPOPMIN over several keys requires. No command or
script touches keys of two slots.
"""

from __future__ import annotations

import binascii
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

from redis.crc import key_slot

from channels.layers.redis._errors import HostErrors
from channels.layers.redis._hosts import consistent_hash
from channels.layers.redis._keys import ttl_seconds
from channels.types import ReceivedMessage

__all__ = ["NORMAL_BUCKETS", "Layout"]

NORMAL_BUCKETS: Final = 64
"""How many hash tags a cluster's normal channels are spread over (see the module docstring)."""


@dataclass(frozen=True)
class Layout:
    """Key names, shards, expiry and the codec of one layer's channels."""

    prefix: str
    client_prefix: str
    ring_size: int
    expiry: float
    host_errors: Sequence[HostErrors]
    non_local_name: Callable[[str], str]
    capacity: Callable[[str], int]
    encode: Callable[[ReceivedMessage], bytes]
    decode: Callable[[bytes], ReceivedMessage]
    """Raises MessageDecodeError, and only that, for bytes it cannot turn into a message."""
    blocking_timeout: float
    reconnect_timeout: float
    cluster: bool = False

    def key(self, channel: str) -> str:
        """Return the Redis key that holds ``channel``'s messages (its process's, for ``a!b``)."""
        name = self.non_local_name(channel)
        if not self.cluster:
            return self.prefix + name
        if name.endswith("!"):
            return f"{self.prefix}{{{name}}}"
        return f"{self.prefix}{{{binascii.crc32(name.encode('utf-8')) % NORMAL_BUCKETS}}}{name}"

    def channel_of(self, key: str) -> str:
        """Return the normal channel whose messages ``key`` holds (the inverse of ``key``)."""
        name = key[len(self.prefix) :]
        return name[name.index("}") + 1 :] if self.cluster else name

    def shard(self, channel: str) -> int:
        """Return the shard that holds ``channel``'s key, by channels_redis's hash (or its slot)."""
        if self.cluster:
            return key_slot(self.key(channel).encode("utf-8"))
        return consistent_hash(self.non_local_name(channel), self.ring_size)

    def errors(self, shard: int) -> HostErrors:
        """Return the error context of the host that holds ``shard`` (a cluster has one)."""
        return self.host_errors[0 if self.cluster else shard]

    def wake_key(self, key: str) -> str:
        """Return a new wake key for a reader that pops ``key`` (on the same slot, in a cluster)."""
        tag = key[key.index("{") : key.index("}") + 1] if self.cluster else ""
        return f"{self.prefix}#wake.{tag}{self.client_prefix}.{uuid.uuid4().hex}"

    def read_shards(self, channel: str) -> Sequence[int]:
        """Return the shards a receiver on ``channel`` reads from.

        channels_redis sends to normal channels round-robin over every shard
        (this layer sends to the hash shard, which keeps their order), so a
        receiver reads a normal channel on every shard.
        """
        if "!" in channel or self.ring_size == 1:
            return (self.shard(channel),)
        return range(self.ring_size)

    def expired_before(self, now: float) -> float:
        """Return the send time before which a message has expired at ``now``.

        Whole seconds, as channels_redis trims, so both drop the same messages.
        """
        return int(now) - int(self.expiry)

    def ttl(self) -> int:
        """Return the TTL of a channel key: it outlives its newest message."""
        return ttl_seconds(self.expiry)
