"""Key names for both Redis layers: the prefix and expiry settings, TTLs, and deleting by prefix.

Every key a layer writes starts with its ``prefix``; ``flush()`` deletes them
with SCAN (never KEYS, which blocks the server) over the prefix with its glob
characters escaped, so a prefix such as ``app[1]`` deletes only its own keys.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import AsyncIterator
from typing import Final, cast

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from channels._asserted import AssertedTypeError

__all__ = [
    "check_prefix",
    "check_seconds",
    "delete_prefixed",
    "glob_escape",
    "group_version_key",
    "new_group_version",
    "scan_prefixed",
    "ttl_seconds",
]

_SCAN_COUNT: Final = 1000
"""Keys SCAN looks at per call, and keys deleted per UNLINK."""


def check_prefix(prefix: object) -> str:
    """Return ``prefix`` if it is a str, else raise TypeError (also an AssertionError)."""
    # Settings are untyped at run time; upstream asserts this.
    if not isinstance(prefix, str):
        raise AssertedTypeError(f"prefix must be a str; got {prefix!r}")
    return prefix


def check_seconds(name: str, value: object) -> float:
    """Return ``value`` if it is a number of seconds > 0, else raise naming the setting ``name``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number of seconds > 0; got {value!r}")
    if not value > 0:
        raise ValueError(f"{name} must be a number of seconds > 0; got {value!r}")
    return value


def ttl_seconds(seconds: float) -> int:
    """Return a key TTL (EXPIRE takes whole seconds) that outlasts ``seconds``: at least 1."""
    return max(1, math.ceil(seconds))


def group_version_key(group_key: str) -> str:
    """Return the key of a cluster group's version: the group key's hash tag, so its slot.

    Every change to the group's member list gives it a new value, so a
    sender that kept the list knows it is current from the version alone
    (see ``_scripts.GROUP_MEMBERS_IF_CHANGED``).
    """
    return group_key + ":v"


def new_group_version(group_key: str, ttl: int) -> tuple[str, str, str, str, int]:
    """Return the command that gives the group a new version, kept ``ttl`` seconds."""
    return ("SET", group_version_key(group_key), uuid.uuid4().hex, "EX", ttl)


def glob_escape(text: str) -> str:
    """Escape the characters SCAN's MATCH pattern treats as wildcards: ``* ? [ ]`` and backslash."""
    return "".join("\\" + char if char in "*?[]\\" else char for char in text)


async def scan_prefixed(
    client: Redis | RedisCluster, prefix: str
) -> AsyncIterator[list[bytes | str]]:
    """Yield, in batches, every key on ``client``'s server (or cluster) starting with ``prefix``."""
    pattern = glob_escape(prefix) + "*"
    if isinstance(client, RedisCluster):
        # redis-py scans every master in turn.
        batch: list[bytes | str] = []
        # redis-py leaves scan_iter's keys and **kwargs unannotated: keys are bytes or str.
        found = cast(
            "AsyncIterator[bytes | str]",
            client.scan_iter(match=pattern, count=_SCAN_COUNT),  # pyright: ignore[reportUnknownMemberType]
        )
        async for key in found:
            batch.append(key)
            if len(batch) == _SCAN_COUNT:
                yield batch
                batch = []
        if batch:
            yield batch
        return
    cursor = 0
    while True:
        # redis-py leaves scan's **kwargs unannotated.
        cursor, keys = await client.scan(cursor, match=pattern, count=_SCAN_COUNT)  # pyright: ignore[reportUnknownMemberType]
        if keys:
            yield keys
        if not cursor:
            return


async def delete_prefixed(client: Redis | RedisCluster, prefix: str) -> int:
    """Delete every key on ``client``'s server that starts with ``prefix``; return how many.

    UNLINK frees the memory in the background, so a large flush does not stall
    the server. A cluster client splits each UNLINK by slot.
    """
    deleted = 0
    async for keys in scan_prefixed(client, prefix):
        for start in range(0, len(keys), _SCAN_COUNT):
            deleted += await client.unlink(*keys[start : start + _SCAN_COUNT])
    return deleted
