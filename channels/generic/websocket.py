"""WebSocket consumers: accept, receive and send frames, and join groups while connected.

Each comes in a sync flavour (handlers run in a thread) and an async one, and
each has a JSON variant that decodes text frames and encodes what it sends.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from collections.abc import Set as AbstractSet
from typing import Any, TypeAlias, cast

from asgiref.sync import async_to_sync

from channels.consumer import AsyncConsumer, SyncConsumer
from channels.exceptions import AcceptConnection, DenyConnection, StopConsumer
from channels.types import (
    HeaderPair,
    Headers,
    WebSocketAcceptEvent,
    WebSocketCloseEvent,
    WebSocketConnectEvent,
    WebSocketDisconnectEvent,
    WebSocketReceiveEvent,
    WebSocketSendEvent,
)

__all__ = [
    "AsyncJsonWebsocketConsumer",
    "AsyncWebsocketConsumer",
    "GroupNames",
    "JSONValue",
    "JsonWebsocketConsumer",
    "WebsocketConsumer",
]

JSONValue: TypeAlias = "bool | int | float | str | list[JSONValue] | dict[str, JSONValue] | None"
"""Any value that ``json.loads`` returns: what the default ``decode_json`` gives."""

GroupNames: TypeAlias = list[str] | tuple[str, ...] | AbstractSet[str]
"""The ``groups`` of a websocket consumer: a list, tuple, set or frozenset of group names.

Not ``Iterable[str]``: a ``str`` is an iterable of ``str`` too, and
``groups = "lobby"`` would join the groups ``l``, ``o``, ``b``, ``b``, ``y``.
"""

# The close code ASGI reports when a disconnect event carries none.
_NO_STATUS_CODE = 1005


def _accept_event(
    subprotocol: str | None, headers: Iterable[HeaderPair] | None
) -> WebSocketAcceptEvent:
    event: WebSocketAcceptEvent = {"type": "websocket.accept", "subprotocol": subprotocol}
    if headers:
        # Pairs go out as given, lists included; Headers names the usual form.
        event["headers"] = cast(Headers, list(headers))
    return event


def _send_event(text_data: str | None, bytes_data: bytes | None) -> WebSocketSendEvent:
    if text_data is not None and bytes_data is None:
        return {"type": "websocket.send", "text": text_data}
    if bytes_data is not None and text_data is None:
        return {"type": "websocket.send", "bytes": bytes_data}
    arrived = "neither" if text_data is None else "both"
    raise ValueError(f"send() takes exactly one of text_data and bytes_data; got {arrived}")


def _close_event(code: int | None, reason: str | None) -> WebSocketCloseEvent:
    event: WebSocketCloseEvent = {"type": "websocket.close"}
    # ``send(..., close=True)`` passes True along: close without a code.
    if code is not None and code is not True:
        event["code"] = code
    if reason:
        event["reason"] = reason
    return event


def _frame_data(message: WebSocketReceiveEvent) -> str | bytes:
    # Some servers (Hypercorn) send both keys, the unused one None.
    text = message.get("text")
    if text is not None:
        return text
    data = message.get("bytes")
    if data is None:
        raise ValueError(
            "a websocket.receive event must carry 'text' or 'bytes'; got one with "
            f"keys {sorted(message)!r} and no frame data"
        )
    return data


def _group_names(consumer: WebsocketConsumer | AsyncWebsocketConsumer) -> GroupNames:
    """Return the consumer's ``groups``; raise TypeError when it is a str."""
    groups: object = consumer.groups
    if isinstance(groups, str):
        raise TypeError(
            f"{type(consumer).__qualname__}.groups must be a list (or tuple or set) of group "
            "names, not a str, whose characters would each be joined as a group: write "
            f"groups = [{groups!r}]; got {groups!r}"
        )
    return consumer.groups


def _binary_frame_error(consumer: object, bytes_data: bytes | None) -> ValueError:
    arrived = "no text_data" if bytes_data is None else f"a binary frame of {len(bytes_data)} bytes"
    return ValueError(
        f"{type(consumer).__qualname__} expects a text frame holding JSON; got {arrived}"
    )


class WebsocketConsumer(SyncConsumer):
    """A WebSocket consumer whose methods run in a thread.

    Override ``connect``, ``receive`` and ``disconnect``; call ``accept``,
    ``send`` and ``close``. The channel joins every group in ``groups`` before
    ``connect`` runs and leaves them when the socket closes.
    """

    #: Groups to join while connected: a list, tuple or set of group names.
    groups: GroupNames = ()

    # Keywords are accepted and ignored, as upstream: a subclass's __init__
    # may pass its own on with super().__init__(*args, **kwargs).
    def __init__(self, *args: object, **kwargs: object) -> None:
        if not self.groups:
            # Each connection gets a list of its own to add groups to.
            self.groups = []

    def websocket_connect(self, message: WebSocketConnectEvent) -> None:
        """Join ``groups``, then call ``connect``."""
        for group in _group_names(self):
            async_to_sync(self.channel_layer.group_add)(group, self.channel_name)
        try:
            self.connect()
        except AcceptConnection:
            self.accept()
        except DenyConnection:
            self.close()

    def connect(self) -> None:
        """Handle the handshake; accept it unless overridden.

        Raise AcceptConnection or DenyConnection to accept or refuse.
        """
        self.accept()

    def accept(
        self, subprotocol: str | None = None, headers: Iterable[HeaderPair] | None = None
    ) -> None:
        """Accept the connection, optionally choosing a subprotocol and adding headers."""
        super().send(_accept_event(subprotocol, headers))

    def websocket_receive(self, message: WebSocketReceiveEvent) -> None:
        """Pass the frame's text or bytes to ``receive``."""
        data = _frame_data(message)
        if isinstance(data, str):
            self.receive(text_data=data)
        else:
            self.receive(bytes_data=data)

    def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Handle a frame from the client: exactly one argument is set."""

    def send(  # type: ignore[override]  # upstream's websocket send takes frames, not events
        self,
        text_data: str | None = None,
        bytes_data: bytes | None = None,
        close: bool | int = False,
    ) -> None:
        """Send one text or bytes frame; ``close`` (True or a close code) then closes.

        Raises:
            ValueError: not exactly one of ``text_data`` and ``bytes_data`` is given.
        """
        super().send(_send_event(text_data, bytes_data))
        if close:
            self.close(close)

    def close(self, code: int | None = None, reason: str | None = None) -> None:
        """Close the connection (or refuse it, before accepting)."""
        super().send(_close_event(code, reason))

    def websocket_disconnect(self, message: WebSocketDisconnectEvent) -> None:
        """Leave ``groups``, call ``disconnect``, and stop the consumer."""
        for group in _group_names(self):
            async_to_sync(self.channel_layer.group_discard)(group, self.channel_name)
        self.disconnect(message.get("code", _NO_STATUS_CODE))
        raise StopConsumer

    def disconnect(self, code: int, /) -> None:
        """Handle the socket closing with ``code``."""


class JsonWebsocketConsumer(WebsocketConsumer):
    """A WebsocketConsumer that exchanges JSON in text frames."""

    def receive(
        self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: object
    ) -> None:
        """Decode a text frame and pass it to ``receive_json``.

        Raises:
            ValueError: the frame is binary, or its text is not JSON.
        """
        if text_data is None:
            raise _binary_frame_error(self, bytes_data)
        self.receive_json(self.decode_json(text_data), **kwargs)

    # Any: see the docstring; an override narrows it.
    def receive_json(self, content: Any, **kwargs: object) -> None:
        """Handle decoded JSON from the client: what ``decode_json`` returned.

        ``content`` is typed ``Any`` so that an override can declare what its
        protocol sends (``dict[str, Any]``, ``list[Any]``, a ``JSONValue``, or
        what an overridden ``decode_json`` builds): a parameter type narrower
        than the base's would be an incompatible override. Check the shape of
        what a client sent before relying on it.
        """

    # ``content`` is whatever encode_json can encode: anything json.dumps takes
    # by default, more when encode_json is overridden (dates, UUIDs...).
    def send_json(self, content: object, close: bool | int = False) -> None:
        """Encode ``content`` with ``encode_json`` and send it as a text frame."""
        super().send(text_data=self.encode_json(content), close=close)

    @classmethod
    def decode_json(cls, text_data: str) -> Any:
        """Decode a text frame; override to customise.

        By default the result is a ``JSONValue``. It is typed ``Any`` because an
        override may build other values (``Decimal`` floats, objects from an
        ``object_hook``), which ``receive_json`` is then declared to take.
        """
        return json.loads(text_data)

    @classmethod
    def encode_json(cls, content: object) -> str:
        """Encode ``content`` for a text frame; override to customise."""
        return json.dumps(content)


class AsyncWebsocketConsumer(AsyncConsumer):
    """A WebSocket consumer whose methods are coroutines.

    Override ``connect``, ``receive`` and ``disconnect``; await ``accept``,
    ``send`` and ``close``. The channel joins every group in ``groups`` before
    ``connect`` runs and leaves them when the socket closes.
    """

    #: Groups to join while connected: a list, tuple or set of group names.
    groups: GroupNames = ()

    # Keywords are accepted and ignored, as upstream: a subclass's __init__
    # may pass its own on with super().__init__(*args, **kwargs).
    def __init__(self, *args: object, **kwargs: object) -> None:
        if not self.groups:
            # Each connection gets a list of its own to add groups to.
            self.groups = []

    async def websocket_connect(self, message: WebSocketConnectEvent) -> None:
        """Join ``groups``, then call ``connect``."""
        for group in _group_names(self):
            await self.channel_layer.group_add(group, self.channel_name)
        try:
            await self.connect()
        except AcceptConnection:
            await self.accept()
        except DenyConnection:
            await self.close()

    async def connect(self) -> None:
        """Handle the handshake; accept it unless overridden.

        Raise AcceptConnection or DenyConnection to accept or refuse.
        """
        await self.accept()

    async def accept(
        self, subprotocol: str | None = None, headers: Iterable[HeaderPair] | None = None
    ) -> None:
        """Accept the connection, optionally choosing a subprotocol and adding headers."""
        await super().send(_accept_event(subprotocol, headers))

    async def websocket_receive(self, message: WebSocketReceiveEvent) -> None:
        """Pass the frame's text or bytes to ``receive``."""
        data = _frame_data(message)
        if isinstance(data, str):
            await self.receive(text_data=data)
        else:
            await self.receive(bytes_data=data)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Handle a frame from the client: exactly one argument is set."""

    async def send(  # type: ignore[override]  # upstream's websocket send takes frames, not events
        self,
        text_data: str | None = None,
        bytes_data: bytes | None = None,
        close: bool | int = False,
    ) -> None:
        """Send one text or bytes frame; ``close`` (True or a close code) then closes.

        Raises:
            ValueError: not exactly one of ``text_data`` and ``bytes_data`` is given.
        """
        await super().send(_send_event(text_data, bytes_data))
        if close:
            await self.close(close)

    async def close(self, code: int | None = None, reason: str | None = None) -> None:
        """Close the connection (or refuse it, before accepting)."""
        await super().send(_close_event(code, reason))

    async def websocket_disconnect(self, message: WebSocketDisconnectEvent) -> None:
        """Leave ``groups``, call ``disconnect``, and stop the consumer."""
        for group in _group_names(self):
            await self.channel_layer.group_discard(group, self.channel_name)
        await self.disconnect(message.get("code", _NO_STATUS_CODE))
        raise StopConsumer

    async def disconnect(self, code: int, /) -> None:
        """Handle the socket closing with ``code``."""


class AsyncJsonWebsocketConsumer(AsyncWebsocketConsumer):
    """An AsyncWebsocketConsumer that exchanges JSON in text frames."""

    async def receive(
        self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: object
    ) -> None:
        """Decode a text frame and pass it to ``receive_json``.

        Raises:
            ValueError: the frame is binary, or its text is not JSON.
        """
        if text_data is None:
            raise _binary_frame_error(self, bytes_data)
        await self.receive_json(await self.decode_json(text_data), **kwargs)

    # Any: see the docstring; an override narrows it.
    async def receive_json(self, content: Any, **kwargs: object) -> None:
        """Handle decoded JSON from the client: what ``decode_json`` returned.

        ``content`` is typed ``Any`` so that an override can declare what its
        protocol sends (``dict[str, Any]``, ``list[Any]``, a ``JSONValue``, or
        what an overridden ``decode_json`` builds): a parameter type narrower
        than the base's would be an incompatible override. Check the shape of
        what a client sent before relying on it.
        """

    # ``content`` is whatever encode_json can encode: anything json.dumps takes
    # by default, more when encode_json is overridden (dates, UUIDs...).
    async def send_json(self, content: object, close: bool | int = False) -> None:
        """Encode ``content`` with ``encode_json`` and send it as a text frame."""
        await super().send(text_data=await self.encode_json(content), close=close)

    @classmethod
    async def decode_json(cls, text_data: str) -> Any:
        """Decode a text frame; override to customise.

        By default the result is a ``JSONValue``. It is typed ``Any`` because an
        override may build other values (``Decimal`` floats, objects from an
        ``object_hook``), which ``receive_json`` is then declared to take.
        """
        return json.loads(text_data)

    @classmethod
    async def encode_json(cls, content: object) -> str:
        """Encode ``content`` for a text frame; override to customise."""
        return json.dumps(content)
