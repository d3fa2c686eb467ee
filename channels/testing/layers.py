"""A conformance kit for channel layers: the rules every layer must keep.

Authors of third-party channel layers call :func:`check_channel_layer` from
any test runner. It builds a fresh layer for each rule with the author's
factory, exercises it, closes it, and raises AssertionError naming the rule
that broke and what happened, for example::

    rule 'receive returns messages in send order' broke: sent [1, 2, 3, 4, 5]
    to 'kit.fifo.ab12!', received [1, 3, 2, 4, 5]

The :class:`Capability` flags a layer claims select the rules:

============  ==============================================================
(none)        the core: send, receive, new_channel, name and message
              validation, concurrent receivers, a cancelled receive stops
              waiting; always run
QUEUES        a message sent to any channel waits there until received,
              even with no receiver waiting, and a cancelled receive leaves
              it for the next one; needed by CAPACITY and EXPIRY
GROUPS        group_add, group_discard, group_send
FLUSH         flush() drops every group and, with QUEUES, every message
CAPACITY      send raises ChannelFull at capacity; needs QUEUES
EXPIRY        messages expire; needs QUEUES, and CLOCK for its rules to run
GROUP_EXPIRY  memberships expire; its rule runs only with CLOCK
CLOCK         the layer reads time from ``LayerOptions.clock``
DEEP_COPY     receivers never share message objects
============  ==============================================================

The kit moves time with a :class:`ManualClock` instead of sleeping, so the
expiry rules need CLOCK. ``check_channel_layer`` returns the names of the
rules it ran, and raises ValueError for claims that contradict each other.

At-most-once layers (Redis pub/sub and the like) drop a message sent to a
channel nobody listens to, and may drop what a cancelled receive was waiting
for: they must not claim QUEUES. Every rule that QUEUES does not select
delivers messages only to channels made by ``await layer.new_channel(...)``
(such a layer must be listening on the channel when new_channel returns),
and never expects a message to outlive a cancelled receive or a flush, so
those rules hold for at-most-once layers too. Redis pub/sub, for one, claims
``Capability.GROUPS | Capability.FLUSH | Capability.DEEP_COPY``.

The factory receives a :class:`LayerOptions` and returns a layer that holds no
messages and no groups (flush a shared server in an async factory), or an
awaitable of one. :func:`channel_layer_state_machine` drives the same layer
with random operations (hypothesis, from the ``testing`` extra) and checks it
against a small reference model.

With pytest (and pytest-asyncio)::

    import time

    from channels.layers import InMemoryChannelLayer
    from channels.testing.layers import (
        Capability,
        LayerOptions,
        channel_layer_state_machine,
        check_channel_layer,
    )

    CLAIMS = (
        Capability.QUEUES | Capability.GROUPS | Capability.FLUSH
        | Capability.EXPIRY | Capability.GROUP_EXPIRY | Capability.CAPACITY
        | Capability.CLOCK | Capability.DEEP_COPY
    )

    def make_layer(options: LayerOptions) -> InMemoryChannelLayer:
        return InMemoryChannelLayer(
            expiry=options.expiry,
            group_expiry=options.group_expiry,
            capacity=options.capacity,
            clock=options.clock or time.monotonic,
        )

    async def test_layer_conforms() -> None:
        await check_channel_layer(make_layer, CLAIMS)

    TestLayerModel = channel_layer_state_machine(make_layer, CLAIMS).TestCase

With unittest::

    import unittest

    class LayerConformance(unittest.IsolatedAsyncioTestCase):
        async def test_conforms(self) -> None:
            await check_channel_layer(make_layer, CLAIMS)

    LayerModel = channel_layer_state_machine(make_layer, CLAIMS).TestCase
"""

from __future__ import annotations

import asyncio
import copy
import enum
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Final, NoReturn, TypeAlias, TypeVar, cast

from channels.exceptions import ChannelFull
from channels.layers.base import BaseChannelLayer
from channels.layers.protocols import (
    ChannelLayer,
    ClosableChannelLayer,
    FlushableChannelLayer,
    GroupChannelLayer,
)
from channels.types import ChannelMessage, ReceivedMessage

if TYPE_CHECKING:
    from hypothesis.stateful import RuleBasedStateMachine

__all__ = [
    "Capability",
    "LayerFactory",
    "LayerOptions",
    "ManualClock",
    "channel_layer_state_machine",
    "check_channel_layer",
]

_T = TypeVar("_T")


class Capability(enum.Flag):
    """What a channel layer claims to do beyond the core; claims select the rules."""

    # Only the core: send, receive, new_channel.
    CORE = 0
    # A message sent to any channel waits there until received, even if no
    # receiver is waiting; a cancelled receive leaves it for the next one.
    QUEUES = enum.auto()
    # The groups extension: group_add, group_discard, group_send.
    GROUPS = enum.auto()
    # The flush extension: flush() drops every group and every held message.
    FLUSH = enum.auto()
    # A message expires ``expiry`` seconds after it is sent; a channel holding
    # an expired message leaves all its groups. Needs QUEUES.
    EXPIRY = enum.auto()
    # A membership expires ``group_expiry`` seconds after its last group_add.
    GROUP_EXPIRY = enum.auto()
    # send raises ChannelFull once a channel holds ``capacity`` messages;
    # group_send skips full members and still reaches the others. Needs QUEUES.
    CAPACITY = enum.auto()
    # The layer reads time from ``LayerOptions.clock``; needed for the expiry rules.
    CLOCK = enum.auto()
    # Receivers never see each other's or the sender's mutations.
    DEEP_COPY = enum.auto()


class ManualClock:
    """A clock that moves only when told to: the time source of CLOCK layers."""

    def __init__(self, start: float = 1000.0) -> None:
        self._now = start

    def __call__(self) -> float:
        """Return the current time in seconds."""
        return self._now

    def advance(self, seconds: float) -> None:
        """Move the clock ``seconds`` forward."""
        if seconds < 0:
            raise ValueError(f"a clock only moves forward: seconds must be >= 0; got {seconds!r}")
        self._now += seconds


@dataclass(frozen=True)
class LayerOptions:
    """The configuration the kit asks a layer factory for.

    ``clock`` is a :class:`ManualClock` when the layer claims CLOCK, else None
    (the layer uses its own time source).
    """

    expiry: float = 60
    group_expiry: float = 86400
    capacity: int = 100
    clock: ManualClock | None = None


LayerFactory: TypeAlias = Callable[[LayerOptions], "ChannelLayer | Awaitable[ChannelLayer]"]
"""Builds an empty layer configured by the options; may be a coroutine function."""


# -- running rules -------------------------------------------------------------

_DEFAULT_OPTIONS: Final = LayerOptions()
_GROUP_METHODS: Final = ("group_add", "group_discard", "group_send")
_FLUSH_METHODS: Final = ("flush",)
_BAD_CHANNEL_NAMES: Final[tuple[object, ...]] = (
    "",
    "has space",
    "ünïcode",
    "tab\tname",
    "x" * 200,
    42,
)
_BAD_GROUP_NAMES: Final[tuple[object, ...]] = ("", "has space", "bang!", "x" * 200, 42)
_NOT_MAPPINGS: Final[tuple[object, ...]] = (["type", "kit.message"], "kit.message", None)


def _message(n: int) -> dict[str, object]:
    return {"type": "kit.message", "n": n}


def _probe() -> dict[str, object]:
    return {"type": "kit.probe"}


def _show(messages: Iterable[Mapping[str, object]]) -> list[object]:
    """Show kit messages by their number, anything else in full."""
    return [message.get("n", message) for message in messages]


def _missing(layer: object, methods: Iterable[str]) -> str:
    absent = [name for name in methods if not callable(getattr(layer, name, None))]
    return ", ".join(absent)


async def _make(make_layer: LayerFactory, options: LayerOptions) -> ChannelLayer:
    made = make_layer(options)
    return _require_layer(await made if isinstance(made, Awaitable) else made)


def _require_layer(layer: object) -> ChannelLayer:
    # Factories are often untyped test code: check what they really returned.
    if not isinstance(layer, ChannelLayer):
        raise AssertionError(
            f"make_layer must return a ChannelLayer (or an awaitable of one); got {layer!r}, "
            f"which lacks {_missing(layer, ('send', 'receive', 'new_channel')) or 'extensions'}"
        )
    return layer


class _Context:
    """One rule's run: its fresh layer, options and failure reporting."""

    def __init__(
        self,
        rule: str,
        layer: ChannelLayer,
        options: LayerOptions,
        capabilities: Capability,
        timeout: float,
    ) -> None:
        self.rule = rule
        self.layer = layer
        self.options = options
        self.capabilities = capabilities
        self.timeout = timeout

    def fail(self, detail: str) -> NoReturn:
        raise AssertionError(f"rule {self.rule!r} broke: {detail}")

    @property
    def groups(self) -> GroupChannelLayer:
        if isinstance(self.layer, GroupChannelLayer):
            return self.layer
        self.fail(
            f"the layer claims GROUPS, but {type(self.layer).__name__} has no "
            f"{_missing(self.layer, _GROUP_METHODS)}"
        )

    @property
    def flushable(self) -> FlushableChannelLayer:
        if isinstance(self.layer, FlushableChannelLayer):
            return self.layer
        self.fail(f"the layer claims FLUSH, but {type(self.layer).__name__} has no flush")

    async def channel(self, label: str) -> str:
        """Return a channel from ``new_channel('kit.<label>.')``, ready to receive."""
        return await self.layer.new_channel(f"kit.{label}.")

    @property
    def clock(self) -> ManualClock:
        if self.options.clock is None:
            self.fail("the rule needs CLOCK, but the options carry no clock")
        return self.options.clock

    async def receive(self, channel: str, waiting_for: str) -> ReceivedMessage:
        """Receive from ``channel``, failing if nothing arrives in time."""
        try:
            return await asyncio.wait_for(self.layer.receive(channel), self.timeout)
        except asyncio.TimeoutError:
            self.fail(
                f"receive({channel!r}) waited {self.timeout}s for {waiting_for} and got nothing"
            )

    async def receive_many(self, channel: str, count: int, sent: list[object]) -> list[object]:
        """Receive ``count`` messages from ``channel`` and show them by number."""
        received: list[ReceivedMessage] = []
        for _ in range(count):
            try:
                received.append(await asyncio.wait_for(self.layer.receive(channel), self.timeout))
            except asyncio.TimeoutError:
                self.fail(
                    f"sent {sent} to {channel!r}, received {_show(received)} and then "
                    f"receive() waited {self.timeout}s for more"
                )
        return _show(received)

    async def expect_nothing(self, channel: str, after: str) -> None:
        """Fail if ``channel`` holds a message: a probe sent now must come out first."""
        await self.layer.send(channel, _probe())
        received = await self.receive(channel, "a probe message")
        if received != _probe():
            self.fail(f"{channel!r} received {received!r} {after}; it should have received nothing")

    async def expect(self, channel: str, expected: Mapping[str, object], after: str) -> None:
        """Fail unless the next message on ``channel`` equals ``expected``."""
        received = await self.receive(channel, f"{expected!r} {after}")
        if received != expected:
            self.fail(f"{channel!r} received {received!r} {after}; expected {expected!r}")

    async def expect_type_error(self, call: str, awaitable: Awaitable[object]) -> None:
        """Fail unless awaiting ``awaitable`` raises TypeError promptly."""
        try:
            result = await asyncio.wait_for(awaitable, self.timeout)
        except TypeError:
            return
        except asyncio.TimeoutError:
            self.fail(f"{call} waited {self.timeout}s instead of raising TypeError")
        self.fail(f"{call} returned {result!r} instead of raising TypeError")


_Check: TypeAlias = Callable[[_Context], Awaitable[None]]


@dataclass(frozen=True)
class _Rule:
    name: str
    needs: Capability
    options: LayerOptions
    check: _Check


_RULES: list[_Rule] = []


def _rule(
    name: str, needs: Capability = Capability.CORE, options: LayerOptions = _DEFAULT_OPTIONS
) -> Callable[[_Check], _Check]:
    def register(check: _Check) -> _Check:
        _RULES.append(_Rule(name, needs, options, check))
        return check

    return register


async def check_channel_layer(
    make_layer: LayerFactory,
    capabilities: Capability = Capability.CORE,
    *,
    timeout: float = 2.0,
) -> tuple[str, ...]:
    """Check a channel layer against every rule its ``capabilities`` select.

    Each rule gets a fresh layer from ``make_layer`` and closes it afterwards.
    ``timeout`` bounds each wait for a message that should arrive; it is spent
    only when a layer breaks a rule. Returns the names of the rules checked.

    Raises:
        AssertionError: a rule broke; the message names it and says how.
    """
    _require_consistent(capabilities)
    checked: list[str] = []
    for rule in _RULES:
        if rule.needs not in capabilities:
            continue
        clock = ManualClock() if Capability.CLOCK in capabilities else None
        options = replace(rule.options, clock=clock)
        layer = await _make(make_layer, options)
        context = _Context(rule.name, layer, options, capabilities, timeout)
        try:
            await rule.check(context)
        except AssertionError:
            raise
        except Exception as exc:
            raise AssertionError(f"rule {rule.name!r} broke: the layer raised {exc!r}") from exc
        finally:
            if isinstance(layer, ClosableChannelLayer):
                await layer.close()
        checked.append(rule.name)
    return tuple(checked)


def _require_consistent(capabilities: Capability) -> None:
    # Capacity and expiry count messages a channel holds: without QUEUES it holds none.
    needs_queues = capabilities & (Capability.CAPACITY | Capability.EXPIRY)
    if needs_queues and Capability.QUEUES not in capabilities:
        raise ValueError(
            f"capabilities CAPACITY and EXPIRY need QUEUES, since they count the messages "
            f"a channel holds; got {capabilities!r}"
        )


# -- the core rules ------------------------------------------------------------


@_rule("the layer has the methods and extensions it claims")
async def _claims(ctx: _Context) -> None:
    claims = (
        (Capability.GROUPS, "groups", _GROUP_METHODS),
        (Capability.FLUSH, "flush", _FLUSH_METHODS),
    )
    for capability, extension, methods in claims:
        if capability not in ctx.capabilities:
            continue
        missing = _missing(ctx.layer, methods)
        if missing:
            ctx.fail(
                f"the layer claims {capability.name}, "
                f"but {type(ctx.layer).__name__} has no {missing}"
            )
        extensions = list(ctx.layer.extensions)
        if extension not in extensions:
            ctx.fail(
                f"the layer claims {capability.name}, but its extensions {extensions!r} "
                f"lack {extension!r}"
            )


@_rule("a sent message is received unchanged")
async def _round_trip(ctx: _Context) -> None:
    message = {
        "type": "kit.message",
        "text": "héllo",
        "number": 1.5,
        "flag": True,
        "nothing": None,
        "items": [1, "two", [3]],
        "nested": {"key": "value"},
    }
    original = copy.deepcopy(message)
    channel = await ctx.channel("chan")
    await ctx.layer.send(channel, message)
    if message != original:
        ctx.fail(f"send() changed the caller's message from {original!r} to {message!r}")
    received = await ctx.receive(channel, "the sent message")
    if type(received) is not dict or received != original:
        ctx.fail(f"sent {original!r} to {channel!r}, received {received!r}")


@_rule("receive returns messages in send order")
async def _fifo(ctx: _Context) -> None:
    sent: list[object] = [1, 2, 3, 4, 5]
    channel = await ctx.channel("fifo")
    for n in range(1, 6):
        await ctx.layer.send(channel, _message(n))
    received = await ctx.receive_many(channel, 5, sent)
    if received != sent:
        ctx.fail(f"sent {sent} to {channel!r}, received {received}")


@_rule("channels are independent")
async def _independent(ctx: _Context) -> None:
    a, b = await ctx.channel("a"), await ctx.channel("b")
    await ctx.layer.send(a, _message(1))
    await ctx.layer.send(b, _message(2))
    await ctx.layer.send(a, _message(3))
    await ctx.expect(b, _message(2), f"after 1 and 3 were sent to {a!r} and 2 to {b!r}")
    received = await ctx.receive_many(a, 2, [1, 3])
    if received != [1, 3]:
        ctx.fail(f"sent [1, 3] to {a!r} and [2] to {b!r}; {a!r} received {received}")


@_rule("new_channel returns unique, valid names that receive")
async def _new_channel(ctx: _Context) -> None:
    names = [await ctx.layer.new_channel() for _ in range(10)]
    prefixed = await ctx.layer.new_channel("kit.prefix.")
    for name, prefix in [*((name, "specific.") for name in names), (prefixed, "kit.prefix.")]:
        if not _is_new_channel_name(name, prefix):
            ctx.fail(
                f"new_channel({prefix!r}) returned {name!r}; expected a valid channel name "
                f"starting with {prefix!r} and containing '!'"
            )
    if len(set(names)) != len(names):
        ctx.fail(f"10 calls to new_channel() returned repeated names: {names!r}")
    for n, name in enumerate([names[0], prefixed]):
        await ctx.layer.send(name, _message(n))
        await ctx.expect(name, _message(n), f"sent to the new channel {name!r}")


def _is_new_channel_name(name: object, prefix: str) -> bool:
    return (
        isinstance(name, str)
        and len(name) < BaseChannelLayer.MAX_NAME_LENGTH
        and BaseChannelLayer.channel_name_regex.fullmatch(name) is not None
        and name.startswith(prefix)
        and "!" in name
    )


@_rule("invalid names and non-mapping messages raise TypeError")
async def _validation(ctx: _Context) -> None:
    layer = ctx.layer
    for bad in _BAD_CHANNEL_NAMES:
        # Deliberately the wrong type: the layer must check at run time.
        name = cast("str", bad)
        await ctx.expect_type_error(f"send({bad!r}, ...)", layer.send(name, _message(1)))
        await ctx.expect_type_error(f"receive({bad!r})", layer.receive(name))
    for bad in _NOT_MAPPINGS:
        message = cast("ChannelMessage", bad)
        await ctx.expect_type_error(f"send('kit.chan', {bad!r})", layer.send("kit.chan", message))
    if Capability.GROUPS not in ctx.capabilities:
        return
    groups = ctx.groups
    for bad in _BAD_GROUP_NAMES:
        group = cast("str", bad)
        await ctx.expect_type_error(
            f"group_add({bad!r}, 'kit.chan')", groups.group_add(group, "kit.chan")
        )
        await ctx.expect_type_error(
            f"group_discard({bad!r}, 'kit.chan')", groups.group_discard(group, "kit.chan")
        )
        await ctx.expect_type_error(
            f"group_send({bad!r}, ...)", groups.group_send(group, _message(1))
        )
    for bad in _BAD_CHANNEL_NAMES:
        channel = cast("str", bad)
        await ctx.expect_type_error(
            f"group_add('kit.group', {bad!r})", groups.group_add("kit.group", channel)
        )
    for bad in _NOT_MAPPINGS:
        message = cast("ChannelMessage", bad)
        await ctx.expect_type_error(
            f"group_send('kit.group', {bad!r})", groups.group_send("kit.group", message)
        )


async def _settle() -> None:
    """Let freshly started tasks run up to their first real wait."""
    for _ in range(5):
        await asyncio.sleep(0)


@_rule("concurrent receivers on one channel get distinct messages")
async def _concurrent(ctx: _Context) -> None:
    sent: list[object] = [1, 2, 3, 4, 5]
    channel = await ctx.channel("shared")
    tasks = [asyncio.ensure_future(ctx.layer.receive(channel)) for _ in sent]
    try:
        await _settle()
        for n in range(1, 6):
            await ctx.layer.send(channel, _message(n))
        done, pending = await asyncio.wait(tasks, timeout=ctx.timeout)
        # Sorted by text: the numbers are single digits, anything else sorts too.
        received = sorted(_show(task.result() for task in done), key=str)
        if received != sent:
            still = f", and {len(pending)} receivers still waited" if pending else ""
            ctx.fail(
                f"sent {sent} to {channel!r} with 5 receivers waiting; they received "
                f"{received}{still}"
            )
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.wait(tasks)


@_rule("a cancelled receive stops waiting")
async def _cancel_stops(ctx: _Context) -> None:
    channel = await ctx.channel("cancel")
    waiting = asyncio.ensure_future(ctx.layer.receive(channel))
    await _settle()
    waiting.cancel()
    await asyncio.wait([waiting], timeout=ctx.timeout)
    if not waiting.cancelled():
        outcome = repr(waiting.result()) if waiting.done() else "nothing: it ignored the cancel"
        ctx.fail(f"a receive on the empty {channel!r} was cancelled and returned {outcome}")


@_rule("a message waits on a channel nobody has received from", Capability.QUEUES)
async def _waits(ctx: _Context) -> None:
    sent: list[object] = [1, 2]
    for n in range(1, 3):
        await ctx.layer.send("kit.named", _message(n))
    received = await ctx.receive_many("kit.named", 2, sent)
    if received != sent:
        ctx.fail(f"sent {sent} to 'kit.named' before any receive on it, received {received}")


@_rule("a cancelled receive loses no message", Capability.QUEUES)
async def _cancelled_receive(ctx: _Context) -> None:
    # First: cancel a receive that is waiting on an empty channel, then send.
    waiting = asyncio.ensure_future(ctx.layer.receive("kit.cancel"))
    await _settle()
    waiting.cancel()
    await asyncio.wait([waiting], timeout=ctx.timeout)
    if not waiting.cancelled():
        outcome = repr(waiting.result()) if waiting.done() else "nothing: it ignored the cancel"
        ctx.fail(f"a receive on the empty 'kit.cancel' was cancelled and returned {outcome}")
    await ctx.layer.send("kit.cancel", _message(1))
    await ctx.expect("kit.cancel", _message(1), "after an earlier receive was cancelled")

    # Then: send while a receive waits and cancel it before it can run again;
    # the message must reach either that receive or the next one.
    waiting = asyncio.ensure_future(ctx.layer.receive("kit.cancel"))
    await _settle()
    await ctx.layer.send("kit.cancel", _message(2))
    waiting.cancel()
    await asyncio.wait([waiting], timeout=ctx.timeout)
    if not waiting.done():
        waiting.cancel()
        ctx.fail("a receive on 'kit.cancel' ignored its cancellation")
    if waiting.cancelled():
        await ctx.expect(
            "kit.cancel", _message(2), "(sent as a waiting receive on it was cancelled)"
        )
    elif waiting.result() != _message(2):
        ctx.fail(f"sent {_message(2)!r} to 'kit.cancel', received {waiting.result()!r}")


# -- groups and flush ----------------------------------------------------------


@_rule("group_send reaches every member once", Capability.GROUPS)
async def _group_send(ctx: _Context) -> None:
    groups = ctx.groups
    a, b, c = await ctx.channel("a"), await ctx.channel("b"), await ctx.channel("c")
    await groups.group_add("kit.group", a)
    await groups.group_add("kit.group", a)
    await groups.group_add("kit.group", b)
    await groups.group_add("kit.other", b)
    await groups.group_send("kit.group", _message(1))
    await groups.group_send("kit.other", _message(2))
    after = f"after group_send to 'kit.group' (members {a!r}, {b!r})"
    await ctx.expect(a, _message(1), after)
    await ctx.expect_nothing(a, f"{after}, once {a!r} had its copy")
    await ctx.expect(b, _message(1), after)
    await ctx.expect(b, _message(2), f"after group_send to 'kit.other' (member {b!r})")
    await ctx.expect_nothing(c, f"{after}; {c!r} is in no group")


@_rule("group_discard stops delivery", Capability.GROUPS)
async def _group_discard(ctx: _Context) -> None:
    groups = ctx.groups
    a, b = await ctx.channel("a"), await ctx.channel("b")
    await groups.group_add("kit.group", a)
    await groups.group_add("kit.group", b)
    await groups.group_discard("kit.group", a)
    await groups.group_send("kit.group", _message(1))
    await ctx.expect_nothing(a, "from a group_send after it was discarded from the group")
    await ctx.expect(b, _message(1), "from a group_send to its group")
    await groups.group_add("kit.group", a)
    await groups.group_send("kit.group", _message(2))
    await ctx.expect(a, _message(2), "from a group_send after it was added back")


@_rule("group_discard of a non-member does nothing", Capability.GROUPS)
async def _discard_non_member(ctx: _Context) -> None:
    groups = ctx.groups
    b = await ctx.channel("b")
    await groups.group_discard("kit.unknown", "kit.a")
    await groups.group_add("kit.group", b)
    await groups.group_discard("kit.group", "kit.a")
    await groups.group_send("kit.group", _message(1))
    await ctx.expect(b, _message(1), "after a non-member was discarded from its group")


@_rule("group_send to an empty group does nothing", Capability.GROUPS)
async def _empty_group(ctx: _Context) -> None:
    groups = ctx.groups
    a = await ctx.channel("a")
    await groups.group_send("kit.unknown", _message(1))
    await groups.group_add("kit.group", a)
    await groups.group_discard("kit.group", a)
    await groups.group_send("kit.group", _message(2))
    await ctx.expect_nothing(a, "from a group it was discarded from")


@_rule("flush drops every message and group", Capability.FLUSH)
async def _flush(ctx: _Context) -> None:
    # Only a queueing layer holds a message it was sent: an at-most-once layer
    # may still have it in flight, where no flush can reach it.
    queues = Capability.QUEUES in ctx.capabilities
    has_groups = Capability.GROUPS in ctx.capabilities
    a, b = await ctx.channel("a"), await ctx.channel("b")
    if queues:
        await ctx.layer.send(a, _message(1))
    if has_groups:
        await ctx.groups.group_add("kit.group", b)
    await ctx.flushable.flush()
    if queues:
        await ctx.expect_nothing(a, "after flush()")
    if has_groups:
        await ctx.groups.group_send("kit.group", _message(2))
        await ctx.expect_nothing(b, "from a group_send to a group it joined before flush()")


# -- capacity --------------------------------------------------------------------

_SMALL: Final = LayerOptions(capacity=3)


@_rule("send raises ChannelFull at capacity", Capability.CAPACITY | Capability.QUEUES, _SMALL)
async def _capacity(ctx: _Context) -> None:
    for n in range(1, 4):
        await ctx.layer.send("kit.full", _message(n))
    try:
        await ctx.layer.send("kit.full", _message(4))
    except ChannelFull:
        pass
    else:
        ctx.fail("sent 4 messages to 'kit.full' with capacity 3 and none raised ChannelFull")
    await ctx.expect("kit.full", _message(1), "first of 3 at capacity")
    await ctx.layer.send("kit.full", _message(4))
    received = await ctx.receive_many("kit.full", 3, [2, 3, 4])
    if received != [2, 3, 4]:
        ctx.fail(f"with capacity 3, sent [1, 2, 3], received 1, sent 4; then received {received}")


@_rule(
    "group_send skips a full member and reaches the others",
    Capability.GROUPS | Capability.CAPACITY | Capability.QUEUES,
    _SMALL,
)
async def _group_capacity(ctx: _Context) -> None:
    groups = ctx.groups
    for n in range(1, 4):
        await ctx.layer.send("kit.full", _message(n))
    await groups.group_add("kit.group", "kit.full")
    await groups.group_add("kit.group", "kit.room")
    try:
        await groups.group_send("kit.group", _message(9))
    except ChannelFull as exc:
        ctx.fail(f"group_send raised {exc!r} because one member was full; it must skip it")
    await ctx.expect("kit.room", _message(9), "from a group_send while another member was full")
    received = await ctx.receive_many("kit.full", 3, [1, 2, 3])
    if received != [1, 2, 3]:
        ctx.fail(f"sent [1, 2, 3] to the full 'kit.full', received {received}")
    await ctx.expect_nothing("kit.full", "from a group_send made while it was full")


# -- expiry ------------------------------------------------------------------------


@_rule(
    "messages expire expiry seconds after they are sent",
    Capability.EXPIRY | Capability.CLOCK | Capability.QUEUES,
    LayerOptions(expiry=10),
)
async def _expiry(ctx: _Context) -> None:
    await ctx.layer.send("kit.expiry", _message(1))
    ctx.clock.advance(5)
    await ctx.layer.send("kit.expiry", _message(2))
    ctx.clock.advance(6)
    await ctx.expect(
        "kit.expiry", _message(2), "with expiry 10s, 11s after 1 was sent and 6s after 2 was"
    )
    await ctx.layer.send("kit.expiry", _message(3))
    ctx.clock.advance(11)
    await ctx.expect_nothing("kit.expiry", "11s after 3 was sent, with expiry 10s")


@_rule(
    "a channel holding an expired message leaves all its groups",
    Capability.EXPIRY | Capability.GROUPS | Capability.CLOCK | Capability.QUEUES,
    LayerOptions(expiry=10),
)
async def _expiry_leaves_groups(ctx: _Context) -> None:
    groups = ctx.groups
    await groups.group_add("kit.one", "kit.stale")
    await groups.group_add("kit.two", "kit.stale")
    await groups.group_add("kit.one", "kit.fresh")
    await ctx.layer.send("kit.stale", _message(1))
    ctx.clock.advance(11)
    await groups.group_send("kit.one", _message(2))
    await groups.group_send("kit.two", _message(3))
    await ctx.expect("kit.fresh", _message(2), "from a group_send to its group")
    await ctx.expect_nothing("kit.stale", "from group_sends made after a message it held expired")


@_rule(
    "memberships expire group_expiry seconds after group_add",
    Capability.GROUP_EXPIRY | Capability.GROUPS | Capability.CLOCK,
    LayerOptions(expiry=10_000, group_expiry=100),
)
async def _group_expiry(ctx: _Context) -> None:
    groups = ctx.groups
    old, renewed = await ctx.channel("old"), await ctx.channel("renewed")
    await groups.group_add("kit.group", old)
    await groups.group_add("kit.group", renewed)
    ctx.clock.advance(60)
    await groups.group_add("kit.group", renewed)
    ctx.clock.advance(60)
    await groups.group_send("kit.group", _message(1))
    await ctx.expect(renewed, _message(1), "60s after group_add renewed it, with group_expiry 100s")
    await ctx.expect_nothing(old, "120s after its group_add, with group_expiry 100s")


# -- copies ------------------------------------------------------------------------


@_rule("receivers never share message objects", Capability.DEEP_COPY)
async def _deep_copy(ctx: _Context) -> None:
    message: dict[str, object] = {"type": "kit.message", "items": [1, 2], "nested": {"k": "v"}}
    original = copy.deepcopy(message)
    a, b = await ctx.channel("a"), await ctx.channel("b")
    await ctx.layer.send(a, message)
    await ctx.layer.send(b, message)
    _mutate(message)
    first = await ctx.receive(a, "the sent message")
    if first != original:
        ctx.fail(f"the sender changed its message after send and {a!r} received {first!r}")
    _mutate(first)
    await ctx.expect(b, original, f"after {a!r} changed its copy of the same message")
    if Capability.GROUPS not in ctx.capabilities:
        return
    await ctx.groups.group_add("kit.group", a)
    await ctx.groups.group_add("kit.group", b)
    await ctx.groups.group_send("kit.group", original)
    _mutate(await ctx.receive(a, "a group message"))
    await ctx.expect(b, original, f"from group_send after {a!r} changed its copy")


def _mutate(message: Mapping[str, object]) -> None:
    cast("list[object]", message["items"]).append("changed")
    cast("dict[str, object]", message["nested"])["k"] = "changed"


# -- the state machine ---------------------------------------------------------------

_MODEL_RULE: Final = "the layer agrees with a reference model"
# Half seconds, while the clock moves in whole ones: no deadline falls exactly
# on a tick, where layers may fairly round either way.
_MODEL_EXPIRY: Final = 10.5
_MODEL_GROUP_EXPIRY: Final = 20.5
_MODEL_CAPACITY: Final = 3
_NEVER: Final = 1e9


def channel_layer_state_machine(
    make_layer: LayerFactory,
    capabilities: Capability = Capability.CORE,
    *,
    timeout: float = 2.0,
) -> type[RuleBasedStateMachine]:
    """Return a hypothesis state machine that checks a layer against a reference model.

    It sends, receives, joins, leaves and sends to groups, flushes and moves
    the clock, as ``capabilities`` allow, and compares every message received
    with a model of the channels and groups. Use its ``TestCase`` attribute as
    a test class, or run it with ``hypothesis.stateful.run_state_machine_as_test``.
    It runs 50 examples of up to 30 steps; each owns an event loop, so run it
    from a synchronous test.

    It suits at-most-once layers too: it sends and receives only on channels
    from ``new_channel``, never cancels a receive, and without QUEUES flushes
    only while no message is due, so none can be in flight.

    Raises:
        ValueError: the capabilities contradict each other.
    """
    from hypothesis import Phase, settings
    from hypothesis import strategies as st
    from hypothesis.stateful import RuleBasedStateMachine, precondition, rule

    _require_consistent(capabilities)
    queues = Capability.QUEUES in capabilities
    has_groups = Capability.GROUPS in capabilities
    has_clock = Capability.CLOCK in capabilities
    expiry = _MODEL_EXPIRY if Capability.EXPIRY in capabilities and has_clock else _NEVER
    group_expiry = (
        _MODEL_GROUP_EXPIRY if Capability.GROUP_EXPIRY in capabilities and has_clock else _NEVER
    )
    capacity = _MODEL_CAPACITY if Capability.CAPACITY in capabilities else 1_000_000
    group_names = ("kit.g1", "kit.g2")

    class ChannelLayerModel(RuleBasedStateMachine):
        """Random operations on one layer, checked against dicts of deques."""

        def __init__(self) -> None:
            super().__init__()
            self.loop = asyncio.new_event_loop()
            # Without CLOCK the layer keeps its own time and the model's stands still.
            self.clock = ManualClock()
            options = LayerOptions(
                expiry=expiry,
                group_expiry=group_expiry,
                capacity=capacity,
                clock=self.clock if has_clock else None,
            )
            try:
                self.layer = self.loop.run_until_complete(_make(make_layer, options))
            except BaseException:
                self.loop.close()
                raise
            # channel -> (sent at, number) for each message it holds, oldest first.
            # Draws pick channels in insertion order, never sorted: names from
            # new_channel are random, and a replayed example must pick the same.
            self.queues: dict[str, deque[tuple[float, int]]] = {}
            try:
                for _ in range(2):
                    self.queues[self.run(self.layer.new_channel("kit.sm."))] = deque()
            except BaseException:
                self.teardown()
                raise
            # group -> channel -> time of its last group_add
            self.groups: dict[str, dict[str, float]] = {name: {} for name in group_names}
            self.sent = 0

        def teardown(self) -> None:
            """Close the layer and the event loop."""
            try:
                if isinstance(self.layer, ClosableChannelLayer):
                    self.run(self.layer.close())
            finally:
                self.loop.close()

        def run(self, awaitable: Awaitable[_T]) -> _T:
            return self.loop.run_until_complete(awaitable)

        def now(self) -> float:
            return self.clock()

        def fail(self, detail: str) -> NoReturn:
            raise AssertionError(f"rule {_MODEL_RULE!r} broke: {detail}")

        def receive(self, channel: str, expected: Mapping[str, object]) -> None:
            try:
                received = self.run(asyncio.wait_for(self.layer.receive(channel), timeout))
            except asyncio.TimeoutError:
                self.fail(f"receive({channel!r}) waited {timeout}s for {expected!r}")
            if received != expected:
                self.fail(f"receive({channel!r}) returned {received!r}; expected {expected!r}")

        def group_layer(self) -> GroupChannelLayer:
            if isinstance(self.layer, GroupChannelLayer):
                return self.layer
            self.fail(f"the layer claims GROUPS, but {type(self.layer).__name__} lacks them")

        @precondition(lambda self: bool(self.queues))
        @rule(data=st.data())
        def send(self, data: st.DataObject) -> None:
            """Send the next numbered message to a channel."""
            channel = data.draw(st.sampled_from(list(self.queues)), label="channel")
            self.sent += 1
            queue = self.queues[channel]
            try:
                self.run(self.layer.send(channel, _message(self.sent)))
            except ChannelFull:
                if len(queue) < capacity:
                    self.fail(f"send({channel!r}) raised ChannelFull holding {len(queue)} messages")
                return
            if len(queue) >= capacity:
                self.fail(f"send({channel!r}) accepted a message beyond capacity {capacity}")
            queue.append((self.now(), self.sent))

        @precondition(lambda self: any(self.queues.values()))
        @rule(data=st.data())
        def receive_one(self, data: st.DataObject) -> None:
            """Receive from a channel that the model says holds a message."""
            waiting = [channel for channel, queue in self.queues.items() if queue]
            channel = data.draw(st.sampled_from(waiting), label="channel")
            _, n = self.queues[channel].popleft()
            self.receive(channel, _message(n))

        @precondition(lambda self: not all(self.queues.values()))
        @rule(data=st.data())
        def expect_nothing(self, data: st.DataObject) -> None:
            """Check that a channel the model says is empty holds nothing: a probe comes first."""
            empty = [channel for channel, queue in self.queues.items() if not queue]
            channel = data.draw(st.sampled_from(empty), label="channel")
            self.run(self.layer.send(channel, _probe()))
            self.receive(channel, _probe())

        @precondition(lambda self: len(self.queues) < 4)
        @rule()
        def new_channel(self) -> None:
            """Open a channel named by the layer."""
            name = self.run(self.layer.new_channel("kit.sm."))
            if name in self.queues or not name.startswith("kit.sm."):
                self.fail(f"new_channel('kit.sm.') returned {name!r}")
            self.queues[name] = deque()

        @precondition(lambda self: has_groups and bool(self.queues))
        @rule(group=st.sampled_from(group_names), data=st.data())
        def group_add(self, group: str, data: st.DataObject) -> None:
            """Add a channel to a group, or renew its membership."""
            channel = data.draw(st.sampled_from(list(self.queues)), label="channel")
            self.run(self.group_layer().group_add(group, channel))
            self.groups[group][channel] = self.now()

        @precondition(lambda self: has_groups and bool(self.queues))
        @rule(group=st.sampled_from(group_names), data=st.data())
        def group_discard(self, group: str, data: st.DataObject) -> None:
            """Remove a channel, member or not, from a group."""
            channel = data.draw(st.sampled_from(list(self.queues)), label="channel")
            self.run(self.group_layer().group_discard(group, channel))
            self.groups[group].pop(channel, None)

        @precondition(lambda self: has_groups)
        @rule(group=st.sampled_from(group_names))
        def group_send(self, group: str) -> None:
            """Send the next numbered message to a group."""
            self.sent += 1
            self.run(self.group_layer().group_send(group, _message(self.sent)))
            members = self.groups[group]
            for channel, added in list(members.items()):
                if self.now() - added >= group_expiry:
                    del members[channel]
                elif len(self.queues[channel]) < capacity:
                    self.queues[channel].append((self.now(), self.sent))

        @precondition(
            lambda self: (
                Capability.FLUSH in capabilities and (queues or not any(self.queues.values()))
            )
        )
        @rule()
        def flush(self) -> None:
            """Flush the layer: no messages, no groups."""
            if not isinstance(self.layer, FlushableChannelLayer):
                self.fail(f"the layer claims FLUSH, but {type(self.layer).__name__} lacks it")
            self.run(self.layer.flush())
            for queue in self.queues.values():
                queue.clear()
            for members in self.groups.values():
                members.clear()

        @precondition(lambda self: has_clock)
        @rule(seconds=st.integers(min_value=1, max_value=25))
        def advance(self, seconds: int) -> None:
            """Move the clock; check and retire channels whose messages expired."""
            self.clock.advance(seconds)
            for channel, queue in list(self.queues.items()):
                if queue and self.now() - queue[0][0] >= expiry:
                    self.retire(channel, queue)

        def retire(self, channel: str, queue: deque[tuple[float, int]]) -> None:
            """Check that expired messages are skipped, then stop using the channel.

            When an expired message is dropped, and whether its channel's
            memberships or capacity still count it, is up to the layer; the
            model keeps no channel whose state it cannot know.
            """
            live = [n for sent_at, n in queue if self.now() - sent_at < expiry]
            for n in live:
                self.receive(channel, _message(n))
            if not live:
                try:
                    self.run(self.layer.send(channel, _probe()))
                except ChannelFull:
                    if len(queue) < capacity:
                        self.fail(
                            f"send({channel!r}) raised ChannelFull holding only expired messages"
                        )
                else:
                    self.receive(channel, _probe())
            del self.queues[channel]
            for members in self.groups.values():
                members.pop(channel, None)

    # No explain phase: it reruns a failure hundreds of times for little news.
    bounded = settings(
        max_examples=50,
        stateful_step_count=30,
        deadline=None,
        phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
    )
    return bounded(ChannelLayerModel)
