"""The pub/sub subscriber's reply parsing, fed bytes directly: no Redis involved.

A :class:`Link` gets whatever chunks the socket hands it; these tests check that
any split of the bytes gives the same replies, in RESP2 and RESP3.
"""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import ConnectionPool
from redis.exceptions import InvalidResponse, ResponseError

from channels.layers.redis._errors import HostErrors
from channels.layers.redis._resp import Push
from channels.layers.redis._subscriber import Link, Subscriber, parse_reply


def bulk(data: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(data), data)


def push(kind: bytes, name: bytes, data: bytes, *, resp3: bool = True) -> bytes:
    return (b">3\r\n" if resp3 else b"*3\r\n") + bulk(kind) + bulk(name) + bulk(data)


class Recorder:
    """A listener that records deliveries; it wants every name."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.delivered: list[tuple[str, bytes]] = []

    def deliver(self, name: str, data: bytes) -> None:
        self.delivered.append((name, data))

    def wants(self, name: str) -> bool:
        return True

    async def notify(self, hook_name: str, host: str) -> None:
        return None


def no_pool() -> ConnectionPool:
    raise AssertionError("these tests never connect")


async def make_link() -> tuple[Recorder, Subscriber, Link]:
    recorder = Recorder()
    subscriber = Subscriber(recorder, no_pool, HostErrors("test:6379"))
    return recorder, subscriber, Link(subscriber)


class TestParseReply:
    @pytest.mark.parametrize("resp3", [True, False], ids=["resp3", "resp2"])
    def test_a_push_message(self, resp3: bool) -> None:
        data = push(b"message", b"chat", b"\x00payload\r\n", resp3=resp3)
        assert parse_reply(data, 0) == ([b"message", b"chat", b"\x00payload\r\n"], len(data))

    @pytest.mark.parametrize(
        ("data", "reply"),
        [
            pytest.param(b":42\r\n", 42, id="integer"),
            pytest.param(b"+OK\r\n", b"OK", id="simple"),
            pytest.param(b"$-1\r\n", None, id="null-bulk"),
            pytest.param(b"_\r\n", None, id="resp3-null"),
            pytest.param(b"*2\r\n:1\r\n$0\r\n\r\n", [1, b""], id="array"),
            pytest.param(b",1764770000.25\r\n", 1764770000.25, id="resp3-double"),
            pytest.param(b"*2\r\n$1\r\nm\r\n,-inf\r\n", [b"m", float("-inf")], id="zpopmin"),
        ],
    )
    def test_other_replies(self, data: bytes, reply: object) -> None:
        assert parse_reply(data, 0) == (reply, len(data))

    @pytest.mark.parametrize(
        ("data", "pushed"), [(b">1\r\n:1\r\n", True), (b"*1\r\n:1\r\n", False)]
    )
    def test_a_push_is_told_from_an_array(self, data: bytes, pushed: bool) -> None:
        parsed = parse_reply(data, 0)
        assert isinstance(parsed, tuple)
        assert parsed[0] == [1]
        assert isinstance(parsed[0], Push) is pushed

    def test_an_error_comes_back_as_an_object(self) -> None:
        parsed = parse_reply(b"-NOPERM no access\r\n", 0)
        assert isinstance(parsed, tuple)
        reply, end = parsed
        assert isinstance(reply, ResponseError)
        assert str(reply) == "NOPERM no access"
        assert end == 19

    def test_an_incomplete_reply_says_how_long_the_data_must_be(self) -> None:
        data = push(b"message", b"chat", b"x" * 100)
        assert parse_reply(data[:-10], 0) == len(data)
        # A line without its end yet: at least one byte more.
        assert parse_reply(b">3\r\n$7\r", 0) == 8

    def test_an_unknown_type_is_refused(self) -> None:
        with pytest.raises(InvalidResponse, match=r"unexpected RESP type byte b'\?'"):
            parse_reply(b"?1\r\n", 0)


class TestLink:
    @pytest.mark.parametrize("chunk", [1, 3, 7, 64, 100_000])
    async def test_any_split_delivers_the_same_messages(self, chunk: int) -> None:
        recorder, _, link = await make_link()
        messages = [(f"chat.{n}", bytes([n]) * n * 10) for n in range(1, 20)]
        stream = b"".join(push(b"message", name.encode(), data) for name, data in messages)
        for start in range(0, len(stream), chunk):
            link.data_received(stream[start : start + chunk])
        assert recorder.delivered == messages

    async def test_a_large_message_in_many_chunks(self) -> None:
        recorder, _, link = await make_link()
        data = bytes(range(256)) * 8192  # 2 MiB
        stream = push(b"message", b"big", data)
        for start in range(0, len(stream), 65536):
            link.data_received(stream[start : start + 65536])
        assert recorder.delivered == [("big", data)]

    async def test_other_pushes_are_ignored(self) -> None:
        recorder, _, link = await make_link()
        link.data_received(
            b">3\r\n"
            + bulk(b"unsubscribe")
            + bulk(b"gone")
            + b":0\r\n"
            + push(b"message", b"a", b"1")
        )
        assert recorder.delivered == [("a", b"1")]

    async def test_garbage_cuts_the_link(self) -> None:
        recorder, _, link = await make_link()
        link.data_received(b"?garbage\r\n" + push(b"message", b"a", b"1"))
        assert not link.live
        link.data_received(push(b"message", b"a", b"2"))
        assert recorder.delivered == []
