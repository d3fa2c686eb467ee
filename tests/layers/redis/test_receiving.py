"""The rules RedisChannelLayer's receiving keeps, one class per rule of ``_receiving.Receiver``.

Rule 6's reconnection half is in test_faults.py (``TestCoreRestart``) and an
unreachable host in test_core.py (``TestBadInput.test_unreachable_host``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from typing import Any

import pytest
import redis

from channels.layers.redis import MessageDecodeError
from tests.layers.redis.conftest import REDIS_URL, LayerMaker
from tests.layers.redis.test_core import QuickLayer, wait_until


def _redis() -> redis.Redis:
    return redis.Redis(host="127.0.0.1", port=6379)


def _readers() -> list[asyncio.Task[Any]]:
    """The reader tasks running in this event loop."""
    # Any: the tasks' results are not read.
    return [
        task
        for task in asyncio.all_tasks()
        if getattr(task.get_coro(), "__qualname__", "") == "ShardReader._run"
    ]


async def _started(task: asyncio.Future[Any]) -> None:
    """Let ``task`` run up to its first real wait (a round trip to Redis, or a future)."""
    # Any: the task's result is not read here.
    for _ in range(3):
        await asyncio.sleep(0)
    assert not task.done()


class TestOrderPerChannel:
    """Rule 1: receivers get a channel's messages in the order Redis holds them."""

    async def test_order_per_channel(self, make_layer: LayerMaker) -> None:
        layer = make_layer()
        channel = await layer.new_channel()
        for n in range(50):
            await layer.send(channel, {"type": "t", "n": n})
            await layer.send("shared", {"type": "t", "n": n})
        assert [(await layer.receive(channel))["n"] for _ in range(50)] == list(range(50))
        assert [(await layer.receive("shared"))["n"] for _ in range(50)] == list(range(50))
        await layer.close()

    async def test_a_cancelled_receivers_pop_comes_first(self, make_layer: LayerMaker) -> None:
        layer = make_layer()
        for n in range(3):
            await layer.send("ordered", {"type": "t", "n": n})
        # The first receive pops message 0 itself and is cancelled while the pop
        # is out: the next receive must wait for it rather than pop message 1.
        first = asyncio.ensure_future(layer.receive("ordered"))
        await _started(first)
        first.cancel()
        received = [(await layer.receive("ordered"))["n"] for _ in range(3)]
        assert received == [0, 1, 2]
        assert first.cancelled()
        await layer.close()


class TestNothingLostOnCancel:
    """Rule 2: cancelling a receive never drops a message."""

    @pytest.mark.parametrize("seed", [7, 11, 23])
    @pytest.mark.parametrize(
        "process", [pytest.param(True, id="process"), pytest.param(False, id="shared")]
    )
    async def test_cancelled_receives_lose_nothing(
        self, make_layer: LayerMaker, process: bool, seed: int, caplog: pytest.LogCaptureFixture
    ) -> None:
        layer = make_layer(capacity=1000)
        channel = await layer.new_channel() if process else "cancelled"
        total = 300
        rng = random.Random(seed)

        async def sender() -> None:
            for n in range(total):
                await layer.send(channel, {"type": "t", "n": n})
                if n % 7 == 0:
                    await asyncio.sleep(0)

        sending = asyncio.ensure_future(sender())
        received: list[int] = []
        while len(received) < total:
            receiving = asyncio.ensure_future(layer.receive(channel))
            for _ in range(rng.randrange(4)):
                await asyncio.sleep(0)
            if rng.random() < 0.6:
                receiving.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                received.append((await asyncio.wait_for(receiving, 10))["n"])
        await sending
        assert received == list(range(total))
        assert [
            record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR
        ] == []
        await layer.close()

    async def test_a_pop_out_when_its_receive_is_cancelled(self, make_layer: LayerMaker) -> None:
        layer = make_layer()
        other = make_layer()
        await layer.send("popped", {"type": "t", "n": 0})
        waiting = asyncio.ensure_future(layer.receive("popped"))
        await _started(waiting)
        waiting.cancel()
        await asyncio.wait([waiting])
        await layer.send("popped", {"type": "t", "n": 1})
        # Nobody here waits any more: both are for any process to take, in order.
        assert [(await other.receive("popped"))["n"] for _ in range(2)] == [0, 1]
        await layer.close()
        await other.close()

    async def test_a_send_right_after_the_cancel_follows_the_popped_message(
        self, make_layer: LayerMaker
    ) -> None:
        layer = make_layer()
        other = make_layer()
        # Connected already, so that its pop can come at once.
        await other.send("warm", {"type": "t"})
        assert await other.receive("warm") == {"type": "t"}
        await layer.send("resent", {"type": "t", "n": 0})
        waiting = asyncio.ensure_future(layer.receive("resent"))
        await _started(waiting)
        # Cancelled with its pop out, and the next send at once: that send must
        # not reach Redis (and another process) before the popped message is back.
        waiting.cancel()
        await layer.send("resent", {"type": "t", "n": 1})
        assert [(await other.receive("resent"))["n"] for _ in range(2)] == [0, 1]
        assert waiting.cancelled()
        await layer.close()
        await other.close()

    async def test_a_pop_out_at_close_is_put_back_and_leaves_no_connection(
        self, make_layer: LayerMaker, prefix: str
    ) -> None:
        name = f"{prefix}-closing"
        layer = make_layer(hosts=[{"address": REDIS_URL, "client_name": name}])
        other = make_layer()
        await layer.send("closing", {"type": "t"})
        waiting = asyncio.ensure_future(layer.receive("closing"))
        await _started(waiting)
        waiting.cancel()
        await layer.close()
        assert await other.receive("closing") == {"type": "t"}

        async def released() -> bool:
            # Redis forgets a closed connection on its next turn: poll, bounded.
            client = _redis()
            clients = client.client_list()  # pyright: ignore[reportUnknownMemberType] -- **kwargs untyped
            client.close()
            return not [entry for entry in clients if entry.get("name") == name]

        await wait_until(released, "the closed layer's connections to go")
        await other.close()


class TestWhoPopsWhen:
    """Rule 3: readers pop only keys local receivers wait on, and stop when idle."""

    async def test_channels_nobody_waits_on_stay_in_redis(self, make_layer: LayerMaker) -> None:
        layer = make_layer()
        await layer.send("unwatched", {"type": "t"})
        waiting = asyncio.ensure_future(layer.receive("watched"))
        await layer.send("watched", {"type": "t"})
        await asyncio.wait_for(waiting, 10)
        client = _redis()
        assert client.zcard(layer.prefix + "unwatched") == 1
        client.close()
        await layer.close()

    async def test_the_reader_stops_when_no_receiver_waits(self, make_layer: LayerMaker) -> None:
        layer = QuickLayer(hosts=make_layer().hosts, prefix=make_layer().prefix)
        channel = await layer.new_channel()
        waiting = asyncio.ensure_future(layer.receive(channel))
        await layer.send(channel, {"type": "t"})
        await asyncio.wait_for(waiting, 10)
        assert _readers()

        async def stopped() -> bool:
            return not _readers()

        await wait_until(stopped, "the idle reader to stop")
        await layer.close()

    async def test_close_stops_the_readers(self, make_layer: LayerMaker) -> None:
        layer = make_layer()
        waiting = asyncio.ensure_future(layer.receive(await layer.new_channel()))
        await _started(waiting)
        assert _readers()
        waiting.cancel()
        await layer.close()
        assert not _readers()


class TestUnclaimedMessages:
    """Rule 4: a popped message nobody here waits for goes back to Redis, in its place."""

    async def test_normal_channel_goes_back_at_once(self, make_layer: LayerMaker) -> None:
        layer = make_layer()
        other = make_layer()
        # Two receivers, so the reader pops; both are cancelled while its
        # blocking pop still covers the key, so it takes messages nobody wants.
        waiting = [asyncio.ensure_future(layer.receive("shared")) for _ in range(2)]
        await _started(waiting[1])
        for receiving in waiting:
            receiving.cancel()
        await asyncio.wait(waiting)
        for n in range(3):
            await layer.send("shared", {"type": "t", "n": n})
        assert [(await other.receive("shared"))["n"] for _ in range(3)] == [0, 1, 2]
        await layer.close()
        await other.close()

    async def test_process_channel_goes_back_when_the_reader_stops(
        self, make_layer: LayerMaker
    ) -> None:
        layer = make_layer()
        taken, left = await layer.new_channel(), await layer.new_channel()
        for channel in (taken, left):
            await layer.group_add("room", channel)
        # One copy in the process's key names both channels: receiving one
        # buffers the other's.
        await layer.group_send("room", {"type": "g"})
        assert await layer.receive(taken) == {"type": "g"}
        client = _redis()
        key = layer.prefix + layer.non_local_name(left)
        assert client.zcard(key) == 0
        await layer.close()
        assert client.zcard(key) == 1
        client.close()
        assert await layer.receive(left) == {"type": "g"}
        await layer.close()


class TestBounded:
    """Rule 5: an inbox holds at most its capacity; expired messages are never handed out."""

    async def test_a_full_inbox_drops_its_oldest_and_logs_once(
        self, make_layer: LayerMaker, caplog: pytest.LogCaptureFixture
    ) -> None:
        layer = make_layer(capacity=3)
        sender = make_layer(capacity=100)
        wanted, buffered = await layer.new_channel(), await layer.new_channel()
        for n in range(5):
            await sender.send(buffered, {"type": "t", "n": n})
        await sender.send(wanted, {"type": "t"})
        with caplog.at_level(logging.WARNING, logger="channels.layers.redis.core"):
            # The reader pops the process key in order: five for the other
            # channel, buffered (capacity 3), then this one's.
            assert await layer.receive(wanted) == {"type": "t"}
        assert [(await layer.receive(buffered))["n"] for _ in range(3)] == [2, 3, 4]
        assert [record.getMessage() for record in caplog.records] == [
            f"dropped 1 message(s) for {buffered!r}: its local buffer is full: the oldest "
            "unreceived message went (further drops for it are counted, and logged at most "
            "every 10 s)"
        ]
        await layer.close()
        await sender.close()

    @pytest.mark.parametrize("process", [True, False], ids=["process", "normal"])
    async def test_expired_messages_are_never_handed_out(
        self, make_layer: LayerMaker, process: bool
    ) -> None:
        layer = make_layer(expiry=60)
        channel = await layer.new_channel() if process else "expiring"
        await layer.send(channel, {"type": "new"})
        # Written after the send, whose script would have trimmed it: an
        # hour-old message, first in the queue.
        payload: dict[str, Any] = {"type": "old"}
        if process:
            payload["__asgi_channel__"] = channel
        client = _redis()
        key = layer.prefix + layer.non_local_name(channel)
        client.zadd(key, {layer.serialize(payload): time.time() - 3600})
        client.close()
        assert await asyncio.wait_for(layer.receive(channel), 10) == {"type": "new"}
        await layer.close()


class TestFailure:
    """Rule 6: an unreadable message fails one receiver; the others go on."""

    @pytest.mark.parametrize("process", [True, False], ids=["process", "normal"])
    async def test_unreadable_message_fails_one_receive(
        self, make_layer: LayerMaker, process: bool
    ) -> None:
        layer = make_layer()
        channel = await layer.new_channel() if process else "unreadable"
        client = _redis()
        client.zadd(layer.prefix + layer.non_local_name(channel), {b"\xc1garbage": time.time()})
        client.close()
        await layer.send(channel, {"type": "readable"})
        with pytest.raises(MessageDecodeError, match="could not be decoded by MsgPackSerializer"):
            await asyncio.wait_for(layer.receive(channel), 10)
        assert await asyncio.wait_for(layer.receive(channel), 10) == {"type": "readable"}
        await layer.close()


def test_the_rules_are_stated_once() -> None:
    from channels.layers.redis._receiving import Receiver

    doc = Receiver.__doc__ or ""
    for rule in (
        "Order per channel",
        "Nothing lost on cancel",
        "Who pops when",
        "Where unclaimed messages go",
        "Bounded",
        "Failure",
    ):
        assert rule in doc
