from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, Literal

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth.models import AnonymousUser
from django.test import override_settings
from django.urls import URLPattern, path
from typing_extensions import TypedDict

from channels.consumer import AsyncConsumer
from channels.exceptions import (
    AcceptConnection,
    DenyConnection,
    InvalidChannelLayerError,
)
from channels.generic.websocket import (
    AsyncJsonWebsocketConsumer,
    AsyncWebsocketConsumer,
    GroupNames,
    JSONValue,
    JsonWebsocketConsumer,
    WebsocketConsumer,
)
from channels.layers import InMemoryChannelLayer, get_channel_layer
from channels.testing import WebsocketCommunicator
from tests.generic._subclass import with_attributes

RECORDING_LAYER = {"default": {"BACKEND": "tests.generic.test_websocket.RecordingLayer"}}


class RecordingLayer(InMemoryChannelLayer):
    """An in-memory layer that records group joins and leaves."""

    def __init__(self) -> None:
        super().__init__()
        self.joined: list[tuple[str, str]] = []
        self.left: list[tuple[str, str]] = []

    async def group_add(self, group: str, channel: str) -> None:
        self.joined.append((group, channel))
        await super().group_add(group, channel)

    async def group_discard(self, group: str, channel: str) -> None:
        self.left.append((group, channel))
        await super().group_discard(group, channel)


def recording_layer() -> RecordingLayer:
    layer = get_channel_layer()
    assert isinstance(layer, RecordingLayer)
    return layer


# -- scripted consumers, one per flavour --------------------------------------
#
# ``mode`` (an init keyword) picks how connect() answers; a text frame names
# what receive() does; other frames are echoed.


class SyncScripted(WebsocketConsumer):
    mode = "default"
    codes: list[int] = []

    def connect(self) -> None:
        if self.mode == "raise-accept":
            raise AcceptConnection
        if self.mode == "raise-deny":
            raise DenyConnection
        if self.mode == "subprotocol":
            self.accept("chat.v2", headers=[(b"x-room", b"lobby")])
        elif self.mode == "close":
            self.close(code=4003, reason="not today")
        elif self.mode == "announce":
            group = next(iter(self.groups))
            event = {"type": "chat.message", "text": "joined"}
            async_to_sync(self.channel_layer.group_send)(group, event)
            self.accept()
        else:
            super().connect()

    def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if text_data == "both":
            self.send(text_data="a", bytes_data=b"b")
        elif text_data == "neither":
            self.send()
        elif text_data == "send-and-close":
            self.send(text_data="bye", close=True)
        elif text_data == "send-and-close-4001":
            self.send(text_data="bye", close=4001)
        elif text_data == "close-4002":
            self.close(4002, "done")
        elif text_data == "close":
            self.close()
        elif text_data is not None:
            self.send(text_data=text_data)
        else:
            self.send(bytes_data=bytes_data)

    def chat_message(self, event: dict[str, str]) -> None:
        self.send(text_data=event["text"])

    def disconnect(self, code: int, /) -> None:
        self.codes.append(code)


class AsyncScripted(AsyncWebsocketConsumer):
    mode = "default"
    codes: list[int] = []

    async def connect(self) -> None:
        if self.mode == "raise-accept":
            raise AcceptConnection
        if self.mode == "raise-deny":
            raise DenyConnection
        if self.mode == "subprotocol":
            await self.accept("chat.v2", headers=[(b"x-room", b"lobby")])
        elif self.mode == "close":
            await self.close(code=4003, reason="not today")
        elif self.mode == "announce":
            group = next(iter(self.groups))
            await self.channel_layer.group_send(group, {"type": "chat.message", "text": "joined"})
            await self.accept()
        else:
            await super().connect()

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if text_data == "both":
            await self.send(text_data="a", bytes_data=b"b")
        elif text_data == "neither":
            await self.send()
        elif text_data == "send-and-close":
            await self.send(text_data="bye", close=True)
        elif text_data == "send-and-close-4001":
            await self.send(text_data="bye", close=4001)
        elif text_data == "close-4002":
            await self.close(4002, "done")
        elif text_data == "close":
            await self.close()
        elif text_data is not None:
            await self.send(text_data=text_data)
        else:
            await self.send(bytes_data=bytes_data)

    async def chat_message(self, event: dict[str, str]) -> None:
        await self.send(text_data=event["text"])

    async def disconnect(self, code: int, /) -> None:
        self.codes.append(code)


FLAVOURS = [pytest.param(SyncScripted, id="sync"), pytest.param(AsyncScripted, id="async")]


def communicator_for(consumer: type[AsyncConsumer], **initkwargs: object) -> WebsocketCommunicator:
    return WebsocketCommunicator(with_attributes(consumer, **initkwargs).as_asgi(), "/ws/")


async def connected_to(
    consumer: type[AsyncConsumer], **initkwargs: object
) -> WebsocketCommunicator:
    communicator = communicator_for(consumer, **initkwargs)
    assert await communicator.connect() == (True, None)
    return communicator


@pytest.mark.parametrize("consumer", FLAVOURS)
class TestConnect:
    async def test_connect_accepts_by_default(self, consumer: type[AsyncConsumer]) -> None:
        communicator = communicator_for(consumer)
        assert await communicator.connect() == (True, None)
        await communicator.disconnect()

    async def test_accept_sends_subprotocol_and_headers(
        self, consumer: type[AsyncConsumer]
    ) -> None:
        communicator = communicator_for(consumer, mode="subprotocol")
        assert await communicator.connect() == (True, "chat.v2")
        assert communicator.response_headers == [(b"x-room", b"lobby")]
        await communicator.disconnect()

    async def test_accept_without_arguments_sends_no_headers(
        self, consumer: type[AsyncConsumer]
    ) -> None:
        communicator = communicator_for(consumer)
        await communicator.send_input({"type": "websocket.connect"})
        assert await communicator.receive_output() == {
            "type": "websocket.accept",
            "subprotocol": None,
        }
        communicator.stop()

    async def test_accept_connection_raised_in_connect_accepts(
        self, consumer: type[AsyncConsumer]
    ) -> None:
        communicator = communicator_for(consumer, mode="raise-accept")
        assert await communicator.connect() == (True, None)
        await communicator.disconnect()

    async def test_deny_connection_raised_in_connect_closes(
        self, consumer: type[AsyncConsumer]
    ) -> None:
        communicator = communicator_for(consumer, mode="raise-deny")
        await communicator.send_input({"type": "websocket.connect"})
        assert await communicator.receive_output() == {"type": "websocket.close"}
        communicator.stop()

    async def test_close_in_connect_refuses_with_code_and_reason(
        self, consumer: type[AsyncConsumer]
    ) -> None:
        communicator = communicator_for(consumer, mode="close")
        await communicator.send_input({"type": "websocket.connect"})
        assert await communicator.receive_output() == {
            "type": "websocket.close",
            "code": 4003,
            "reason": "not today",
        }
        communicator.stop()


@pytest.mark.parametrize("consumer", FLAVOURS)
class TestGroups:
    async def test_groups_are_joined_before_connect_runs(
        self, consumer: type[AsyncConsumer]
    ) -> None:
        # connect() sends to its first group; only a member receives it.
        communicator = await connected_to(consumer, mode="announce", groups=["lobby"])
        assert await communicator.receive_from() == "joined"
        await communicator.disconnect()

    @pytest.mark.parametrize(
        "groups",
        [
            pytest.param(["a", "b"], id="list"),
            pytest.param({"a", "b"}, id="set"),
            pytest.param(("a", "b"), id="tuple"),
            pytest.param(frozenset({"a", "b"}), id="frozenset"),
        ],
    )
    @override_settings(CHANNEL_LAYERS=RECORDING_LAYER)
    async def test_any_iterable_of_groups_is_joined_then_left(
        self, consumer: type[AsyncConsumer], groups: Iterable[str]
    ) -> None:
        codes: list[int] = []
        communicator = await connected_to(consumer, groups=groups, codes=codes)
        layer = recording_layer()
        channel = layer.joined[0][1]
        assert sorted(layer.joined) == [("a", channel), ("b", channel)]
        assert layer.left == []
        await communicator.disconnect(code=4000)
        assert sorted(layer.left) == [("a", channel), ("b", channel)]
        assert codes == [4000]

    @override_settings(CHANNEL_LAYERS=RECORDING_LAYER)
    async def test_a_str_of_groups_is_refused_naming_the_consumer(
        self, consumer: type[AsyncConsumer]
    ) -> None:
        # A str is an iterable of str: joined as it is, it would be one group per character.
        communicator = communicator_for(consumer, groups="lobby")
        with pytest.raises(
            TypeError,
            match=rf"^{consumer.__name__}\.groups must be a list \(or tuple or set\) of group "
            r"names, not a str, whose characters would each be joined as a group: write "
            r"groups = \['lobby'\]; got 'lobby'$",
        ):
            await communicator.connect()
        assert recording_layer().joined == []

    @override_settings(CHANNEL_LAYERS={})
    async def test_no_groups_needs_no_layer(self, consumer: type[AsyncConsumer]) -> None:
        communicator = await connected_to(consumer)
        await communicator.send_to(text_data="hello")
        assert await communicator.receive_from() == "hello"
        await communicator.disconnect()

    @override_settings(CHANNEL_LAYERS={})
    async def test_groups_without_a_layer_fail_naming_the_alias(
        self, consumer: type[AsyncConsumer]
    ) -> None:
        communicator = communicator_for(consumer, groups=["lobby"])
        with pytest.raises(
            InvalidChannelLayerError,
            match=rf"{consumer.__name__} uses the channel layer 'default', but "
            "CHANNEL_LAYERS has no such alias",
        ):
            await communicator.connect()


@pytest.mark.parametrize("consumer", FLAVOURS)
class TestReceive:
    async def test_text_and_bytes_frames_reach_receive(self, consumer: type[AsyncConsumer]) -> None:
        communicator = await connected_to(consumer)
        await communicator.send_to(text_data="text")
        assert await communicator.receive_from() == "text"
        await communicator.send_to(bytes_data=b"\x00bytes")
        assert await communicator.receive_from() == b"\x00bytes"
        await communicator.disconnect()

    async def test_text_none_counts_as_absent(self, consumer: type[AsyncConsumer]) -> None:
        # Hypercorn sends both keys, the unused one None.
        communicator = await connected_to(consumer)
        await communicator.send_input({"type": "websocket.receive", "text": None, "bytes": b"b"})
        assert await communicator.receive_from() == b"b"
        await communicator.send_input({"type": "websocket.receive", "text": "t", "bytes": None})
        assert await communicator.receive_from() == "t"
        await communicator.disconnect()

    async def test_a_frame_without_data_is_rejected(self, consumer: type[AsyncConsumer]) -> None:
        communicator = await connected_to(consumer)
        await communicator.send_input({"type": "websocket.receive", "text": None})
        with pytest.raises(
            ValueError,
            match=r"a websocket.receive event must carry 'text' or 'bytes'; "
            r"got one with keys \['text', 'type'\] and no frame data",
        ):
            await communicator.wait()


@pytest.mark.parametrize("consumer", FLAVOURS)
class TestSend:
    @pytest.mark.parametrize(
        ("command", "arrived"),
        [pytest.param("both", "both", id="both"), pytest.param("neither", "neither", id="neither")],
    )
    async def test_send_takes_exactly_one_payload(
        self, consumer: type[AsyncConsumer], command: str, arrived: str
    ) -> None:
        communicator = await connected_to(consumer)
        await communicator.send_to(text_data=command)
        with pytest.raises(
            ValueError,
            match=f"send\\(\\) takes exactly one of text_data and bytes_data; got {arrived}$",
        ):
            await communicator.wait()

    @pytest.mark.parametrize(
        ("command", "close_event"),
        [
            pytest.param("send-and-close", {"type": "websocket.close"}, id="close-true"),
            pytest.param(
                "send-and-close-4001", {"type": "websocket.close", "code": 4001}, id="close-code"
            ),
        ],
    )
    async def test_send_can_close_after_sending(
        self, consumer: type[AsyncConsumer], command: str, close_event: dict[str, object]
    ) -> None:
        communicator = await connected_to(consumer)
        await communicator.send_to(text_data=command)
        assert await communicator.receive_output() == {"type": "websocket.send", "text": "bye"}
        assert await communicator.receive_output() == close_event
        communicator.stop()

    @pytest.mark.parametrize(
        ("command", "close_event"),
        [
            pytest.param("close", {"type": "websocket.close"}, id="no-code"),
            pytest.param(
                "close-4002",
                {"type": "websocket.close", "code": 4002, "reason": "done"},
                id="code-and-reason",
            ),
        ],
    )
    async def test_close_sends_code_and_reason(
        self, consumer: type[AsyncConsumer], command: str, close_event: dict[str, object]
    ) -> None:
        communicator = await connected_to(consumer)
        await communicator.send_to(text_data=command)
        assert await communicator.receive_output() == close_event
        communicator.stop()


@pytest.mark.parametrize("consumer", FLAVOURS)
class TestDisconnect:
    async def test_disconnect_gets_the_code_and_the_consumer_stops(
        self, consumer: type[AsyncConsumer]
    ) -> None:
        codes: list[int] = []
        communicator = await connected_to(consumer, codes=codes)
        await communicator.disconnect(code=1001)
        assert codes == [1001]
        assert communicator.future.exception() is None

    async def test_a_disconnect_without_code_reports_1005(
        self, consumer: type[AsyncConsumer]
    ) -> None:
        codes: list[int] = []
        communicator = await connected_to(consumer, codes=codes)
        await communicator.send_input({"type": "websocket.disconnect"})
        await communicator.wait()
        assert codes == [1005]


# -- JSON ----------------------------------------------------------------------


class SyncJson(JsonWebsocketConsumer):
    def receive_json(self, content: JSONValue, **kwargs: object) -> None:
        self.send_json({"echo": content}, close=content == "bye")


class AsyncJson(AsyncJsonWebsocketConsumer):
    async def receive_json(self, content: JSONValue, **kwargs: object) -> None:
        await self.send_json({"echo": content}, close=content == "bye")


class SyncSortedJson(SyncJson):
    @classmethod
    def encode_json(cls, content: object) -> str:
        return json.dumps(content, sort_keys=True, separators=(",", ":"))

    @classmethod
    def decode_json(cls, text_data: str) -> JSONValue:
        decoded: JSONValue = json.loads(text_data.removeprefix("json:"))
        return decoded


class AsyncSortedJson(AsyncJson):
    @classmethod
    async def encode_json(cls, content: object) -> str:
        return json.dumps(content, sort_keys=True, separators=(",", ":"))

    @classmethod
    async def decode_json(cls, text_data: str) -> JSONValue:
        decoded: JSONValue = json.loads(text_data.removeprefix("json:"))
        return decoded


JSON_FLAVOURS = [pytest.param(SyncJson, id="sync"), pytest.param(AsyncJson, id="async")]


@pytest.mark.parametrize("consumer", JSON_FLAVOURS)
class TestJson:
    async def test_receive_json_gets_decoded_content_and_send_json_encodes(
        self, consumer: type[AsyncConsumer]
    ) -> None:
        communicator = await connected_to(consumer)
        await communicator.send_json_to({"message": "hi", "n": [1, 2.5, None, True]})
        assert await communicator.receive_json_from() == {
            "echo": {"message": "hi", "n": [1, 2.5, None, True]}
        }
        await communicator.disconnect()

    async def test_send_json_can_close(self, consumer: type[AsyncConsumer]) -> None:
        communicator = await connected_to(consumer)
        await communicator.send_json_to("bye")
        assert await communicator.receive_json_from() == {"echo": "bye"}
        assert await communicator.receive_output() == {"type": "websocket.close"}
        communicator.stop()

    async def test_a_binary_frame_is_rejected(self, consumer: type[AsyncConsumer]) -> None:
        communicator = await connected_to(consumer)
        await communicator.send_to(bytes_data=b"{}!")
        with pytest.raises(
            ValueError,
            match=rf"{consumer.__name__} expects a text frame holding JSON; "
            "got a binary frame of 3 bytes",
        ):
            await communicator.wait()

    async def test_text_that_is_not_json_is_rejected(self, consumer: type[AsyncConsumer]) -> None:
        communicator = await connected_to(consumer)
        await communicator.send_to(text_data="{not json")
        with pytest.raises(json.JSONDecodeError, match="Expecting property name"):
            await communicator.wait()


Received = list[tuple[JSONValue, dict[str, object]]]


class SyncJsonRecorder(JsonWebsocketConsumer):
    received: Received = []

    def receive_json(self, content: JSONValue, **kwargs: object) -> None:
        self.received.append((content, kwargs))


class AsyncJsonRecorder(AsyncJsonWebsocketConsumer):
    received: Received = []

    async def receive_json(self, content: JSONValue, **kwargs: object) -> None:
        self.received.append((content, kwargs))


class TestJsonReceiveCalledDirectly:
    def test_sync_receive_passes_keywords_on(self) -> None:
        received: Received = []
        consumer = with_attributes(SyncJsonRecorder, received=received)()
        consumer.receive(text_data="[1]", via="test")
        assert received == [([1], {"via": "test"})]
        with pytest.raises(
            ValueError, match="SyncJsonRecorder expects a text frame holding JSON; got no text_data"
        ):
            consumer.receive()

    async def test_async_receive_passes_keywords_on(self) -> None:
        received: Received = []
        consumer = with_attributes(AsyncJsonRecorder, received=received)()
        await consumer.receive(text_data="[1]", via="test")
        assert received == [([1], {"via": "test"})]
        with pytest.raises(
            ValueError,
            match="AsyncJsonRecorder expects a text frame holding JSON; got no text_data",
        ):
            await consumer.receive()


@pytest.mark.parametrize(
    "consumer",
    [pytest.param(SyncSortedJson, id="sync"), pytest.param(AsyncSortedJson, id="async")],
)
async def test_encode_and_decode_json_can_be_overridden(consumer: type[AsyncConsumer]) -> None:
    communicator = await connected_to(consumer)
    await communicator.send_to(text_data='json:{"b": 1, "a": 2}')
    assert await communicator.receive_from() == '{"echo":{"a":2,"b":1}}'
    await communicator.disconnect()


# -- a realistic consumer, checked by mypy and pyright with the rest -----------


class ChatMessage(TypedDict):
    type: Literal["chat.message"]
    message: str
    user: str


class ChatConsumer(AsyncJsonWebsocketConsumer):
    """The tutorial's chat room, typed the way a user would type it."""

    groups: GroupNames = ["announcements"]

    async def connect(self) -> None:
        self.room: str = self.scope["url_route"]["kwargs"]["room"]
        self.room_group = f"chat_{self.room}"
        if not self.room.isidentifier():
            await self.close(code=4004, reason="bad room name")
            return
        await self.channel_layer.group_add(self.room_group, self.channel_name)
        await self.accept()

    async def disconnect(self, close_code: int) -> None:
        await self.channel_layer.group_discard(self.room_group, self.channel_name)

    async def receive_json(self, content: JSONValue, **kwargs: Any) -> None:
        if not isinstance(content, dict) or not isinstance(content.get("message"), str):
            await self.send_json({"error": "expected {'message': str}"})
            return
        event: ChatMessage = {
            "type": "chat.message",
            "message": str(content["message"]),
            "user": self.scope["user"].get_username(),
        }
        await self.channel_layer.group_send(self.room_group, event)

    async def chat_message(self, event: ChatMessage) -> None:
        await self.send_json(event)


websocket_urlpatterns: list[URLPattern] = [
    path("ws/chat/<str:room>/", ChatConsumer.as_asgi()),
]


class TestChatConsumer:
    async def join(self, room: str) -> WebsocketCommunicator:
        route = websocket_urlpatterns[0]
        communicator = WebsocketCommunicator(route.callback, f"/ws/chat/{room}/")
        communicator.scope["url_route"] = {"args": (), "kwargs": {"room": room}}
        communicator.scope["user"] = AnonymousUser()
        return communicator

    async def test_messages_reach_everyone_in_the_room(self) -> None:
        alice, bob = await self.join("lobby"), await self.join("lobby")
        assert await alice.connect() == (True, None)
        assert await bob.connect() == (True, None)
        await alice.send_json_to({"message": "hello"})
        expected = {"type": "chat.message", "message": "hello", "user": ""}
        assert await alice.receive_json_from() == expected
        assert await bob.receive_json_from() == expected
        await alice.disconnect()
        await bob.disconnect()

    async def test_bad_input_gets_an_error_and_bad_rooms_are_refused(self) -> None:
        alice = await self.join("lobby")
        await alice.connect()
        await alice.send_json_to(["not", "an", "object"])
        assert await alice.receive_json_from() == {"error": "expected {'message': str}"}
        await alice.disconnect()
        mallory = await self.join("no-such-room")
        assert await mallory.connect() == (False, 4004)
        mallory.stop()
