"""The type vocabulary shared by every part of channels.

ASGI applications exchange three things with their server: a *scope* that
describes the connection, *events* received from the server and *events* sent
to it. Consumers also exchange *messages* with each other through a channel
layer. Each gets one alias here, and every module uses these aliases.

How the ASGI callable types vary
--------------------------------
``ASGIApplication``, ``Receive`` and ``Send`` are callable types, and a
callable's parameters are contravariant: an application is accepted where one
is expected when it takes at least what it will be passed. Applications flow
both ways: this package's routers and middleware take the user's and Django's
applications, and the user's middleware (typed with its own aliases) takes
this package's. Both directions type-check only when each parameter has the
same type on both sides, so each parameter gets the one type that ASGI code
commonly writes:

- a scope is ``dict[str, Any]``, as servers pass it and Django's ``ASGIHandler``
  and app code declare it;
- ``receive()`` returns ``dict[str, Any]``: a callable that returns a dict is
  also one that returns a ``Mapping``, so Django's handler accepts it;
- the event ``send`` takes is ``Any``. No single type fits here: Django's
  stubs type it ``Mapping[str, Any]``, app code ``dict[str, Any]``, asgiref's
  typing module a union of TypedDicts, and in a contravariant position each of
  them rejects the others. ``Any`` is compatible both ways. The events
  themselves are still checked where they are built: the TypedDicts below,
  and ``AsyncConsumer.send()``, which takes an ``Event``.

An application's result is ``Awaitable[None]`` where one is expected; ASGI
ignores the value, so an application returning anything awaitable fits.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

from typing_extensions import NotRequired, TypedDict

if TYPE_CHECKING:
    from django.contrib.auth.base_user import AbstractBaseUser
    from django.contrib.auth.models import AnonymousUser
    from django.contrib.sessions.backends.base import SessionBase

__all__ = [
    "ASGIApplication",
    "AnyScope",
    "ChannelMessage",
    "ConsumerScope",
    "Event",
    "HTTPDisconnectEvent",
    "HTTPRequestEvent",
    "HTTPResponseBodyEvent",
    "HTTPResponseStartEvent",
    "HeaderPair",
    "Headers",
    "Receive",
    "ReceivedEvent",
    "ReceivedMessage",
    "Scope",
    "Send",
    "URLRoute",
    "WebSocketAcceptEvent",
    "WebSocketCloseEvent",
    "WebSocketConnectEvent",
    "WebSocketDisconnectEvent",
    "WebSocketReceiveEvent",
    "WebSocketResponseBodyEvent",
    "WebSocketResponseStartEvent",
    "WebSocketSendEvent",
]

# -- scopes ------------------------------------------------------------------

Scope: TypeAlias = dict[str, Any]
"""An ASGI connection scope as the server and middleware pass it along.

Values stay ``Any``: the ASGI spec lets servers add keys of any type
(extensions, state), and middleware adds its own.
"""

Headers: TypeAlias = list[tuple[bytes, bytes]]
"""HTTP or websocket headers as ASGI carries them: lowercased names, raw bytes."""

HeaderPair: TypeAlias = tuple[bytes, bytes] | list[bytes]
"""One header as code hands it over: a ``(name, value)`` tuple or a two-item list of bytes.

Both forms are common in apps and tests, and pass through unchanged.
"""


class URLRoute(TypedDict):
    """What URLRouter records in ``scope["url_route"]`` for the matched route."""

    # Any: URL converters return values of any type.
    args: tuple[Any, ...]
    kwargs: dict[str, Any]


class ConsumerScope(TypedDict):
    """The scope as a consumer reads it, with the keys that middleware adds.

    Every key is declared required so that ``self.scope["url_route"]["kwargs"]``
    and ``self.scope["user"]`` read without casts. The scope is still a plain
    dict at run time: ``user`` exists only under AuthMiddleware, ``session``
    under SessionMiddleware, ``url_route`` under URLRouter, and a read of an
    absent key raises KeyError as it would on any dict.
    """

    type: str
    asgi: dict[str, str]
    http_version: str
    scheme: str
    path: str
    raw_path: bytes
    root_path: str
    query_string: bytes
    headers: Headers
    client: tuple[str, int] | None
    server: tuple[str, int | None] | None
    subprotocols: list[str]
    method: str
    # Any: ASGI lets servers and middleware put values of any type here.
    state: dict[str, Any]
    extensions: dict[str, dict[str, Any]]
    url_route: URLRoute
    path_remaining: str
    cookies: dict[str, str]
    session: SessionBase
    user: AbstractBaseUser | AnonymousUser
    channel: str


AnyScope: TypeAlias = Scope | ConsumerScope
"""A scope as functions that take one accept it: a consumer's ``self.scope`` or a plain dict.

``login()``, ``logout()`` and ``get_user()`` take it, so both the scope a
consumer holds and one a middleware builds fit without a cast.
"""


# -- events between server and application ----------------------------------

Event: TypeAlias = Mapping[str, Any]
"""Any ASGI event. Its keys depend on its ``type``; the TypedDicts below name them."""

# Any: servers may add extension keys of any type to an event.
ReceivedEvent: TypeAlias = dict[str, Any]
"""An event as ``receive()`` returns it: servers may add extension keys."""

Receive: TypeAlias = Callable[[], Awaitable[ReceivedEvent]]
"""The ``receive`` callable a server passes to an ASGI application."""

# Any: see the variance rule above.
Send: TypeAlias = Callable[[Any], Awaitable[None]]
"""The ``send`` callable a server passes to an ASGI application.

It takes ``Any`` so that sends typed as taking a ``Mapping`` (Django), a
``dict`` (app code) or TypedDicts (asgiref) all fit; see the module docstring.
"""

ASGIApplication: TypeAlias = Callable[[Scope, Receive, Send], Awaitable[None]]
"""An ASGI 3 application: one call per connection."""


class HTTPRequestEvent(TypedDict):
    """A chunk of an HTTP request body, from the server."""

    type: Literal["http.request"]
    body: NotRequired[bytes]
    more_body: NotRequired[bool]


class HTTPDisconnectEvent(TypedDict):
    """The HTTP client went away, from the server."""

    type: Literal["http.disconnect"]


class HTTPResponseStartEvent(TypedDict):
    """The status and headers of an HTTP response, to the server."""

    type: Literal["http.response.start"]
    status: int
    headers: NotRequired[Headers]
    trailers: NotRequired[bool]


class HTTPResponseBodyEvent(TypedDict):
    """A chunk of an HTTP response body, to the server."""

    type: Literal["http.response.body"]
    body: NotRequired[bytes]
    more_body: NotRequired[bool]


class WebSocketConnectEvent(TypedDict):
    """A client asks to open a websocket, from the server."""

    type: Literal["websocket.connect"]


class WebSocketAcceptEvent(TypedDict):
    """Accept the websocket handshake, to the server."""

    type: Literal["websocket.accept"]
    subprotocol: NotRequired[str | None]
    headers: NotRequired[Headers]


class WebSocketReceiveEvent(TypedDict):
    """A frame from the client: exactly one of ``bytes`` and ``text`` is set.

    Some servers send both keys with the unused one ``None``.
    """

    type: Literal["websocket.receive"]
    bytes: NotRequired[bytes | None]
    text: NotRequired[str | None]


class WebSocketSendEvent(TypedDict):
    """A frame to the client: exactly one of ``bytes`` and ``text`` is set."""

    type: Literal["websocket.send"]
    bytes: NotRequired[bytes | None]
    text: NotRequired[str | None]


class WebSocketDisconnectEvent(TypedDict):
    """The websocket closed, from the server."""

    type: Literal["websocket.disconnect"]
    code: NotRequired[int]
    reason: NotRequired[str | None]


class WebSocketCloseEvent(TypedDict):
    """Close the websocket (or refuse the handshake), to the server."""

    type: Literal["websocket.close"]
    code: NotRequired[int]
    reason: NotRequired[str | None]


class WebSocketResponseStartEvent(TypedDict):
    """Refuse a handshake with an HTTP response: its status and headers."""

    type: Literal["websocket.http.response.start"]
    status: int
    headers: NotRequired[Headers]


class WebSocketResponseBodyEvent(TypedDict):
    """Refuse a handshake with an HTTP response: a chunk of its body."""

    type: Literal["websocket.http.response.body"]
    body: NotRequired[bytes]
    more_body: NotRequired[bool]


# -- messages between consumers ---------------------------------------------

ChannelMessage: TypeAlias = Mapping[str, Any]
"""A message handed to a channel layer: a mapping with a ``"type"`` key.

It stays a loose ``Mapping[str, Any]`` on purpose: users describe their events
with their own TypedDicts, which are Mappings, and layers serialise arbitrary
values (msgpack, JSON). A stricter type would reject those TypedDicts.
"""

# Any: a message's values are whatever its sender put in (see channels.types.ChannelMessage).
ReceivedMessage: TypeAlias = dict[str, Any]
"""A message as a channel layer returns it: a fresh dict the receiver owns."""
