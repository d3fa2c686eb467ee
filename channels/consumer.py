"""Consumers: ASGI applications that hand each event to a method named after its type.

A consumer receives events from two sources, the client (through the server's
``receive``) and its own channel on the channel layer, and dispatches each one
by its ``"type"``: ``"chat.message"`` goes to ``chat_message()``.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import threading
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol, TypeVar, cast

from typing_extensions import Self

from channels import DEFAULT_CHANNEL_LAYER
from channels.db import aclose_old_connections, database_sync_to_async, watch_connections
from channels.exceptions import InvalidChannelLayerError, StopConsumer
from channels.layers import get_channel_layer
from channels.layers.protocols import FullChannelLayer
from channels.types import (
    ChannelMessage,
    ConsumerScope,
    Event,
    Receive,
    ReceivedMessage,
    Scope,
    Send,
)
from channels.utils import await_many_dispatch

__all__ = [
    "ASGIConsumer",
    "AsyncConsumer",
    "ConsumerApplication",
    "SyncConsumer",
    "get_handler_name",
]

_C = TypeVar("_C", bound="AsyncConsumer", covariant=True)


class ASGIConsumer(Protocol):
    """What routers and middleware need from an application: one call per connection."""

    # Positional-only, so any ASGI callable fits whatever it names its parameters.
    def __call__(self, scope: Scope, receive: Receive, send: Send, /) -> Awaitable[None]:
        """Handle one connection described by ``scope`` until it ends."""
        ...


def get_handler_name(message: ChannelMessage) -> str:
    """Return the name of the method that handles ``message``: its type with dots as underscores.

    Raises:
        ValueError: the message has no string ``type``, or the name would be private.
    """
    if "type" not in message:
        raise ValueError(
            "message has no 'type' key: every message needs one, such as "
            f"{{'type': 'chat.message'}}; got a message with keys {sorted(map(str, message))!r}"
        )
    message_type: object = message["type"]
    if not isinstance(message_type, str):
        raise ValueError(
            f"message type must be a string, such as 'chat.message'; got {message_type!r}"
        )
    name = message_type.replace(".", "_")
    if name.startswith("_"):
        raise ValueError(
            "message type must not start with '.' or '_', which would name a private "
            f"method; got {message_type!r}"
        )
    return name


# Type checkers see the consumer classes as implementations of ASGIConsumer; at
# run time their only metaclass is ``type``, so a subclass may bring its own.
if TYPE_CHECKING:
    _ApplicationBase = ASGIConsumer
else:
    _ApplicationBase = object


def _unknown_keywords(function: Callable[..., object], keywords: Iterable[str]) -> list[str]:
    """Return the ``keywords`` that ``function``'s signature cannot take, in order."""
    parameters = inspect.signature(function).parameters.values()
    if any(parameter.kind is parameter.VAR_KEYWORD for parameter in parameters):
        return []
    named = {
        parameter.name
        for parameter in parameters
        if parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY)
    }
    return [keyword for keyword in keywords if keyword not in named]


class ConsumerApplication(Generic[_C]):
    """The ASGI application that ``as_asgi()`` returns: a new consumer per connection.

    It carries ``consumer_class`` and ``consumer_initkwargs`` for code that
    inspects routes, and the consumer class's name and docstring.
    """

    def __init__(self, consumer_class: type[_C], initkwargs: dict[str, object]) -> None:
        self.consumer_class = consumer_class
        self.consumer_initkwargs = initkwargs
        self.__name__ = consumer_class.__name__
        self.__qualname__ = consumer_class.__qualname__
        self.__module__ = consumer_class.__module__
        self.__doc__ = consumer_class.__doc__

    # ASGI ignores an application's return value; typed Any so Django's path()
    # stubs, which want a coroutine of an HttpResponse, accept this application.
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> Any:
        """Build a consumer from ``consumer_initkwargs`` and let it handle the connection."""
        consumer = self.consumer_class(**self.consumer_initkwargs)
        await consumer(scope, receive, send)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} for {self.__module__}.{self.__qualname__}>"


# Any: a handler's return value is ignored; handlers may return anything.
def _handler_for(consumer: AsyncConsumer, message: ChannelMessage) -> Callable[..., Any]:
    """Return ``consumer``'s method for ``message``, or raise ValueError naming what is missing."""
    # Any: a handler returns an awaitable on async consumers and None on sync ones.
    try:
        name = get_handler_name(message)
    except ValueError as exc:
        raise ValueError(
            f"{type(consumer).__qualname__} cannot dispatch a message: {exc}"
        ) from None
    handler: object = getattr(consumer, name, None)
    if not callable(handler):
        raise ValueError(
            f"{type(consumer).__qualname__} has no handler for message type "
            f"{message['type']!r}: define a method named {name!r}"
        )
    return handler


class AsyncConsumer(_ApplicationBase):
    """The base consumer: reads events from the client and its channel, and dispatches them.

    Each event goes to the method named after its type (see get_handler_name);
    a handler raises StopConsumer to end the consumer. An instance handles one
    connection; ``as_asgi()`` gives an application that builds one per connection.

    Per-connection state lives under upstream's public names (``scope``,
    ``channel_layer``, ``channel_name``, ``channel_receive``, ``base_send``) or
    under name-mangled ones, so a subclass's own ``_names`` never collide.
    """

    #: Whether handlers are plain functions run in a thread (SyncConsumer).
    _sync: ClassVar[bool] = False

    #: The CHANNEL_LAYERS alias of the layer this consumer uses.
    channel_layer_alias: str = DEFAULT_CHANNEL_LAYER

    #: The connection's scope, with the keys that routers and middleware add.
    scope: ConsumerScope
    #: This consumer's channel on the layer; set only when a layer is configured.
    channel_name: str
    #: Waits for the next message on ``channel_name``; set only when a layer is configured.
    channel_receive: Callable[[], Awaitable[ReceivedMessage]]
    #: The server's ``send`` callable.
    base_send: Send

    # A class default, so subclasses whose __init__ skips super() still work.
    __layer: FullChannelLayer | None = None

    @classmethod
    def as_asgi(cls, **initkwargs: object) -> ConsumerApplication[Self]:
        """Return an ASGI application that builds ``cls(**initkwargs)`` for each connection.

        Raises:
            TypeError: the consumer's ``__init__`` has no parameter for a keyword.
        """
        unknown = _unknown_keywords(cls, initkwargs)
        if unknown:
            taken = [
                name
                for name, parameter in inspect.signature(cls).parameters.items()
                if parameter.kind is not parameter.VAR_POSITIONAL
            ]
            raise TypeError(
                f"{cls.__qualname__}.as_asgi() passes its keywords to "
                f"{cls.__qualname__}.__init__, which takes "
                f"{'the keywords ' + repr(taken) if taken else 'no keywords'}; "
                f"got unknown {unknown!r}"
            )
        return ConsumerApplication(cls, initkwargs)

    @property
    def channel_layer(self) -> FullChannelLayer:
        """The layer named by ``channel_layer_alias``.

        Raises:
            InvalidChannelLayerError: CHANNEL_LAYERS has no such alias.
        """
        layer = self.__find_layer()
        if layer is None:
            raise InvalidChannelLayerError(
                f"{type(self).__qualname__} uses the channel layer "
                f"{self.channel_layer_alias!r}, but CHANNEL_LAYERS has no such alias: "
                f"configure it in settings, for example CHANNEL_LAYERS = "
                f"{{{self.channel_layer_alias!r}: {{'BACKEND': "
                "'channels.layers.InMemoryChannelLayer'}}"
            )
        return layer

    @channel_layer.setter
    def channel_layer(self, layer: FullChannelLayer) -> None:
        self.__layer = layer

    def __find_layer(self) -> FullChannelLayer | None:
        # A layer assigned before the connection starts (tests do) is kept.
        if self.__layer is None:
            self.__layer = get_channel_layer(self.channel_layer_alias)
        return self.__layer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one connection: dispatch events until a handler raises StopConsumer."""
        watch_connections()
        # The scope is a plain dict; ConsumerScope only names the keys it may hold.
        self.scope = cast(ConsumerScope, scope)
        if not self._sync:
            self.base_send = send
        await aclose_old_connections()
        try:
            sources: list[Callable[[], Awaitable[ReceivedMessage]]] = [receive]
            layer = self.__find_layer()
            if layer is not None:
                self.channel_name = await layer.new_channel()
                self.channel_receive = functools.partial(layer.receive, self.channel_name)
                sources.append(self.channel_receive)
            await await_many_dispatch(sources, self.__dispatch_received)
        except StopConsumer:
            pass
        finally:
            await aclose_old_connections()

    async def __dispatch_received(self, message: ReceivedMessage) -> None:
        # Here rather than in dispatch() so that an overridden dispatch() keeps
        # it. Sync handlers close stale connections in their own thread, where
        # database_sync_to_async runs them, so closing here would only cost a hop.
        if not self._sync:
            await aclose_old_connections()
        await self.dispatch(message)

    async def dispatch(self, message: ReceivedMessage) -> None:
        """Await the handler for ``message``; override to route messages differently.

        Raises:
            ValueError: the message has no usable type, or no method handles it.
        """
        await _handler_for(self, message)(message)

    async def send(self, message: Event) -> None:
        """Send an ASGI event to the server."""
        await self.base_send(message)


class _QueuedSend:
    """A sync consumer's ``base_send``: hands events to the event loop without waiting.

    Invariants: it is called only from handler threads, never from the loop;
    events go out in the order they were handed over, each send starting once
    the previous one is done (``__last`` is the newest send); at most
    ``limit`` events are handed over and not yet sent (a caller blocks in
    ``__call__`` past that); ``flush()``, on the loop, waits for every event
    handed over so far and raises the first failure of those sends.
    """

    def __init__(self, send: Send, limit: int) -> None:
        self.__send = send
        self.__loop = asyncio.get_running_loop()
        self.__unsent = threading.Semaphore(limit)
        self.__last: asyncio.Future[None] | None = None

    def __call__(self, message: Event) -> None:
        """Hand ``message`` to the event loop, from a handler's thread."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            raise RuntimeError(
                "a sync consumer's send() must be called from a handler's thread, not from "
                "async code, where waiting for the send would block the event loop"
            )
        self.__unsent.acquire()
        self.__loop.call_soon_threadsafe(self.__start, message)

    def __start(self, message: Event) -> None:
        self.__last = asyncio.ensure_future(self.__send_after(self.__last, message))

    async def __send_after(self, previous: asyncio.Future[None] | None, message: Event) -> None:
        try:
            if previous is not None:
                await previous
            await self.__send(message)
        finally:
            self.__unsent.release()

    async def flush(self) -> None:
        """Wait until every event handed over so far is sent."""
        last, self.__last = self.__last, None
        if last is not None:
            await last


class SyncConsumer(AsyncConsumer):
    """A consumer whose handlers are plain functions, run in a thread.

    Handlers run through database_sync_to_async, which closes stale database
    connections around each one. ``send`` (and ``base_send``, a plain callable
    here as upstream) hands the event to the event loop and returns without
    waiting for it to go out (a thread hop each way costs more than the rest of
    a round trip); events go out in order, a handler's events are all sent
    before the next event is dispatched, and a handler waits in ``send`` only
    while ``MAX_UNSENT`` of its events are still unsent. A send that fails
    raises from the dispatch of the handler that sent it.
    """

    _sync: ClassVar[bool] = True
    MAX_UNSENT: ClassVar[int] = 100

    base_send: Callable[[Event], None]  # type: ignore[assignment]  # sync here, as upstream
    __sender: _QueuedSend
    __in_thread: Callable[[ReceivedMessage], Awaitable[None]]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one connection, running each handler in a thread."""
        self.base_send = self.__sender = _QueuedSend(send, self.MAX_UNSENT)
        # Built once per connection: a new wrapper per message costs a tenth
        # of a sync echo's round trip.
        self.__in_thread = database_sync_to_async(self.__run_handler)
        await super().__call__(scope, receive, send)

    async def dispatch(self, message: ReceivedMessage) -> None:
        """Run the handler for ``message`` in a thread, then wait until its events are sent.

        Raises:
            ValueError: the message has no usable type, or no method handles it.
        """
        try:
            await self.__in_thread(message)
        finally:
            await self.__sender.flush()

    def __run_handler(self, message: ReceivedMessage) -> None:
        _handler_for(self, message)(message)

    def send(  # type: ignore[override]  # upstream's sync consumers send synchronously
        self, message: Event
    ) -> None:
        """Send an ASGI event to the server from a handler's thread.

        Raises:
            RuntimeError: called from the event loop's own thread, where a sync
                send could only block the loop; async code awaits a send of its own.
        """
        self.base_send(message)
