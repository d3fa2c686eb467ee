"""The pub/sub layer's subscribers: one connection per Redis host (or cluster node) and loop.

redis-py opens the connection, with every option the host's settings allow
(TLS, Unix sockets, AUTH, RESP version, client name, Sentinel), and answers
the handshake. Then its transport is handed to a :class:`Subscriber`, which
splits what Redis pushes into replies as the bytes arrive and hands each
message on at once: no reader task to wake per message, no stream read per
line. That halves what a message costs to receive.

:class:`Subscriber` keeps these rules:

* ``subscribe(name)`` returns once Redis has confirmed the subscription; the
  name then stays subscribed, across reconnections, until ``unsubscribe(name)``
  finds that its listener no longer ``wants`` it. A subscription Redis refuses
  (an ACL) raises NoPermissionError naming the host and Redis's reason.
* Redis answers commands in order, so each error reply belongs to the oldest
  command still awaiting its answers, and fails every name that command holds.
* After a lost connection it fails the confirmations still awaited, awaits the
  listener's ``on_disconnect``, reconnects with a delay doubling from 0.05 s to
  1 s for as long as it takes, subscribes to every name again, and once Redis
  has confirmed them all awaits ``on_reconnect``. Subscribing meanwhile raises
  ConnectionError naming the host.
* Bytes from a connection it has replaced or closed are ignored.

A subscriber given a :class:`ShardRouter` speaks sharded pub/sub to one node
of a Redis Cluster instead (SSUBSCRIBE, one command per hash slot). It does
not reconnect: a lost connection, or a name the node drops because its slot
moved, is reported to the router, which finds the name's new owner (see
``_sharded``). A refusal that names the slot's owner raises ``MovedError``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Final, NamedTuple, Protocol, cast

from redis.asyncio.connection import AbstractConnection
from redis.crc import key_slot
from redis.exceptions import MovedError, NoPermissionError, ResponseError

from channels.layers.redis._connections import ConnectionSource, take_over
from channels.layers.redis._errors import HostErrors
from channels.layers.redis._resp import ReplyProtocol, parse_reply

# parse_reply lives in _resp; it is named here too, where the subscriber uses it.
__all__ = ["Link", "Listener", "ShardRouter", "Subscriber", "parse_reply"]

logger = logging.getLogger("channels.layers.redis.pubsub")

_ACK_TIMEOUT: Final = 5.0
_RETRY_FIRST_DELAY: Final = 0.05
_RETRY_MAX_DELAY: Final = 1.0


class _Dialect(NamedTuple):
    """The commands a subscriber writes and the push kinds it reads."""

    subscribe: str
    unsubscribe: str
    message: bytes
    subscribed: bytes
    unsubscribed: bytes


_PLAIN: Final = _Dialect("SUBSCRIBE", "UNSUBSCRIBE", b"message", b"subscribe", b"unsubscribe")
_SHARDED: Final = _Dialect(
    "SSUBSCRIBE", "SUNSUBSCRIBE", b"smessage", b"ssubscribe", b"sunsubscribe"
)


class Listener(Protocol):
    """What a subscriber reports to: the pub/sub layer's state for one event loop."""

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The event loop the subscriber runs on."""
        ...

    def deliver(self, name: str, data: bytes) -> None:
        """Take a message published on the pub/sub channel ``name``."""
        ...

    def wants(self, name: str) -> bool:
        """Whether the pub/sub channel ``name`` must stay subscribed."""
        ...

    async def notify(self, hook_name: str, host: str) -> None:
        """Run the ``on_disconnect`` or ``on_reconnect`` hook."""
        ...


class ShardRouter(Protocol):
    """Who finds a new node for a cluster node subscriber's names (see ``_sharded``)."""

    def lost(self, subscriber: Subscriber, exc: BaseException) -> None:
        """``subscriber``'s connection is gone; it subscribes nothing any more."""
        ...

    def dropped(self, subscriber: Subscriber, name: str) -> None:
        """The node unsubscribed ``subscriber`` from ``name`` itself: its slot moved."""
        ...


class Link(ReplyProtocol):
    """One subscriber connection's bytes, split into replies for its subscriber until cut."""

    def __init__(self, subscriber: Subscriber) -> None:
        super().__init__()
        self.subscriber = subscriber

    def replied(self, reply: object) -> None:
        """Hand ``reply`` to the subscriber."""
        self.subscriber.received(reply)

    def cut(self, reason: BaseException) -> None:
        """Stop feeding the subscriber; the first cut reports ``reason`` to it."""
        if self.live:
            self.live = False
            self.subscriber.lost(self, reason)


class _Sent:
    """A (un)subscribe command written and not fully answered: the names whose replies are due."""

    __slots__ = ("names", "slot", "subscribing")

    def __init__(self, subscribing: bool, names: Iterable[str], slot: int | None) -> None:
        self.subscribing = subscribing
        self.names = deque(names)
        self.slot = slot


class Subscriber:
    """The subscriber connection to one Redis host for one event loop (rules: module docstring).

    Args:
        listener: gets the messages and says which names are still wanted.
        pool: returns the host's pool (or cluster node), whose options open the connection.
        errors: names the host in connection errors.
        router: makes this a cluster node's sharded subscriber, reporting to ``router``.
    """

    def __init__(
        self,
        listener: Listener,
        pool: Callable[[], ConnectionSource],
        errors: HostErrors,
        *,
        router: ShardRouter | None = None,
    ) -> None:
        self._listener = listener
        self._pool = pool
        self._errors = errors
        self._router = router
        self._dialect = _PLAIN if router is None else _SHARDED
        self._conn: AbstractConnection | None = None
        self._transport: asyncio.WriteTransport | None = None
        self._link: Link | None = None
        self._recovery: asyncio.Task[None] | None = None
        # A sharded subscriber whose connection was lost or closed: it never reconnects.
        self._dead = False
        self._lock = asyncio.Lock()
        self._names: set[str] = set()
        # Each resolves to None once Redis confirms, or to the error that lost it;
        # a result rather than an exception, as nobody may be left to retrieve it.
        self._acks: dict[str, asyncio.Future[Exception | None]] = {}
        # The commands written on this connection whose answers are still due, oldest first.
        self._sent: deque[_Sent] = deque()

    @property
    def host(self) -> str:
        """The host (or cluster node) this subscriber connects to, as errors name it."""
        return self._errors.host

    async def subscribe(self, name: str) -> None:
        """Subscribe to ``name`` and return once Redis has confirmed it."""
        if name in self._names and name not in self._acks:
            return  # confirmed already: every receive of a channel comes this way
        errors = self._errors.about(f"subscribe to {name!r}")
        acks = await self._request((name,), errors)
        if acks:
            error = (await self._outcomes(acks, errors))[name]
            if error is not None:
                raise _refused(error, errors) if isinstance(error, ResponseError) else error

    async def subscribe_many(self, names: Collection[str]) -> dict[str, Exception]:
        """Subscribe to ``names`` (one command per hash slot on a cluster node); return failures.

        Waits until Redis has answered for every name, and maps each name it
        could not subscribe to the error saying why.

        Raises:
            LayerConnectionError: the connection could not be opened; nothing was subscribed.
        """
        errors = self._errors.about(f"subscribe to {len(names)} channels")
        acks = await self._request(names, errors)
        outcomes = await self._outcomes(acks, errors)
        return {
            name: _refused(error, errors) if isinstance(error, ResponseError) else error
            for name, error in outcomes.items()
            if error is not None
        }

    async def unsubscribe(self, name: str) -> None:
        """Stop receiving ``name`` unless it is wanted again; a lost connection drops it anyway."""
        async with self._lock:
            if self._listener.wants(name) or name not in self._names:
                return
            self._names.discard(name)
            self._acks.pop(name, None)
            if self._recovery is None and self._conn is not None:
                self._send(False, (name,))

    def drop(self, name: str) -> None:
        """Forget ``name`` without telling Redis, which refused it or no longer holds it."""
        self._names.discard(name)
        self._acks.pop(name, None)

    def received(self, reply: object) -> None:
        """Act on one reply: deliver a message, or note a confirmed subscription."""
        if isinstance(reply, ResponseError):
            self._refusal(reply)
            return
        if not isinstance(reply, list):
            return
        push = cast("list[object]", reply)
        if len(push) != 3:
            return
        kind, name, data = push
        if not isinstance(name, bytes):
            return
        dialect = self._dialect
        if kind == dialect.message and isinstance(data, bytes):
            self._listener.deliver(name.decode(), data)
        elif kind == dialect.subscribed:
            text = name.decode()
            self._answered(True, text)
            ack = self._acks.pop(text, None)
            if ack is not None and not ack.done():
                ack.set_result(None)
        elif kind == dialect.unsubscribed:
            text = name.decode()
            if not self._answered(False, text) and self._router is not None and text in self._names:
                # Not an answer: the node let the name go, as its slot now lives elsewhere.
                self.drop(text)
                self._router.dropped(self, text)

    def lost(self, link: Link, exc: BaseException) -> None:
        """Start reconnecting after ``link``'s connection was lost (a cluster node: report it)."""
        if link is not self._link:
            return
        if self._router is not None:
            if not self._dead:
                self._dead = True
                self._fail_acks(self._errors.about("keep the subscription").error(exc))
                self._router.lost(self, exc)
        elif self._recovery is None:
            self._recovery = self._listener.loop.create_task(self._recover(exc))
        else:  # lost again while resubscribing: that attempt has failed
            self._fail_acks(self._errors.error(exc))

    async def aclose(self) -> None:
        """Stop reconnecting and close the connection; every subscription ends."""
        self._dead = self._router is not None
        recovery, self._recovery = self._recovery, None
        if recovery is not None:
            recovery.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await recovery
        self._names.clear()
        self._fail_acks(self._errors.error("the layer was closed"))
        await self._disconnect()

    # -- commands and their answers ----------------------------------------------------

    async def _request(
        self, names: Iterable[str], errors: HostErrors
    ) -> dict[str, asyncio.Future[Exception | None]]:
        """Write a subscribe for each name not yet asked for; return every awaited confirmation."""
        async with self._lock:
            acks: dict[str, asyncio.Future[Exception | None]] = {}
            new: list[str] = []
            for name in dict.fromkeys(names):
                ack = self._acks.get(name)
                if ack is not None:
                    acks[name] = ack
                elif name not in self._names:
                    new.append(name)
            if new:
                if self._dead:
                    raise errors.error("the connection to this node was lost")
                if self._recovery is not None:
                    raise errors.error("the connection is being re-established")
                if self._conn is None:
                    with errors:
                        await self._open()
                for name in new:
                    acks[name] = self._expect(name)
                    self._names.add(name)
                self._send(True, new)
        return acks

    def _send(self, subscribing: bool, names: Sequence[str]) -> None:
        """Write (un)subscribe commands for ``names``: one per hash slot on a cluster node."""
        dialect = self._dialect
        command = dialect.subscribe if subscribing else dialect.unsubscribe
        if self._router is None:
            self._sent.append(_Sent(subscribing, names, None))
            self._write(command, *names)
            return
        by_slot: dict[int, list[str]] = {}
        for name in names:
            by_slot.setdefault(key_slot(name.encode()), []).append(name)
        for slot, group in by_slot.items():
            self._sent.append(_Sent(subscribing, group, slot))
            self._write(command, *group)

    def _answered(self, subscribing: bool, name: str) -> bool:
        """Count a confirmation of ``name`` against the oldest command; False if not its answer."""
        sent = self._sent[0] if self._sent else None
        if sent is None or sent.subscribing is not subscribing or sent.names[0] != name:
            return False
        sent.names.popleft()
        if not sent.names:
            self._sent.popleft()
        return True

    def _refusal(self, reply: ResponseError) -> None:
        """Fail the names of the command Redis refused: the oldest one still answered."""
        if not self._sent:
            return
        sent = self._sent.popleft()
        moved = _moved_slot(reply)
        if moved is not None and sent.slot is not None and moved != sent.slot:
            # The late refusal of an unsubscribe that the node's own unsubscribe
            # push answered in its place (the slot moved): not this command's.
            self._sent.appendleft(sent)
            return
        if not sent.subscribing:
            return  # an unsubscribe from a slot the node no longer holds: nothing to undo
        for name in sent.names:
            ack = self._acks.pop(name, None)
            if ack is not None and not ack.done():
                ack.set_result(reply)

    # -- connections -------------------------------------------------------------

    async def _open(self) -> None:
        """Connect through redis-py, then take its transport over."""
        link = Link(self)
        conn, transport = await take_over(self._pool(), link)
        self._sent.clear()
        self._conn, self._transport, self._link = conn, transport, link

    async def _disconnect(self) -> None:
        conn, link = self._conn, self._link
        self._conn = self._transport = self._link = None
        self._sent.clear()
        if link is not None:
            link.live = False
        if conn is not None:
            await conn.disconnect(nowait=True)

    def _write(self, *args: str) -> None:
        conn, transport, link = self._conn, self._transport, self._link
        if conn is not None and transport is not None and link is not None and link.live:
            transport.writelines(conn.pack_command(*args))

    def _expect(self, name: str) -> asyncio.Future[Exception | None]:
        ack = self._acks[name] = self._listener.loop.create_future()
        return ack

    async def _outcomes(
        self, acks: Mapping[str, asyncio.Future[Exception | None]], errors: HostErrors
    ) -> dict[str, Exception | None]:
        """Wait until every confirmation in ``acks`` has settled, each for at most the timeout."""
        # Timers rather than asyncio.wait_for, which on Python 3.11 and older
        # swallows a cancellation that arrives as the confirmation does.
        loop = self._listener.loop
        timers = [
            loop.call_later(_ACK_TIMEOUT, self._time_out, ack, errors) for ack in acks.values()
        ]
        try:
            return {name: await asyncio.shield(ack) for name, ack in acks.items()}
        finally:
            for timer in timers:
                timer.cancel()

    def _time_out(self, ack: asyncio.Future[Exception | None], errors: HostErrors) -> None:
        for name, pending in list(self._acks.items()):
            if pending is ack:
                del self._acks[name]
        if not ack.done():
            ack.set_result(errors.error(f"no confirmation within {_ACK_TIMEOUT}s"))

    def _fail_acks(self, error: Exception) -> None:
        for ack in self._acks.values():
            if not ack.done():
                ack.set_result(error)
        self._acks.clear()

    # -- recovery ------------------------------------------------------------------

    async def _recover(self, exc: BaseException) -> None:
        host = self._errors.host
        logger.warning("lost the subscriber connection to Redis at %s: %s", host, exc)
        self._fail_acks(self._errors.about("keep the subscription").error(exc))
        try:
            await self._disconnect()
            await self._listener.notify("on_disconnect", host)
            delay = _RETRY_FIRST_DELAY
            while not await self._resubscribe():
                await asyncio.sleep(delay)
                delay = min(delay * 2, _RETRY_MAX_DELAY)
        finally:
            if self._recovery is asyncio.current_task():
                self._recovery = None
        logger.warning("reconnected to Redis at %s", host)
        await self._listener.notify("on_reconnect", host)

    async def _resubscribe(self) -> bool:
        async with self._lock:
            try:
                await self._open()
                names = sorted(self._names)
                if names:
                    acks = {name: self._expect(name) for name in names}
                    # One SUBSCRIBE names them all: a refusal fails the whole attempt.
                    self._send(True, names)
                    # Once every confirmation is in, every channel and group is live again.
                    outcomes = await self._outcomes(acks, self._errors)
                    if any(error is not None for error in outcomes.values()):
                        raise ConnectionError("Redis did not confirm every subscription")
            except Exception:
                await self._disconnect()
                return False
            return True


def _moved_slot(reply: ResponseError) -> int | None:
    """The slot a ``MOVED <slot> <host:port>`` refusal names; None for other refusals."""
    words = str(reply).split(" ")
    if len(words) == 3 and words[0] == "MOVED" and words[1].isdigit():
        return int(words[1])
    return None


def _refused(reply: ResponseError, errors: HostErrors) -> ResponseError:
    """The error for a subscription Redis refused: names the host and Redis's reason.

    A NoPermissionError (what redis-py raises for an ACL refusal) when Redis
    says NOPERM, else a ResponseError: both are what a redis-py user catches.
    A cluster node that does not hold the channel's slot answers MOVED; that
    comes back as redis-py's MovedError, which names the slot and its owner.
    """
    reason = str(reply)
    if _moved_slot(reply) is not None:
        return MovedError(reason.partition(" ")[2])
    kind = NoPermissionError if reason.startswith("NOPERM") else ResponseError
    return kind(f"Redis at {errors.host} refused to {errors.doing or 'subscribe'}: {reason}")
