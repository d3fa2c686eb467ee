from __future__ import annotations

import asyncio
import logging
import re
import threading

import pytest

from channels.exceptions import ChannelFull
from channels.layers import InMemoryChannelLayer


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def layer(clock: Clock) -> InMemoryChannelLayer:
    return InMemoryChannelLayer(expiry=60, group_expiry=3600, capacity=3, clock=clock)


class TestSendReceive:
    async def test_round_trip_in_order(self, layer: InMemoryChannelLayer) -> None:
        for n in range(3):
            await layer.send("chat", {"type": "m", "n": n})
        assert [(await layer.receive("chat"))["n"] for _ in range(3)] == [0, 1, 2]

    async def test_channels_are_independent(self, layer: InMemoryChannelLayer) -> None:
        await layer.send("a", {"type": "a"})
        await layer.send("b", {"type": "b"})
        assert await layer.receive("b") == {"type": "b"}
        assert await layer.receive("a") == {"type": "a"}

    async def test_receive_waits_for_send(self, layer: InMemoryChannelLayer) -> None:
        receiving = asyncio.create_task(layer.receive("later"))
        await asyncio.sleep(0)
        assert not receiving.done()
        await layer.send("later", {"type": "x"})
        assert await receiving == {"type": "x"}

    async def test_new_channel_names(self, layer: InMemoryChannelLayer) -> None:
        names = {await layer.new_channel() for _ in range(200)}
        assert len(names) == 200
        for name in names:
            assert re.fullmatch(r"specific\.\.inmemory![a-zA-Z]{12}", name)
        custom = await layer.new_channel("worker")
        assert custom.startswith("worker.inmemory!")
        await layer.send(custom, {"type": "x"})
        assert await layer.receive(custom) == {"type": "x"}

    async def test_extensions(self, layer: InMemoryChannelLayer) -> None:
        assert set(layer.extensions) == {"groups", "flush"}


class TestCopies:
    async def test_sender_mutation_after_send_is_not_seen(
        self, layer: InMemoryChannelLayer
    ) -> None:
        message = {"type": "m", "items": [1, {"deep": True}]}
        await layer.send("c", message)
        message["items"][1]["deep"] = False  # type: ignore[index]  # mutating the sent dict
        received = await layer.receive("c")
        assert received == {"type": "m", "items": [1, {"deep": True}]}

    async def test_group_members_get_separate_copies(self, layer: InMemoryChannelLayer) -> None:
        await layer.group_add("g", "one")
        await layer.group_add("g", "two")
        await layer.group_send("g", {"type": "m", "items": [1]})
        first = await layer.receive("one")
        first["items"].append(2)
        assert await layer.receive("two") == {"type": "m", "items": [1]}

    async def test_other_value_types_are_deep_copied(self, layer: InMemoryChannelLayer) -> None:
        inner = {1, 2}
        await layer.send("c", {"type": "m", "set": inner, "tuple": ([1],)})
        inner.add(3)
        received = await layer.receive("c")
        assert received["set"] == {1, 2}
        assert received["tuple"] == ([1],)


class TestBadInput:
    @pytest.mark.parametrize(
        "message",
        [
            pytest.param(["type", "x"], id="list"),
            pytest.param("text", id="str"),
            pytest.param(None, id="none"),
        ],
    )
    async def test_send_rejects_non_mapping(
        self, layer: InMemoryChannelLayer, message: object
    ) -> None:
        with pytest.raises(TypeError, match=r"message must be a mapping .*; got "):
            await layer.send("c", message)  # type: ignore[arg-type]  # the bad input under test
        with pytest.raises(TypeError, match=r"message must be a mapping"):
            await layer.group_send("g", message)  # type: ignore[arg-type]  # the bad input under test

    async def test_invalid_names(self, layer: InMemoryChannelLayer) -> None:
        with pytest.raises(TypeError, match="channel name must be"):
            await layer.send("bad name", {"type": "x"})
        with pytest.raises(TypeError, match="channel name must be"):
            await layer.receive("bad name")
        with pytest.raises(TypeError, match="group name must be"):
            await layer.group_add("bad!group", "c")
        with pytest.raises(TypeError, match="channel name must be"):
            await layer.group_add("g", "bad name")
        with pytest.raises(TypeError, match="group name must be"):
            await layer.group_discard("bad group", "c")
        with pytest.raises(TypeError, match="group name must be"):
            await layer.group_send("bad group", {"type": "x"})


class TestCapacity:
    async def test_full_channel_raises(self, layer: InMemoryChannelLayer) -> None:
        for n in range(3):
            await layer.send("c", {"type": "m", "n": n})
        with pytest.raises(ChannelFull, match="channel 'c' is full: it holds 3 messages") as info:
            await layer.send("c", {"type": "m", "n": 3})
        assert info.value.channel == "c"
        assert info.value.capacity == 3
        assert [(await layer.receive("c"))["n"] for _ in range(3)] == [0, 1, 2]

    async def test_capacity_is_fixed_when_the_channel_is_first_used(
        self, layer: InMemoryChannelLayer
    ) -> None:
        await layer.send("c", {"type": "m"})
        layer.capacity = 10
        await layer.send("c", {"type": "m"})
        await layer.send("c", {"type": "m"})
        with pytest.raises(ChannelFull):
            await layer.send("c", {"type": "m"})
        for _ in range(5):
            await layer.send("fresh", {"type": "m"})

    async def test_channel_capacity_patterns(self, clock: Clock) -> None:
        layer = InMemoryChannelLayer(capacity=5, channel_capacity={"tiny.*": 1}, clock=clock)
        await layer.send("tiny.a", {"type": "m"})
        with pytest.raises(ChannelFull):
            await layer.send("tiny.a", {"type": "m"})

    async def test_zero_capacity(self, clock: Clock) -> None:
        layer = InMemoryChannelLayer(capacity=0, clock=clock)
        with pytest.raises(ChannelFull, match="holds 0 messages"):
            await layer.send("c", {"type": "m"})

    async def test_group_send_skips_full_member_and_logs(
        self, layer: InMemoryChannelLayer, caplog: pytest.LogCaptureFixture
    ) -> None:
        for name in ("full", "free"):
            await layer.group_add("g", name)
        for _ in range(3):
            await layer.send("full", {"type": "filler"})
        with caplog.at_level(logging.WARNING, logger="channels.layers"):
            await layer.group_send("g", {"type": "news"})
        assert await layer.receive("free") == {"type": "news"}
        assert [r.getMessage() for r in caplog.records] == [
            "group_send to 'g' skipped channel 'full': it is full"
        ]
        assert [(await layer.receive("full"))["type"] for _ in range(3)] == ["filler"] * 3


class TestExpiry:
    async def test_message_expires_after_expiry(
        self, layer: InMemoryChannelLayer, clock: Clock
    ) -> None:
        await layer.send("c", {"type": "old"})
        clock.now += 30
        await layer.send("c", {"type": "new"})
        clock.now += 30
        assert await layer.receive("c") == {"type": "new"}

    async def test_message_just_before_expiry_is_delivered(
        self, layer: InMemoryChannelLayer, clock: Clock
    ) -> None:
        await layer.send("c", {"type": "m"})
        clock.now += 59.9
        assert await layer.receive("c") == {"type": "m"}

    async def test_expired_message_removes_channel_from_its_groups(
        self, layer: InMemoryChannelLayer, clock: Clock
    ) -> None:
        await layer.group_add("g1", "dead")
        await layer.group_add("g2", "dead")
        await layer.group_add("g1", "alive")
        await layer.send("dead", {"type": "unread"})
        clock.now += 61
        await layer.group_send("g1", {"type": "news"})
        await layer.group_send("g2", {"type": "news"})
        assert await layer.receive("alive") == {"type": "news"}
        await layer.send("dead", {"type": "probe"})
        assert await layer.receive("dead") == {"type": "probe"}

    async def test_received_messages_do_not_expire_anything(
        self, layer: InMemoryChannelLayer, clock: Clock
    ) -> None:
        await layer.group_add("g", "c")
        await layer.send("c", {"type": "m"})
        await layer.receive("c")
        clock.now += 120
        await layer.group_send("g", {"type": "still-member"})
        assert await layer.receive("c") == {"type": "still-member"}

    async def test_membership_expires(self, layer: InMemoryChannelLayer, clock: Clock) -> None:
        await layer.group_add("g", "c")
        clock.now += 3600
        await layer.group_send("g", {"type": "nobody"})
        await layer.send("c", {"type": "direct"})
        assert await layer.receive("c") == {"type": "direct"}

    async def test_group_add_renews_membership(
        self, layer: InMemoryChannelLayer, clock: Clock
    ) -> None:
        await layer.group_add("g", "c")
        clock.now += 3000
        await layer.group_add("g", "c")
        clock.now += 3000
        await layer.group_send("g", {"type": "renewed"})
        assert await layer.receive("c") == {"type": "renewed"}

    async def test_stale_entries_are_compacted(
        self, layer: InMemoryChannelLayer, clock: Clock
    ) -> None:
        # The clock stands still, so every entry has the same deadline:
        # compaction must still tell live entries from stale ones.
        for _ in range(5000):
            await layer.send("c", {"type": "m"})
            await layer.receive("c")
            await layer.group_add("g", "c")
        # The bound is internal; no public behaviour shows it.
        assert len(layer._message_deadlines) <= 65  # pyright: ignore[reportPrivateUsage]
        assert len(layer._membership_deadlines) <= 67  # pyright: ignore[reportPrivateUsage]


class TestStateIsReleased:
    """What an idle channel leaves behind is internal; no public behaviour shows it."""

    async def test_channel_received_once_leaves_nothing(self, layer: InMemoryChannelLayer) -> None:
        for n in range(100):
            await layer.send(f"once{n}", {"type": "m"})
            await layer.receive(f"once{n}")
        assert layer._channels == {}  # pyright: ignore[reportPrivateUsage]

    async def test_member_state_kept_until_it_leaves(self, layer: InMemoryChannelLayer) -> None:
        await layer.group_add("g", "member")
        await layer.group_send("g", {"type": "m"})
        await layer.receive("member")
        assert "member" in layer._channels  # pyright: ignore[reportPrivateUsage]
        await layer.group_discard("g", "member")
        assert layer._channels == {}  # pyright: ignore[reportPrivateUsage]

    async def test_member_state_released_when_membership_expires(
        self, layer: InMemoryChannelLayer, clock: Clock
    ) -> None:
        await layer.group_add("g", "member")
        await layer.group_send("g", {"type": "m"})
        await layer.receive("member")
        clock.now += 86400
        await layer.send("other", {"type": "m"})
        assert list(layer._channels) == ["other"]  # pyright: ignore[reportPrivateUsage]


class TestGroups:
    async def test_group_send_reaches_every_member(self, layer: InMemoryChannelLayer) -> None:
        members = [f"member{n}" for n in range(10)]
        for name in members:
            await layer.group_add("room", name)
        await layer.group_send("room", {"type": "hello"})
        for name in members:
            assert await layer.receive(name) == {"type": "hello"}

    async def test_discard_stops_delivery(self, layer: InMemoryChannelLayer) -> None:
        await layer.group_add("room", "a")
        await layer.group_add("room", "b")
        await layer.group_discard("room", "a")
        await layer.group_discard("room", "a")
        await layer.group_discard("unknown", "a")
        await layer.group_send("room", {"type": "m"})
        assert await layer.receive("b") == {"type": "m"}
        await layer.send("a", {"type": "direct"})
        assert await layer.receive("a") == {"type": "direct"}

    async def test_group_send_to_empty_group(self, layer: InMemoryChannelLayer) -> None:
        await layer.group_send("nobody", {"type": "m"})
        await layer.group_add("g", "c")
        await layer.group_discard("g", "c")
        await layer.group_send("g", {"type": "m"})
        await layer.send("c", {"type": "direct"})
        assert await layer.receive("c") == {"type": "direct"}

    async def test_group_send_wakes_waiting_receivers(self, layer: InMemoryChannelLayer) -> None:
        await layer.group_add("g", "a")
        await layer.group_add("g", "b")
        waiting = [asyncio.create_task(layer.receive(name)) for name in ("a", "b")]
        await asyncio.sleep(0)
        await layer.group_send("g", {"type": "m"})
        assert await asyncio.gather(*waiting) == [{"type": "m"}, {"type": "m"}]


class TestFlushAndClose:
    async def test_flush_drops_messages_and_groups(self, layer: InMemoryChannelLayer) -> None:
        await layer.send("c", {"type": "old"})
        await layer.group_add("g", "c")
        await layer.flush()
        await layer.group_send("g", {"type": "old-group"})
        await layer.send("c", {"type": "new"})
        assert await layer.receive("c") == {"type": "new"}

    async def test_waiting_receiver_survives_flush(self, layer: InMemoryChannelLayer) -> None:
        receiving = asyncio.create_task(layer.receive("c"))
        await asyncio.sleep(0)
        await layer.flush()
        await layer.send("c", {"type": "after"})
        assert await receiving == {"type": "after"}

    async def test_close(self, layer: InMemoryChannelLayer) -> None:
        await layer.send("c", {"type": "m"})
        await layer.close()
        assert await layer.receive("c") == {"type": "m"}


class TestConcurrency:
    async def test_concurrent_receivers_get_distinct_messages(
        self, layer: InMemoryChannelLayer
    ) -> None:
        big = InMemoryChannelLayer(capacity=1000)
        receivers = [asyncio.create_task(big.receive("shared")) for _ in range(50)]
        await asyncio.sleep(0)
        for n in range(50):
            await big.send("shared", {"type": "m", "n": n})
        results = await asyncio.gather(*receivers)
        assert sorted(r["n"] for r in results) == list(range(50))

    async def test_cancelled_waiting_receive_loses_nothing(
        self, layer: InMemoryChannelLayer
    ) -> None:
        receiving = asyncio.create_task(layer.receive("c"))
        await asyncio.sleep(0)
        receiving.cancel()
        with pytest.raises(asyncio.CancelledError):
            await receiving
        await layer.send("c", {"type": "m", "n": 1})
        assert await layer.receive("c") == {"type": "m", "n": 1}

    async def test_receiver_cancelled_after_wake_passes_message_on(
        self, layer: InMemoryChannelLayer
    ) -> None:
        first = asyncio.create_task(layer.receive("c"))
        second = asyncio.create_task(layer.receive("c"))
        await asyncio.sleep(0)
        await layer.send("c", {"type": "m", "n": 1})
        # `first` has been woken but has not run yet: cancel it now.
        first.cancel()
        assert await second == {"type": "m", "n": 1}
        with pytest.raises(asyncio.CancelledError):
            await first

    async def test_order_holds_across_cancellations(self, layer: InMemoryChannelLayer) -> None:
        big = InMemoryChannelLayer(capacity=100)
        received: list[int] = []
        cancelled = 0
        for n in range(20):
            receiving = asyncio.create_task(big.receive("c"))
            await asyncio.sleep(0)
            await big.send("c", {"type": "m", "n": n})
            if n % 3 == 0:
                receiving.cancel()
            try:
                received.append((await receiving)["n"])
            except asyncio.CancelledError:
                cancelled += 1
        assert cancelled > 0
        while len(received) < 20:
            received.append((await big.receive("c"))["n"])
        assert received == list(range(20))

    async def test_receiver_on_another_event_loop_is_woken(
        self, layer: InMemoryChannelLayer
    ) -> None:
        shared = InMemoryChannelLayer()
        waiting = threading.Event()
        result: list[dict[str, object]] = []

        async def receive_in_thread() -> None:
            task = asyncio.create_task(shared.receive("c"))
            await asyncio.sleep(0)
            waiting.set()
            result.append(await asyncio.wait_for(task, timeout=10))

        thread = threading.Thread(target=asyncio.run, args=(receive_in_thread(),))
        thread.start()
        assert await asyncio.to_thread(waiting.wait, 10)
        await shared.send("c", {"type": "cross-loop"})
        await asyncio.to_thread(thread.join, 10)
        assert result == [{"type": "cross-loop"}]
