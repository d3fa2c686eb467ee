"""The pub/sub layer's subscriber: one connection per Redis host and event loop.

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
* After a lost connection it fails the confirmations still awaited, awaits the
  listener's ``on_disconnect``, reconnects with a delay doubling from 0.05 s to
  1 s for as long as it takes, subscribes to every name again, and once Redis
  has confirmed them all awaits ``on_reconnect``. Subscribing meanwhile raises
  ConnectionError naming the host.
* Bytes from a connection it has replaced or closed are ignored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Final, Protocol, cast

from redis.asyncio import ConnectionPool
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import InvalidResponse, NoPermissionError, ResponseError

from channels.layers.redis._errors import HostErrors

__all__ = ["Link", "Listener", "Subscriber", "parse_reply"]

logger = logging.getLogger("channels.layers.redis.pubsub")

_CONNECT_TIMEOUT: Final = 2.0
"""Seconds a subscriber connection may take to connect, unless the host's options say."""
_ACK_TIMEOUT: Final = 5.0
_RETRY_FIRST_DELAY: Final = 0.05
_RETRY_MAX_DELAY: Final = 1.0

_CRLF: Final = b"\r\n"
_ARRAYS: Final = frozenset(b"*>")  # RESP2 array, RESP3 push
_NULL: Final = frozenset(b"_")


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


def parse_reply(data: bytes, pos: int) -> tuple[object, int] | int:
    """Parse the reply at ``pos``: ``(reply, end)``, or the length ``data`` must reach first.

    Reads what a subscriber connection receives, in RESP2 or RESP3: arrays and
    pushes of bulk strings, integers and simple strings; errors come back as
    ResponseError objects.
    """
    end = data.find(_CRLF, pos)
    if end < 0:
        return len(data) + 1
    kind = data[pos]
    after = end + 2
    if kind in _ARRAYS:
        items: list[object] = []
        for _ in range(int(data[pos + 1 : end])):
            parsed = parse_reply(data, after)
            if isinstance(parsed, int):
                return parsed
            item, after = parsed
            items.append(item)
        return items, after
    if kind == ord("$"):
        size = int(data[pos + 1 : end])
        if size < 0:
            return None, after
        if len(data) < after + size + 2:
            return after + size + 2
        return data[after : after + size], after + size + 2
    if kind == ord(":"):
        return int(data[pos + 1 : end]), after
    if kind == ord("+"):
        return data[pos + 1 : end], after
    if kind == ord("-"):
        return ResponseError(data[pos + 1 : end].decode("utf-8", "replace")), after
    if kind in _NULL:
        return None, after
    raise InvalidResponse(f"unexpected RESP type byte {bytes([kind])!r} from a subscriber")


class Link(asyncio.Protocol):
    """One subscriber connection's bytes, split into replies for its subscriber until cut."""

    def __init__(self, subscriber: Subscriber) -> None:
        self.subscriber = subscriber
        self.live = True
        self._pending = bytearray()
        self._needed = 0

    def data_received(self, data: bytes) -> None:
        """Hand every complete reply in ``data`` (and what came before it) to the subscriber."""
        if self._pending:
            self._pending += data
            if len(self._pending) < self._needed:
                return
            data = bytes(self._pending)
            self._pending.clear()
        pos = 0
        try:
            while pos < len(data) and self.live:
                parsed = parse_reply(data, pos)
                if isinstance(parsed, int):
                    self._needed = parsed - pos
                    self._pending += data[pos:]
                    return
                reply, pos = parsed
                self.subscriber.received(reply)
        except (ValueError, InvalidResponse) as exc:
            self.cut(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        """Report the lost connection, unless this link was cut already."""
        self.cut(exc or ConnectionError("the server closed the connection"))

    def cut(self, exc: BaseException) -> None:
        """Stop feeding the subscriber; the first cut reports ``exc`` to it."""
        if self.live:
            self.live = False
            self.subscriber.lost(self, exc)


class Subscriber:
    """The subscriber connection to one Redis host for one event loop (rules: module docstring).

    Args:
        listener: gets the messages and says which names are still wanted.
        pool: returns the host's pool, whose options open the connection.
        errors: names the host in connection errors.
    """

    def __init__(
        self, listener: Listener, pool: Callable[[], ConnectionPool], errors: HostErrors
    ) -> None:
        self._listener = listener
        self._pool = pool
        self._errors = errors
        self._conn: AbstractConnection | None = None
        self._transport: asyncio.WriteTransport | None = None
        self._link: Link | None = None
        self._recovery: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._names: set[str] = set()
        # Each resolves to None once Redis confirms, or to the error that lost it;
        # a result rather than an exception, as nobody may be left to retrieve it.
        self._acks: dict[str, asyncio.Future[Exception | None]] = {}

    async def subscribe(self, name: str) -> None:
        """Subscribe to ``name`` and return once Redis has confirmed it."""
        if name in self._names and name not in self._acks:
            return  # confirmed already: every receive of a channel comes this way
        errors = self._errors.about(f"subscribe to {name!r}")
        async with self._lock:
            ack = self._acks.get(name)
            if ack is None and name not in self._names:
                if self._recovery is not None:
                    raise errors.error("the connection is being re-established")
                if self._conn is None:
                    with errors:
                        await self._open()
                ack = self._expect(name)
                self._names.add(name)
                self._write("SUBSCRIBE", name)
        if ack is not None:
            await self._confirmed(ack, errors)

    async def unsubscribe(self, name: str) -> None:
        """Stop receiving ``name`` unless it is wanted again; a lost connection drops it anyway."""
        async with self._lock:
            if self._listener.wants(name) or name not in self._names:
                return
            self._names.discard(name)
            self._acks.pop(name, None)
            if self._recovery is None and self._conn is not None:
                self._write("UNSUBSCRIBE", name)

    def received(self, reply: object) -> None:
        """Act on one reply: deliver a message, or note a confirmed subscription."""
        if isinstance(reply, ResponseError):
            # A refused SUBSCRIBE (an ACL, say). Redis answers in order: the refusal is
            # for the oldest confirmation awaited, or for every one while resubscribing,
            # as one SUBSCRIBE names them all.
            if self._recovery is not None:
                self._fail_acks(reply)
            elif self._acks:
                oldest = self._acks.pop(next(iter(self._acks)))
                if not oldest.done():
                    oldest.set_result(reply)
            return
        if not isinstance(reply, list):
            return
        push = cast("list[object]", reply)
        if len(push) != 3:
            return
        kind, name, data = push
        if not isinstance(name, bytes):
            return
        if kind == b"message" and isinstance(data, bytes):
            self._listener.deliver(name.decode(), data)
        elif kind == b"subscribe":
            ack = self._acks.pop(name.decode(), None)
            if ack is not None and not ack.done():
                ack.set_result(None)

    def lost(self, link: Link, exc: BaseException) -> None:
        """Start reconnecting after ``link``'s connection was lost."""
        if link is not self._link:
            return
        if self._recovery is None:
            self._recovery = self._listener.loop.create_task(self._recover(exc))
        else:  # lost again while resubscribing: that attempt has failed
            self._fail_acks(self._errors.error(exc))

    async def aclose(self) -> None:
        """Stop reconnecting and close the connection; every subscription ends."""
        recovery, self._recovery = self._recovery, None
        if recovery is not None:
            recovery.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await recovery
        self._names.clear()
        self._fail_acks(self._errors.error("the layer was closed"))
        await self._disconnect()

    # -- connections -------------------------------------------------------------

    async def _open(self) -> None:
        """Connect through redis-py, then take its transport over."""
        pool = self._pool()
        options = dict(pool.connection_kwargs)
        if options.get("socket_connect_timeout") is None:
            options["socket_connect_timeout"] = _CONNECT_TIMEOUT
        conn = pool.connection_class(**options)
        try:
            # connect(), not connect_check_health(): a Sentinel connection finds its master
            # there. redis-py leaves connect() unannotated.
            await cast("Callable[[], Awaitable[None]]", conn.connect)()
        except BaseException:
            await conn.disconnect(nowait=True)
            raise
        # redis-py keeps the transport behind its private stream writer; read once here,
        # and refuse clearly should a redis-py release keep it elsewhere.
        writer: object = getattr(conn, "_writer", None)
        if not isinstance(writer, asyncio.StreamWriter):
            await conn.disconnect(nowait=True)
            raise RuntimeError(
                f"the Redis pub/sub layer cannot read from a {type(conn).__qualname__}: it "
                "takes over the asyncio stream of redis-py's connection (redis-py 5 to 8 "
                f"keep one), and this connection has {type(writer).__qualname__} there"
            )
        self._conn, self._transport, self._link = conn, writer.transport, Link(self)
        self._transport.set_protocol(self._link)

    async def _disconnect(self) -> None:
        conn, link = self._conn, self._link
        self._conn = self._transport = self._link = None
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

    async def _confirmed(self, ack: asyncio.Future[Exception | None], errors: HostErrors) -> None:
        # A timer rather than asyncio.wait_for, which on Python 3.11 and older
        # swallows a cancellation that arrives as the confirmation does.
        timer = self._listener.loop.call_later(_ACK_TIMEOUT, self._time_out, ack, errors)
        try:
            error = await asyncio.shield(ack)
        finally:
            timer.cancel()
        if isinstance(error, ResponseError):
            raise _refused(error, errors) from error
        if error is not None:
            raise error

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
                    acks = [self._expect(name) for name in names]
                    self._write("SUBSCRIBE", *names)
                    # Once every confirmation is in, every channel and group is live again.
                    for ack in acks:
                        await self._confirmed(ack, self._errors)
            except Exception:
                await self._disconnect()
                return False
            return True


def _refused(reply: ResponseError, errors: HostErrors) -> ResponseError:
    """The error for a SUBSCRIBE Redis refused: names the host and Redis's reason.

    A NoPermissionError (what redis-py raises for an ACL refusal) when Redis
    says NOPERM, else a ResponseError: both are what a redis-py user catches.
    """
    reason = str(reply)
    kind = NoPermissionError if reason.startswith("NOPERM") else ResponseError
    return kind(f"Redis at {errors.host} refused to {errors.doing or 'subscribe'}: {reason}")
