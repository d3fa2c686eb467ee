"""Group memberships of a layer's own channels, put back when a Redis server lost them.

A Redis restarted without persistence, or a replica promoted before it had
every write, answers without the groups' sorted sets; every later group
message to a consumer that is still alive would be lost until its next
``group_add``. :class:`Memberships` keeps what is needed to put them back.

What is kept: the memberships a layer object added for its own
process-specific channels (made by its ``new_channel()``, received only by
it) and has not discarded since, each with its ``group_add`` time, the score
Redis holds, so putting it back changes no expiry. Memberships of other
channels are not kept: their receivers live in other processes, which may
have left the group since (a consumer discards its own channel when it
disconnects), and putting them back would revive members that are gone.
(The other way round, one of ours discarded by another process is put back
until its group expiry: this layer cannot see that discard.)
Entries older than ``group_expiry`` are forgotten, from the oldest, on every
``added()``, and never put back; ``clear()`` (the layer's ``flush()``)
forgets all. Memory is bounded by the live memberships.

How lost state is seen: every new connection to a shard (a pool's, or a
blocking reader's, whether first made, remade after a lost connection, or
made to a new master after a failover) asks ``INFO server`` for the
server's ``run_id``: one round trip next to the handshake redis-py already
makes, and none on the hot path. The first ``run_id`` a shard answers is
recorded; another one means another server process, and the shard's
memberships are put back on that connection, before it carries any command:
one ``ZADD`` (original scores) and one ``EXPIRE`` per group (and on a
cluster a new version of the group, see ``_keys.group_version_key``), in one
pipeline. Connections made at the same moment may each put them back: the
same members with the same scores, so no harm. A server that hides
``run_id`` (or refuses ``INFO``) is never seen to restart, and state lost
without a new server process (``FLUSHALL``, eviction) is not seen either.

On a Redis Cluster a failover moves slots to another node (a promoted
replica), so there the rule is: a connection to a master not seen before
puts back every membership on that connection; the node keeps the groups of
its own slots and answers MOVED, ignored, for the others. A master is known
by its replication ID (``master_replid`` of ``INFO replication``), not its
``run_id``: a replica this process has already met (redis-py asks any node,
replicas too, for the slot map) keeps its ``run_id`` when it is promoted, but
takes a new replication ID, as does a restarted server. Connections to
replicas put nothing back. A master first reached late puts them back once
too, which changes nothing.
"""

from __future__ import annotations

import inspect
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeAlias, cast

from redis.asyncio.connection import AbstractConnection
from redis.exceptions import AskError, ResponseError

from channels.layers.redis._hosts import is_cluster
from channels.layers.redis._keys import new_group_version, ttl_seconds

__all__ = ["Memberships"]

logger = logging.getLogger("channels.layers.redis.core")

_Handshake: TypeAlias = Callable[[AbstractConnection], Awaitable[None]]
# redis-py also takes a plain function as a host's redis_connect_func.
_HostHandshake: TypeAlias = Callable[[AbstractConnection], "Awaitable[None] | None"]


class Memberships:
    """The live memberships of one layer's own channels, and the run id of each shard.

    ``_entries`` maps (shard, group key, channel) to the membership's score,
    in the order they were added (a refreshed one moves to the end), so the
    expired ones are at the front (unless the wall clock steps back). A lock
    guards it: a layer may be used from event loops in several threads
    (``async_to_sync``).
    """

    __slots__ = ("_entries", "_group_expiry", "_lock", "_owns", "_run_ids", "_seen")

    def __init__(self, group_expiry: float, owns: Callable[[str], bool]) -> None:
        self._group_expiry = group_expiry
        self._owns = owns
        self._entries: dict[tuple[int, str, str], float] = {}
        self._lock = threading.Lock()
        self._run_ids: dict[int, str] = {}
        self._seen: set[str] = set()  # the replication IDs of a cluster's masters met

    def __len__(self) -> int:
        """Return how many memberships are remembered."""
        return len(self._entries)

    def added(self, shard: int, key: str, channel: str, score: float) -> None:
        """Remember that ``channel`` joined the group at ``key`` (if it is one of ours)."""
        if not self._owns(channel):
            return
        with self._lock:
            self._entries.pop((shard, key, channel), None)
            self._entries[shard, key, channel] = score
            self._forget_expired()

    def discarded(self, shard: int, key: str, channel: str) -> None:
        """Forget that ``channel`` is in the group at ``key``."""
        with self._lock:
            self._entries.pop((shard, key, channel), None)

    def clear(self) -> None:
        """Forget every membership (the groups were deleted)."""
        with self._lock:
            self._entries.clear()

    # Any: redis-py connection options, which redis-py itself types loosely.
    def hook(self, hosts: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Return ``hosts`` with a connect hook that checks each shard's run id.

        A host's own ``redis_connect_func`` still runs, in place of redis-py's handshake.
        """
        # Any: redis-py connection options.
        if is_cluster(hosts):
            return [{**hosts[0], "redis_connect_func": self._connect_func(None, None)}]
        return [
            {
                **host,
                "redis_connect_func": self._connect_func(shard, host.get("redis_connect_func")),
            }
            for shard, host in enumerate(hosts)
        ]

    def _connect_func(self, shard: int | None, handshake: _HostHandshake | None) -> _Handshake:
        """The connect hook for ``shard`` (None: every node of a cluster)."""

        async def connected(connection: AbstractConnection) -> None:
            done = connection.on_connect() if handshake is None else handshake(connection)
            if inspect.isawaitable(done):
                await done
            if shard is None:
                master = await _master_replid(connection)
                if master is not None and master not in self._seen:
                    self._seen.add(master)
                    await self._restore(None, connection)
                return
            run_id = await _run_id(connection)
            if run_id is None:
                return
            known = self._run_ids.setdefault(shard, run_id)
            if known != run_id:
                await self._restore(shard, connection)
                self._run_ids[shard] = run_id

        return connected

    def _forget_expired(self) -> None:
        """Drop entries past group expiry, from the front (the lock is held)."""
        cutoff = time.time() - self._group_expiry
        expired: list[tuple[int, str, str]] = []
        for entry, score in self._entries.items():
            if score >= cutoff:
                break
            expired.append(entry)
        for entry in expired:
            del self._entries[entry]

    async def _restore(self, shard: int | None, connection: AbstractConnection) -> None:
        """Put the shard's (None: all) memberships back, on ``connection``, in one pipeline."""
        groups: dict[str, list[str | float]] = {}
        with self._lock:
            self._forget_expired()
            for (on, key, channel), score in self._entries.items():
                if on == shard or shard is None:
                    groups.setdefault(key, []).extend((score, channel))
        if not groups:
            return
        ttl = ttl_seconds(self._group_expiry)
        commands: list[tuple[str | float, ...]] = []
        for key, pairs in groups.items():
            commands.append(("ZADD", key, *pairs))
            commands.append(("EXPIRE", key, ttl))
            if shard is None:  # a cluster's groups carry a version (see _keys)
                commands.append(new_group_version(key, ttl))
        await connection.send_packed_command(connection.pack_commands(commands))
        put_back = 0
        for command in commands:
            try:
                await connection.read_response()
                put_back += command[0] == "ZADD"
            except AskError:
                pass  # a cluster node answering for a slot it does not hold (MOVED or ASK)
            except ResponseError as exc:
                # One group the server refuses (a key of another type) spoils no other.
                logger.warning(
                    "could not put group %r back after Redis lost it: %s", command[1], exc
                )
        if put_back:
            where = "a cluster node" if shard is None else f"shard {shard}"
            logger.info("Redis %s lost its state: put back %d groups", where, put_back)


async def _run_id(connection: AbstractConnection) -> str | None:
    """Return the server's run id, or None when it does not say."""
    return (await _info(connection, "server")).get("run_id")


async def _master_replid(connection: AbstractConnection) -> str | None:
    """Return the replication ID of a master (None for a replica, or when it does not say).

    A master takes a new one when it starts (without persistence) and when it
    is promoted from replica: each is another master as far as lost state goes.
    """
    fields = await _info(connection, "replication")
    return fields.get("master_replid") if fields.get("role") == "master" else None


async def _info(connection: AbstractConnection, section: str) -> dict[str, str]:
    """Return the ``field:value`` lines of one ``INFO`` section; empty if INFO is refused."""
    await connection.send_command("INFO", section)
    try:
        # redis-py leaves the reply unannotated: INFO answers a bulk (or verbatim) string.
        info = cast(object, await connection.read_response())
    except ResponseError:
        return {}  # INFO renamed or refused, as some managed services do
    text = info.decode("utf-8", "replace") if isinstance(info, bytes) else str(info)
    pairs = (line.partition(":") for line in text.splitlines() if not line.startswith("#"))
    return {name: value.strip() for name, colon, value in pairs if colon}
