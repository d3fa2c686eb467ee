"""AsyncHttpConsumer: an HTTP endpoint as a consumer, for long polling and streaming."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TypeAlias, cast

from channels.consumer import AsyncConsumer
from channels.exceptions import StopConsumer
from channels.types import (
    Event,
    Headers,
    HTTPDisconnectEvent,
    HTTPRequestEvent,
    HTTPResponseBodyEvent,
    HTTPResponseStartEvent,
    Receive,
    ReceivedMessage,
    Scope,
    Send,
)

__all__ = ["AsyncHttpConsumer"]

_HeaderValue: TypeAlias = str | bytes
# Three Mapping forms because a Mapping's key type is invariant: a dict with
# bytes keys is not a Mapping[str | bytes, ...].
_ResponseHeaders: TypeAlias = (
    Mapping[str, _HeaderValue]
    | Mapping[bytes, _HeaderValue]
    | Mapping[str | bytes, _HeaderValue]
    | Iterable[tuple[_HeaderValue, _HeaderValue] | list[bytes] | list[str]]
)


class AsyncHttpConsumer(AsyncConsumer):
    r"""An HTTP consumer: gathers the request body, then calls ``handle(body)``.

    ``handle`` answers with ``send_response`` (status, headers and body at
    once) or with ``send_headers`` followed by one or more ``send_body``
    calls. The consumer ends once a body is sent without ``more_body=True``,
    or when the client disconnects; ``disconnect()`` runs then, however the
    consumer ends (an error included).

    The response may outlive ``handle``. When ``handle`` returns before the
    response is complete, the consumer keeps running and handles messages
    from its channel layer, so a layer handler can send the rest. This gives
    long polling (``handle`` joins a group and returns; a handler sends the
    whole response) and server-sent events::

        class NewsEvents(AsyncHttpConsumer):
            async def handle(self, body: bytes) -> None:
                await self.channel_layer.group_add("news", self.channel_name)
                await self.send_headers(headers={"Content-Type": "text/event-stream"})
                await self.send_body(b"", more_body=True)

            async def news_story(self, message: dict[str, Any]) -> None:
                # A group_send of {"type": "news.story", "text": ...} lands here.
                await self.send_body(f"data: {message['text']}\n\n".encode(), more_body=True)

            async def disconnect(self) -> None:
                await self.channel_layer.group_discard("news", self.channel_name)

    Layer messages are handled one at a time, after ``handle`` returns, so
    ``handle`` must not loop forever: return and let handlers stream.
    """

    # Keywords are accepted and ignored, as upstream: a subclass's __init__
    # may pass its own on with super().__init__(*args, **kwargs).
    def __init__(self, *args: object, **kwargs: object) -> None:
        #: The request body chunks received so far.
        self.body: list[bytes] = []
        self.__response_complete = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one HTTP request; run ``disconnect()`` when the consumer ends."""
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self.disconnect()

    async def send_headers(
        self, *, status: int = 200, headers: _ResponseHeaders | None = None
    ) -> None:
        """Start the response with ``status`` and ``headers``.

        ``headers`` is a dict or a list of ``(name, value)`` pairs, as str or
        bytes (str names must be ASCII, str values Latin-1). The server sends
        nothing to the client before the first ``send_body``.

        Raises:
            TypeError: a header is not a pair of str or bytes.
            ValueError: a str header cannot be encoded.
        """
        event: HTTPResponseStartEvent = {
            "type": "http.response.start",
            "status": status,
            "headers": _encode_headers(headers),
        }
        await self.send(event)

    async def send_body(self, body: bytes, *, more_body: bool = False) -> None:
        """Send a chunk of the response body; ``more_body=True`` when more will follow.

        Raises:
            TypeError: ``body`` is not bytes.
        """
        if not isinstance(body, bytes):  # pyright: ignore[reportUnnecessaryIsInstance] - untyped callers
            raise TypeError(f"response body must be bytes; got {type(body).__name__} {body!r}")
        event: HTTPResponseBodyEvent = {
            "type": "http.response.body",
            "body": body,
            "more_body": more_body,
        }
        await self.send(event)

    async def send_response(
        self, status: int, body: bytes, *, headers: _ResponseHeaders | None = None
    ) -> None:
        """Send the whole response: ``send_headers`` then one final ``send_body``."""
        await self.send_headers(status=status, headers=headers)
        await self.send_body(body)

    async def send(self, message: Event) -> None:
        """Send an ASGI event to the server, noting when it completes the response."""
        await super().send(message)
        if message.get("type") == "http.response.body" and not message.get("more_body", False):
            self.__response_complete = True

    async def handle(self, body: bytes) -> None:
        """Answer the request whose complete body is ``body``; subclasses implement it.

        Raises:
            NotImplementedError: the subclass does not implement it.
        """
        raise NotImplementedError(
            f"{type(self).__qualname__} must implement handle(body) to answer requests: "
            "subclasses of AsyncHttpConsumer provide a handle() method"
        )

    async def disconnect(self) -> None:
        """Clean up when the consumer ends; override it. Do not send from here."""

    async def dispatch(self, message: ReceivedMessage) -> None:
        """Dispatch ``message``; stop the consumer once the response is complete."""
        await super().dispatch(message)
        if self.__response_complete:
            raise StopConsumer

    async def http_request(self, message: HTTPRequestEvent) -> None:
        """Collect a chunk of the request body; call ``handle`` after the last one."""
        if "body" in message:
            self.body.append(message["body"])
        if not message.get("more_body", False):
            await self.handle(b"".join(self.body))

    async def http_disconnect(self, message: HTTPDisconnectEvent) -> None:
        """Stop the consumer: the client went away."""
        raise StopConsumer


def _encode_headers(headers: object) -> Headers:
    """Return ``headers`` as the ASGI list of ``(name, value)`` byte pairs.

    A pair that is bytes already is kept as given (a list stays a list, as
    upstream passes headers through); one with str parts is encoded.
    """
    if headers is None:
        return []
    # Checked item by item below: callers may be untyped.
    if isinstance(headers, Mapping):
        pairs: Iterable[object] = cast("Mapping[object, object]", headers).items()
    elif isinstance(headers, Iterable) and not isinstance(headers, str | bytes):
        pairs = cast("Iterable[object]", headers)
    else:
        raise TypeError(
            "headers must be a dict or a list of (name, value) pairs, such as "
            f"[('Content-Type', 'text/plain')]; got {headers!r}"
        )
    encoded: Headers = []
    for pair in pairs:
        if not isinstance(pair, tuple | list) or len(cast("tuple[object, ...]", pair)) != 2:
            raise TypeError(
                "each header must be a (name, value) pair, such as "
                f"('Content-Type', 'text/plain'); got {pair!r}"
            )
        name, value = cast("tuple[object, object]", pair)
        if isinstance(name, bytes) and isinstance(value, bytes):
            # Maybe a two-item list at run time; Headers names the usual form.
            encoded.append(cast("tuple[bytes, bytes]", pair))
        else:
            encoded.append((_encode(name, "name", "ascii"), _encode(value, "value", "latin-1")))
    return encoded


def _encode(part: object, what: str, encoding: str) -> bytes:
    if isinstance(part, bytes):
        return part
    if not isinstance(part, str):
        raise TypeError(f"a header {what} must be str or bytes; got {type(part).__name__} {part!r}")
    try:
        return part.encode(encoding)
    except UnicodeEncodeError:
        raise ValueError(
            f"a header {what} given as str must be {encoding} text (or pass bytes); got {part!r}"
        ) from None
