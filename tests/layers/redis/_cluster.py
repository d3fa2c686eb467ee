"""Private Redis Clusters and Sentinel sets for tests: started, failed over and stopped by PID.

:class:`ClusterSet` runs three masters with one replica each, built by
``redis-cli --cluster create``; :class:`SentinelSet` runs one master, one
replica and three Sentinels watching them. Every process listens on a free
loopback port, keeps its files in a temporary directory of its own and has
no persistence, and every wait polls with a deadline. The fixtures below
are imported by the test modules that need them (this module is no conftest).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Final, cast

import pytest
import redis
from redis.exceptions import RedisError

from tests._processes import free_port, stop_process
from tests.layers.redis._server import answers_ping, redis_server_available

__all__ = [
    "CLUSTER_SLOTS",
    "ClusterSet",
    "RedisProcess",
    "SentinelSet",
    "cluster_set",
    "command",
    "fresh_cluster_set",
    "fresh_sentinel_set",
    "needs_redis_server",
    "sentinel_set",
    "wait_for",
]

MASTER_NAME: Final = "tcmaster"
"""The name the Sentinels know their master by."""

NODE_TIMEOUT_MS: Final = 1000
"""``cluster-node-timeout``: a cluster master silent this long is failed over."""

DOWN_AFTER_MS: Final = 500
"""Sentinel's ``down-after-milliseconds``: a master silent this long is down."""

FAILOVER_TIMEOUT_MS: Final = 2000
"""Sentinel's ``failover-timeout``: how long one failover attempt may take."""

START_TIMEOUT: Final = 30.0
"""Seconds a cluster or Sentinel set may take to become ready."""

FAILOVER_WAIT: Final = 30.0
"""Seconds a test waits for a replica to be promoted."""

CLUSTER_SLOTS: Final = 16384
"""How many hash slots a Redis Cluster has."""

_POLL_INTERVAL: Final = 0.05
_MIGRATE_BATCH: Final = 100
_MIGRATE_TIMEOUT_MS: Final = 5000

_MISSING_REASON: Final = (
    "needs the redis-server and redis-cli executables (apt-get install redis-server)"
)

needs_redis_server = pytest.mark.skipif(
    not redis_server_available() or shutil.which("redis-cli") is None, reason=_MISSING_REASON
)
"""Mark for tests that start their own servers: skipped only when Redis is not installed."""


def _skip_without_redis() -> None:
    if not redis_server_available() or shutil.which("redis-cli") is None:
        pytest.skip(_MISSING_REASON)


def wait_for(condition: Callable[[], bool], what: str, timeout: float) -> float:
    """Poll ``condition()`` until it holds; return the seconds waited, fail after ``timeout``."""
    start = time.monotonic()
    deadline = start + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"gave up after {timeout} s waiting until {what}")
        time.sleep(_POLL_INTERVAL)
    return time.monotonic() - start


def command(port: int, *args: str) -> object:
    """Run one command on the loopback ``port``; ``None`` if the server does not answer.

    Replies are decoded to ``str``; ``INFO`` comes back as redis-py parses it (a dict).
    """
    client = redis.Redis(
        host="127.0.0.1", port=port, socket_timeout=1.0, decode_responses=True, protocol=2
    )
    try:
        # redis-py leaves execute_command (and its reply) unannotated.
        return cast(object, client.execute_command(*args))  # type: ignore[no-untyped-call]
    except RedisError:
        return None
    finally:
        client.close()


def _fields(reply: object) -> dict[str, str]:
    """Read a ``key:value`` per line reply (CLUSTER INFO) or a flat key/value list (SENTINEL)."""
    if isinstance(reply, str):
        pairs = (line.partition(":") for line in reply.splitlines())
        return {key: value.strip() for key, _, value in pairs if value}
    if isinstance(reply, list):
        items = [str(item) for item in cast("list[object]", reply)]
        return dict(zip(items[::2], items[1::2], strict=False))
    return {}


class RedisProcess:
    """One redis-server process with options of its own, on a free loopback port."""

    def __init__(self, name: str) -> None:
        self.port = free_port()
        self.name = name
        self._dir = tempfile.TemporaryDirectory(prefix=f"typed-channels-{name}-")
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def directory(self) -> Path:
        """The process's working directory (config and log files live there)."""
        return Path(self._dir.name)

    @property
    def url(self) -> str:
        """The ``redis://`` URL of this server."""
        return f"redis://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        """Whether the process is alive."""
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        """The PID of the running process, if any."""
        return self._process.pid if self.running and self._process is not None else None

    def start(self, *arguments: str) -> None:
        """Start ``redis-server`` with ``arguments`` and wait (bounded) until it answers PING."""
        if self.running:
            raise RuntimeError(f"{self.name} on port {self.port} is already running")
        process = self._process = subprocess.Popen(
            [
                "redis-server",
                *arguments,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--dir", self._dir.name,
                "--logfile", str(self.directory / "redis.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip

        def ready() -> bool:
            if process.poll() is not None:
                raise RuntimeError(
                    f"{self.name} on port {self.port} exited with {process.returncode} "
                    f"before answering PING; see {self.directory / 'redis.log'}"
                )
            return answers_ping(self.port)

        try:
            wait_for(ready, f"{self.name} on port {self.port} answers PING", START_TIMEOUT)
        except BaseException:
            self.stop()
            raise

    def kill(self) -> None:
        """Kill the process by its PID with SIGKILL, as a crash would, and reap it."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(timeout=START_TIMEOUT)

    def stop(self) -> None:
        """Stop the process by its PID (SIGTERM, then SIGKILL) and wait for it to exit."""
        process, self._process = self._process, None
        if process is not None:
            stop_process(process)

    def close(self) -> None:
        """Stop the process and remove its working directory."""
        try:
            self.stop()
        finally:
            self._dir.cleanup()


def _close_all(processes: Sequence[RedisProcess]) -> None:
    errors: list[BaseException] = []
    for process in processes:
        try:
            process.close()
        except BaseException as exc:  # stop the others first, then report
            errors.append(exc)
    if errors:
        raise errors[0]


class ClusterSet:
    """A Redis Cluster of three masters with ``replicas`` replicas each, on free loopback ports.

    The tests use one replica each (failover needs one); the benchmarks none,
    so that on a small machine replicas do not take the masters' CPU.
    """

    def __init__(self, replicas: int = 1) -> None:
        self.replicas = replicas
        self.nodes = [RedisProcess(f"cluster{index}") for index in range(3 * (1 + replicas))]
        self.startup_seconds = 0.0
        """How long :meth:`start` took, from the first process to a cluster reporting ok."""

    @property
    def startup_nodes(self) -> list[str]:
        """Every node's ``redis://`` URL."""
        return [node.url for node in self.nodes]

    def start(self) -> None:
        """Start the nodes, join them into a cluster and wait until every node reports ok.

        A cluster that does not come together (a port taken between choosing
        and binding it, say) is torn down and made again once, on new ports.
        """
        began = time.monotonic()
        try:
            self._start_once()
        except RuntimeError as first:
            self.nodes = [RedisProcess(node.name) for node in self.nodes]
            try:
                self._start_once()
            except RuntimeError as second:
                raise RuntimeError(f"{second} (and on the first attempt: {first})") from first
        self.startup_seconds = time.monotonic() - began

    def _start_once(self) -> None:
        try:
            for node in self.nodes:
                node.start(
                    "--cluster-enabled", "yes",
                    "--cluster-config-file", str(node.directory / "nodes.conf"),
                    "--cluster-port", str(free_port()),
                    "--cluster-node-timeout", str(NODE_TIMEOUT_MS),
                    # A replica may be promoted however long it was cut off.
                    "--cluster-replica-validity-factor", "0",
                    "--save", "",
                    "--appendonly", "no",
                )  # fmt: skip
            created = subprocess.run(
                [
                    "redis-cli", "--cluster", "create",
                    *(f"127.0.0.1:{node.port}" for node in self.nodes),
                    "--cluster-replicas", str(self.replicas),
                    "--cluster-yes",
                ],
                capture_output=True,
                timeout=START_TIMEOUT,
                check=False,
            )  # fmt: skip
            if created.returncode != 0:
                raise RuntimeError(
                    f"redis-cli --cluster create failed ({created.returncode}): "
                    f"{created.stdout.decode(errors='replace')[-2000:]}"
                    f"{created.stderr.decode(errors='replace')[-2000:]}"
                )
            try:
                wait_for(self._ready, "every cluster node reports cluster_state:ok", START_TIMEOUT)
            except RuntimeError as exc:
                raise RuntimeError(f"{exc}; nodes: {self._states()}") from None
        except BaseException:
            _close_all(self.nodes)
            raise

    def _states(self) -> str:
        """Each node's port, role, cluster state and known nodes, for a startup failure."""
        return "; ".join(
            f"{node.port} {self.role(node)} {self.info(node).get('cluster_state')} "
            f"knows {self.info(node).get('cluster_known_nodes')}"
            + (" synced" if _replica_synced(node) else "")
            + ("" if node.running else " (exited)")
            for node in self.nodes
        )

    def info(self, node: RedisProcess) -> dict[str, str]:
        """``CLUSTER INFO`` of ``node`` as a dict; empty if it does not answer."""
        return _fields(command(node.port, "CLUSTER", "INFO"))

    def role(self, node: RedisProcess) -> str | None:
        """``master`` or ``slave``, as ``node`` reports itself; ``None`` if it does not answer."""
        reply = command(node.port, "ROLE")
        if isinstance(reply, list) and reply:
            return str(cast("list[object]", reply)[0])
        return None

    def masters(self) -> list[RedisProcess]:
        """The running nodes that are masters now."""
        return [node for node in self.nodes if node.running and self.role(node) == "master"]

    def replica_of(self, master: RedisProcess) -> RedisProcess:
        """The running node that replicates ``master``."""
        for node in self.nodes:
            if not node.running or node is master:
                continue
            reply = command(node.port, "INFO", "replication")
            if isinstance(reply, dict) and cast("dict[str, object]", reply).get(
                "master_port"
            ) == int(master.port):
                return node
        raise RuntimeError(f"no running node replicates the master on port {master.port}")

    def _ready(self) -> bool:
        running = [node for node in self.nodes if node.running]
        for node in running:
            info = self.info(node)
            if info.get("cluster_state") != "ok" or info.get("cluster_known_nodes") != str(
                len(self.nodes)
            ):
                return False
        replicas = [node for node in running if self.role(node) == "slave"]
        return len(replicas) == 3 * self.replicas and all(
            _replica_synced(node) for node in replicas
        )

    def node_id(self, node: RedisProcess) -> str:
        """The cluster node ID of ``node`` (``CLUSTER MYID``)."""
        reply = _strict(node.port, "CLUSTER", "MYID")
        if not isinstance(reply, bytes):
            raise RuntimeError(f"CLUSTER MYID on port {node.port} answered {reply!r}")
        return reply.decode()

    def owner_of(self, slot: int) -> RedisProcess:
        """The running master that serves hash ``slot``, as that master itself reports it."""
        if not 0 <= slot < CLUSTER_SLOTS:
            raise ValueError(f"a hash slot is in range(0, {CLUSTER_SLOTS}); got {slot!r}")
        for master in self.masters():
            if _slot_owner_port(master.port, slot) == master.port:
                return master
        raise RuntimeError(f"no running master claims slot {slot}")

    def migrate_slot(self, slot: int, target: RedisProcess) -> None:
        """Move hash ``slot`` and its keys from its owner to the master ``target``.

        The resharding steps of the Redis Cluster specification: the target
        IMPORTING and the owner MIGRATING, MIGRATE of the slot's keys in
        batches, then SETSLOT NODE on the target, the old owner and every
        other master. Returns once every running node's slot map names the
        target (bounded). Commands sent meanwhile are redirected by the
        cluster (ASK, then MOVED), so traffic may go on during the move.
        """
        source = self.owner_of(slot)
        if source is target:
            return
        if target not in self.masters():
            raise ValueError(
                "the target of a slot migration must be a running master; "
                f"node {target.port} is not"
            )
        source_id, target_id = self.node_id(source), self.node_id(target)
        _strict(target.port, "CLUSTER", "SETSLOT", str(slot), "IMPORTING", source_id)
        _strict(source.port, "CLUSTER", "SETSLOT", str(slot), "MIGRATING", target_id)
        while True:
            keys = _strict(source.port, "CLUSTER", "GETKEYSINSLOT", str(slot), str(_MIGRATE_BATCH))
            if not isinstance(keys, list) or not keys:
                break
            _strict(
                source.port, "MIGRATE", "127.0.0.1", str(target.port), "", "0",
                str(_MIGRATE_TIMEOUT_MS), "KEYS", *cast("list[bytes]", keys),
            )  # fmt: skip
        # The target first: once it owns the slot, the others' redirections point at it.
        others = [master for master in self.masters() if master not in (source, target)]
        for master in (target, source, *others):
            _strict(master.port, "CLUSTER", "SETSLOT", str(slot), "NODE", target_id)
        running = [node for node in self.nodes if node.running]
        wait_for(
            lambda: all(_slot_owner_port(node.port, slot) == target.port for node in running),
            f"every node sees slot {slot} on node {target.port}",
            START_TIMEOUT,
        )

    def kill_master(self, master: RedisProcess) -> tuple[RedisProcess, float]:
        """Kill ``master`` by PID; wait until its replica is master and the cluster is ok.

        Returns the promoted node and the seconds from the kill to a cluster
        whose running nodes all report ok with the replica as master.
        """
        replica = self.replica_of(master)
        master.kill()
        began = time.monotonic()

        def promoted() -> bool:
            if self.role(replica) != "master":
                return False
            return all(
                self.info(node).get("cluster_state") == "ok" for node in self.nodes if node.running
            )

        wait_for(promoted, f"node {replica.port} replaces master {master.port}", FAILOVER_WAIT)
        return replica, time.monotonic() - began

    def close(self) -> None:
        """Stop every node by PID and remove their directories."""
        _close_all(self.nodes)

    def __enter__(self) -> ClusterSet:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _strict(port: int, *args: str | bytes) -> object:
    """Run one command on the loopback ``port`` and return its raw reply; raise if it fails.

    Unlike :func:`command`, replies stay bytes (keys may be binary) and an
    error reply or an unreachable server raises RuntimeError naming the command.
    """
    client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=10.0, protocol=2)
    try:
        # redis-py leaves execute_command (and its reply) unannotated.
        return cast(object, client.execute_command(*args))  # type: ignore[no-untyped-call]
    except RedisError as exc:
        shown = " ".join(str(arg) for arg in args[:4])
        raise RuntimeError(f"{shown} ... on port {port} failed: {exc}") from exc
    finally:
        client.close()


def _slot_owner_port(port: int, slot: int) -> int | None:
    """The port of the master that owns ``slot`` in the node on ``port``'s ``CLUSTER SLOTS``."""
    reply = command(port, "CLUSTER", "SLOTS")
    if not isinstance(reply, list):
        return None
    for entry in cast("list[list[object]]", reply):
        start, end, master = entry[0], entry[1], entry[2]
        if isinstance(start, int) and isinstance(end, int) and start <= slot <= end:
            return int(str(cast("list[object]", master)[1]))
    return None


def _replica_synced(node: RedisProcess) -> bool:
    reply = command(node.port, "INFO", "replication")
    return isinstance(reply, dict) and (
        cast("dict[str, object]", reply).get("master_link_status") == "up"
    )


class SentinelSet:
    """One master, one replica and three Sentinels that fail the master over quickly."""

    def __init__(self) -> None:
        self.master = RedisProcess("sentinel-master")
        self.replica = RedisProcess("sentinel-replica")
        self.sentinels = [RedisProcess(f"sentinel{index}") for index in range(3)]
        self.startup_seconds = 0.0
        """How long :meth:`start` took, from the first process to Sentinels ready to fail over."""

    @property
    def processes(self) -> list[RedisProcess]:
        """Every process of the set: data nodes first, then Sentinels."""
        return [self.master, self.replica, *self.sentinels]

    @property
    def sentinel_addresses(self) -> list[tuple[str, int]]:
        """``(host, port)`` of each Sentinel, as a layer's ``sentinels`` option takes them."""
        return [("127.0.0.1", sentinel.port) for sentinel in self.sentinels]

    def host(self, **options: object) -> dict[str, object]:
        """A layer ``hosts`` entry naming this set's master through its Sentinels."""
        return {"sentinels": self.sentinel_addresses, "master_name": MASTER_NAME, **options}

    def start(self) -> None:
        """Start the data nodes and the Sentinels; wait until a failover could run."""
        began = time.monotonic()
        data_options = ("--save", "", "--appendonly", "no")
        try:
            self.master.start(*data_options)
            self.replica.start(*data_options, "--replicaof", "127.0.0.1", str(self.master.port))
            wait_for(lambda: _replica_synced(self.replica), "the replica has synced", START_TIMEOUT)
            for sentinel in self.sentinels:
                config = sentinel.directory / "sentinel.conf"
                config.write_text(
                    f"sentinel monitor {MASTER_NAME} 127.0.0.1 {self.master.port} 2\n"
                    f"sentinel down-after-milliseconds {MASTER_NAME} {DOWN_AFTER_MS}\n"
                    f"sentinel failover-timeout {MASTER_NAME} {FAILOVER_TIMEOUT_MS}\n"
                    f"sentinel parallel-syncs {MASTER_NAME} 1\n"
                )
                sentinel.start(str(config), "--sentinel")
            wait_for(self._ready, "every Sentinel knows the replica and the others", START_TIMEOUT)
        except BaseException:
            _close_all(self.processes)
            raise
        self.startup_seconds = time.monotonic() - began

    def sentinel_view(self, sentinel: RedisProcess) -> dict[str, str]:
        """``SENTINEL MASTER`` as ``sentinel`` reports it; empty if it does not answer."""
        return _fields(command(sentinel.port, "SENTINEL", "MASTER", MASTER_NAME))

    def master_port(self, sentinel: RedisProcess) -> int | None:
        """The master's port according to ``sentinel``."""
        reply = command(sentinel.port, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER_NAME)
        if isinstance(reply, list) and len(cast("list[object]", reply)) == 2:
            return int(str(cast("list[object]", reply)[1]))
        return None

    def _ready(self) -> bool:
        for sentinel in self.sentinels:
            view = self.sentinel_view(sentinel)
            if (
                view.get("num-slaves") != "1"
                or view.get("num-other-sentinels") != str(len(self.sentinels) - 1)
                or "s_down" in view.get("flags", "s_down")
            ):
                return False
        return True

    def kill_master(self) -> float:
        """Kill the master by PID; wait until every Sentinel names the replica as master.

        Afterwards ``master`` is the promoted node and ``replica`` the dead one.
        Returns the seconds from the kill until the promoted node reports
        itself master and all Sentinels agree on it.
        """
        old, new = self.master, self.replica
        old.kill()
        began = time.monotonic()

        def promoted() -> bool:
            if any(self.master_port(sentinel) != new.port for sentinel in self.sentinels):
                return False
            reply = command(new.port, "ROLE")
            return isinstance(reply, list) and cast("list[object]", reply)[:1] == ["master"]

        wait_for(promoted, f"the Sentinels promote the replica on port {new.port}", FAILOVER_WAIT)
        self.master, self.replica = new, old
        return time.monotonic() - began

    def close(self) -> None:
        """Stop every process by PID, Sentinels first, and remove their directories."""
        _close_all([*self.sentinels, self.replica, self.master])

    def __enter__(self) -> SentinelSet:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


@pytest.fixture(scope="module")
def cluster_set() -> Iterator[ClusterSet]:
    """A running three-master cluster, shared by a module's tests that leave it whole."""
    _skip_without_redis()
    with ClusterSet() as cluster:
        yield cluster


@pytest.fixture(scope="module")
def sentinel_set() -> Iterator[SentinelSet]:
    """A running Sentinel set, shared by a module's tests that do not fail it over."""
    _skip_without_redis()
    with SentinelSet() as sentinels:
        yield sentinels


@pytest.fixture
def fresh_sentinel_set() -> Iterator[SentinelSet]:
    """A Sentinel set of this test's own, for a test that kills its master."""
    _skip_without_redis()
    with SentinelSet() as sentinels:
        yield sentinels


@pytest.fixture
def fresh_cluster_set() -> Iterator[ClusterSet]:
    """A cluster of this test's own, for a test that kills a master or moves slots."""
    _skip_without_redis()
    with ClusterSet() as cluster:
        yield cluster
