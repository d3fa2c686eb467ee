"""InMemoryChannelLayer: the embedded channel layer for a single process.

Every operation costs O(1) amortized, however many channels, groups and
memberships exist. Expiry needs no scan: messages expire in the order they
were sent (the expiry is one constant when they are sent) and memberships in
the order they were made (``group_expiry`` is read when they are checked, so
changing it applies to every membership, as upstream); two queues in that
order are trimmed from the front on every call. A stale entry (a message
already received, a membership renewed or discarded) is recognised exactly,
by a message's sequence number or by a membership's identity (a group maps
each member to its latest entry): it is skipped when it reaches the front, and
the queues are compacted when stale entries outnumber live ones.

``layer.groups`` and ``layer.channels`` are read-only views for tests and
presence counts, built on access (O(1)); what they show is in their
docstrings.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import random
import string
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Final, TypeAlias

from channels.exceptions import ChannelFull
from channels.layers.base import BaseChannelLayer, CapacityPattern, require_message
from channels.types import ChannelMessage, ReceivedMessage

__all__ = ["ChannelQueue", "InMemoryChannelLayer"]

logger = logging.getLogger("channels.layers")

_ATOMS: Final[frozenset[type]] = frozenset({str, int, float, bool, bytes, type(None)})
_COMPACT_SLACK: Final = 64
# Channel names seen valid are remembered, up to this many, to skip the regex.
_KNOWN_NAMES_LIMIT: Final = 1024


def _copy(value: Any) -> Any:
    """Deep-copy a message value: fast for JSON-like data, copy.deepcopy otherwise."""
    # Any: message values are whatever the sender put in them.
    cls = value.__class__
    if cls in _ATOMS:
        return value
    if cls is dict:
        return {key: _copy(item) for key, item in value.items()}
    if cls is list:
        return [_copy(item) for item in value]
    if cls is tuple:
        return tuple(_copy(item) for item in value)
    return copy.deepcopy(value)


def _copy_message(message: ChannelMessage) -> ReceivedMessage:
    # Atoms are tested inline: most message values are strings and numbers.
    return {
        key: value if value.__class__ in _ATOMS else _copy(value) for key, value in message.items()
    }


def _remember(known: set[str], name: str) -> None:
    if len(known) >= _KNOWN_NAMES_LIMIT:
        known.clear()
    known.add(name)


# (joined_at, group, channel): one membership, as its latest group_add made it.
_Membership: TypeAlias = tuple[float, str, str]

# A channel's capacity of 0 or less means no limit, as asyncio.Queue's maxsize
# (upstream's queues) does.
_UNBOUNDED: Final = sys.maxsize


class _Channel:
    """One channel's queue, its fixed capacity and the receivers waiting on it."""

    __slots__ = ("capacity", "limit", "messages", "receivers", "waiters")

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.limit = capacity if capacity > 0 else _UNBOUNDED
        # (expires_at, sequence, message, shared): a shared message is copied
        # on receive.
        self.messages: deque[tuple[float, int, ReceivedMessage, bool]] = deque()
        self.waiters: deque[asyncio.Future[None]] = deque()
        self.receivers = 0


def _wake_pending(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


def _wake(state: _Channel) -> None:
    """Wake the first receiver still waiting on ``state``, on its own loop."""
    running = asyncio.get_running_loop()
    while state.waiters:
        waiter = state.waiters.popleft()
        if waiter.done():
            continue
        loop = waiter.get_loop()
        if loop is running:
            waiter.set_result(None)
            return
        try:
            loop.call_soon_threadsafe(_wake_pending, waiter)
        except RuntimeError:  # that loop is closed: its receiver is gone
            continue
        return


# -- read-only views -----------------------------------------------------------


class ChannelQueue:
    """A read-only look at one channel of an InMemoryChannelLayer.

    It answers the questions asyncio.Queue answers (upstream's layer keeps an
    asyncio.Queue per channel), so ``layer.channels[name].qsize()`` works:
    ``qsize()``, ``empty()``, ``full()`` and ``maxsize``, the channel's
    capacity (0 or less means no limit). It follows the channel as it changes.
    """

    __slots__ = ("_state",)

    def __init__(self, state: _Channel) -> None:
        self._state = state

    @property
    def maxsize(self) -> int:
        """The channel's capacity, fixed when it was first used."""
        return self._state.capacity

    def qsize(self) -> int:
        """How many messages the channel holds."""
        return len(self._state.messages)

    def empty(self) -> bool:
        """Whether the channel holds no message."""
        return not self._state.messages

    def full(self) -> bool:
        """Whether a send to the channel would raise ChannelFull now."""
        return len(self._state.messages) >= self._state.limit

    def __repr__(self) -> str:
        return f"<ChannelQueue qsize={self.qsize()} maxsize={self.maxsize}>"


class _Members(Mapping[str, float]):
    """One group's members -> the time of their latest group_add (layer's clock)."""

    __slots__ = ("_group", "_groups")

    def __init__(self, groups: dict[str, dict[str, _Membership]], group: str) -> None:
        self._groups = groups
        self._group = group

    def __getitem__(self, channel: str) -> float:
        return self._groups.get(self._group, {})[channel][0]

    def __contains__(self, channel: object) -> bool:
        return channel in self._groups.get(self._group, {})

    def __len__(self) -> int:
        return len(self._groups.get(self._group, {}))

    def __iter__(self) -> Iterator[str]:
        # A copy: the layer may change the group while the caller iterates.
        return iter(list(self._groups.get(self._group, {})))

    def __repr__(self) -> str:
        return repr(dict(self))


class _Groups(Mapping[str, Mapping[str, float]]):
    """Group -> its members (a _Members view)."""

    __slots__ = ("_groups",)

    def __init__(self, groups: dict[str, dict[str, _Membership]]) -> None:
        self._groups = groups

    def __getitem__(self, group: str) -> Mapping[str, float]:
        if group not in self._groups:
            raise KeyError(group)
        return _Members(self._groups, group)

    def __contains__(self, group: object) -> bool:
        return group in self._groups

    def __len__(self) -> int:
        return len(self._groups)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._groups))

    def __repr__(self) -> str:
        return repr({group: dict(self[group]) for group in self})


def _active(state: _Channel) -> bool:
    return bool(state.messages) or state.receivers > 0


class _Channels(Mapping[str, ChannelQueue]):
    """Channel -> a ChannelQueue, for channels holding messages or awaited by a receive."""

    __slots__ = ("_channels",)

    def __init__(self, channels: dict[str, _Channel]) -> None:
        self._channels = channels

    def __getitem__(self, channel: str) -> ChannelQueue:
        state = self._channels.get(channel)
        if state is None or not _active(state):
            raise KeyError(channel)
        return ChannelQueue(state)

    def __contains__(self, channel: object) -> bool:
        state = self._channels.get(channel) if isinstance(channel, str) else None
        return state is not None and _active(state)

    def __len__(self) -> int:
        return sum(1 for state in self._channels.values() if _active(state))

    def __iter__(self) -> Iterator[str]:
        return iter([name for name, state in self._channels.items() if _active(state)])

    def __repr__(self) -> str:
        return repr(dict(self))


# -- the layer -------------------------------------------------------------------


class InMemoryChannelLayer(BaseChannelLayer):
    """A channel layer held in this process's memory, with groups and flush.

    Args:
        expiry: seconds after which an unreceived message is dropped; its
            channel then leaves every group, as it is presumed dead.
        group_expiry: seconds after which a group membership lapses unless
            renewed by another ``group_add``.
        capacity: how many messages a channel holds before ``send`` raises
            ChannelFull; 0 or less means no limit, as upstream.
        channel_capacity: per-channel capacities by glob or regex; the first
            match wins. A channel's capacity is fixed when it is first used.
        clock: returns the current time in seconds; tests inject one to move
            time without sleeping.

    The layer's state is private (name-mangled), so a subclass may use any
    ``_name`` of its own. Upstream's hooks keep their names and meaning:
    ``_clean_expired()`` drops what has expired now (``receive`` and
    ``group_send`` call it first, as upstream's do, so a subclass may wrap or
    throttle it; every other call expires entries on its own) and
    ``_remove_from_groups(channel)`` drops a channel from every group (called
    when a message on it expires).
    """

    extensions: Sequence[str] = ["groups", "flush"]

    def __init__(
        self,
        expiry: float = 60,
        group_expiry: float = 86400,
        capacity: int = 100,
        channel_capacity: Mapping[CapacityPattern, int] | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(expiry=expiry, capacity=capacity, channel_capacity=channel_capacity)
        self.group_expiry = group_expiry
        self.__clock = clock
        self.__known_channels: set[str] = set()
        self.__known_groups: set[str] = set()
        # These containers live as long as the layer (flush empties them), so
        # the views returned by .groups and .channels stay live.
        self.__channels: dict[str, _Channel] = {}
        # group -> member channel -> its latest group_add's entry
        self.__groups: dict[str, dict[str, _Membership]] = {}
        # channel -> the groups it is in; a tuple, as most channels are in one
        # or two groups and a set costs four times the memory.
        self.__memberships: dict[str, tuple[str, ...]] = {}
        self.__clear()

    def __clear(self) -> None:
        self.__channels.clear()
        self.__groups.clear()
        self.__memberships.clear()
        self.__membership_count = 0
        self.__queued_count = 0
        self.__sequence = 0
        # Entries hold only atoms (no _Channel): the garbage collector stops
        # tracking such tuples, so a long queue costs no collection time.
        self.__message_deadlines: deque[tuple[float, int, str]] = deque()
        self.__membership_queue: deque[_Membership] = deque()

    # -- what tests and presence counts read ------------------------------------

    @property
    def groups(self) -> Mapping[str, Mapping[str, float]]:
        """A read-only, live view: group -> {member channel: time of its latest group_add}.

        Only groups with members appear, and only live members (expired ones
        are dropped when this is read). The times are on the layer's clock
        (``time.monotonic`` unless one was given; upstream used ``time.time``).
        ``group in layer.groups``, ``len(layer.groups[group])`` and
        ``layer.groups.get(group, {})`` work as on upstream's dict.
        """
        self.__expire(self.__clock())
        return _Groups(self.__groups)

    @property
    def channels(self) -> Mapping[str, ChannelQueue]:
        """A read-only, live view: channel -> ChannelQueue, for channels in use.

        A channel is in it while it holds messages or a ``receive()`` waits on
        it, as upstream's dict of queues. Membership tests and lookups are
        O(1); ``len()`` and iteration count the channels.
        """
        self.__expire(self.__clock())
        return _Channels(self.__channels)

    # -- channels ------------------------------------------------------------

    async def send(self, channel: str, message: ChannelMessage) -> None:
        """Queue a copy of ``message`` on ``channel``; raise ChannelFull at capacity."""
        require_message(message)
        if channel not in self.__known_channels:
            self.__learn_channel_name(channel)
        now = self.__clock()
        self.__expire(now)
        if not self.__put(channel, _copy_message(message), False, now):
            state = self.__channels.get(channel)
            capacity = self.get_capacity(channel) if state is None else state.capacity
            raise ChannelFull(channel, capacity)

    async def receive(self, channel: str) -> ReceivedMessage:
        """Wait for the next message on ``channel`` and return it.

        Receivers waiting on one channel are served in turn, each message
        goes to one of them, and a receive cancelled while it waits takes no
        message with it.
        """
        if channel not in self.__known_channels:
            self.__learn_channel_name(channel)
        self._clean_expired()
        state = self.__channels.get(channel)
        if state is None:
            state = self.__channels[channel] = _Channel(self.get_capacity(channel))
        if not state.messages:
            state.receivers += 1
            while not state.messages:
                waiter = asyncio.get_running_loop().create_future()
                state.waiters.append(waiter)
                try:
                    await waiter
                except BaseException:
                    if waiter.done() and not waiter.cancelled():
                        # Woken for a message we will not take: pass it on.
                        _wake(state)
                    else:
                        waiter.cancel()
                        state.waiters.remove(waiter)
                    state.receivers -= 1
                    self.__drop_if_idle(channel, state)
                    raise
                self.__expire(self.__clock())
            state.receivers -= 1
        _, _, message, shared = state.messages.popleft()
        self.__queued_count -= 1
        if state.messages:
            _wake(state)
        else:
            self.__drop_if_idle(channel, state)
        return _copy_message(message) if shared else message

    async def new_channel(self, prefix: str = "specific.") -> str:
        """Return a new process-specific channel name: ``<prefix>.inmemory!<random>``."""
        suffix = "".join(random.choices(string.ascii_letters, k=12))
        return f"{prefix}.inmemory!{suffix}"

    # -- groups --------------------------------------------------------------

    async def group_add(self, group: str, channel: str) -> None:
        """Add ``channel`` to ``group``, or renew its membership."""
        self.__require_group_name(group)
        if channel not in self.__known_channels:
            self.__learn_channel_name(channel)
        now = self.__clock()
        self.__expire(now)
        members = self.__groups.get(group)
        if members is None:
            members = self.__groups[group] = {}
        if channel not in members:
            self.__membership_count += 1
            self.__memberships[channel] = (*self.__memberships.get(channel, ()), group)
        entry = members[channel] = (now, group, channel)
        self.__membership_queue.append(entry)
        if len(self.__membership_queue) > 2 * self.__membership_count + _COMPACT_SLACK:
            self.__compact_memberships()

    async def group_discard(self, group: str, channel: str) -> None:
        """Remove ``channel`` from ``group``; nothing happens if it is not a member."""
        self.__require_group_name(group)
        if channel not in self.__known_channels:
            self.__learn_channel_name(channel)
        self.__expire(self.__clock())
        self.__leave(group, channel)

    async def group_send(self, group: str, message: ChannelMessage) -> None:
        """Queue ``message`` on every member of ``group``; full members are skipped and logged."""
        require_message(message)
        self.__require_group_name(group)
        self._clean_expired()
        members = self.__groups.get(group)
        if not members:
            return
        now = self.__clock()
        payload = _copy_message(message)
        # One copy serves every member; each receiver then copies it again.
        shared = len(members) > 1
        for channel in members:
            if not self.__put(channel, payload, shared, now):
                logger.warning("group_send to %r skipped channel %r: it is full", group, channel)

    # -- flush and close ------------------------------------------------------

    async def flush(self) -> None:
        """Drop every message, channel and group; waiting receivers keep waiting."""
        waiting = [(name, state) for name, state in self.__channels.items() if state.receivers]
        self.__clear()
        for name, state in waiting:
            state.messages.clear()
            self.__channels[name] = state

    async def close(self) -> None:
        """Release nothing: the layer holds no outside resources."""

    # -- upstream's hooks ---------------------------------------------------------

    def _clean_expired(self) -> None:
        """Drop the messages and memberships that have expired by now.

        A channel whose message expired leaves every group (through
        ``_remove_from_groups``). Costs O(1) amortized: nothing is scanned.
        """
        self.__expire(self.__clock())

    def _remove_from_groups(self, channel: str) -> None:
        """Remove ``channel`` from every group it is in."""
        for group in self.__memberships.get(channel, ()):
            self.__leave(group, channel)

    # -- internals ------------------------------------------------------------

    # Names seen valid are remembered (callers test membership first, inline,
    # as send and receive are the hot path).

    def __learn_channel_name(self, channel: str) -> None:
        self.require_valid_channel_name(channel)
        _remember(self.__known_channels, channel)

    def __require_group_name(self, group: str) -> None:
        if group not in self.__known_groups:
            self.require_valid_group_name(group)
            _remember(self.__known_groups, group)

    def __put(self, channel: str, message: ReceivedMessage, shared: bool, now: float) -> bool:
        """Queue ``message`` on ``channel``; return False if the channel is full."""
        state = self.__channels.get(channel)
        if state is None:
            state = self.__channels[channel] = _Channel(self.get_capacity(channel))
        elif len(state.messages) >= state.limit:
            return False
        expires_at = now + self.expiry
        self.__sequence += 1
        state.messages.append((expires_at, self.__sequence, message, shared))
        self.__queued_count += 1
        self.__message_deadlines.append((expires_at, self.__sequence, channel))
        if len(self.__message_deadlines) > 2 * self.__queued_count + _COMPACT_SLACK:
            self.__compact_messages()
        if state.waiters:
            _wake(state)
        return True

    def __drop_if_idle(self, channel: str, state: _Channel) -> None:
        # A group member's state is kept while it is a member: its consumer
        # receives again at once, and the membership bounds what is kept.
        if (
            not state.messages
            and not state.receivers
            and channel not in self.__memberships
            and self.__channels.get(channel) is state
        ):
            del self.__channels[channel]

    def __expire(self, now: float) -> None:
        """Drop expired messages and memberships: O(1) amortized per call."""
        deadlines = self.__message_deadlines
        while deadlines and deadlines[0][0] <= now:
            _, _, channel = deadlines.popleft()
            state = self.__channels.get(channel)
            if state is None:
                continue
            messages = state.messages
            if messages and messages[0][0] <= now:
                while messages and messages[0][0] <= now:
                    messages.popleft()
                    self.__queued_count -= 1
                self._remove_from_groups(channel)
                self.__drop_if_idle(channel, state)
        memberships = self.__membership_queue
        if memberships:
            joined_before = now - self.group_expiry
            while memberships and memberships[0][0] <= joined_before:
                entry = memberships.popleft()
                _, group, channel = entry
                if self.__groups.get(group, {}).get(channel) is entry:
                    self.__leave(group, channel)

    def __leave(self, group: str, channel: str) -> None:
        members = self.__groups.get(group)
        if members is None or members.pop(channel, None) is None:
            return
        self.__membership_count -= 1
        if not members:
            del self.__groups[group]
        groups = tuple(name for name in self.__memberships[channel] if name != group)
        if groups:
            self.__memberships[channel] = groups
        else:
            del self.__memberships[channel]
            if (state := self.__channels.get(channel)) is not None:
                self.__drop_if_idle(channel, state)

    def __compact_messages(self) -> None:
        # An entry is live while its message is still queued: messages leave a
        # channel oldest first, so it is live if the oldest queued one is not
        # newer than it.
        channels = self.__channels
        self.__message_deadlines = deque(
            entry
            for entry in self.__message_deadlines
            if (state := channels.get(entry[2])) is not None
            and state.messages
            and state.messages[0][1] <= entry[1]
        )

    def __compact_memberships(self) -> None:
        groups = self.__groups
        self.__membership_queue = deque(
            entry
            for entry in self.__membership_queue
            if groups.get(entry[1], {}).get(entry[2]) is entry
        )
