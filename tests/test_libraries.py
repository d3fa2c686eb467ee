"""What libraries built on Channels do with our classes, done here.

djangochannelsrestframework gives consumers a metaclass and overrides the
websocket handlers and ``dispatch``; strawberry passes ``as_asgi()`` keywords
to ``__init__``; apps send to groups from model signals with
``async_to_sync``; library consumers define private names of their own.
"""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth.models import User
from django.db.models.signals import post_save

from channels.consumer import AsyncConsumer, SyncConsumer
from channels.db import database_sync_to_async
from channels.exceptions import StopConsumer
from channels.generic.http import AsyncHttpConsumer
from channels.generic.websocket import AsyncJsonWebsocketConsumer, WebsocketConsumer
from channels.layers import get_channel_layer
from channels.layers.protocols import FullChannelLayer
from channels.testing import HttpCommunicator, WebsocketCommunicator
from channels.types import ReceivedMessage


class APIConsumerMeta(type):
    """Collects the ``@action`` handlers of a consumer class, as DCRF's metaclass does."""

    def __new__(
        mcs, name: str, bases: tuple[type, ...], namespace: dict[str, Any]
    ) -> APIConsumerMeta:
        cls = super().__new__(mcs, name, bases, namespace)
        actions = {key for key, value in namespace.items() if getattr(value, "is_action", False)}
        cls.available_actions = actions  # type: ignore[attr-defined]  # set by the metaclass, read by instances
        return cls


def action(function: Any) -> Any:
    function.is_action = True
    return function


class APIConsumer(AsyncJsonWebsocketConsumer, metaclass=APIConsumerMeta):
    """A DCRF-style consumer: its own metaclass, its own connect and disconnect handlers."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.log: list[str] = []

    async def websocket_connect(self, message: Any) -> None:
        self.log.append("connect")
        await super().websocket_connect(message)

    async def websocket_disconnect(self, message: Any) -> None:
        self.log.append("disconnect")
        await super().websocket_disconnect(message)

    async def receive_json(self, content: Any, **kwargs: object) -> None:
        if content["action"] not in type(self).available_actions:  # type: ignore[attr-defined]  # set by the metaclass
            await self.send_json({"error": f"no action {content['action']!r}"})
            return
        await getattr(self, content["action"])(**content.get("args", {}))

    @action
    async def add(self, a: int, b: int) -> None:
        await self.send_json({"sum": a + b, "log": self.log})


class TestMetaclassConsumer:
    async def test_actions_are_collected_and_dispatched(self) -> None:
        communicator = WebsocketCommunicator(APIConsumer.as_asgi(), "/api/")
        assert await communicator.connect() == (True, None)
        await communicator.send_json_to({"action": "add", "args": {"a": 2, "b": 3}})
        assert await communicator.receive_json_from() == {"sum": 5, "log": ["connect"]}
        await communicator.send_json_to({"action": "drop_tables"})
        assert await communicator.receive_json_from() == {"error": "no action 'drop_tables'"}
        await communicator.disconnect()

    def test_the_metaclass_built_the_class(self) -> None:
        assert type(APIConsumer) is APIConsumerMeta
        assert APIConsumer.available_actions == {"add"}  # type: ignore[attr-defined]  # set by the metaclass


class SchemaConsumer(AsyncJsonWebsocketConsumer):
    """A strawberry-style consumer: ``as_asgi(schema=...)`` reaches ``__init__``."""

    def __init__(self, schema: str, keep_alive: bool = False, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.schema = schema
        self.keep_alive = keep_alive

    async def connect(self) -> None:
        await self.accept(subprotocol=self.schema)


class TestInitKeywords:
    async def test_keywords_reach_init(self) -> None:
        app = SchemaConsumer.as_asgi(schema="graphql-transport-ws", keep_alive=True)
        communicator = WebsocketCommunicator(app, "/graphql/", subprotocols=["graphql-ws"])
        assert await communicator.connect() == (True, "graphql-transport-ws")
        await communicator.disconnect()


class RoutingConsumer(AsyncConsumer):
    """Overrides ``dispatch`` to route layer messages of its own shape."""

    async def dispatch(self, message: ReceivedMessage) -> None:
        if message["type"] == "model.changed":
            await self.send({"type": "websocket.send", "text": f"changed {message['pk']}"})
            return
        await super().dispatch(message)

    async def websocket_connect(self, message: ReceivedMessage) -> None:
        await self.channel_layer.group_add("models", self.channel_name)
        await self.send({"type": "websocket.accept"})

    async def websocket_disconnect(self, message: ReceivedMessage) -> None:
        await self.channel_layer.group_discard("models", self.channel_name)
        raise StopConsumer


def _notify(sender: type[User], instance: User, created: bool, **kwargs: object) -> None:
    layer = get_channel_layer()
    assert layer is not None
    async_to_sync(layer.group_send)("models", {"type": "model.changed", "pk": instance.pk})


class TestSignalsAndDispatch:
    @pytest.mark.django_db(transaction=True)
    async def test_a_model_signal_reaches_a_consumer_that_routes_in_dispatch(self) -> None:
        communicator = WebsocketCommunicator(RoutingConsumer.as_asgi(), "/")
        assert await communicator.connect() == (True, None)
        post_save.connect(_notify, sender=User)
        try:
            user = await database_sync_to_async(User.objects.create)(username="ada")
        finally:
            post_save.disconnect(_notify, sender=User)
        assert await communicator.receive_from() == f"changed {user.pk}"
        await communicator.disconnect()


class TestPrivateNames:
    """Subclasses that define the obvious private names keep working."""

    async def test_async_consumer(self) -> None:
        class Library(AsyncJsonWebsocketConsumer):
            _scope = _groups = _handler_for = _dispatch_received = "the library's"

            @property
            def _channel_layer(self) -> FullChannelLayer:
                return self.channel_layer

            async def connect(self) -> None:
                await self._channel_layer.group_add("lobby", self.channel_name)
                await self.accept()

            async def receive_json(self, content: Any, **kwargs: object) -> None:
                await self._channel_layer.group_send("lobby", {"type": "echo", "v": content})

            async def echo(self, event: dict[str, Any]) -> None:
                await self.send_json(event["v"])

        communicator = WebsocketCommunicator(Library.as_asgi(), "/")
        assert await communicator.connect() == (True, None)
        await communicator.send_json_to([1, 2])
        assert await communicator.receive_json_from() == [1, 2]
        await communicator.disconnect()

    async def test_sync_consumer(self) -> None:
        class Library(WebsocketConsumer):
            _loop = _unsent = _last_send = _send_in_turn = _send_after = "the library's"
            _sender = _channel_layer = "the library's"

            def receive(
                self, text_data: str | None = None, bytes_data: bytes | None = None
            ) -> None:
                self.send(text_data=f"echo {text_data}")

        communicator = WebsocketCommunicator(Library.as_asgi(), "/")
        assert await communicator.connect() == (True, None)
        await communicator.send_to(text_data="hi")
        assert await communicator.receive_from() == "echo hi"
        await communicator.disconnect()

    async def test_sync_base_send_is_a_plain_callable_as_upstream(self) -> None:
        class Raw(SyncConsumer):
            def websocket_connect(self, message: ReceivedMessage) -> None:
                self.base_send({"type": "websocket.accept"})

        communicator = WebsocketCommunicator(Raw.as_asgi(), "/")
        assert await communicator.connect() == (True, None)
        communicator.stop()

    async def test_http_consumer(self) -> None:
        class Library(AsyncHttpConsumer):
            _response_complete = _body = "the library's"

            async def handle(self, body: bytes) -> None:
                await self.send_response(200, b"ok " + body)

        response = await HttpCommunicator(Library.as_asgi(), "POST", "/", b"x").get_response()
        assert response["body"] == b"ok x"
