"""RedisChannelLayer against the real Redis at 127.0.0.1:6379."""

from __future__ import annotations

import asyncio
import itertools
import logging
import socket
import time
import uuid
from collections.abc import Iterator
from typing import Any, cast

import pytest
import redis
import redis.asyncio
from asgiref.sync import async_to_sync
from redis.exceptions import ConnectionError as RedisConnectionError

from channels.exceptions import ChannelFull, MessageTooLarge
from channels.layers.redis import (
    MAX_MESSAGE_SIZE,
    LayerConnectionError,
    MessageDecodeError,
    RedisChannelLayer,
)
from channels.layers.redis._hosts import WaitingConnectionPool, make_pool
from channels.layers.redis.serializers import SerializerDoesNotExist
from channels.testing.layers import (
    Capability,
    LayerOptions,
    channel_layer_state_machine,
    check_channel_layer,
)
from tests._stateful import run_state_machine_as_test
from tests.layers.redis._cluster import command
from tests.layers.redis.conftest import REDIS_URL, LayerMaker, delete_prefix

CLAIMS = (
    Capability.QUEUES
    | Capability.GROUPS
    | Capability.FLUSH
    | Capability.CAPACITY
    | Capability.DEEP_COPY
)


# Process-specific channels share their process's Redis key and so its
# capacity, as in channels_redis: the model's per-channel capacity does not
# hold for them, so the state machine runs without CAPACITY.
MODEL_CLAIMS = CLAIMS & ~Capability.CAPACITY
MODEL_PREFIX = f"tcsm{uuid.uuid4().hex[:12]}"
_model_layers = itertools.count()


def make_model_layer(options: LayerOptions) -> RedisChannelLayer:
    return RedisChannelLayer(
        hosts=[REDIS_URL],
        prefix=f"{MODEL_PREFIX}.{next(_model_layers)}.",
        expiry=options.expiry,
        group_expiry=options.group_expiry,
        capacity=options.capacity,
    )


@pytest.fixture(scope="module", autouse=True)
def _delete_model_keys() -> Iterator[None]:
    yield
    delete_prefix(MODEL_PREFIX)


@pytest.mark.slow
class TestModel:
    def test_random_operations_agree_with_the_model(self) -> None:
        run_state_machine_as_test(channel_layer_state_machine(make_model_layer, MODEL_CLAIMS))


class QuickLayer(RedisChannelLayer):
    """A layer whose blocking reads end after 0.2 s instead of 5 s."""

    _blocking_timeout = 0.2


class SmallLayer(RedisChannelLayer):
    """A layer that refuses messages over 1 KiB."""

    max_message_size = 1024


async def wait_until(condition: Any, what: str, timeout: float = 10.0) -> None:
    """Poll ``condition()`` (bounded) for state that only Redis time changes."""
    deadline = time.monotonic() + timeout
    while not await condition():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up after {timeout} s waiting for {what}")
        await asyncio.sleep(0.05)


class TestConformance:
    async def test_kit_rules_pass(self, make_layer: LayerMaker, prefix: str) -> None:
        count = 0

        def make(options: LayerOptions) -> RedisChannelLayer:
            nonlocal count
            count += 1
            return make_layer(
                prefix=f"{prefix}k{count}.",
                expiry=options.expiry,
                group_expiry=options.group_expiry,
                capacity=options.capacity,
            )

        rules = await check_channel_layer(make, CLAIMS)
        assert rules


class TestSendReceive:
    async def test_messages_keep_their_values(self, make_layer: LayerMaker) -> None:
        layer = make_layer()
        message = {"type": "t", "bytes": b"\x00\xff", "nested": {"a": [1, 2.5, None, True]}}
        await layer.send("plain", message)
        assert await layer.receive("plain") == message
        await layer.close()

    async def test_new_channel_names_the_process(self, make_layer: LayerMaker) -> None:
        layer = make_layer()
        name = await layer.new_channel("custom")
        assert name.startswith(f"custom.{layer.client_prefix}!")
        assert name != await layer.new_channel("custom")

    async def test_other_processes_channels_refused(self, make_layer: LayerMaker) -> None:
        layer = make_layer()
        foreign = await make_layer().new_channel()
        with pytest.raises(ValueError, match="made by this layer's new_channel"):
            await layer.receive(foreign)

    async def test_reader_serves_channels_of_one_process(self, make_layer: LayerMaker) -> None:
        layer = make_layer()
        channels = [await layer.new_channel() for _ in range(20)]
        receivers = [asyncio.ensure_future(layer.receive(name)) for name in channels]
        for index, name in enumerate(reversed(channels)):
            await layer.send(name, {"type": "t", "n": index})
        results = await asyncio.gather(*receivers)
        assert sorted(result["n"] for result in results) == list(range(20))
        await layer.close()


class TestIdleReceive:
    async def test_message_after_many_blocking_timeouts(self, make_layer: LayerMaker) -> None:
        layer = make_layer()
        quick = QuickLayer(hosts=layer.hosts, prefix=layer.prefix)
        channel = await quick.new_channel()
        waiting = asyncio.ensure_future(quick.receive(channel))
        # Letting time pass is the point: the read must outlive several timeouts.
        await asyncio.sleep(1.0)
        assert not waiting.done()
        await layer.send(channel, {"type": "late"})
        assert await asyncio.wait_for(waiting, 5) == {"type": "late"}
        await quick.close()
        await layer.close()

    async def test_short_socket_timeout_does_not_break_idle_receive(
        self, make_layer: LayerMaker
    ) -> None:
        layer = make_layer(hosts=[{"address": REDIS_URL, "socket_timeout": 0.3}])
        waiting = asyncio.ensure_future(layer.receive("idle"))
        await asyncio.sleep(1.0)  # several socket timeouts, deliberately
        assert not waiting.done()
        await layer.send("idle", {"type": "late"})
        assert await asyncio.wait_for(waiting, 5) == {"type": "late"}
        await layer.close()


# group_send builds the copies inside Redis unless a channel_capacity pattern
# (or encryption, or several hosts) needs them built here: test both ways.
GROUP_SEND_PATHS = pytest.mark.parametrize(
    "options",
    [{}, {"channel_capacity": {"matches.nothing.*": 100}}],
    ids=["in-script", "per-key"],
)


class TestGroups:
    @GROUP_SEND_PATHS
    async def test_group_send_reaches_every_member(
        self, make_layer: LayerMaker, options: dict[str, Any]
    ) -> None:
        layer = make_layer(**options)
        # Names either side of msgpack's 31-character short-string limit, and
        # 30 channels on one process key (past the 15-item short array).
        members = [await layer.new_channel() for _ in range(30)] + [
            "shared.a",
            "s" * 31,
            "s" * 32,
            "s" * 99,
        ]
        for name in members:
            await layer.group_add("room", name)
        await layer.group_send("room", {"type": "hello"})
        for name in members:
            assert await layer.receive(name) == {"type": "hello"}
        await layer.group_discard("room", members[0])
        await layer.group_send("room", {"type": "again"})
        for name in members[1:]:
            assert await layer.receive(name) == {"type": "again"}
        await layer.send(members[0], {"type": "direct"})
        assert await layer.receive(members[0]) == {"type": "direct"}
        await layer.close()

    @pytest.mark.parametrize(
        "options",
        [{"capacity": 1}, {"channel_capacity": {"full.*": 1}}],
        ids=["in-script", "per-key"],
    )
    async def test_full_member_is_skipped_and_logged(
        self, make_layer: LayerMaker, caplog: pytest.LogCaptureFixture, options: dict[str, Any]
    ) -> None:
        layer = make_layer(**options)
        await layer.group_add("room", "full.one")
        await layer.group_add("room", "open.one")
        await layer.send("full.one", {"type": "first"})
        with caplog.at_level(logging.INFO, logger="channels.layers.redis.core"):
            for _ in range(20):
                await layer.group_send("room", {"type": "group"})
        # One line for twenty drops: later ones are counted for the next line.
        lines = [record for record in caplog.records if "'full.one'" in record.getMessage()]
        assert [record.getMessage() for record in lines] == [
            "dropped 1 message(s) for 'full.one': it is full, so group_send to 'room' "
            "skipped it (further drops for it are counted, and logged at most every 10 s)"
        ]
        assert lines[0].levelno == logging.WARNING
        assert await layer.receive("open.one") == {"type": "group"}
        assert await layer.receive("full.one") == {"type": "first"}
        await layer.close()

    async def test_group_membership_expires(self, make_layer: LayerMaker) -> None:
        layer = make_layer(group_expiry=1)
        await layer.group_add("room", "member")

        async def left() -> bool:
            await layer.group_send("room", {"type": "probe"})
            await layer.flush()  # drop the probes sent while it was still a member
            return not await _has_members(layer, "room")

        await wait_until(left, "the membership to expire")
        await layer.close()

    async def test_empty_group_still_checks_the_message(self, make_layer: LayerMaker) -> None:
        layer = make_layer()
        with pytest.raises(TypeError, match="must be a mapping"):
            await layer.group_send("nobody", ["not", "a", "mapping"])  # type: ignore[arg-type]


async def _has_members(layer: RedisChannelLayer, group: str) -> bool:
    client = redis.Redis(host="127.0.0.1", port=6379)
    try:
        return bool(client.zcard(f"{layer.prefix}:group:{group}"))
    finally:
        client.close()


class TestExpiryAndCapacity:
    async def test_message_expires(self, make_layer: LayerMaker) -> None:
        layer = make_layer(expiry=1)
        await layer.send("old", {"type": "old"})
        client = redis.Redis(host="127.0.0.1", port=6379)

        async def gone() -> bool:
            return not client.exists(layer.prefix + "old")

        await wait_until(gone, "the message to expire")
        client.close()
        await layer.send("old", {"type": "new"})
        assert await layer.receive("old") == {"type": "new"}
        await layer.close()

    async def test_channel_full(self, make_layer: LayerMaker) -> None:
        layer = make_layer(capacity=3, channel_capacity={"big.*": 5})
        for _ in range(3):
            await layer.send("small", {"type": "t"})
        with pytest.raises(ChannelFull, match="'small' is full: it holds 3 messages"):
            await layer.send("small", {"type": "t"})
        for _ in range(5):
            await layer.send("big.one", {"type": "t"})
        with pytest.raises(ChannelFull, match="holds 5 messages"):
            await layer.send("big.one", {"type": "t"})
        await layer.close()

    @pytest.mark.parametrize(
        "options",
        [{"capacity": 1}, {"channel_capacity": {"aged.*": 1}}],
        ids=["in-script", "per-key"],
    )
    async def test_expired_messages_do_not_count_against_capacity(
        self, make_layer: LayerMaker, options: dict[str, Any]
    ) -> None:
        layer = make_layer(expiry=60, **options)
        await layer.group_add("room", "aged.one")

        def age() -> None:
            # As if the channel's messages had been sent two minutes ago.
            rescore = (
                "for _, m in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do "
                "redis.call('ZADD', KEYS[1], 'XX', ARGV[1], m) end return 1"
            )
            key = layer.prefix + "aged.one"
            assert command(6379, "EVAL", rescore, "1", key, str(time.time() - 120)) == 1

        try:
            await layer.send("aged.one", {"type": "old"})
            age()
            await layer.send("aged.one", {"type": "by send"})
            assert await layer.receive("aged.one") == {"type": "by send"}
            await layer.send("aged.one", {"type": "old"})
            age()
            await layer.group_send("room", {"type": "by group_send"})
            assert await layer.receive("aged.one") == {"type": "by group_send"}
        finally:
            await layer.close()


class TestFlushAndClose:
    async def test_flush_drops_messages_and_groups(self, make_layer: LayerMaker) -> None:
        layer = make_layer()
        other = make_layer(prefix=layer.prefix + "x")  # shares the prefix's start
        await layer.send("a", {"type": "t"})
        await layer.group_add("g", "a")
        await layer.flush()
        assert not await _has_members(layer, "g")
        await layer.send("a", {"type": "after"})
        assert await layer.receive("a") == {"type": "after"}
        await layer.close()
        await other.close()

    async def test_close_stops_readers_and_layer_stays_usable(self, make_layer: LayerMaker) -> None:
        layer = make_layer()
        channel = await layer.new_channel()
        waiting = asyncio.ensure_future(layer.receive(channel))
        await asyncio.sleep(0)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        started = time.monotonic()
        await layer.close()
        assert time.monotonic() - started < 1.0  # woken, not left to time out
        await layer.send(channel, {"type": "after"})
        assert await layer.receive(channel) == {"type": "after"}
        await layer.close()


def _connections_named(name: str) -> int:
    client = redis.Redis(host="127.0.0.1", port=6379)
    try:
        clients = client.client_list()  # pyright: ignore[reportUnknownMemberType] -- **kwargs untyped
        return sum(1 for entry in clients if entry.get("name") == name)
    finally:
        client.close()


class TestEventLoops:
    def test_async_to_sync_loops_leave_no_connections(self, prefix: str) -> None:
        layer = RedisChannelLayer(
            hosts=[{"address": REDIS_URL, "client_name": prefix}], prefix=prefix
        )
        for n in range(20):
            async_to_sync(layer.send)("sync", {"type": "t", "n": n})
        assert _connections_named(prefix) == 0
        received = [async_to_sync(layer.receive)("sync")["n"] for _ in range(20)]
        assert received == list(range(20))
        channel = async_to_sync(layer.new_channel)()
        async_to_sync(layer.group_add)("g", channel)
        async_to_sync(layer.group_send)("g", {"type": "g"})
        assert async_to_sync(layer.receive)(channel) == {"type": "g"}
        assert _connections_named(prefix) == 0


class TestConcurrency:
    async def test_hundred_tasks_send_and_receive(self, make_layer: LayerMaker) -> None:
        layer = make_layer()

        async def worker(n: int) -> list[int]:
            channel = await layer.new_channel() if n % 2 else f"worker.{n}"
            got: list[int] = []
            for i in range(10):
                await layer.send(channel, {"type": "t", "i": i})
                got.append((await layer.receive(channel))["i"])
            return got

        results = await asyncio.gather(*(worker(n) for n in range(100)))
        assert results == [list(range(10))] * 100
        await layer.close()


class TestEncryption:
    async def test_round_trip_is_encrypted(self, make_layer: LayerMaker) -> None:
        layer = make_layer(symmetric_encryption_keys=["secret"])
        await layer.send("c", {"type": "t", "text": "plain words"})
        client = redis.Redis(host="127.0.0.1", port=6379)
        stored = cast(list[bytes], client.zrange(layer.prefix + "c", 0, -1))  # pyright: ignore[reportUnknownMemberType] -- score_cast_func untyped
        client.close()
        assert b"plain words" not in stored[0]
        assert await layer.receive("c") == {"type": "t", "text": "plain words"}
        await layer.close()

    async def test_key_rotation(self, make_layer: LayerMaker) -> None:
        old = make_layer(symmetric_encryption_keys=["old"])
        rotating = make_layer(symmetric_encryption_keys=["new", "old"])
        new = make_layer(symmetric_encryption_keys=["new"])
        await old.send("c", {"type": "from-old"})
        assert await rotating.receive("c") == {"type": "from-old"}
        await rotating.send("c", {"type": "from-rotating"})
        assert await new.receive("c") == {"type": "from-rotating"}
        for layer in (old, rotating, new):
            await layer.close()

    @pytest.mark.parametrize(
        "process", [pytest.param(True, id="process"), pytest.param(False, id="shared")]
    )
    async def test_undecryptable_message_fails_one_receive_only(
        self, make_layer: LayerMaker, process: bool
    ) -> None:
        layer = make_layer(symmetric_encryption_keys=["right"])
        stranger = make_layer(symmetric_encryption_keys=["wrong"])
        channel = await layer.new_channel() if process else "undecryptable"
        await stranger.send(channel, {"type": "unreadable"})
        with pytest.raises(MessageDecodeError, match="could not be decrypted with any of the 1"):
            await layer.receive(channel)
        await layer.send(channel, {"type": "readable"})
        assert await layer.receive(channel) == {"type": "readable"}
        await layer.close()
        await stranger.close()


class TestBadInput:
    @pytest.mark.parametrize(
        "name",
        [
            pytest.param("", id="empty"),
            pytest.param("has space", id="space"),
            pytest.param("x" * 200, id="too-long"),
            pytest.param(42, id="not-a-string"),
        ],
    )
    async def test_invalid_channel_names(self, make_layer: LayerMaker, name: Any) -> None:
        layer = make_layer()
        with pytest.raises(TypeError, match="channel name must be"):
            await layer.send(name, {"type": "t"})
        with pytest.raises(TypeError, match="channel name must be"):
            await layer.receive(name)
        with pytest.raises(TypeError, match="channel name must be"):
            await layer.group_add("g", name)

    async def test_invalid_group_name(self, make_layer: LayerMaker) -> None:
        layer = make_layer()
        with pytest.raises(TypeError, match="group name must be"):
            await layer.group_send("bang!", {"type": "t"})

    @pytest.mark.parametrize(
        "message",
        [
            pytest.param(["type", "t"], id="list"),
            pytest.param("t", id="str"),
            pytest.param(None, id="none"),
        ],
    )
    async def test_non_mapping_messages(self, make_layer: LayerMaker, message: Any) -> None:
        layer = make_layer()
        with pytest.raises(TypeError, match="message must be a mapping"):
            await layer.send("c", message)

    async def test_reserved_key(self, make_layer: LayerMaker) -> None:
        layer = make_layer()
        with pytest.raises(ValueError, match="reserved key '__asgi_channel__'"):
            await layer.send("c", {"type": "t", "__asgi_channel__": "x"})

    async def test_unserialisable_value(self, make_layer: LayerMaker) -> None:
        layer = make_layer()
        with pytest.raises(TypeError, match="values MsgPackSerializer can encode"):
            await layer.send("c", {"type": "t", "value": object()})

    async def test_oversized_message(self, make_layer: LayerMaker) -> None:
        layer = SmallLayer(hosts=[REDIS_URL], prefix=make_layer().prefix)
        with pytest.raises(MessageTooLarge, match="the limit is 1024 bytes") as info:
            await layer.send("c", {"type": "t", "blob": b"x" * 2000})
        assert info.value.limit == 1024
        await layer.group_add("g", "c")
        with pytest.raises(MessageTooLarge):
            await layer.group_send("g", {"type": "t", "blob": b"x" * 2000})
        await layer.close()

    def test_default_limit_is_documented(self) -> None:
        assert RedisChannelLayer.max_message_size == MAX_MESSAGE_SIZE == 16 * 1024 * 1024

    def test_unknown_serializer_format(self) -> None:
        with pytest.raises(SerializerDoesNotExist, match=r"\['json', 'msgpack'\]; got 'pickle'"):
            RedisChannelLayer(serializer_format="pickle")

    @pytest.mark.parametrize(
        ("hosts", "error", "match"),
        [
            pytest.param(REDIS_URL, TypeError, "must be a list", id="bare-string"),
            pytest.param(["http://x"], ValueError, "must start with one of", id="scheme"),
            pytest.param([42], TypeError, "each host must be", id="number"),
            pytest.param([("h", 1, 2)], TypeError, r"must be \(host, port\)", id="triple"),
            pytest.param([{"sentinels": [("h", 1)]}], ValueError, "master_name", id="sentinel"),
        ],
    )
    def test_bad_hosts(self, hosts: Any, error: type[Exception], match: str) -> None:
        with pytest.raises(error, match=match):
            RedisChannelLayer(hosts=hosts)

    @pytest.mark.parametrize(
        ("options", "error", "match"),
        [
            pytest.param({"expiry": 0}, ValueError, "expiry must be", id="expiry"),
            pytest.param({"group_expiry": -1}, ValueError, "group_expiry must", id="group"),
            pytest.param({"prefix": b"x"}, TypeError, "prefix must be a str", id="prefix"),
            pytest.param(
                {"symmetric_encryption_keys": "one"}, TypeError, "a list of keys", id="key-str"
            ),
        ],
    )
    def test_bad_options(self, options: Any, error: type[Exception], match: str) -> None:
        with pytest.raises(error, match=match):
            RedisChannelLayer(**options)

    async def test_unreachable_host(self) -> None:
        layer = RedisChannelLayer(hosts=["redis://:hunter2@127.0.0.1:1/0"])
        with pytest.raises(LayerConnectionError, match=r"127\.0\.0\.1:1") as info:
            await layer.send("c", {"type": "t"})
        assert "hunter2" not in str(info.value)
        assert isinstance(info.value, ConnectionError)
        with pytest.raises(LayerConnectionError, match="cannot reach Redis at"):
            await layer.receive("c")
        await layer.close()


class TestSharding:
    async def test_keys_land_on_their_hash_shard(self, make_layer: LayerMaker) -> None:
        layer = make_layer(hosts=[f"{REDIS_URL}/0", f"{REDIS_URL}/1"])
        channels = [f"sharded.{n}" for n in range(10)]
        for name in channels:
            await layer.send(name, {"type": "t", "name": name})
        for name in channels:
            client = redis.Redis(host="127.0.0.1", port=6379, db=layer.consistent_hash(name))
            assert client.exists(layer.prefix + name)
            client.close()
            assert (await layer.receive(name))["name"] == name
        process = await layer.new_channel()
        await layer.group_add("g", process)
        await layer.group_send("g", {"type": "g"})
        assert await layer.receive(process) == {"type": "g"}
        await layer.close()
        client = redis.Redis(host="127.0.0.1", port=6379, db=1)
        for key in client.scan_iter(match=layer.prefix + "*"):  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType] -- redis-py leaves scan_iter untyped
            client.delete(key)  # pyright: ignore[reportUnknownArgumentType] -- a key from above
        client.close()


class TestHosts:
    def test_every_host_form_is_accepted(self) -> None:
        layer = RedisChannelLayer(
            hosts=[
                "unix:///tmp/redis.sock",
                "rediss://:secret@cache.example:6380/2",
                ("cache.example", 6379),
                {"host": "cache.example", "port": 6379, "db": 3},
                {"sentinels": [("sentinel.example", 26379)], "master_name": "main"},
            ]
        )
        assert layer.ring_size == 5
        shown = repr(layer)
        assert "secret" not in shown
        assert "rediss://***@cache.example:6380/2" in shown
        assert "sentinel master 'main'" in shown

    @pytest.mark.parametrize(
        ("host", "pool_class"),
        [
            pytest.param({"address": "unix:///tmp/redis.sock"}, "WaitingConnectionPool", id="unix"),
            pytest.param({"host": "h", "port": 1}, "WaitingConnectionPool", id="options"),
            pytest.param(
                {"sentinels": [("h", 26379)], "master_name": "main"},
                "SentinelConnectionPool",
                id="sentinel",
            ),
        ],
    )
    async def test_pools_are_built_without_connecting(
        self, host: dict[str, Any], pool_class: str
    ) -> None:
        pool = make_pool(host)
        assert type(pool).__name__ == pool_class
        await pool.aclose()


class TestWaitingPool:
    async def test_commands_wait_for_a_free_connection(self) -> None:
        pool = make_pool({"address": REDIS_URL, "max_connections": 2})
        assert isinstance(pool, WaitingConnectionPool)
        client = redis.asyncio.Redis(connection_pool=pool)
        pusher = redis.asyncio.Redis(host="127.0.0.1", port=6379)
        keys = [f"waiting-pool-{uuid.uuid4().hex}" for _ in range(10)]
        # Ten blocking pops on two connections: eight wait for one, none fails.
        pops = [asyncio.ensure_future(client.blpop([key], timeout=5)) for key in keys]
        for key in keys:
            await pusher.rpush(key, key)
        popped = await asyncio.wait_for(asyncio.gather(*pops), 20)
        assert [result[1] if result else None for result in popped] == [
            key.encode() for key in keys
        ]
        assert len(pool._available_connections) <= 2  # pyright: ignore[reportPrivateUsage]
        await client.aclose()
        await pool.aclose()
        await pusher.aclose()

    async def test_a_failed_connect_frees_its_slot(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        pool = make_pool({"address": f"redis://127.0.0.1:{port}", "max_connections": 1})
        client = redis.asyncio.Redis(connection_pool=pool)
        # With its one slot leaked, the second attempt would wait forever.
        for _ in range(2):
            with pytest.raises(RedisConnectionError):
                await asyncio.wait_for(client.set("key", "value"), 20)
        await client.aclose()
        await pool.aclose()


def test_package_exports_both_layers() -> None:
    import channels.layers.redis as package

    assert {"RedisChannelLayer", "RedisPubSubChannelLayer"} <= set(package.__all__)
