"""The pub/sub layer's publisher against real Redis servers.

Publishing runs on the shared Redis at 127.0.0.1:6379, on pub/sub channel
names of each test's own. Restarts, pauses and ACL users need a private
redis-server (see ``_server``), stopped by its PID.
"""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, Final, cast

import pytest
import redis
from redis.asyncio import ConnectionPool
from redis.exceptions import NoPermissionError, NoScriptError, RedisError

from channels.layers.redis._errors import HostErrors, LayerConnectionError
from channels.layers.redis._hosts import (
    HostConfig,
    close_pool,
    decode_hosts,
    describe_host,
    make_pool,
)
from channels.layers.redis._publisher import Publisher, Replies
from channels.layers.redis._resp import parse_reply
from tests._processes import free_port
from tests.layers.redis._server import RedisServer, redis_server_available

SHARED: Final = "redis://127.0.0.1:6379"
WAIT: Final = 10.0
"""Seconds a test waits for something it expects: a message, a reply, a closed socket."""

needs_redis_server = pytest.mark.skipif(
    not redis_server_available(), reason="needs a redis-server executable"
)


def unique(name: str) -> str:
    return f"test-publisher-{name}-{uuid.uuid4().hex}"


# Any: redis-py replies, which redis-py leaves unannotated.
def command(port: int, *args: str | bytes, user: tuple[str, str] | None = None) -> Any:
    """Run one command on the loopback ``port`` through redis-py; replies decoded to ``str``."""
    username, password = user or (None, None)
    client = redis.Redis(
        port=port, username=username, password=password, decode_responses=True, protocol=2
    )
    try:
        # redis-py leaves execute_command (and its reply) unannotated.
        return client.execute_command(*args)  # type: ignore[no-untyped-call]
    finally:
        client.close()


def clients_named(port: int, name: str) -> list[dict[str, str]]:
    """The connections on ``port`` whose client name is ``name``, as CLIENT LIST shows them."""
    client = redis.Redis(port=port, decode_responses=True)
    try:
        listing = client.client_list()  # pyright: ignore[reportUnknownMemberType] -- **kwargs untyped
    finally:
        client.close()
    return [entry for entry in listing if entry.get("name") == name]


async def until(condition: Callable[[], bool], what: str) -> None:
    """Poll ``condition`` (run off the event loop: it may ask Redis) until it holds, bounded."""
    for _ in range(int(WAIT / 0.02)):
        if await asyncio.to_thread(condition):
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"waited {WAIT}s for {what}")


class Publishers:
    """Makes publishers, each on a pool of its own; closes them all at the end."""

    def __init__(self) -> None:
        self.made: list[tuple[Publisher, ConnectionPool]] = []

    def __call__(self, host: HostConfig) -> Publisher:
        decoded = decode_hosts([host])[0]
        pool = make_pool(decoded)
        publisher = Publisher(lambda: pool, HostErrors(describe_host(decoded)))
        self.made.append((publisher, pool))
        return publisher

    async def aclose(self) -> None:
        for publisher, pool in self.made:
            await publisher.aclose()
            await close_pool(pool)


@pytest.fixture
async def publishers() -> AsyncIterator[Publishers]:
    made = Publishers()
    try:
        yield made
    finally:
        await made.aclose()


@pytest.fixture
def server() -> Iterator[RedisServer]:
    with RedisServer() as running:
        yield running


class Listening:
    """A plain subscriber to one pub/sub channel: what is published there, in order."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._buffer = b""

    @classmethod
    async def on(cls, port: int, name: str) -> Listening:
        """Subscribe to ``name`` on the loopback ``port``; return once Redis confirmed it."""
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        listening = cls(reader, writer)
        raw = name.encode()
        writer.write(b"*2\r\n$9\r\nSUBSCRIBE\r\n$%d\r\n%b\r\n" % (len(raw), raw))
        confirmation = await listening._reply()
        assert confirmation == [b"subscribe", raw, 1], confirmation
        return listening

    async def next(self) -> bytes:
        """The next message's data."""
        reply = await self._reply()
        assert isinstance(reply, list), reply
        kind, _, data = cast("list[object]", reply)
        assert kind == b"message", reply
        assert isinstance(data, bytes)
        return data

    async def until(self, last: bytes) -> list[bytes]:
        """Every message's data up to and including ``last``."""
        seen = [await self.next()]
        while seen[-1] != last:
            seen.append(await self.next())
        return seen

    async def close(self) -> None:
        self._writer.close()
        await self._writer.wait_closed()

    async def _reply(self) -> object:
        while True:
            parsed = parse_reply(self._buffer, 0) if self._buffer else 1
            if isinstance(parsed, tuple):
                reply, end = parsed
                self._buffer = self._buffer[end:]
                return reply
            chunk = await asyncio.wait_for(self._reader.read(65536), WAIT)
            if not chunk:
                raise AssertionError("the subscriber connection was closed")
            self._buffer += chunk


Listen = Callable[[int, str], Awaitable[Listening]]
"""Subscribes to a pub/sub channel on a loopback port (the ``listen`` fixture)."""


@pytest.fixture
async def listen() -> AsyncIterator[Listen]:
    opened: list[Listening] = []

    async def on(port: int, name: str) -> Listening:
        listening = await Listening.on(port, name)
        opened.append(listening)
        return listening

    try:
        yield on
    finally:
        for listening in opened:
            await listening.close()


@pytest.mark.usefixtures("redis_available")
class TestPublishing:
    async def test_returns_once_redis_answered_with_the_subscribers_reached(
        self, publishers: Publishers, listen: Listen
    ) -> None:
        publisher = publishers(SHARED)
        name = unique("answered")
        listening = await listen(6379, name)
        assert await publisher.publish(name, b"\x00first\r\n") == 1
        assert await listening.next() == b"\x00first\r\n"
        assert await publisher.publish(unique("nobody"), b"lost") == 0
        assert publisher.connected

    async def test_concurrent_publishes_share_one_connection_and_keep_their_order(
        self, publishers: Publishers, listen: Listen
    ) -> None:
        client_name = unique("pipelined")
        publisher = publishers({"address": SHARED, "client_name": client_name})
        heard, silent = unique("heard"), unique("silent")
        listening = await listen(6379, heard)
        # Alternating channels give alternating replies: each must reach its own publish.
        replies = await asyncio.gather(
            *(publisher.publish(heard if n % 2 == 0 else silent, b"%d" % n) for n in range(400))
        )
        assert replies == [1, 0] * 200
        assert await listening.until(b"398") == [b"%d" % n for n in range(0, 400, 2)]
        assert len(clients_named(6379, client_name)) == 1

    async def test_a_cancelled_publish_leaves_the_other_replies_matched(
        self, publishers: Publishers, listen: Listen
    ) -> None:
        publisher = publishers(SHARED)
        heard, silent = unique("heard"), unique("silent")
        await listen(6379, heard)
        await publisher.publish(silent, b"connect")
        tasks = [
            asyncio.create_task(publisher.publish(heard if n % 2 == 0 else silent, b"x"))
            for n in range(60)
        ]
        # Not a timed wait: each new task runs its first step, which writes its PUBLISH,
        # before this test resumes; the replies come in later iterations of the loop.
        await asyncio.sleep(0)
        for task in tasks[::3]:
            task.cancel()
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        for n, outcome in enumerate(outcomes):
            if n % 3 == 0:
                assert isinstance(outcome, asyncio.CancelledError), (n, outcome)
            else:
                assert outcome == (1 if n % 2 == 0 else 0), (n, outcome)
        assert await publisher.publish(heard, b"after") == 1

    async def test_the_hosts_options_are_honoured_resp3_and_client_name(
        self, publishers: Publishers, listen: Listen
    ) -> None:
        client_name = unique("resp3")
        publisher = publishers({"address": SHARED, "protocol": 3, "client_name": client_name})
        name = unique("resp3")
        listening = await listen(6379, name)
        assert await publisher.publish(name, b"over resp3") == 1
        assert await listening.next() == b"over resp3"
        (client,) = clients_named(6379, client_name)
        assert client["resp"] == "3"
        assert client["cmd"] == "publish"

    async def test_close_releases_the_socket_and_later_publishes_are_refused(
        self, publishers: Publishers
    ) -> None:
        client_name = unique("closed")
        publisher = publishers({"address": SHARED, "client_name": client_name})
        await publisher.publish(unique("any"), b"x")
        assert len(clients_named(6379, client_name)) == 1
        await publisher.aclose()
        assert not publisher.connected
        await until(lambda: not clients_named(6379, client_name), "the socket to close")
        with pytest.raises(LayerConnectionError, match=r"the layer was closed$") as raised:
            await publisher.publish("after.close", b"x")
        assert raised.value.host == SHARED


@needs_redis_server
class TestCommands:
    async def test_commands_run_in_order_and_give_the_last_reply(
        self, publishers: Publishers
    ) -> None:
        publisher = publishers(SHARED)
        key = f"test-commands-{uuid.uuid4().hex[:8]}"
        try:
            popped = await publisher.commands(
                "pop", [("ZADD", key, 2.5, b"second"), ("ZADD", key, 1, b"first"), ("ZPOPMIN", key)]
            )
            assert popped == [b"first", 1.0]
            assert await publisher.command("pop", "ZPOPMIN", key) == [b"second", 2.5]
            assert await publisher.command("pop", "ZPOPMIN", key) == []
        finally:
            await publisher.command("clean up", "DEL", key)

    async def test_an_error_reply_raises_what_redis_py_raises(self, publishers: Publishers) -> None:
        publisher = publishers(SHARED)
        with pytest.raises(NoScriptError):
            await publisher.command("run", "EVALSHA", "0" * 40, 0)
        assert await publisher.command("ping", "PING") == b"PONG"


class TestConnectionFailures:
    async def test_a_refused_connection_names_the_host(self, publishers: Publishers) -> None:
        port = free_port()
        publisher = publishers(f"redis://127.0.0.1:{port}")
        with pytest.raises(LayerConnectionError) as raised:
            await publisher.publish("test.nowhere", b"x")
        assert raised.value.host == f"redis://127.0.0.1:{port}"
        assert str(raised.value).startswith(
            f"cannot reach Redis at redis://127.0.0.1:{port}: could not publish on 'test.nowhere': "
        )
        assert isinstance(raised.value, ConnectionError)

    async def test_a_connection_lost_between_publishes_is_replaced_by_the_next(
        self, server: RedisServer, publishers: Publishers, listen: Listen
    ) -> None:
        publisher = publishers(server.url)
        await publisher.publish("test.room", b"before")
        await asyncio.to_thread(server.restart)
        await until(lambda: not publisher.connected, "the publisher to see the restart")
        listening = await listen(server.port, "test.room")
        assert await publisher.publish("test.room", b"after") == 1
        assert await listening.next() == b"after"

    async def test_publishes_fail_while_redis_is_down_and_work_once_it_is_back(
        self, server: RedisServer, publishers: Publishers
    ) -> None:
        publisher = publishers(server.url)
        await publisher.publish("test.room", b"before")
        await asyncio.to_thread(server.stop)
        await until(lambda: not publisher.connected, "the publisher to see the stop")
        outcomes = await asyncio.gather(
            *(publisher.publish("test.room", b"down") for _ in range(5)), return_exceptions=True
        )
        for outcome in outcomes:
            assert isinstance(outcome, LayerConnectionError), outcome
            assert outcome.host == server.url
        await asyncio.to_thread(server.start)
        assert await publisher.publish("test.room", b"back") == 0

    async def test_a_publish_whose_connection_is_lost_fails_and_is_never_sent_again(
        self, server: RedisServer, publishers: Publishers, listen: Listen
    ) -> None:
        client_name = unique("killed")
        publisher = publishers({"address": server.url, "client_name": client_name})
        listening = await listen(server.port, "test.room")
        assert await publisher.publish("test.room", b"first") == 1
        command(server.port, "CLIENT", "PAUSE", "60000", "WRITE")
        try:
            pending = asyncio.create_task(publisher.publish("test.room", b"second"))

            def held() -> bool:
                listing = clients_named(server.port, client_name)
                return any(c["cmd"] == "publish" and "b" in c["flags"] for c in listing)

            await until(held, "Redis to hold the PUBLISH")
            command(server.port, "CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
            with pytest.raises(LayerConnectionError) as raised:
                await asyncio.wait_for(pending, WAIT)
            assert raised.value.host == server.url
            assert "could not publish on 'test.room'" in str(raised.value)
        finally:
            command(server.port, "CLIENT", "UNPAUSE")
        assert await publisher.publish("test.room", b"third") == 1
        assert await listening.until(b"third") == [b"first", b"third"]

    async def test_no_reply_within_the_socket_timeout_fails_and_is_sent_at_most_once(
        self, server: RedisServer, publishers: Publishers, listen: Listen
    ) -> None:
        publisher = publishers({"address": server.url, "socket_timeout": 0.3})
        listening = await listen(server.port, "test.room")
        assert await publisher.publish("test.room", b"first") == 1
        pid = int(command(server.port, "INFO", "server")["process_id"])
        os.kill(pid, signal.SIGSTOP)  # Redis reads nothing and answers nothing
        try:
            with pytest.raises(LayerConnectionError) as raised:
                await asyncio.wait_for(publisher.publish("test.room", b"late"), WAIT)
        finally:
            os.kill(pid, signal.SIGCONT)
        assert str(raised.value) == (
            f"cannot reach Redis at {server.url}: could not publish on 'test.room': "
            "no reply within 0.3s"
        )
        assert not publisher.connected  # a late reply would answer the wrong publish
        assert await publisher.publish("test.room", b"after") == 1
        seen = await listening.until(b"after")
        assert seen in ([b"first", b"after"], [b"first", b"late", b"after"]), seen


def _limited_user(server: RedisServer) -> None:
    """Create the user ``limited`` (password ``pw``) that may only use ``allowed.*`` channels."""
    command(
        server.port,
        "ACL", "SETUSER", "limited", "on", ">pw", "~*", "resetchannels", "&allowed.*", "+@all",
    )  # fmt: skip


@needs_redis_server
class TestErrorReplies:
    async def test_a_refused_publish_raises_what_redis_py_raises_and_the_connection_stays(
        self, server: RedisServer, publishers: Publishers
    ) -> None:
        _limited_user(server)
        publisher = publishers(f"redis://limited:pw@127.0.0.1:{server.port}")
        assert await publisher.publish("allowed.room", b"x") == 0
        with pytest.raises(NoPermissionError) as raised:
            await publisher.publish("denied.room", b"x")
        with pytest.raises(NoPermissionError) as expected:
            command(server.port, "PUBLISH", "denied.room", "x", user=("limited", "pw"))
        assert type(raised.value) is type(expected.value)
        assert str(raised.value) == str(expected.value)
        assert str(raised.value).startswith("this user has no permissions")
        assert publisher.connected
        assert await publisher.publish("allowed.room", b"y") == 0


class TestReplies:
    """The reply parsing, fed bytes directly: no Redis involved."""

    @pytest.mark.parametrize("chunk", [1, 2, 5, 1000])
    async def test_any_split_gives_each_waiter_its_own_reply(self, chunk: int) -> None:
        replies = Replies(asyncio.get_running_loop())
        waiters = [replies.expect() for _ in range(5)]
        # A push (">") is skipped; an array ("*") is a command's reply.
        stream = (
            b":3\r\n>3\r\n$7\r\nmessage\r\n$1\r\na\r\n$1\r\nb\r\n:0\r\n-ERR no\r\n:12345\r\n"
            b"*2\r\n$1\r\nm\r\n,1.5\r\n"
        )
        for start in range(0, len(stream), chunk):
            replies.data_received(stream[start : start + chunk])
        results = [waiter.result() for waiter in waiters]
        assert results[:2] == [3, 0]
        assert isinstance(results[2], RedisError)
        assert str(results[2]) == "ERR no"
        assert results[3:] == [12345, [b"m", 1.5]]

    async def test_a_reply_nobody_waits_for_cuts_the_connection(self) -> None:
        replies = Replies(asyncio.get_running_loop())
        waiter = replies.expect()
        replies.data_received(b":1\r\n:2\r\n")
        assert waiter.result() == 1
        assert not replies.live
        assert not replies.usable()
