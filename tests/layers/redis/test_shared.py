"""The pieces both Redis layers share: errors, loop state, keys, drop logging, script limits."""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any, cast

import pytest
import redis
import redis.asyncio
import redis.exceptions
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool

from channels.layers.redis import LayerConnectionError, RedisChannelLayer
from channels.layers.redis._drops import DropLog
from channels.layers.redis._errors import HostErrors
from channels.layers.redis._hosts import close_pool, make_pool
from channels.layers.redis._keys import check_prefix, check_seconds, delete_prefixed, glob_escape
from channels.layers.redis._loops import LoopStates
from channels.layers.redis._reader import _popped  # pyright: ignore[reportPrivateUsage]
from channels.layers.redis._scripts import reply_indexes, reply_strings, script_head
from tests.layers.redis.conftest import REDIS_URL, LayerMaker


class TestHostErrors:
    @pytest.mark.parametrize(
        "error",
        [
            pytest.param(redis.exceptions.ConnectionError("refused"), id="redis-connection"),
            pytest.param(redis.exceptions.TimeoutError("refused"), id="redis-timeout"),
            pytest.param(OSError("refused"), id="socket"),
        ],
    )
    def test_connection_failures_name_the_host(self, error: Exception) -> None:
        with pytest.raises(LayerConnectionError) as info, HostErrors("h:1"):
            raise error
        assert str(info.value) == "cannot reach Redis at h:1: refused"
        assert info.value.host == "h:1"
        assert info.value.reason is error
        assert info.value.__cause__ is error

    def test_about_says_what_failed(self) -> None:
        with pytest.raises(LayerConnectionError) as info, HostErrors("h:1").about("send to 'c'"):
            raise OSError("refused")
        assert str(info.value) == "cannot reach Redis at h:1: could not send to 'c': refused"

    def test_error_takes_words(self) -> None:
        error = HostErrors("h:1").about("subscribe").error("no confirmation within 5s")
        assert (
            str(error)
            == "cannot reach Redis at h:1: could not subscribe: no confirmation within 5s"
        )

    def test_other_errors_and_layer_errors_pass_through(self) -> None:
        inner = LayerConnectionError("other:2", OSError("x"))
        with pytest.raises(LayerConnectionError) as info, HostErrors("h:1"):
            raise inner
        assert info.value is inner
        with pytest.raises(KeyError), HostErrors("h:1"):
            raise KeyError("not a connection failure")


class TestClosePool:
    async def test_a_sentinel_pool_closes_its_sentinel_connections(self) -> None:
        pool = make_pool({"sentinels": [("127.0.0.1", 6379)], "master_name": "unused"})
        assert isinstance(pool, SentinelConnectionPool)
        sentinel = cast(Sentinel, pool.sentinel_manager)  # pyright: ignore[reportUnknownMemberType] -- unannotated
        # The shared Redis answers PING as a Sentinel would: the client connects.
        assert await sentinel.sentinels[0].ping()  # pyright: ignore[reportUnknownMemberType] -- **kwargs untyped
        connections = sentinel.sentinels[0].connection_pool._available_connections  # pyright: ignore[reportPrivateUsage]
        assert [connection.is_connected for connection in connections] == [True]
        await close_pool(pool)
        assert [connection.is_connected for connection in connections] == [False]


class _State:
    def __init__(self, log: list[str]) -> None:
        self.log = log

    async def aclose(self) -> None:
        self.log.append("closed")


class _FailingState:
    async def aclose(self) -> None:
        raise RuntimeError("could not close")


class TestLoopStates:
    def test_released_when_asyncio_run_ends(self) -> None:
        log: list[str] = []
        states = LoopStates(lambda: _State(log))

        async def use() -> _State:
            return states.get()

        first = asyncio.run(use())
        assert log == ["closed"]
        assert asyncio.run(use()) is not first
        assert log == ["closed", "closed"]

    async def test_one_state_per_loop_until_closed(self) -> None:
        log: list[str] = []
        states = LoopStates(lambda: _State(log))
        state = states.get()
        assert states.get() is state
        assert list(states) == [state]
        await states.close()
        assert log == ["closed"]
        assert states.get() is not state
        await states.close()

    async def test_close_without_a_state(self) -> None:
        await LoopStates(lambda: _State([])).close()

    async def test_close_raises_what_releasing_raised(self) -> None:
        states = LoopStates(_FailingState)
        states.get()
        with pytest.raises(RuntimeError, match="could not close"):
            await states.close()

    async def test_a_loop_closed_elsewhere_is_forgotten(self) -> None:
        log: list[str] = []
        states = LoopStates(lambda: _State(log))
        other = asyncio.new_event_loop()

        async def use() -> None:
            states.get()

        # Closed without cancelling its tasks: nothing can release its state.
        thread = threading.Thread(target=other.run_until_complete, args=(use(),))
        thread.start()
        thread.join()
        other.close()
        mine = states.get()
        assert list(states) == [mine]
        await states.close()


class TestKeys:
    @pytest.mark.parametrize(
        ("value", "error", "match"),
        [
            pytest.param(0, ValueError, "expiry must be a number of seconds > 0; got 0", id="zero"),
            pytest.param("60", TypeError, "got '60'", id="str"),
            pytest.param(True, TypeError, "got True", id="bool"),
        ],
    )
    def test_seconds(self, value: object, error: type[Exception], match: str) -> None:
        with pytest.raises(error, match=match):
            check_seconds("expiry", value)

    def test_prefix(self) -> None:
        with pytest.raises(TypeError, match="prefix must be a str; got b'x'") as info:
            check_prefix(b"x")
        assert isinstance(info.value, AssertionError)  # channels_redis asserts

    def test_glob_escape(self) -> None:
        assert glob_escape("a*b?c[d]e\\") == "a\\*b\\?c\\[d\\]e\\\\"

    async def test_delete_prefixed_deletes_only_its_own(self, prefix: str) -> None:
        client = redis.asyncio.Redis(host="127.0.0.1", port=6379)
        special = f"{prefix}[*]"
        keys = [f"{special}{n}" for n in range(2500)]
        await client.mset(dict.fromkeys(keys, 1))
        await client.set(f"{prefix}x-kept", 1)  # matches the prefix unescaped
        assert await delete_prefixed(client, special) == 2500
        assert await client.exists(f"{prefix}x-kept") == 1
        await client.aclose()


class TestDropLog:
    def test_once_per_interval_with_a_count(self, caplog: pytest.LogCaptureFixture) -> None:
        now = [100.0]
        drops = DropLog(logging.getLogger("test.drops"), interval=10, clock=lambda: now[0])
        with caplog.at_level(logging.WARNING, logger="test.drops"):
            for _ in range(5):
                drops.dropped("a", "it is full")
            drops.dropped("b", "it is full")
            now[0] += 9.9
            drops.dropped("a", "it is full")
            now[0] += 0.2
            drops.dropped("a", "it is full", count=3)
        assert [record.getMessage() for record in caplog.records] == [
            "dropped 1 message(s) for 'a': it is full (further drops for it are counted, "
            "and logged at most every 10 s)",
            "dropped 1 message(s) for 'b': it is full (further drops for it are counted, "
            "and logged at most every 10 s)",
            "dropped 8 message(s) for 'a' in the last 10.1 s: it is full",
        ]
        assert {record.levelno for record in caplog.records} == {logging.WARNING}


class LongNameLayer(RedisChannelLayer):
    """A subclass allowing names past msgpack's one-byte string length."""

    MAX_NAME_LENGTH = 300


class HugeNameLayer(RedisChannelLayer):
    """A subclass allowing names past msgpack's two-byte string length (str32)."""

    MAX_NAME_LENGTH = 70_000


class TestScriptReplies:
    def test_arrays_of_strings_and_of_indexes(self) -> None:
        assert reply_strings([b"a", b""]) == [b"a", b""]
        assert reply_indexes([3, 1]) == [3, 1]
        assert reply_strings([]) == []
        assert reply_indexes([]) == []

    @pytest.mark.parametrize("reply", [None, b"a", [b"a", 1], ["text"]])
    def test_anything_else_is_refused_naming_it(self, reply: object) -> None:
        with pytest.raises(redis.exceptions.InvalidResponse, match="an array of strings, got"):
            reply_strings(reply)

    @pytest.mark.parametrize("reply", [None, 1, [1, b"2"]])
    def test_not_indexes_is_refused_naming_it(self, reply: object) -> None:
        with pytest.raises(redis.exceptions.InvalidResponse, match="an array of integers, got"):
            reply_indexes(reply)


class TestBlockingPopReplies:
    def test_a_popped_message_and_a_timeout(self) -> None:
        assert _popped([b"p{1}c", b"data", b"1700000000.5"]) == ("p{1}c", b"data", 1700000000.5)
        assert _popped(("p{1}c", b"data", 12.0)) == ("p{1}c", b"data", 12.0)
        assert _popped(None) is None

    @pytest.mark.parametrize(
        "reply", [b"a", [b"key", b"data"], [1, b"data", 2.0], [b"k", b"d", None]]
    )
    def test_anything_else_is_refused_naming_it(self, reply: object) -> None:
        with pytest.raises(redis.exceptions.InvalidResponse, match="answered BZPOPMIN with"):
            _popped(reply)


class TestGroupSendScriptLimits:
    def test_script_head_needs_the_empty_array_last(self) -> None:
        assert script_head(b"\x81\xa1a\x90") == b"\x81\xa1a"
        with pytest.raises(ValueError, match=r"ending in byte 0x90\); got one ending in b'x'"):
            script_head(b"abcx")

    async def test_names_past_255_bytes(self, prefix: str) -> None:
        layer = LongNameLayer(hosts=[REDIS_URL], prefix=prefix)
        process = await layer.new_channel("p" * 200)
        members = ["n" * 256, "n" * 299, process]
        for name in members:
            await layer.group_add("room", name)
        await layer.group_send("room", {"type": "g"})
        for name in members:
            assert await layer.receive(name) == {"type": "g"}
        await layer.close()

    async def test_names_past_65535_bytes(self, prefix: str) -> None:
        layer = HugeNameLayer(hosts=[REDIS_URL], prefix=prefix)
        process = await layer.new_channel("p" * 66_000)
        members = ["h" * 65_536, "h" * 69_999, process]
        for name in members:
            await layer.group_add("room", name)
        await layer.group_send("room", {"type": "g"})
        for name in members:
            assert await layer.receive(name) == {"type": "g"}
        await layer.close()

    @pytest.mark.slow
    async def test_a_process_with_more_members_than_array16_holds(
        self, make_layer: LayerMaker
    ) -> None:
        layer = make_layer()
        count = 65_536
        channels = [f"specific.{layer.client_prefix}!{n}" for n in range(count)]
        client = redis.Redis(host="127.0.0.1", port=6379)
        client.zadd(f"{layer.prefix}:group:room", dict.fromkeys(channels, 2e9))
        client.close()
        await layer.group_send("room", {"type": "g"})
        got: dict[str, Any] = {}
        for name in (channels[0], channels[-1]):
            got[name] = await layer.receive(name)
        assert got == {channels[0]: {"type": "g"}, channels[-1]: {"type": "g"}}
        await layer.flush()
        await layer.close()
