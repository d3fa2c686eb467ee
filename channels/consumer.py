"""Consumers: ASGI applications that hand each event to a method named after its type.

A consumer receives events from two sources, the client (through the server's
``receive``) and its own channel on the channel layer, and dispatches each one
by its ``"type"``: ``"chat.message"`` goes to ``chat_message()``.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar, Generic, Protocol, TypeVar, cast

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


class ConsumerApplication(ASGIConsumer, Generic[_C]):
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


class AsyncConsumer(ASGIConsumer):
    """The base consumer: reads events from the client and its channel, and dispatches them.

    Each event goes to the method named after its type (see get_handler_name);
    a handler raises StopConsumer to end the consumer. An instance handles one
    connection; ``as_asgi()`` gives an application that builds one per connection.
    """

    #: The CHANNEL_LAYERS alias of the layer this consumer uses.
    channel_layer_alias: str = DEFAULT_CHANNEL_LAYER

    #: The connection's scope, with the keys that routers and middleware add.
    scope: ConsumerScope
    #: This consumer's channel on the layer; set only when a layer is configured.
    channel_name: str
    #: The server's ``send`` callable.
    base_send: Send

    # A class default, so subclasses whose __init__ skips super() still work.
    _channel_layer: FullChannelLayer | None = None

    def __init__(self, **initkwargs: object) -> None:
        for key, value in initkwargs.items():
            setattr(self, key, value)

    @classmethod
    def as_asgi(cls, **initkwargs: object) -> ConsumerApplication[Self]:
        """Return an ASGI application that builds ``cls(**initkwargs)`` for each connection.

        Raises:
            TypeError: a keyword does not name an attribute of the class.
        """
        unknown = sorted(key for key in initkwargs if not hasattr(cls, key))
        if unknown:
            raise TypeError(
                f"{cls.__qualname__}.as_asgi() accepts only keywords that name class "
                f"attributes, such as channel_layer_alias; got unknown {unknown!r}"
            )
        return ConsumerApplication(cls, initkwargs)

    @property
    def channel_layer(self) -> FullChannelLayer:
        """The layer named by ``channel_layer_alias``.

        Raises:
            InvalidChannelLayerError: CHANNEL_LAYERS has no such alias.
        """
        layer = self._find_channel_layer()
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
        self._channel_layer = layer

    def _find_channel_layer(self) -> FullChannelLayer | None:
        # A layer assigned before the connection starts (tests do) is kept.
        if self._channel_layer is None:
            self._channel_layer = get_channel_layer(self.channel_layer_alias)
        return self._channel_layer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one connection: dispatch events until a handler raises StopConsumer."""
        watch_connections()
        # The scope is a plain dict; ConsumerScope only names the keys it may hold.
        self.scope = cast(ConsumerScope, scope)
        self.base_send = send
        await aclose_old_connections()
        try:
            sources: list[Callable[[], Awaitable[ReceivedMessage]]] = [receive]
            layer = self._find_channel_layer()
            if layer is not None:
                self.channel_name = await layer.new_channel()
                sources.append(functools.partial(layer.receive, self.channel_name))
            await await_many_dispatch(sources, self._dispatch_received)
        except StopConsumer:
            pass
        finally:
            await aclose_old_connections()

    async def _dispatch_received(self, message: ReceivedMessage) -> None:
        # Here rather than in dispatch() so that an overridden dispatch() keeps it.
        await aclose_old_connections()
        await self.dispatch(message)

    # Any: a handler returns an awaitable on async consumers and None on sync ones.
    def _handler_for(self, message: ChannelMessage) -> Callable[[ReceivedMessage], Any]:
        try:
            name = get_handler_name(message)
        except ValueError as exc:
            raise ValueError(
                f"{type(self).__qualname__} cannot dispatch a message: {exc}"
            ) from None
        handler: object = getattr(self, name, None)
        if not callable(handler):
            raise ValueError(
                f"{type(self).__qualname__} has no handler for message type "
                f"{message['type']!r}: define a method named {name!r}"
            )
        return handler

    async def dispatch(self, message: ReceivedMessage) -> None:
        """Await the handler for ``message``; override to route messages differently.

        Raises:
            ValueError: the message has no usable type, or no method handles it.
        """
        await self._handler_for(message)(message)

    async def send(self, message: Event) -> None:
        """Send an ASGI event to the server."""
        await self.base_send(message)


class SyncConsumer(AsyncConsumer):
    """A consumer whose handlers are plain functions, run in a thread.

    Handlers run through database_sync_to_async, which closes stale database
    connections around each one. ``send`` hands the event to the event loop and
    returns without waiting for it to go out (a thread hop each way costs more
    than the rest of a round trip); events go out in order, a handler's events
    are all sent before the next event is dispatched, and a handler waits in
    ``send`` only while ``MAX_UNSENT`` of its events are still unsent. A send
    that fails raises from the dispatch of the handler that sent it.
    """

    MAX_UNSENT: ClassVar[int] = 100

    _loop: asyncio.AbstractEventLoop
    _unsent: threading.Semaphore
    _last_send: asyncio.Future[None] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one connection, running each handler in a thread."""
        self._loop = asyncio.get_running_loop()
        self._unsent = threading.Semaphore(self.MAX_UNSENT)
        await super().__call__(scope, receive, send)

    async def _dispatch_received(self, message: ReceivedMessage) -> None:
        # database_sync_to_async closes stale connections in the handler's own
        # thread, so an extra close here would only cost a thread hop.
        await self.dispatch(message)

    async def dispatch(self, message: ReceivedMessage) -> None:
        """Run the handler for ``message`` in a thread, then wait until its events are sent.

        Raises:
            ValueError: the message has no usable type, or no method handles it.
        """
        try:
            await database_sync_to_async(self._handler_for(message))(message)
        finally:
            last, self._last_send = self._last_send, None
            if last is not None:
                await last

    def send(  # type: ignore[override]  # upstream's sync consumers send synchronously
        self, message: Event
    ) -> None:
        """Send an ASGI event to the server from a handler's thread.

        Raises:
            RuntimeError: called from the event loop's own thread, where a sync
                send could only block the loop; async code awaits ``base_send``.
        """
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            raise RuntimeError(
                f"{type(self).__qualname__}.send() must be called from a handler's thread, "
                "not from async code; there, await self.base_send(event)"
            )
        self._unsent.acquire()
        self._loop.call_soon_threadsafe(self._send_in_turn, message)

    def _send_in_turn(self, message: Event) -> None:
        # On the event loop: each send starts once the previous one is done.
        self._last_send = asyncio.ensure_future(self._send_after(self._last_send, message))

    async def _send_after(self, previous: asyncio.Future[None] | None, message: Event) -> None:
        try:
            if previous is not None:
                await previous
            await self.base_send(message)
        finally:
            self._unsent.release()
