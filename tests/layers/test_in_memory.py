from __future__ import annotations

import asyncio
import logging
import re
import threading
from typing import Any

import pytest

from channels.exceptions import ChannelFull
from channels.layers import InMemoryChannelLayer


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _internal(layer: InMemoryChannelLayer, name: str) -> Any:
    """Read the layer's private (name-mangled) state ``name``."""
    # Any: the state's type is the layer's business; the tests only size it.
    return vars(layer)[f"_InMemoryChannelLayer__{name}"]


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

    @pytest.mark.parametrize("capacity", [0, -1])
    async def test_capacity_zero_or_less_is_no_limit(self, clock: Clock, capacity: int) -> None:
        # asyncio.Queue's rule for maxsize, which upstream's queues follow.
        layer = InMemoryChannelLayer(capacity=capacity, clock=clock)
        for n in range(500):
            await layer.send("c", {"type": "m", "n": n})
        assert layer.channels["c"].qsize() == 500
        assert not layer.channels["c"].full()

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
        assert len(_internal(layer, "message_deadlines")) <= 65
        assert len(_internal(layer, "membership_queue")) <= 67


class TestStateIsReleased:
    """What an idle channel leaves behind is internal; no public behaviour shows it."""

    async def test_channel_received_once_leaves_nothing(self, layer: InMemoryChannelLayer) -> None:
        for n in range(100):
            await layer.send(f"once{n}", {"type": "m"})
            await layer.receive(f"once{n}")
        assert _internal(layer, "channels") == {}

    async def test_member_state_kept_until_it_leaves(self, layer: InMemoryChannelLayer) -> None:
        await layer.group_add("g", "member")
        await layer.group_send("g", {"type": "m"})
        await layer.receive("member")
        assert "member" in _internal(layer, "channels")
        await layer.group_discard("g", "member")
        assert _internal(layer, "channels") == {}

    async def test_member_state_released_when_membership_expires(
        self, layer: InMemoryChannelLayer, clock: Clock
    ) -> None:
        await layer.group_add("g", "member")
        await layer.group_send("g", {"type": "m"})
        await layer.receive("member")
        clock.now += 86400
        await layer.send("other", {"type": "m"})
        assert list(_internal(layer, "channels")) == ["other"]


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


class TestGroupsView:
    async def test_membership_tests_and_counts(self, layer: InMemoryChannelLayer) -> None:
        assert "room" not in layer.groups
        assert layer.groups == {}
        await layer.group_add("room", "a")
        await layer.group_add("room", "b")
        await layer.group_add("other", "a")
        assert "room" in layer.groups
        assert len(layer.groups["room"]) == 2
        assert set(layer.groups["room"]) == {"a", "b"}
        assert "a" in layer.groups["room"]
        assert sorted(layer.groups) == ["other", "room"]
        assert len(layer.groups.get("nobody", {})) == 0

    async def test_values_are_the_time_of_the_latest_group_add(
        self, layer: InMemoryChannelLayer, clock: Clock
    ) -> None:
        await layer.group_add("room", "a")
        clock.now += 10
        await layer.group_add("room", "b")
        assert layer.groups == {"room": {"a": 1000.0, "b": 1010.0}}
        clock.now += 5
        await layer.group_add("room", "a")
        assert layer.groups["room"]["a"] == 1015.0

    async def test_the_view_is_live_and_shows_only_live_members(
        self, layer: InMemoryChannelLayer, clock: Clock
    ) -> None:
        groups = layer.groups
        members = groups.get("room", {})
        await layer.group_add("room", "a")
        assert "room" in groups
        room = groups["room"]
        assert dict(room) == {"a": 1000.0}
        await layer.group_discard("room", "a")
        assert "room" not in groups
        assert len(room) == 0
        assert members == {}
        with pytest.raises(KeyError):
            groups["room"]
        await layer.group_add("room", "b")
        clock.now += 3600
        assert "room" not in layer.groups  # reading the view expired the membership

    async def test_it_is_read_only(self, layer: InMemoryChannelLayer) -> None:
        await layer.group_add("room", "a")
        with pytest.raises(TypeError):
            layer.groups["room"] = {}  # type: ignore[index]  # the mutation under test
        with pytest.raises(TypeError):
            layer.groups["room"]["b"] = 1.0  # type: ignore[index]  # the mutation under test
        with pytest.raises(AttributeError):
            layer.groups = {}  # type: ignore[misc]  # the mutation under test

    async def test_iterating_while_the_layer_changes(self, layer: InMemoryChannelLayer) -> None:
        for n in range(5):
            await layer.group_add(f"g{n}", "c")
        for group in layer.groups:
            for channel in layer.groups[group]:
                await layer.group_discard(group, channel)
        assert layer.groups == {}

    async def test_repr_looks_like_the_dict(self, layer: InMemoryChannelLayer) -> None:
        await layer.group_add("room", "a")
        assert repr(layer.groups) == "{'room': {'a': 1000.0}}"


class TestChannelsView:
    async def test_channels_holding_messages(self, layer: InMemoryChannelLayer) -> None:
        assert list(layer.channels) == []
        await layer.send("a", {"type": "m"})
        await layer.send("a", {"type": "m"})
        await layer.send("b", {"type": "m"})
        assert sorted(layer.channels) == ["a", "b"]
        assert len(layer.channels) == 2
        assert "a" in layer.channels
        queue = layer.channels["a"]
        assert (queue.qsize(), queue.empty(), queue.full(), queue.maxsize) == (2, False, False, 3)
        await layer.send("a", {"type": "m"})
        assert queue.full()
        assert repr(queue) == "<ChannelQueue qsize=3 maxsize=3>"
        for _ in range(3):
            await layer.receive("a")
        assert "a" not in layer.channels
        assert queue.empty()

    async def test_a_waiting_receiver_puts_its_channel_in(
        self, layer: InMemoryChannelLayer
    ) -> None:
        receiving = asyncio.create_task(layer.receive("waiting"))
        await asyncio.sleep(0)
        assert list(layer.channels) == ["waiting"]
        assert layer.channels["waiting"].empty()
        receiving.cancel()
        with pytest.raises(asyncio.CancelledError):
            await receiving
        assert list(layer.channels) == []

    async def test_an_idle_group_member_is_not_in(self, layer: InMemoryChannelLayer) -> None:
        await layer.group_add("g", "member")
        await layer.group_send("g", {"type": "m"})
        assert list(layer.channels) == ["member"]
        await layer.receive("member")
        assert "member" not in layer.channels
        assert len(layer.channels) == 0
        with pytest.raises(KeyError):
            layer.channels["member"]

    async def test_expired_messages_leave_when_read(
        self, layer: InMemoryChannelLayer, clock: Clock
    ) -> None:
        await layer.send("c", {"type": "m"})
        clock.now += 60
        assert layer.channels == {}

    async def test_it_is_read_only(self, layer: InMemoryChannelLayer) -> None:
        await layer.send("c", {"type": "m"})
        with pytest.raises(TypeError):
            layer.channels["c"] = layer.channels["c"]  # type: ignore[index]  # the mutation under test
        with pytest.raises(AttributeError):
            layer.channels = {}  # type: ignore[misc]  # the mutation under test


class TestUpstreamHooks:
    async def test_clean_expired_drops_what_has_expired(
        self, layer: InMemoryChannelLayer, clock: Clock
    ) -> None:
        await layer.group_add("g", "dead")
        await layer.group_add("other", "lapsed")
        await layer.send("dead", {"type": "unread"})
        clock.now += 60
        layer._clean_expired()  # pyright: ignore[reportPrivateUsage]
        # Read the private state: the views expire on their own.
        assert _internal(layer, "groups") == {"other": {"lapsed": (1000.0, "other", "lapsed")}}
        assert _internal(layer, "channels") == {}
        clock.now += 3600
        layer._clean_expired()  # pyright: ignore[reportPrivateUsage]
        assert _internal(layer, "groups") == {}

    async def test_remove_from_groups(self, layer: InMemoryChannelLayer) -> None:
        for group in ("a", "b", "c"):
            await layer.group_add(group, "leaving")
        await layer.group_add("a", "staying")
        layer._remove_from_groups("leaving")  # pyright: ignore[reportPrivateUsage]
        layer._remove_from_groups("never-joined")  # pyright: ignore[reportPrivateUsage]
        assert {group: set(members) for group, members in layer.groups.items()} == {
            "a": {"staying"}
        }
        await layer.group_add("b", "leaving")
        assert set(layer.groups["b"]) == {"leaving"}

    async def test_receive_and_group_send_call_clean_expired(
        self, layer: InMemoryChannelLayer, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        calls: list[str] = []
        original = InMemoryChannelLayer._clean_expired  # pyright: ignore[reportPrivateUsage]

        def counting(self: InMemoryChannelLayer) -> None:
            calls.append("clean")
            original(self)

        monkeypatch.setattr(InMemoryChannelLayer, "_clean_expired", counting)
        await layer.group_add("g", "c")
        await layer.group_send("g", {"type": "m"})
        await layer.receive("c")
        assert calls == ["clean", "clean"]

    async def test_expiry_calls_remove_from_groups(
        self, layer: InMemoryChannelLayer, clock: Clock
    ) -> None:
        removed: list[str] = []

        class Recording(InMemoryChannelLayer):
            def _remove_from_groups(self, channel: str) -> None:
                removed.append(channel)
                super()._remove_from_groups(channel)

        recording = Recording(expiry=60, clock=clock)
        await recording.group_add("g", "dead")
        await recording.send("dead", {"type": "unread"})
        clock.now += 61
        await recording.group_send("g", {"type": "m"})
        assert removed == ["dead"]
        assert "g" not in recording.groups

    async def test_a_throttled_clean_expired_delays_expiry_on_receive(self, clock: Clock) -> None:
        class Throttled(InMemoryChannelLayer):
            def _clean_expired(self) -> None:
                """A subclass that cleans only when asked to."""

        layer = Throttled(expiry=60, clock=clock)
        await layer.send("c", {"type": "m"})
        clock.now += 61
        assert await layer.receive("c") == {"type": "m"}


class TestSubclassPrivateNames:
    """A subclass's own ``_name`` attributes and methods cannot break the layer."""

    async def test_common_private_names(self, clock: Clock) -> None:
        class Mine(InMemoryChannelLayer):
            def __init__(self, **kwargs: Any) -> None:
                super().__init__(**kwargs)
                self._groups: dict[str, int] = {"mine": 1}
                self._channels = ["mine"]
                self._clock = "mine"
                self._memberships = None
                self._sequence = "mine"

            def own_state(self) -> tuple[dict[str, int], list[str]]:
                return self._groups, self._channels

            def _expire(self, now: float) -> None:
                raise AssertionError("the layer called the subclass's _expire")

            def _reset(self) -> None:
                raise AssertionError("the layer called the subclass's _reset")

            def _put(self, *args: object) -> None:
                raise AssertionError("the layer called the subclass's _put")

            def _leave(self, *args: object) -> None:
                raise AssertionError("the layer called the subclass's _leave")

            def _wake(self, *args: object) -> None:
                raise AssertionError("the layer called the subclass's _wake")

        layer = Mine(expiry=60, clock=clock)
        await layer.group_add("g", "a")
        waiting = asyncio.create_task(layer.receive("a"))
        await asyncio.sleep(0)
        await layer.group_send("g", {"type": "m"})
        assert await waiting == {"type": "m"}
        await layer.send("b", {"type": "direct"})
        clock.now += 61
        await layer.group_discard("g", "a")
        await layer.flush()
        assert layer.own_state() == ({"mine": 1}, ["mine"])
        assert layer.groups == {}


class TestGroupExpirySetting:
    async def test_changing_group_expiry_applies_to_existing_memberships(
        self, layer: InMemoryChannelLayer, clock: Clock
    ) -> None:
        await layer.group_add("g", "c")
        clock.now += 100
        layer.group_expiry = 50
        await layer.group_send("g", {"type": "nobody"})
        assert "g" not in layer.groups
