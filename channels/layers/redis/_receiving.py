"""Receiving for ``RedisChannelLayer``: one :class:`Receiver` per event loop.

The receiver owns the loop's *inboxes* (per channel: messages popped but not
yet taken, and the receivers waiting) and its *readers* (per shard, a
``_reader.ShardReader``: a task that pops, with one BZPOPMIN, every key a
local receiver waits on). Its rules are stated once, in :class:`Receiver`'s
docstring.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import cast

from channels.layers.redis._connections import Connections
from channels.layers.redis._drops import DropLog
from channels.layers.redis._errors import LayerConnectionError
from channels.layers.redis._layout import Layout
from channels.layers.redis._publisher import Popped, Publishers
from channels.layers.redis._reader import ShardReader
from channels.layers.redis._redirect import REFUSED
from channels.layers.redis._serializers import CHANNEL_KEY
from channels.layers.redis.serializers import MessageDecodeError
from channels.types import ReceivedMessage

__all__ = ["Receiver"]

logger = logging.getLogger("channels.layers.redis.core")


@dataclass
class _Entry:
    """A popped message waiting for its receiver, with its send time."""

    channel: str
    message: ReceivedMessage
    score: float
    shard: int  # where it was popped, and so where it goes back


@dataclass
class _Inbox:
    """One channel's popped messages and waiting receivers."""

    entries: deque[_Entry] = field(default_factory=deque[_Entry])
    waiters: deque[asyncio.Future[_Entry]] = field(default_factory=deque[asyncio.Future[_Entry]])

    def take(self, expired_before: float) -> _Entry | None:
        """Return the oldest entry sent at or after ``expired_before``, dropping older ones."""
        while self.entries:
            entry = self.entries.popleft()
            if entry.score >= expired_before:
                return entry
        return None


class Receiver:
    """Receiving in one event loop: the inboxes of its channels and one reader per shard.

    The rules it keeps (each one has a test in ``tests/layers/redis/test_receiving.py``):

    1. **Order per channel.** Receivers get a channel's messages in the order
       Redis holds them. A receiver takes the oldest buffered message first;
       a message handed to a receiver that was cancelled goes back to the
       front; and a receiver pops Redis itself only when no older message of
       its channel can still turn up (rule 3).
    2. **Nothing lost on cancel.** A receiver waits only on a local future, so
       cancelling it never drops a message: one handed over as it was
       cancelled goes to the next receiver, or is kept (rule 4). A receiver's
       own pop is shielded: if it is cancelled while the pop is out, what the
       pop returns is buffered like any other message.
    3. **Who pops when.** Only readers pop, and only keys that a local
       receiver waits on; a reader stops when none has waited for one
       blocking period, and on ``aclose()``. The one exception saves the
       reader's round trip: a receiver alone on a normal channel on a single
       server pops that channel itself (ZPOPMIN) when nothing older can still
       arrive: no message of the loop on its way back to Redis, no other pop
       of the channel out, and the reader not blocked on its key. A new
       receiver of a channel whose cancelled receiver's pop is still out
       waits for that pop first. On one server that pop, and every put-back
       (rule 4), go over the loop's sending connection, in order with its sends.
    4. **Where unclaimed messages go.** A popped message no local receiver
       waits for goes back to Redis with its original score (its place in the
       queue), for any process to take: at once for a normal channel; for a
       process-specific channel, which only this process reads, when its
       reader stops. Expired messages are dropped on the way instead. A send
       from this loop to a channel first waits for a pop of it still out and
       puts back what no receiver took (``settle``): a message sent after a
       cancelled receive never reaches another process before the one that
       receive popped.
    5. **Bounded.** An inbox buffers at most its channel's capacity: past it
       the oldest message is dropped (logged once per interval per channel,
       with a count). Expired messages are never handed out, and the reader
       sweeps them every ``expiry`` seconds.
    6. **Failure.** A message that cannot be decoded fails one receiver
       waiting on its key (the reader goes on), or is dropped and logged if
       none waits. A shard that has answered any command in this loop gets
       ``reconnect_timeout`` seconds to come back while its receivers keep
       waiting; one that never answered, or stays away longer, fails every
       receiver reading it.
    """

    def __init__(
        self, layout: Layout, connections: Connections, senders: Publishers, drops: DropLog
    ) -> None:
        self._layout = layout
        self._connections = connections
        self._senders = senders
        self._inboxes: dict[str, _Inbox] = {}
        # Per shard: Redis key -> receivers waiting on it.
        self._watched: dict[int, Counter[str]] = {}
        self._readers: dict[int, ShardReader] = {}
        # Normal channels holding messages that no local receiver waits for.
        self._stranded: set[str] = set()
        # Returns of such messages to Redis under way.
        self._returning = 0
        # Normal channel -> its receiver's own pop, while it is out.
        self._popping: dict[str, asyncio.Future[Popped]] = {}
        self._drops = drops

    # -- receiving ---------------------------------------------------------------

    async def receive(self, channel: str) -> ReceivedMessage:
        """Wait for and return the next message on ``channel`` (a name already checked)."""
        pending = self._popping.get(channel)
        if pending is not None:
            # A cancelled receive's pop is still out: what it takes comes first.
            await asyncio.wait([pending])
        inbox = self._inboxes.setdefault(channel, _Inbox())
        entry = inbox.take(self._layout.expired_before(time.time()))
        if entry is None and self._may_pop_now(channel, inbox):
            await self._pop_now(channel)
            # A reader may have replaced the inbox while the pop was out.
            inbox = self._inboxes.setdefault(channel, _Inbox())
            entry = inbox.take(self._layout.expired_before(time.time()))
        if entry is not None:
            if not inbox.entries and not inbox.waiters:
                self._inboxes.pop(channel, None)
                self._stranded.discard(channel)
            return entry.message
        return await self._wait(channel, inbox)

    async def settle(self, channel: str) -> None:
        """Before this loop sends to ``channel``: put back first what it popped and nobody took.

        Waits for a cancelled receive's pop of the channel, then returns the
        channel's unclaimed messages to Redis (rule 4, "at once"), so that a
        message sent now cannot be taken elsewhere before them.
        """
        pending = self._popping.get(channel)
        if pending is not None:
            await asyncio.wait([pending])
        if channel in self._stranded:
            inbox = self._inboxes.get(channel)
            if inbox is not None and not inbox.waiters:
                shards = {entry.shard for entry in inbox.entries}
                for shard in shards:
                    await self.return_stranded(shard, only_shared=True)

    async def _wait(self, channel: str, inbox: _Inbox) -> ReceivedMessage:
        key = self._layout.key(channel)
        future: asyncio.Future[_Entry] = asyncio.get_running_loop().create_future()
        inbox.waiters.append(future)
        shards = self._layout.read_shards(channel)
        for shard in shards:
            self._watched.setdefault(shard, Counter())[key] += 1
        try:
            for shard in shards:
                await self._watch(shard, key)
            entry = await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled() and future.exception() is None:
                # Handed over as this receive was cancelled: give it to the next one.
                self._deliver(future.result(), front=True)
            raise
        finally:
            if future in inbox.waiters:
                inbox.waiters.remove(future)
                self._unwatch(channel)
            if not inbox.waiters:
                if not inbox.entries:
                    self._inboxes.pop(channel, None)
                elif "!" not in channel:
                    self._stranded.add(channel)
        return entry.message

    def _may_pop_now(self, channel: str, inbox: _Inbox) -> bool:
        """Whether a receive may pop ``channel`` itself (rule 3)."""
        shards = self._layout.read_shards(channel)
        if "!" in channel or len(shards) != 1 or inbox.waiters:
            return False
        if self._stranded or self._returning or channel in self._popping:
            return False
        reader = self._readers.get(shards[0])
        return reader is None or self._layout.key(channel) not in reader.in_flight

    async def _pop_now(self, channel: str) -> None:
        """Pop ``channel``'s oldest message from Redis into its inbox, if there is one."""
        key = self._layout.key(channel)
        shard = self._layout.shard(channel)
        try:
            pop = await self._start_pop(shard, key, channel)
        except LayerConnectionError:
            # Redis is away: the reader's path waits for it to come back.
            return
        self._popping[channel] = pop
        pop.add_done_callback(lambda _: self._popping.pop(channel, None))
        try:
            popped = await asyncio.shield(pop)
        except asyncio.CancelledError:
            # Cancelled while the pop was out: what it takes is buffered, and
            # goes back to Redis unless another receiver takes it first.
            pop.add_done_callback(lambda done: self._strand(shard, key, done))
            raise
        except (LayerConnectionError, *REFUSED):
            # Redis is away, or the slot moved: the reader's path follows.
            return
        self._connections.answered.add(shard)
        for member, score in popped:
            self.dispatch(shard, key, member, score, popped_by_receiver=True)

    async def _start_pop(self, shard: int, key: str, channel: str) -> asyncio.Future[Popped]:
        """Send a ZPOPMIN of ``key`` on the loop's sending connection to its server or node.

        In order with the loop's sends, and without a task: the outcome
        returned does not depend on the caller, whose cancelling leaves it be.
        """
        with self._layout.errors(shard):
            if self._connections.clustered:
                sender = await self._senders.on_node_of(shard)
            else:
                sender = self._senders.of(shard)
            return await sender.pop_min(key, f"receive from {channel!r}")

    def _strand(self, shard: int, key: str, done: asyncio.Future[Popped]) -> None:
        if done.cancelled() or done.exception() is not None:
            return
        for member, score in done.result():
            self.dispatch(shard, key, member, score)
        if self._stranded:
            # The reader puts it back, in its turn with its own pops.
            self._ensure_reader(shard, key)

    # -- handing messages over ---------------------------------------------------

    def dispatch(
        self, shard: int, key: str, member: object, score: float, popped_by_receiver: bool = False
    ) -> None:
        """Decode one popped member and hand it to its channel (or channels)."""
        if score < self._layout.expired_before(time.time()):
            return
        data = member if isinstance(member, bytes) else str(member).encode("utf-8")
        try:
            message = self._layout.decode(data)
        except MessageDecodeError as exc:
            if popped_by_receiver:
                raise
            # The channel is inside the unreadable message: fail a receiver on the key.
            if not self.fail(exc, key, shard):
                self._drops.dropped(key, f"it could not be read: {exc}")
            return
        target = message.pop(CHANNEL_KEY, None)
        channels: list[str]
        if isinstance(target, str):
            channels = [target]
        elif isinstance(target, list):
            channels = [str(name) for name in cast("list[object]", target)]
        else:
            channels = [self._layout.channel_of(key)]
        for index, channel in enumerate(channels):
            # Each receiver gets its own copy, as if each had been sent alone.
            own = message if index == len(channels) - 1 else copy.deepcopy(message)
            self._deliver(_Entry(channel, own, score, shard))

    def _deliver(self, entry: _Entry, front: bool = False) -> None:
        """Hand ``entry`` to its channel's first waiting receiver, or buffer it."""
        inbox = self._inboxes.setdefault(entry.channel, _Inbox())
        while inbox.waiters:
            future = inbox.waiters.popleft()
            self._unwatch(entry.channel)
            if not future.done():
                future.set_result(entry)
                return
        if "!" not in entry.channel:
            self._stranded.add(entry.channel)
        if front:
            inbox.entries.appendleft(entry)
            return
        if len(inbox.entries) >= self._layout.capacity(entry.channel):
            inbox.entries.popleft()
            self._drops.dropped(
                entry.channel, "its local buffer is full: the oldest unreceived message went"
            )
        inbox.entries.append(entry)

    def fail(self, error: BaseException, key: str | None, shard: int) -> bool:
        """Fail one receiver waiting on ``key``, or every one reading ``shard`` if key is None."""
        failed = False
        for channel, inbox in list(self._inboxes.items()):
            if shard not in self._layout.read_shards(channel) or (
                key is not None and self._layout.key(channel) != key
            ):
                continue
            while inbox.waiters:
                future = inbox.waiters.popleft()
                self._unwatch(channel)
                if not future.done():
                    future.set_exception(error)
                    failed = True
                    if key is not None:
                        return True
        return failed

    def _unwatch(self, channel: str) -> None:
        key = self._layout.key(channel)
        for shard in self._layout.read_shards(channel):
            watched = self._watched.setdefault(shard, Counter())
            watched[key] -= 1
            if watched[key] <= 0:
                del watched[key]

    # -- readers -------------------------------------------------------------------

    def watched(self, shard: int) -> list[str]:
        """Return the keys local receivers wait on, on ``shard``."""
        return [key for key, count in self._watched.get(shard, Counter()).items() if count]

    async def _watch(self, shard: int, key: str) -> None:
        reader = self._ensure_reader(shard, key)
        if reader is not None and reader.in_flight and key not in reader.in_flight:
            await reader.wake()

    def _ensure_reader(self, shard: int, key: str) -> ShardReader | None:
        """Start the shard's reader (for ``key``), or tell the running one (returned) to look."""
        reader = self._readers.get(shard)
        if reader is not None and not reader.stopping:
            reader.look_again()
            return reader
        previous = reader.task if reader is not None else None
        self._readers[shard] = ShardReader(
            self, shard, self._layout, self._connections, previous, key
        )
        return None

    async def reader_done(self, reader: ShardReader) -> None:
        """Forget ``reader``, which has stopped, and return what only it could pop (rule 4)."""
        if self._readers.get(reader.shard) is reader:
            del self._readers[reader.shard]
        await self.return_stranded(reader.shard, only_shared=False)

    def sweep(self) -> None:
        """Forget expired buffered messages and the inboxes they leave empty."""
        expired_before = self._layout.expired_before(time.time())
        for channel, inbox in list(self._inboxes.items()):
            while inbox.entries and inbox.entries[0].score < expired_before:
                inbox.entries.popleft()
            if not inbox.entries and not inbox.waiters:
                del self._inboxes[channel]

    # -- returning unclaimed messages ------------------------------------------------

    async def return_stranded(self, shard: int, only_shared: bool) -> None:
        """Put messages no local receiver waits for back in Redis, in their places (rule 4)."""
        stranded: list[_Entry] = []
        candidates = list(self._stranded) if only_shared else list(self._inboxes)
        for channel in candidates:
            inbox = self._inboxes.get(channel)
            if inbox is None or inbox.waiters:
                self._stranded.discard(channel)
                continue
            mine = [entry for entry in inbox.entries if entry.shard == shard]
            if not mine:
                continue
            stranded.extend(mine)
            inbox.entries = deque(entry for entry in inbox.entries if entry.shard != shard)
            if not inbox.entries:
                del self._inboxes[channel]
                self._stranded.discard(channel)
        expired_before = self._layout.expired_before(time.time())
        stranded = [entry for entry in stranded if entry.score >= expired_before]
        if not stranded:
            return
        self._returning += 1
        try:
            await _put_back(self._layout, self._connections, self._senders, shard, stranded)
        finally:
            self._returning -= 1

    # -- flush and close -------------------------------------------------------------

    def clear(self) -> None:
        """Drop every buffered message (``flush()``); waiting receivers go on waiting."""
        for inbox in self._inboxes.values():
            inbox.entries.clear()
        self._stranded.clear()

    async def aclose(self) -> None:
        """Stop the readers; they put back what no receiver took first (rule 4)."""
        # A cancelled receiver's pop may still be out: what it takes is buffered
        # (and may start a reader) before the readers stop and put it back.
        pops = list(self._popping.values())
        if pops:
            await asyncio.wait(pops)
        readers = list(self._readers.values())
        for reader in readers:
            await reader.stop()
        if readers:
            await asyncio.gather(*(reader.task for reader in readers), return_exceptions=True)


async def _put_back(
    layout: Layout,
    connections: Connections,
    senders: Publishers,
    shard: int,
    stranded: list[_Entry],
) -> None:
    """Write ``stranded`` back to their keys on ``shard``, each with its original score.

    On one server over the loop's sending connection, so a send written after
    this reaches Redis after it.
    """
    commands: list[tuple[str | bytes | float, ...]] = []
    for entry in stranded:
        payload = dict(entry.message)
        if "!" in entry.channel:
            payload[CHANNEL_KEY] = entry.channel
        key = layout.key(entry.channel)
        commands.append(("ZADD", key, entry.score, layout.encode(payload)))
        commands.append(("EXPIRE", key, layout.ttl()))
    try:
        with layout.errors(shard):
            if connections.clustered:
                await connections.pipeline(shard, commands)
            else:
                await senders.of(shard).commands("put back unreceived messages", commands)
    except LayerConnectionError:
        logger.exception("lost %d received message(s) that no receiver took", len(stranded))
