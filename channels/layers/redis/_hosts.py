"""Redis host configuration: decoding ``hosts`` and building connection pools.

``hosts`` entries take three shapes, as channels_redis accepts them: a URL
(``redis://``, ``rediss://``, ``unix://``), a ``(host, port)`` pair, or a dict
of connection options (``address`` for a URL plus options, ``host``/``port``/
``db``/``password``..., or a Sentinel config with ``sentinels`` and
``master_name``).

A fourth shape names a Redis Cluster: ``{"cluster": [URL, ...], **options}``,
the URLs being startup nodes (``redis://`` or ``rediss://``, all one scheme;
credentials in the first URL apply to every node) and the options those of
redis-py's ``RedisCluster``. It must be the only entry: client-side sharding
over a cluster is refused.
"""

from __future__ import annotations

import asyncio
import binascii
import inspect
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, TypeAlias, cast
from urllib.parse import urlsplit, urlunsplit

from redis.asyncio import ConnectionPool
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.connection import AbstractConnection, parse_url
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

__all__ = [
    "HostConfig",
    "close_pool",
    "consistent_hash",
    "decode_hosts",
    "describe_host",
    "is_cluster",
    "make_cluster",
    "make_pool",
]

# Any: redis-py connection options, which redis-py itself types loosely.
HostConfig: TypeAlias = "str | tuple[str, int] | list[Any] | Mapping[str, Any]"
"""One ``hosts`` entry. Dict values stay ``Any``: they are redis-py connection options."""

_SCHEMES = ("redis", "rediss", "unix")

# redis-py leaves the Sentinel constructors unannotated; these say what they take.
_Sentinel = cast(Callable[..., Sentinel], Sentinel)
_SentinelConnectionPool = cast(Callable[..., SentinelConnectionPool], SentinelConnectionPool)
_DEFAULT_HOST = "redis://localhost:6379"

_CLUSTER_SCHEMES = ("redis", "rediss")
# redis-py leaves some of RedisCluster's parameter types unresolved; only the names are read.
_cluster_init = cast(Callable[..., None], RedisCluster.__init__)  # pyright: ignore[reportUnknownMemberType]
# Keys that place a single server or a Sentinel master: meaningless next to "cluster".
_NOT_CLUSTER_KEYS = frozenset(
    {"address", "host", "port", "path", "db", "sentinels", "master_name", "sentinel_kwargs"}
)
# What RedisCluster takes besides its startup nodes, which the layer gives it.
_CLUSTER_OPTIONS = frozenset(inspect.signature(_cluster_init).parameters) - {
    "self",
    "host",
    "port",
    "startup_nodes",
    "db",
    "path",
}


# Any: redis-py connection options, which redis-py itself types loosely.
def decode_hosts(hosts: Iterable[HostConfig] | None) -> list[dict[str, Any]]:
    """Turn ``hosts`` into one dict of connection options per shard."""
    if not hosts:
        return [{"address": _DEFAULT_HOST}]
    if isinstance(hosts, str | bytes):
        raise TypeError(f"hosts must be a list of Redis hosts, even for one host; got {hosts!r}")
    decoded: list[dict[str, Any]] = []
    for entry in hosts:
        if isinstance(entry, str):
            decoded.append({"address": _check_url(entry)})
        elif isinstance(entry, tuple | list):
            if len(entry) != 2:
                raise TypeError(f"a host pair must be (host, port); got {entry!r}")
            decoded.append({"host": entry[0], "port": entry[1]})
        elif isinstance(entry, Mapping):  # pyright: ignore[reportUnnecessaryIsInstance] -- settings are untyped
            options = dict(entry)
            if "cluster" in options:
                decoded.append(_check_cluster(options))
                continue
            if "address" in options:
                _check_url(options["address"])
            if "sentinels" in options and "master_name" not in options:
                raise ValueError(
                    "a Sentinel host needs 'master_name' next to 'sentinels'; "
                    f"got keys {sorted(options)!r}"
                )
            decoded.append(options)
        else:
            raise TypeError(
                "each host must be a URL string, a (host, port) pair or a dict of "
                f"connection options; got {entry!r}"
            )
    if len(decoded) > 1 and any("cluster" in host for host in decoded):
        raise ValueError(
            "a Redis Cluster entry must be the only host: client-side sharding over a "
            f"cluster (or next to other hosts) is not supported; got {len(decoded)} entries"
        )
    return decoded


# Any: redis-py connection options, which redis-py itself types loosely.
def is_cluster(hosts: Sequence[Mapping[str, Any]]) -> bool:
    """Whether decoded ``hosts`` name a Redis Cluster (then it is their only entry)."""
    return len(hosts) == 1 and "cluster" in hosts[0]


# Any: redis-py connection options, which redis-py itself types loosely.
def _check_cluster(options: dict[str, Any]) -> dict[str, Any]:
    """Check a cluster entry: startup node URLs of one scheme, and RedisCluster's options."""
    urls = options["cluster"]
    if isinstance(urls, str) or not isinstance(urls, list | tuple) or not urls:
        raise TypeError(
            "'cluster' must be a non-empty list of startup node URLs "
            f"(redis:// or rediss://); got {urls!r}"
        )
    schemes = {urlsplit(_check_url(url)).scheme for url in cast("list[object]", urls)}
    if not schemes <= set(_CLUSTER_SCHEMES) or len(schemes) > 1:
        raise ValueError(
            "a Redis Cluster's startup nodes must all be redis:// or all rediss:// URLs; "
            f"got {urls!r}"
        )
    misplaced = sorted(_NOT_CLUSTER_KEYS & options.keys())
    if misplaced:
        raise ValueError(
            f"a Redis Cluster entry cannot also have {misplaced!r}: the cluster's nodes come "
            "from its 'cluster' URLs (and its slot map), and a cluster has only db 0"
        )
    if options.get("read_from_replicas") or options.get("load_balancing_strategy"):
        raise ValueError(
            "a Redis Cluster entry cannot read from replicas ('read_from_replicas', "
            "'load_balancing_strategy'): the layers pop and subscribe, which only masters serve"
        )
    unknown = sorted(options.keys() - _CLUSTER_OPTIONS - {"cluster"})
    if unknown:
        raise ValueError(
            f"unknown Redis Cluster option(s) {unknown!r}; the options are those of "
            f"redis-py's RedisCluster: {sorted(_CLUSTER_OPTIONS)!r}"
        )
    return {**options, "cluster": list(cast("list[str]", urls))}


# Any: redis-py connection options, which redis-py itself types loosely.
def make_cluster(host: Mapping[str, Any]) -> RedisCluster:
    """Build a RedisCluster client for a decoded cluster entry (see the module docstring).

    redis-py's cluster client follows MOVED and ASK, reloads its slot map
    after a lost node, and retries such commands a few times with backoff
    before it raises.
    """
    options = dict(host)
    urls: list[str] = options.pop("cluster")
    nodes: list[ClusterNode] = []
    for url in urls:
        parsed = parse_url(url)
        nodes.append(
            ClusterNode(str(parsed.get("host", "localhost")), int(parsed.get("port", 6379)))
        )
    first = parse_url(urls[0])
    if first.get("username") is not None:
        options.setdefault("username", first.get("username"))
    if first.get("password") is not None:
        options.setdefault("password", first.get("password"))
    if urlsplit(urls[0]).scheme == "rediss":
        options.setdefault("ssl", True)
    # Not a RedisCluster option: the layer's own hook (see _memberships), set per node below.
    connect = options.pop("redis_connect_func", None)
    cluster = RedisCluster(startup_nodes=nodes, **options)
    if connect is not None:
        # As redis-py adds its own per-connection options: on the template of
        # nodes found later, and on the startup nodes, which copied it already.
        cluster.nodes_manager.connection_kwargs["redis_connect_func"] = connect
        for node in cluster.nodes_manager.startup_nodes.values():
            node.connection_kwargs["redis_connect_func"] = connect
    return cluster


def _check_url(url: object) -> str:
    if not isinstance(url, str) or urlsplit(url).scheme not in _SCHEMES:
        raise ValueError(
            f"a Redis host URL must start with one of {[s + '://' for s in _SCHEMES]}; got {url!r}"
        )
    return url


# redis-py leaves ConnectionPool.get_connection unannotated; this says what it returns.
def _get_connection(method: object) -> Callable[..., Awaitable[AbstractConnection]]:
    return cast(Callable[..., Awaitable[AbstractConnection]], method)


class WaitingConnectionPool(ConnectionPool):
    """A pool that, with ``max_connections`` (default 50) in use, waits for one to return.

    redis-py's own pool raises "Too many connections" there, and its
    BlockingConnectionPool waits through a condition and a timeout on every
    call; a semaphore costs nothing until the pool is full.
    """

    # Any: redis-py connection options, which redis-py itself types loosely.
    def __init__(self, *, max_connections: int = 50, **options: Any) -> None:
        # Any: redis-py connection options.
        super().__init__(max_connections=max_connections, **options)  # pyright: ignore[reportUnknownMemberType] -- redis-py leaves **connection_kwargs unannotated
        self._free = asyncio.Semaphore(max_connections)
        self._lent: set[AbstractConnection] = set()

    async def get_connection(self, *args: Any, **options: Any) -> AbstractConnection:
        """Return a connected connection, waiting while every one is in use."""
        # Any: redis-py's deprecated command arguments, passed through unread.
        await self._free.acquire()
        try:
            connection = await _get_connection(super().get_connection)(*args, **options)
        except BaseException:
            self._free.release()
            raise
        self._lent.add(connection)
        return connection

    async def release(self, connection: AbstractConnection) -> None:
        """Take ``connection`` back and let one waiting command have it."""
        try:
            await super().release(connection)
        finally:
            # redis-py also releases, inside get_connection, one that failed
            # to connect: get_connection itself frees that one's slot.
            if connection in self._lent:
                self._lent.discard(connection)
                self._free.release()


# Any: redis-py connection options, which redis-py itself types loosely.
def make_pool(host: Mapping[str, Any]) -> ConnectionPool:
    """Build a connection pool for one decoded host.

    Plain hosts get a WaitingConnectionPool: when every connection is busy a
    command waits for one instead of failing with "Too many connections".

    Every pool's connections retry a command once, at once, on a fresh
    connection after a connection error, not after a timeout (unless the host's
    options set ``retry``): a slow script that timed out may still be running,
    and running it again would send its messages twice. A pooled connection may
    predate a Redis restart, and redis-py does not check connections when they
    leave the pool (with RESP3 it skips even the closed-socket check), so
    without it the first use of each such connection, seconds or minutes later,
    fails with "Connection closed by server".
    """
    retry = Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,))
    options: dict[str, Any] = {"retry": retry, **host}
    if "address" in options:
        url = options.pop("address")
        return WaitingConnectionPool.from_url(url, **options)  # pyright: ignore[reportUnknownMemberType] -- redis-py leaves **kwargs unannotated
    if "master_name" in options:
        master_name = options.pop("master_name")
        sentinel = _Sentinel(
            options.pop("sentinels"), sentinel_kwargs=options.pop("sentinel_kwargs", None)
        )
        return _SentinelConnectionPool(master_name, sentinel, **options)
    return WaitingConnectionPool(**options)


async def close_pool(pool: ConnectionPool) -> None:
    """Close every connection of ``pool``; for a Sentinel pool, its Sentinel connections too.

    A Sentinel pool asks the Sentinels for the master through clients of its
    own, which ``pool.aclose()`` leaves open.
    """
    try:
        await pool.aclose()
    finally:
        if isinstance(pool, SentinelConnectionPool):
            # redis-py leaves sentinel_manager unannotated: it is the Sentinel given above.
            manager = cast(Sentinel, pool.sentinel_manager)  # pyright: ignore[reportUnknownMemberType]
            await manager.aclose()


def describe_host(host: Mapping[str, Any]) -> str:
    """Name a host for error messages, without its password."""
    if "cluster" in host:
        return "cluster " + ", ".join(_without_password(str(url)) for url in host["cluster"])
    if "address" in host:
        return _without_password(str(host["address"]))
    if "master_name" in host:
        return f"sentinel master {host['master_name']!r} via {host.get('sentinels')!r}"
    return f"{host.get('host', 'localhost')}:{host.get('port', 6379)}"


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "***@" + netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=netloc))


def consistent_hash(value: str, ring_size: int) -> int:
    """Map ``value`` to a shard in ``range(ring_size)``, as channels_redis does.

    CRC32 of the UTF-8 bytes, kept to 12 bits, scaled onto the ring: the same
    names land on the same shards in both implementations.
    """
    if ring_size == 1:
        return 0
    bucket = binascii.crc32(value.encode("utf-8")) & 0xFFF
    return int(bucket / (4096 / ring_size))
