from __future__ import annotations

import asyncio
import copy
import re
import time
import uuid
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Mapping, Sequence
from typing import cast

import pytest
from hypothesis import Phase, settings

from channels.exceptions import ChannelFull
from channels.layers import BaseChannelLayer, InMemoryChannelLayer
from channels.layers.protocols import ChannelLayer
from channels.testing.layers import (
    Capability,
    LayerOptions,
    ManualClock,
    channel_layer_state_machine,
    check_channel_layer,
)
from channels.types import ChannelMessage, ReceivedMessage
from tests._stateful import run_state_machine_as_test, state_machine_test_case

EVERYTHING = (
    Capability.QUEUES
    | Capability.GROUPS
    | Capability.FLUSH
    | Capability.EXPIRY
    | Capability.GROUP_EXPIRY
    | Capability.CAPACITY
    | Capability.CLOCK
    | Capability.DEEP_COPY
)
# What an at-most-once layer such as Redis pub/sub can honestly claim.
AT_MOST_ONCE = Capability.GROUPS | Capability.FLUSH | Capability.DEEP_COPY
# Broken layers make the kit wait for messages that never come: keep it short.
QUICK = 0.2

CORE_RULES = (
    "the layer has the methods and extensions it claims",
    "a sent message is received unchanged",
    "receive returns messages in send order",
    "channels are independent",
    "new_channel returns unique, valid names that receive",
    "invalid names and non-mapping messages raise TypeError",
    "concurrent receivers on one channel get distinct messages",
    "a cancelled receive stops waiting",
)
QUEUE_RULES = (
    "a message waits on a channel nobody has received from",
    "a cancelled receive loses no message",
)
GROUP_RULES = (
    "group_send reaches every member once",
    "group_discard stops delivery",
    "group_discard of a non-member does nothing",
    "group_send to an empty group does nothing",
)
EVERY_RULE = (
    *CORE_RULES,
    *QUEUE_RULES,
    *GROUP_RULES,
    "flush drops every message and group",
    "send raises ChannelFull at capacity",
    "group_send skips a full member and reaches the others",
    "messages expire expiry seconds after they are sent",
    "a channel holding an expired message leaves all its groups",
    "memberships expire group_expiry seconds after group_add",
    "receivers never share message objects",
)


def _require_mapping(message: object) -> None:
    if not isinstance(message, Mapping):
        raise TypeError(f"message must be a mapping; got {message!r}")


class ReferenceLayer(BaseChannelLayer):
    """A small layer that keeps every rule; the broken layers below each break one."""

    extensions: Sequence[str] = ("groups", "flush")

    def __init__(self, options: LayerOptions) -> None:
        super().__init__(expiry=options.expiry, capacity=options.capacity)
        self.group_expiry = options.group_expiry
        self.clock: Callable[[], float] = options.clock or time.monotonic
        # channel -> (expires at, message), oldest first
        self.queues: defaultdict[str, deque[tuple[float, ReceivedMessage]]] = defaultdict(deque)
        # group -> channel -> time of its last group_add
        self.groups: defaultdict[str, dict[str, float]] = defaultdict(dict)
        self.arrived: defaultdict[str, asyncio.Event] = defaultdict(asyncio.Event)

    def store(self, message: ChannelMessage) -> ReceivedMessage:
        return copy.deepcopy(dict(message))

    def take(self, queue: deque[tuple[float, ReceivedMessage]]) -> ReceivedMessage:
        return queue.popleft()[1]

    def expire(self, channel: str) -> None:
        queue = self.queues[channel]
        if queue and queue[0][0] <= self.clock():
            while queue and queue[0][0] <= self.clock():
                queue.popleft()
            for members in self.groups.values():
                members.pop(channel, None)

    def put(self, channel: str, message: ChannelMessage) -> bool:
        queue = self.queues[channel]
        if len(queue) >= self.capacity:
            return False
        queue.append((self.clock() + self.expiry, self.store(message)))
        self.arrived[channel].set()
        return True

    async def send(self, channel: str, message: ChannelMessage) -> None:
        _require_mapping(message)
        self.require_valid_channel_name(channel)
        self.expire(channel)
        if not self.put(channel, message):
            raise ChannelFull(channel, self.capacity)

    async def receive(self, channel: str) -> ReceivedMessage:
        self.require_valid_channel_name(channel)
        while True:
            self.expire(channel)
            queue = self.queues[channel]
            if queue:
                return self.take(queue)
            arrived = self.arrived[channel]
            arrived.clear()
            await arrived.wait()

    async def new_channel(self, prefix: str = "specific.") -> str:
        return f"{prefix}ref!{uuid.uuid4().hex}"

    async def group_add(self, group: str, channel: str) -> None:
        self.require_valid_group_name(group)
        self.require_valid_channel_name(channel)
        self.groups[group][channel] = self.clock()

    async def group_discard(self, group: str, channel: str) -> None:
        self.require_valid_group_name(group)
        self.require_valid_channel_name(channel)
        self.groups[group].pop(channel, None)

    async def group_send(self, group: str, message: ChannelMessage) -> None:
        _require_mapping(message)
        self.require_valid_group_name(group)
        self.deliver(group, message)

    def deliver(self, group: str, message: ChannelMessage) -> None:
        members = self.groups[group]
        for channel in list(members):
            self.expire(channel)
            added = members.get(channel)
            if added is not None and self.clock() - added >= self.group_expiry:
                del members[channel]
            elif added is not None:
                self.put(channel, message)

    async def flush(self) -> None:
        self.queues.clear()
        self.groups.clear()


class ReorderingLayer(ReferenceLayer):
    def take(self, queue: deque[tuple[float, ReceivedMessage]]) -> ReceivedMessage:
        return queue.pop()[1]


class CancelDroppingLayer(ReferenceLayer):
    """Hands a message straight to a waiting receiver, lost if that receiver is cancelled."""

    def __init__(self, options: LayerOptions) -> None:
        super().__init__(options)
        self.waiters: defaultdict[str, deque[asyncio.Future[ReceivedMessage]]] = defaultdict(deque)

    def put(self, channel: str, message: ChannelMessage) -> bool:
        waiters = self.waiters[channel]
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(self.store(message))
                return True
        return super().put(channel, message)

    async def receive(self, channel: str) -> ReceivedMessage:
        self.require_valid_channel_name(channel)
        queue = self.queues[channel]
        if queue:
            return self.take(queue)
        waiter: asyncio.Future[ReceivedMessage] = asyncio.get_running_loop().create_future()
        self.waiters[channel].append(waiter)
        return await waiter


class SharingLayer(ReferenceLayer):
    def store(self, message: ChannelMessage) -> ReceivedMessage:
        return dict(message)  # a shallow copy: nested values are shared


class UnboundedLayer(ReferenceLayer):
    def put(self, channel: str, message: ChannelMessage) -> bool:
        self.queues[channel].append((self.clock() + self.expiry, self.store(message)))
        self.arrived[channel].set()
        return True


class StrictGroupLayer(ReferenceLayer):
    def deliver(self, group: str, message: ChannelMessage) -> None:
        for channel in self.groups[group]:
            if not self.put(channel, message):
                raise ChannelFull(channel, self.capacity)


class ImmortalMessagesLayer(ReferenceLayer):
    def expire(self, channel: str) -> None:
        pass


class StayingMembersLayer(ReferenceLayer):
    """Drops expired messages, but their channel stays in its groups."""

    def expire(self, channel: str) -> None:
        queue = self.queues[channel]
        while queue and queue[0][0] <= self.clock():
            queue.popleft()


class EternalGroupsLayer(ReferenceLayer):
    def deliver(self, group: str, message: ChannelMessage) -> None:
        for channel in list(self.groups[group]):
            self.expire(channel)
            if channel in self.groups[group]:
                self.put(channel, message)


class DuplicatingLayer(ReferenceLayer):
    def deliver(self, group: str, message: ChannelMessage) -> None:
        for channel in self.groups[group]:
            self.put(channel, message)
            self.put(channel, message)


class LaxNamesLayer(ReferenceLayer):
    async def send(self, channel: str, message: ChannelMessage) -> None:
        self.put(channel, message)


class MutatingLayer(ReferenceLayer):
    async def send(self, channel: str, message: ChannelMessage) -> None:
        await super().send(channel, message)
        if isinstance(message, dict):
            message["__asgi_channel__"] = channel


class NoPrefixLayer(ReferenceLayer):
    async def new_channel(self, prefix: str = "specific.") -> str:
        return f"ref!{uuid.uuid4().hex}"


class CoreOnlyLayer:
    """A layer built from scratch, without BaseChannelLayer: the core and nothing else."""

    extensions: Sequence[str] = ()

    def __init__(self) -> None:
        self.inner = ReferenceLayer(LayerOptions())

    async def send(self, channel: str, message: ChannelMessage) -> None:
        await self.inner.send(channel, message)

    async def receive(self, channel: str) -> ReceivedMessage:
        return await self.inner.receive(channel)

    async def new_channel(self, prefix: str = "specific.") -> str:
        return await self.inner.new_channel(prefix)


class NoFlushExtensionLayer(ReferenceLayer):
    extensions: Sequence[str] = ("groups",)


class AtMostOnceLayer(ReferenceLayer):
    """Pub/sub in miniature: keeps messages only for channels someone listens on.

    new_channel and receive start listening; the last cancelled receive on a
    channel stops listening and drops what it held.
    """

    def __init__(self, options: LayerOptions) -> None:
        super().__init__(options)
        self.listening: set[str] = set()
        self.receivers: Counter[str] = Counter()

    def put(self, channel: str, message: ChannelMessage) -> bool:
        return channel not in self.listening or super().put(channel, message)

    async def new_channel(self, prefix: str = "specific.") -> str:
        channel = await super().new_channel(prefix)
        self.listening.add(channel)
        return channel

    async def receive(self, channel: str) -> ReceivedMessage:
        self.require_valid_channel_name(channel)
        self.listening.add(channel)
        self.receivers[channel] += 1
        try:
            return await super().receive(channel)
        except asyncio.CancelledError:
            if self.receivers[channel] == 1:
                self.listening.discard(channel)
                self.queues.pop(channel, None)
            raise
        finally:
            self.receivers[channel] -= 1


class CancelIgnoringLayer(ReferenceLayer):
    """Answers a cancelled receive with a message instead of being cancelled."""

    async def receive(self, channel: str) -> ReceivedMessage:
        try:
            return await super().receive(channel)
        except asyncio.CancelledError:
            return {"type": "kit.ignored"}


def factory(layer_class: type[ReferenceLayer]) -> Callable[[LayerOptions], ReferenceLayer]:
    def make_layer(options: LayerOptions) -> ReferenceLayer:
        return layer_class(options)

    return make_layer


def without_random_names(text: str) -> str:
    """Turn the reference layer's ``kit.a.ref!<hex>`` channels back into ``kit.a``."""
    return re.sub(r"\.ref![0-9a-f]{32}", "", text)


def make_in_memory(options: LayerOptions) -> InMemoryChannelLayer:
    return InMemoryChannelLayer(
        expiry=options.expiry,
        group_expiry=options.group_expiry,
        capacity=options.capacity,
        clock=options.clock or time.monotonic,
    )


class TestConformingLayers:
    async def test_in_memory_layer_keeps_every_rule(self) -> None:
        checked = await check_channel_layer(make_in_memory, EVERYTHING)
        assert checked == EVERY_RULE

    async def test_reference_layer_keeps_every_rule(self) -> None:
        checked = await check_channel_layer(factory(ReferenceLayer), EVERYTHING)
        assert checked == EVERY_RULE

    async def test_an_async_factory_is_awaited(self) -> None:
        async def make_layer(options: LayerOptions) -> InMemoryChannelLayer:
            await asyncio.sleep(0)
            return make_in_memory(options)

        assert await check_channel_layer(make_layer, Capability.GROUPS)

    async def test_a_layer_without_the_base_class_keeps_the_core_rules(self) -> None:
        def make_layer(options: LayerOptions) -> CoreOnlyLayer:
            return CoreOnlyLayer()

        assert await check_channel_layer(make_layer, Capability.QUEUES) == (
            *CORE_RULES,
            *QUEUE_RULES,
        )

    async def test_an_at_most_once_layer_keeps_every_rule_it_claims(self) -> None:
        checked = await check_channel_layer(factory(AtMostOnceLayer), AT_MOST_ONCE)
        assert checked == (
            *CORE_RULES,
            *GROUP_RULES,
            "flush drops every message and group",
            "receivers never share message objects",
        )

    async def test_the_layer_is_closed_after_each_rule(self) -> None:
        opened: list[InMemoryChannelLayer] = []
        closed: list[InMemoryChannelLayer] = []

        class ClosingLayer(InMemoryChannelLayer):
            async def close(self) -> None:
                closed.append(self)

        def make_layer(options: LayerOptions) -> ClosingLayer:
            opened.append(layer := ClosingLayer())
            return layer

        checked = await check_channel_layer(make_layer)
        assert len(checked) == len(opened) == len(set(map(id, opened)))
        assert closed == opened


class TestCapabilitiesSelectRules:
    async def test_core_alone(self) -> None:
        assert await check_channel_layer(make_in_memory) == CORE_RULES

    async def test_queues_add_their_rules(self) -> None:
        checked = await check_channel_layer(make_in_memory, Capability.QUEUES)
        assert checked == CORE_RULES + QUEUE_RULES

    async def test_groups_add_their_rules(self) -> None:
        checked = await check_channel_layer(make_in_memory, Capability.GROUPS)
        assert checked == CORE_RULES + GROUP_RULES

    async def test_expiry_rules_need_the_clock(self) -> None:
        claims = Capability.QUEUES | Capability.GROUPS | Capability.EXPIRY | Capability.GROUP_EXPIRY
        without_clock = await check_channel_layer(make_in_memory, claims)
        with_clock = await check_channel_layer(make_in_memory, claims | Capability.CLOCK)
        assert without_clock == CORE_RULES + QUEUE_RULES + GROUP_RULES
        assert set(with_clock) - set(without_clock) == {
            "messages expire expiry seconds after they are sent",
            "a channel holding an expired message leaves all its groups",
            "memberships expire group_expiry seconds after group_add",
        }

    @pytest.mark.parametrize(
        "claims",
        [
            pytest.param(Capability.CAPACITY, id="capacity"),
            pytest.param(Capability.EXPIRY | Capability.CLOCK, id="expiry"),
        ],
    )
    async def test_counting_held_messages_needs_queues(self, claims: Capability) -> None:
        with pytest.raises(
            ValueError,
            match=r"^capabilities CAPACITY and EXPIRY need QUEUES, since they count the "
            r"messages a channel holds; got <Capability\.",
        ):
            await check_channel_layer(make_in_memory, claims)
        with pytest.raises(ValueError, match=r"^capabilities CAPACITY and EXPIRY need QUEUES"):
            channel_layer_state_machine(make_in_memory, claims)

    async def test_the_factory_gets_a_clock_only_with_clock(self) -> None:
        seen: list[LayerOptions] = []

        def make_layer(options: LayerOptions) -> InMemoryChannelLayer:
            seen.append(options)
            return make_in_memory(options)

        await check_channel_layer(make_layer)
        await check_channel_layer(make_layer, Capability.CLOCK)
        without, with_clock = seen[0], seen[-1]
        assert without.clock is None
        assert isinstance(with_clock.clock, ManualClock)


class TestBrokenLayersFail:
    @pytest.mark.parametrize(
        ("layer_class", "capabilities", "message"),
        [
            pytest.param(
                ReorderingLayer,
                Capability.CORE,
                "rule 'receive returns messages in send order' broke: "
                "sent [1, 2, 3, 4, 5] to 'kit.fifo', received [5, 4, 3, 2, 1]",
                id="reorders",
            ),
            pytest.param(
                CancelDroppingLayer,
                Capability.QUEUES,
                "rule 'a cancelled receive loses no message' broke: receive('kit.cancel') "
                "waited 0.2s for {'type': 'kit.message', 'n': 2} (sent as a waiting receive "
                "on it was cancelled) and got nothing",
                id="drops-on-cancel",
            ),
            pytest.param(
                SharingLayer,
                Capability.DEEP_COPY,
                "rule 'receivers never share message objects' broke: the sender changed its "
                "message after send and 'kit.a' received {'type': 'kit.message', "
                "'items': [1, 2, 'changed'], 'nested': {'k': 'changed'}}",
                id="shares-messages",
            ),
            pytest.param(
                UnboundedLayer,
                Capability.CAPACITY | Capability.QUEUES,
                "rule 'send raises ChannelFull at capacity' broke: sent 4 messages to "
                "'kit.full' with capacity 3 and none raised ChannelFull",
                id="ignores-capacity",
            ),
            pytest.param(
                StrictGroupLayer,
                Capability.GROUPS | Capability.CAPACITY | Capability.QUEUES,
                "rule 'group_send skips a full member and reaches the others' broke: "
                "group_send raised ChannelFull(\"channel 'kit.full' is full: it holds 3 "
                'messages") because one member was full; it must skip it',
                id="group-send-fails-on-full-member",
            ),
            pytest.param(
                ImmortalMessagesLayer,
                Capability.EXPIRY | Capability.CLOCK | Capability.QUEUES,
                "rule 'messages expire expiry seconds after they are sent' broke: 'kit.expiry' "
                "received {'type': 'kit.message', 'n': 1} with expiry 10s, 11s after 1 was "
                "sent and 6s after 2 was; expected {'type': 'kit.message', 'n': 2}",
                id="never-expires",
            ),
            pytest.param(
                StayingMembersLayer,
                Capability.EXPIRY | Capability.GROUPS | Capability.CLOCK | Capability.QUEUES,
                "rule 'a channel holding an expired message leaves all its groups' broke: "
                "'kit.stale' received {'type': 'kit.message', 'n': 2} from group_sends made "
                "after a message it held expired; it should have received nothing",
                id="expired-channel-stays-in-groups",
            ),
            pytest.param(
                EternalGroupsLayer,
                Capability.GROUP_EXPIRY | Capability.GROUPS | Capability.CLOCK,
                "rule 'memberships expire group_expiry seconds after group_add' broke: "
                "'kit.old' received {'type': 'kit.message', 'n': 1} 120s after its group_add, "
                "with group_expiry 100s; it should have received nothing",
                id="memberships-never-expire",
            ),
            pytest.param(
                DuplicatingLayer,
                Capability.GROUPS,
                "rule 'group_send reaches every member once' broke: 'kit.a' received "
                "{'type': 'kit.message', 'n': 1} after group_send to 'kit.group' (members "
                "'kit.a', 'kit.b'), once 'kit.a' had its copy; it should have received nothing",
                id="delivers-twice",
            ),
            pytest.param(
                LaxNamesLayer,
                Capability.CORE,
                "rule 'invalid names and non-mapping messages raise TypeError' broke: "
                "send('', ...) returned None instead of raising TypeError",
                id="accepts-bad-names",
            ),
            pytest.param(
                MutatingLayer,
                Capability.CORE,
                "rule 'a sent message is received unchanged' broke: send() changed the "
                "caller's message",
                id="mutates-the-callers-message",
            ),
            pytest.param(
                NoPrefixLayer,
                Capability.CORE,
                "rule 'new_channel returns unique, valid names that receive' broke: "
                "new_channel('specific.') returned 'ref!",
                id="ignores-the-prefix",
            ),
            pytest.param(
                CancelIgnoringLayer,
                Capability.CORE,
                "rule 'a cancelled receive stops waiting' broke: a receive on the empty "
                "'kit.cancel' was cancelled and returned {'type': 'kit.ignored'}",
                id="ignores-cancellation",
            ),
            pytest.param(
                AtMostOnceLayer,
                AT_MOST_ONCE | Capability.QUEUES,
                "rule 'a message waits on a channel nobody has received from' broke: sent "
                "[1, 2] to 'kit.named', received [] and then receive() waited 0.2s for more",
                id="at-most-once-claims-queues",
            ),
            pytest.param(
                NoFlushExtensionLayer,
                Capability.GROUPS | Capability.FLUSH,
                "rule 'the layer has the methods and extensions it claims' broke: the layer "
                "claims FLUSH, but its extensions ['groups'] lack 'flush'",
                id="flush-not-listed",
            ),
        ],
    )
    async def test_the_broken_rule_is_named(
        self, layer_class: type[ReferenceLayer], capabilities: Capability, message: str
    ) -> None:
        with pytest.raises(AssertionError) as failure:
            await check_channel_layer(factory(layer_class), capabilities, timeout=QUICK)
        assert without_random_names(str(failure.value)).startswith(message)

    async def test_a_claimed_extension_needs_its_methods(self) -> None:
        def make_layer(options: LayerOptions) -> CoreOnlyLayer:
            return CoreOnlyLayer()

        with pytest.raises(
            AssertionError,
            match=r"^rule 'the layer has the methods and extensions it claims' broke: the layer "
            r"claims GROUPS, but CoreOnlyLayer has no group_add, group_discard, group_send$",
        ):
            await check_channel_layer(make_layer, Capability.GROUPS)

    async def test_an_unexpected_error_names_the_rule(self) -> None:
        class ExplodingLayer(ReferenceLayer):
            async def flush(self) -> None:
                raise RuntimeError("boom")

        with pytest.raises(
            AssertionError,
            match=r"^rule 'flush drops every message and group' broke: "
            r"the layer raised RuntimeError\('boom'\)$",
        ) as failure:
            await check_channel_layer(factory(ExplodingLayer), Capability.FLUSH)
        assert isinstance(failure.value.__cause__, RuntimeError)

    async def test_a_factory_must_return_a_layer(self) -> None:
        def make_layer(options: LayerOptions) -> ChannelLayer:
            return cast("ChannelLayer", object())

        with pytest.raises(
            AssertionError,
            match=r"^make_layer must return a ChannelLayer \(or an awaitable of one\); "
            r"got <object object at .*>, which lacks send, receive, new_channel$",
        ):
            await check_channel_layer(make_layer)

    async def test_a_receive_that_waits_on_a_bad_name_fails(self) -> None:
        class WaitingLayer(ReferenceLayer):
            async def receive(self, channel: str) -> ReceivedMessage:
                if channel == "has space":
                    await asyncio.Event().wait()
                return await super().receive(channel)

        with pytest.raises(
            AssertionError,
            match=r"^rule 'invalid names and non-mapping messages raise TypeError' broke: "
            r"receive\('has space'\) waited 0\.2s instead of raising TypeError$",
        ):
            await check_channel_layer(factory(WaitingLayer), timeout=QUICK)


class TestManualClock:
    def test_it_moves_only_when_advanced(self) -> None:
        clock = ManualClock(start=5.0)
        assert clock() == clock() == 5.0
        clock.advance(2.5)
        assert clock() == 7.5

    def test_it_starts_away_from_zero(self) -> None:
        assert ManualClock()() == 1000.0

    def test_it_refuses_to_go_back(self) -> None:
        clock = ManualClock()
        with pytest.raises(ValueError, match=r"^a clock only moves forward: .* got -1$"):
            clock.advance(-1)
        assert clock() == 1000.0


# Deterministic, and without shrinking: these tests only need the failure.
QUIET = settings(
    max_examples=50,
    stateful_step_count=30,
    deadline=None,
    database=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],
)


@pytest.mark.slow
class TestStateMachine:
    def test_the_reference_layer_agrees_with_the_model(self) -> None:
        run_state_machine_as_test(channel_layer_state_machine(factory(ReferenceLayer), EVERYTHING))

    def test_a_core_only_layer_agrees_with_the_model(self) -> None:
        def make_layer(options: LayerOptions) -> CoreOnlyLayer:
            return CoreOnlyLayer()

        run_state_machine_as_test(channel_layer_state_machine(make_layer, Capability.QUEUES))

    def test_an_at_most_once_layer_agrees_with_the_model(self) -> None:
        machine = channel_layer_state_machine(factory(AtMostOnceLayer), AT_MOST_ONCE)
        run_state_machine_as_test(machine)

    @pytest.mark.parametrize(
        ("layer_class", "capabilities"),
        [
            pytest.param(ReorderingLayer, Capability.CORE, id="reorders"),
            pytest.param(
                UnboundedLayer, Capability.CAPACITY | Capability.QUEUES, id="ignores-capacity"
            ),
            pytest.param(
                ImmortalMessagesLayer,
                Capability.EXPIRY | Capability.CLOCK | Capability.QUEUES,
                id="never-expires",
            ),
            pytest.param(
                EternalGroupsLayer,
                Capability.GROUPS | Capability.GROUP_EXPIRY | Capability.CLOCK,
                id="memberships-never-expire",
            ),
        ],
    )
    def test_a_broken_layer_disagrees(
        self, layer_class: type[ReferenceLayer], capabilities: Capability
    ) -> None:
        machine = channel_layer_state_machine(factory(layer_class), capabilities, timeout=QUICK)
        with pytest.raises(
            AssertionError, match=r"^rule 'the layer agrees with a reference model' broke: "
        ):
            # A failure can take four exact steps to reach: search longer than QUIET.
            run_state_machine_as_test(machine, settings=settings(QUIET, max_examples=200))

    def test_the_factory_may_be_async(self) -> None:
        async def make_layer(options: LayerOptions) -> InMemoryChannelLayer:
            await asyncio.sleep(0)
            return make_in_memory(options)

        machine = channel_layer_state_machine(make_layer, Capability.GROUPS)
        run_state_machine_as_test(machine, settings=QUIET)


# The documented way to run the model: a unittest TestCase that pytest collects.
TestInMemoryLayerModel = state_machine_test_case(
    channel_layer_state_machine(make_in_memory, EVERYTHING)
)
