"""InMemoryChannelLayer: the embedded channel layer for a single process.

Every operation costs O(1) amortized, however many channels, groups and
memberships exist. Expiry needs no scan: the layer's expiry is one constant, so
messages expire in the order they were sent and memberships in the order they
were made; two deadline queues in that order are trimmed from the front on
every call. A stale entry (a message already received, a membership renewed
or discarded) is recognised exactly, by a message's sequence number or by a
membership's identity (a group maps each member to its latest entry): it is
skipped when it reaches the front, and the queues are compacted when stale
entries outnumber live ones.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import random
import string
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, TypeAlias

from channels.exceptions import ChannelFull
from channels.layers.base import BaseChannelLayer, CapacityPattern
from channels.types import ChannelMessage, ReceivedMessage

__all__ = ["InMemoryChannelLayer"]

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


# (expires_at, group, channel): one membership's deadline.
_MembershipEntry: TypeAlias = tuple[float, str, str]


class _Channel:
    """One channel's queue, its fixed capacity and the receivers waiting on it."""

    __slots__ = ("capacity", "messages", "receivers", "waiters")

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        # (expires_at, sequence, message, shared): a shared message is copied
        # on receive.
        self.messages: deque[tuple[float, int, ReceivedMessage, bool]] = deque()
        self.waiters: deque[asyncio.Future[None]] = deque()
        self.receivers = 0


def _wake_pending(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class InMemoryChannelLayer(BaseChannelLayer):
    """A channel layer held in this process's memory, with groups and flush.

    Args:
        expiry: seconds after which an unreceived message is dropped; its
            channel then leaves every group, as it is presumed dead.
        group_expiry: seconds after which a group membership lapses unless
            renewed by another ``group_add``.
        capacity: how many messages a channel holds before ``send`` raises
            ChannelFull.
        channel_capacity: per-channel capacities by glob or regex; the first
            match wins. A channel's capacity is fixed when it is first used.
        clock: returns the current time in seconds; tests inject one to move
            time without sleeping.
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
        self._clock = clock
        self._known_channels: set[str] = set()
        self._known_groups: set[str] = set()
        self._reset()

    def _reset(self) -> None:
        self._channels: dict[str, _Channel] = {}
        # group -> member channel -> its latest group_add's deadline entry
        self._groups: dict[str, dict[str, _MembershipEntry]] = {}
        # channel -> the groups it is in; a tuple, as most channels are in one
        # or two groups and a set costs four times the memory.
        self._memberships: dict[str, tuple[str, ...]] = {}
        self._membership_count = 0
        self._queued_count = 0
        self._sequence = 0
        # Entries hold only atoms (no _Channel): the garbage collector stops
        # tracking such tuples, so a long queue costs no collection time.
        self._message_deadlines: deque[tuple[float, int, str]] = deque()
        self._membership_deadlines: deque[_MembershipEntry] = deque()

    # -- channels ------------------------------------------------------------

    async def send(self, channel: str, message: ChannelMessage) -> None:
        """Queue a copy of ``message`` on ``channel``; raise ChannelFull at capacity."""
        self._require_message(message)
        if channel not in self._known_channels:
            self._learn_channel_name(channel)
        now = self._clock()
        self._expire(now)
        if not self._put(channel, _copy_message(message), False, now):
            state = self._channels.get(channel)
            capacity = self.get_capacity(channel) if state is None else state.capacity
            raise ChannelFull(channel, capacity)

    async def receive(self, channel: str) -> ReceivedMessage:
        """Wait for the next message on ``channel`` and return it.

        Receivers waiting on one channel are served in turn, each message
        goes to one of them, and a receive cancelled while it waits takes no
        message with it.
        """
        if channel not in self._known_channels:
            self._learn_channel_name(channel)
        self._expire(self._clock())
        state = self._channels.get(channel)
        if state is None:
            state = self._channels[channel] = _Channel(self.get_capacity(channel))
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
                        self._wake(state)
                    else:
                        waiter.cancel()
                        state.waiters.remove(waiter)
                    state.receivers -= 1
                    self._drop_if_idle(channel, state)
                    raise
                self._expire(self._clock())
            state.receivers -= 1
        _, _, message, shared = state.messages.popleft()
        self._queued_count -= 1
        if state.messages:
            self._wake(state)
        else:
            self._drop_if_idle(channel, state)
        return _copy_message(message) if shared else message

    async def new_channel(self, prefix: str = "specific.") -> str:
        """Return a new process-specific channel name: ``<prefix>.inmemory!<random>``."""
        suffix = "".join(random.choices(string.ascii_letters, k=12))
        return f"{prefix}.inmemory!{suffix}"

    # -- groups --------------------------------------------------------------

    async def group_add(self, group: str, channel: str) -> None:
        """Add ``channel`` to ``group``, or renew its membership."""
        self._require_group_name(group)
        if channel not in self._known_channels:
            self._learn_channel_name(channel)
        now = self._clock()
        self._expire(now)
        members = self._groups.setdefault(group, {})
        if channel not in members:
            self._membership_count += 1
            self._memberships[channel] = (*self._memberships.get(channel, ()), group)
        entry = members[channel] = (now + self.group_expiry, group, channel)
        self._membership_deadlines.append(entry)
        if len(self._membership_deadlines) > 2 * self._membership_count + _COMPACT_SLACK:
            self._compact_memberships()

    async def group_discard(self, group: str, channel: str) -> None:
        """Remove ``channel`` from ``group``; nothing happens if it is not a member."""
        self._require_group_name(group)
        if channel not in self._known_channels:
            self._learn_channel_name(channel)
        self._expire(self._clock())
        self._leave(group, channel)

    async def group_send(self, group: str, message: ChannelMessage) -> None:
        """Queue ``message`` on every member of ``group``; full members are skipped and logged."""
        self._require_message(message)
        self._require_group_name(group)
        now = self._clock()
        self._expire(now)
        members = self._groups.get(group)
        if not members:
            return
        payload = _copy_message(message)
        # One copy serves every member; each receiver then copies it again.
        shared = len(members) > 1
        for channel in members:
            if not self._put(channel, payload, shared, now):
                logger.warning("group_send to %r skipped channel %r: it is full", group, channel)

    # -- flush and close ------------------------------------------------------

    async def flush(self) -> None:
        """Drop every message, channel and group; waiting receivers keep waiting."""
        waiting = {name: state for name, state in self._channels.items() if state.receivers}
        self._reset()
        for state in waiting.values():
            state.messages.clear()
        self._channels.update(waiting)

    async def close(self) -> None:
        """Release nothing: the layer holds no outside resources."""

    # -- internals ------------------------------------------------------------

    # Names seen valid are remembered (callers test membership first, inline,
    # as send and receive are the hot path).

    def _learn_channel_name(self, channel: str) -> None:
        self.require_valid_channel_name(channel)
        self._remember(self._known_channels, channel)

    def _require_group_name(self, group: str) -> None:
        if group not in self._known_groups:
            self.require_valid_group_name(group)
            self._remember(self._known_groups, group)

    @staticmethod
    def _remember(known: set[str], name: str) -> None:
        if len(known) >= _KNOWN_NAMES_LIMIT:
            known.clear()
        known.add(name)

    @staticmethod
    def _require_message(message: object) -> None:
        if message.__class__ is not dict and not isinstance(message, Mapping):
            raise TypeError(
                "message must be a mapping (such as a dict with a 'type' key); "
                f"got {type(message).__name__}: {message!r}"
            )

    def _put(self, channel: str, message: ReceivedMessage, shared: bool, now: float) -> bool:
        """Queue ``message`` on ``channel``; return False if the channel is full."""
        state = self._channels.get(channel)
        if state is None:
            state = _Channel(self.get_capacity(channel))
            if state.capacity <= 0:
                return False
            self._channels[channel] = state
        elif len(state.messages) >= state.capacity:
            return False
        expires_at = now + self.expiry
        self._sequence += 1
        state.messages.append((expires_at, self._sequence, message, shared))
        self._queued_count += 1
        self._message_deadlines.append((expires_at, self._sequence, channel))
        if len(self._message_deadlines) > 2 * self._queued_count + _COMPACT_SLACK:
            self._compact_messages()
        if state.waiters:
            self._wake(state)
        return True

    @staticmethod
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

    def _drop_if_idle(self, channel: str, state: _Channel) -> None:
        # A group member's state is kept while it is a member: its consumer
        # receives again at once, and the membership bounds what is kept.
        if (
            not state.messages
            and not state.receivers
            and channel not in self._memberships
            and self._channels.get(channel) is state
        ):
            del self._channels[channel]

    def _expire(self, now: float) -> None:
        """Drop expired messages and memberships: O(1) amortized per call."""
        deadlines = self._message_deadlines
        while deadlines and deadlines[0][0] <= now:
            _, _, channel = deadlines.popleft()
            state = self._channels.get(channel)
            if state is None:
                continue
            messages = state.messages
            if messages and messages[0][0] <= now:
                while messages and messages[0][0] <= now:
                    messages.popleft()
                    self._queued_count -= 1
                self._leave_all(channel)
                self._drop_if_idle(channel, state)
        memberships = self._membership_deadlines
        while memberships and memberships[0][0] <= now:
            entry = memberships.popleft()
            _, group, channel = entry
            if self._groups.get(group, {}).get(channel) is entry:
                self._leave(group, channel)

    def _leave(self, group: str, channel: str) -> None:
        members = self._groups.get(group)
        if members is None or members.pop(channel, None) is None:
            return
        self._membership_count -= 1
        if not members:
            del self._groups[group]
        groups = tuple(name for name in self._memberships[channel] if name != group)
        if groups:
            self._memberships[channel] = groups
        else:
            del self._memberships[channel]
            if (state := self._channels.get(channel)) is not None:
                self._drop_if_idle(channel, state)

    def _leave_all(self, channel: str) -> None:
        for group in self._memberships.get(channel, ()):
            self._leave(group, channel)

    def _compact_messages(self) -> None:
        # An entry is live while its message is still queued: messages leave a
        # channel oldest first, so it is live if the oldest queued one is not
        # newer than it.
        channels = self._channels
        self._message_deadlines = deque(
            entry
            for entry in self._message_deadlines
            if (state := channels.get(entry[2])) is not None
            and state.messages
            and state.messages[0][1] <= entry[1]
        )

    def _compact_memberships(self) -> None:
        self._membership_deadlines = deque(
            entry
            for entry in self._membership_deadlines
            if self._groups.get(entry[1], {}).get(entry[2]) is entry
        )
