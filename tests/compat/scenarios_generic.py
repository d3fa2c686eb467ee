"""Scenarios: the generic websocket and HTTP consumers, driven as a server drives them."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, cast

from asgiref.sync import async_to_sync

from channels.consumer import AsyncConsumer
from channels.exceptions import AcceptConnection, DenyConnection
from channels.generic.http import AsyncHttpConsumer
from channels.generic.websocket import (
    AsyncJsonWebsocketConsumer,
    AsyncWebsocketConsumer,
    JsonWebsocketConsumer,
    WebsocketConsumer,
)

from ._harness import Observation, drive, jsonable, raised, scenario

if TYPE_CHECKING:
    from channels.generic.websocket import GroupNames  # not in upstream: for the checkers only

WEBSOCKET: dict[str, object] = {"type": "websocket", "path": "/", "headers": []}
HTTP: dict[str, object] = {"type": "http", "method": "GET", "path": "/", "headers": []}
CONNECT: dict[str, object] = {"type": "websocket.connect"}


def _frames(*frames: str | bytes) -> list[dict[str, object]]:
    return [
        {"type": "websocket.receive", "text": f}
        if isinstance(f, str)
        else {"type": "websocket.receive", "bytes": f}
        for f in frames
    ]


def _disconnect(code: int | None = 1000) -> dict[str, object]:
    return (
        {"type": "websocket.disconnect"}
        if code is None
        else {"type": "websocket.disconnect", "code": code}
    )


class SyncSocket(WebsocketConsumer):
    groups: GroupNames = ["scenario-sync"]

    def connect(self) -> None:
        self.accept(subprotocol="chat", headers=[[b"x-a", b"1"], (b"x-b", b"2")])

    def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if text_data == "close":
            self.close(code=4001, reason="bye")
        elif text_data == "send-close":
            self.send(text_data="last", close=True)
        elif text_data == "neither":
            self.send()
        elif text_data == "group":
            group_send = async_to_sync(self.channel_layer.group_send)
            group_send("scenario-sync", {"type": "group.echo", "text": "to the group"})
        elif text_data is not None:
            self.send(text_data=text_data.upper())
        else:
            self.send(bytes_data=bytes_data)

    def group_echo(self, event: Any) -> None:
        self.send(text_data=event["text"])

    def disconnect(self, code: int) -> None:
        self.send(text_data=f"disconnected {code}")


class AsyncSocket(AsyncWebsocketConsumer):
    groups: GroupNames = ["scenario-async"]

    async def connect(self) -> None:
        await self.accept(subprotocol="chat", headers=[[b"x-a", b"1"], (b"x-b", b"2")])

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if text_data == "close":
            await self.close(code=4001, reason="bye")
        elif text_data == "send-close":
            await self.send(text_data="last", close=True)
        elif text_data == "neither":
            await self.send()
        elif text_data == "group":
            group_send = self.channel_layer.group_send
            await group_send("scenario-async", {"type": "group.echo", "text": "to the group"})
        elif text_data is not None:
            await self.send(text_data=text_data.upper())
        else:
            await self.send(bytes_data=bytes_data)

    async def group_echo(self, event: Any) -> None:
        await self.send(text_data=event["text"])

    async def disconnect(self, code: int) -> None:
        await self.send(text_data=f"disconnected {code}")


SOCKETS: dict[str, type[SyncSocket] | type[AsyncSocket]] = {
    "sync": SyncSocket,
    "async": AsyncSocket,
}


@scenario
async def websocket_frames_and_close() -> Observation:
    """Accept with subprotocol and headers, echo frames, close, and the disconnect code."""
    results: dict[str, Observation] = {}
    for flavour, consumer in SOCKETS.items():
        events = [CONNECT, *_frames("hi", b"\x00\x01", "send-close", "close"), _disconnect(4000)]
        results[flavour] = await drive(consumer.as_asgi(), dict(WEBSOCKET), events)
    return results


@scenario
async def websocket_send_needs_data() -> Observation:
    """send() without text or bytes fails."""
    results: dict[str, Observation] = {}
    for flavour, consumer in SOCKETS.items():
        results[flavour] = await drive(
            consumer.as_asgi(), dict(WEBSOCKET), [CONNECT, *_frames("neither")]
        )
    return results


@scenario
async def websocket_disconnect_without_code() -> Observation:
    """The code disconnect() gets when the server's event has none."""
    results: dict[str, Observation] = {}
    for flavour, consumer in SOCKETS.items():
        results[flavour] = await drive(
            consumer.as_asgi(), dict(WEBSOCKET), [CONNECT, _disconnect(None)]
        )
    return results


@scenario
async def websocket_text_none_with_bytes() -> Observation:
    """A server that sends both keys, the unused one None (Hypercorn)."""
    frame = {"type": "websocket.receive", "text": None, "bytes": b"raw"}
    results: dict[str, Observation] = {}
    for flavour, consumer in SOCKETS.items():
        results[flavour] = await drive(
            consumer.as_asgi(), dict(WEBSOCKET), [CONNECT, frame, _disconnect()]
        )
    return results


@scenario
async def websocket_groups_are_joined() -> Observation:
    """A consumer is a member of ``groups`` while connected."""
    seen: dict[str, Observation] = {}
    for flavour, consumer in SOCKETS.items():
        instance = consumer()
        events = [CONNECT, *_frames("group"), _disconnect()]
        result = await drive(instance, dict(WEBSOCKET), events)
        seen[flavour] = {"result": result, "groups": jsonable(list(instance.groups))}
    return seen


def _joined(consumer: WebsocketConsumer | AsyncWebsocketConsumer) -> str:
    """The groups the consumer's channel is in, by the in-memory layer's ``groups``."""
    layer: Any = consumer.channel_layer  # ``groups`` is the in-memory layer's, not the Protocol's
    return " ".join(
        sorted(g for g, members in layer.groups.items() if consumer.channel_name in members)
    )


class SyncReportsGroups(WebsocketConsumer):
    def connect(self) -> None:
        self.accept()
        self.send(text_data=_joined(self))


class AsyncReportsGroups(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        await self.accept()
        await self.send(text_data=_joined(self))


@scenario
async def websocket_groups_given_as_one_string() -> Observation:
    """``groups = "lobby"``: upstream joins one group per character; here it is refused."""
    seen: dict[str, Observation] = {}
    for flavour, consumer in {"sync": SyncReportsGroups, "async": AsyncReportsGroups}.items():
        # Built with type(): the type checkers reject a str for groups, as they should.
        lettered = cast("type[AsyncConsumer]", type("Lettered", (consumer,), {"groups": "lobby"}))
        seen[flavour] = await drive(lettered.as_asgi(), dict(WEBSOCKET), [CONNECT, _disconnect()])
    return seen


class Denies(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        raise DenyConnection


class Accepts(WebsocketConsumer):
    def connect(self) -> None:
        raise AcceptConnection


@scenario
async def websocket_accept_and_deny_exceptions() -> Observation:
    """DenyConnection closes; AcceptConnection accepts."""
    return {
        "deny": await drive(Denies.as_asgi(), dict(WEBSOCKET), [CONNECT]),
        "accept": await drive(Accepts.as_asgi(), dict(WEBSOCKET), [CONNECT, _disconnect()]),
    }


@scenario
def websocket_init_keywords_are_ignored() -> Observation:
    """as_asgi() keywords on a generic consumer without its own __init__."""
    app = AsyncSocket.as_asgi(channel_layer_alias="other", anything=1)
    consumer = app.consumer_class(**app.consumer_initkwargs)
    return {
        "alias": consumer.channel_layer_alias,
        "has_anything": hasattr(consumer, "anything"),
        "groups": jsonable(list(consumer.groups)),
    }


class SyncJson(JsonWebsocketConsumer):
    def receive_json(self, content: Any, **kwargs: Any) -> None:
        self.send_json({"got": content, "kwargs": sorted(kwargs)})


class AsyncJson(AsyncJsonWebsocketConsumer):
    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        await self.send_json({"got": content, "kwargs": sorted(kwargs)}, close=content == "bye")


@scenario
async def json_consumers() -> Observation:
    """JSON in and out; a binary frame and text that is not JSON."""
    results: dict[str, Observation] = {}
    for flavour, consumer in {"sync": SyncJson, "async": AsyncJson}.items():
        events = [CONNECT, *_frames(json.dumps({"a": [1, 2]}), '"bye"')]
        results[flavour] = await drive(consumer.as_asgi(), dict(WEBSOCKET), events)
        results[f"{flavour} binary"] = await drive(
            consumer.as_asgi(), dict(WEBSOCKET), [CONNECT, *_frames(b"{}")]
        )
        results[f"{flavour} not json"] = await drive(
            consumer.as_asgi(), dict(WEBSOCKET), [CONNECT, *_frames("{nope")]
        )
    return results


@scenario
async def json_encode_and_decode_are_classmethods() -> Observation:
    """encode_json/decode_json as class methods, sync and async."""
    return {
        "sync encode": SyncJson.encode_json({"a": 1}),
        "sync decode": SyncJson.decode_json('{"a": 1}'),
        "async encode": await AsyncJson.encode_json([1]),
        "async decode": await AsyncJson.decode_json("[1]"),
    }


class Responder(AsyncHttpConsumer):
    async def handle(self, body: bytes) -> None:
        path = self.scope["path"]
        if path == "/dict":
            await self.send_response(200, b"dict " + body, headers={b"Content-Type": b"text/plain"})
        elif path == "/list":
            await self.send_response(201, b"list", headers=[(b"X-A", b"1"), [b"X-B", b"2"]])
        elif path == "/stream":
            await self.send_headers(status=200, headers=[(b"Content-Type", b"text/event-stream")])
            await self.send_body(b"one", more_body=True)
            await self.send_body(b"two")
        elif path == "/str":
            await self.send_response(200, b"", headers={"Content-Type": "text/plain"})
        elif path == "/bad":
            await self.send_response(200, b"", headers=[("X-A",)])  # type: ignore[list-item]  # deliberately malformed


def _request() -> list[dict[str, object]]:
    return [
        {"type": "http.request", "body": b"a", "more_body": True},
        {"type": "http.request", "body": b"b"},
    ]


@scenario
async def http_consumer_responses() -> Observation:
    """Response shapes: byte headers as a dict, pairs and two-item lists; streaming; chunks."""
    results: dict[str, Observation] = {}
    for path in ("/dict", "/list", "/stream"):
        results[path] = await drive(Responder.as_asgi(), {**HTTP, "path": path}, _request())
    return results


@scenario
async def http_consumer_str_and_malformed_headers() -> Observation:
    """Headers given as str, and a header that is no pair."""
    results: dict[str, Observation] = {}
    for path in ("/str", "/bad"):
        results[path] = await drive(Responder.as_asgi(), {**HTTP, "path": path}, _request())
    return results


class NoHandle(AsyncHttpConsumer):
    pass


@scenario
async def http_consumer_without_handle() -> Observation:
    """A consumer that does not override handle()."""
    return await drive(NoHandle.as_asgi(), dict(HTTP), [{"type": "http.request"}], timeout=1)


@scenario
async def http_consumer_client_goes_away() -> Observation:
    """A disconnect before the response ends the consumer."""
    events: list[dict[str, object]] = [
        {"type": "http.request", "more_body": True},
        {"type": "http.disconnect"},
    ]
    return await drive(Responder.as_asgi(), dict(HTTP), events)


@scenario
async def channel_layer_attribute() -> Observation:
    """``consumer.channel_layer`` before a connection, and when no layer is configured."""
    from django.test import override_settings

    observed: dict[str, Observation] = {}
    try:
        observed["before connect"] = callable(SyncSocket().channel_layer.group_send)
    except Exception as exc:
        observed["before connect"] = raised(exc)

    class Reads(AsyncWebsocketConsumer):
        async def connect(self) -> None:
            await self.accept()
            layer = self.channel_layer
            await self.send(text_data=repr(layer))

    with override_settings(CHANNEL_LAYERS={}):
        observed["unconfigured"] = await drive(Reads.as_asgi(), dict(WEBSOCKET), [CONNECT])
    return observed
