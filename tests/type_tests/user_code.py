"""Realistic user code that must type-check under mypy --strict and pyright strict.

Checked, never run: it is what a Channels tutorial reader writes, without a
cast or an ignore.
"""

from __future__ import annotations

from typing import TypedDict

from django.contrib.auth.models import User
from django.core.asgi import get_asgi_application
from django.urls import path, re_path
from typing_extensions import assert_type

from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async
from channels.generic.http import AsyncHttpConsumer
from channels.generic.websocket import (
    AsyncJsonWebsocketConsumer,
    AsyncWebsocketConsumer,
    JSONValue,
    WebsocketConsumer,
)
from channels.layers import get_channel_layer
from channels.middleware import BaseMiddleware
from channels.routing import ChannelNameRouter, ProtocolTypeRouter, URLRouter
from channels.security.websocket import AllowedHostsOriginValidator
from channels.testing import HttpCommunicator, WebsocketCommunicator
from channels.types import Receive, Scope, Send


class ChatEvent(TypedDict):
    type: str
    message: str
    sender: str


class ChatConsumer(AsyncWebsocketConsumer):
    room_group_name: str

    async def connect(self) -> None:
        room: str = self.scope["url_route"]["kwargs"]["room"]
        self.room_group_name = f"chat_{room}"
        user = self.scope["user"]
        if not user.is_authenticated:
            await self.close(code=4401)
            return
        await self.channel_layer.group_add(self.room_group_name, self.channel_name)
        await self.accept()

    async def disconnect(self, close_code: int) -> None:
        await self.channel_layer.group_discard(self.room_group_name, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        event: ChatEvent = {
            "type": "chat.message",
            "message": text_data or "",
            "sender": self.scope["session"].get("name", "anonymous"),
        }
        await self.channel_layer.group_send(self.room_group_name, event)

    async def chat_message(self, event: ChatEvent) -> None:
        await self.send(text_data=event["message"])


class EchoJsonConsumer(AsyncJsonWebsocketConsumer):
    groups = ("broadcast",)

    async def receive_json(self, content: JSONValue, **kwargs: object) -> None:
        if isinstance(content, dict):
            await self.send_json({"echo": content.get("message")})
        else:
            await self.send_json(content, close=True)


class SyncEcho(WebsocketConsumer):
    def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        self.send(text_data=text_data, close=False)


class Hello(AsyncHttpConsumer):
    async def handle(self, body: bytes) -> None:
        await self.send_response(200, b"hello", headers=[(b"Content-Type", b"text/plain")])


class QueryStringUserMiddleware(BaseMiddleware):
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope = dict(scope)
        scope["token"] = scope.get("query_string", b"").decode()
        await super().__call__(scope, receive, send)


@database_sync_to_async
def user_count(active: bool = True) -> int:
    return User.objects.filter(is_active=active).count()


async def uses_database() -> None:
    count = await user_count(active=False)
    assert_type(count, int)


websocket_urlpatterns = [
    path("ws/chat/<str:room>/", ChatConsumer.as_asgi()),
    re_path(r"^ws/echo/(?P<kind>\w+)/$", EchoJsonConsumer.as_asgi()),
    path("ws/sync/", SyncEcho.as_asgi()),
    path("ws/nested/", URLRouter([path("inner/", ChatConsumer.as_asgi())])),
]

application = ProtocolTypeRouter(
    {
        "http": get_asgi_application(),
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(QueryStringUserMiddleware(URLRouter(websocket_urlpatterns)))
        ),
        "channel": ChannelNameRouter({"thumbnails": Hello.as_asgi()}),
    }
)


async def a_test(user: User) -> None:
    communicator = WebsocketCommunicator(application, "/ws/chat/lobby/")
    communicator.scope["user"] = user
    connected, _ = await communicator.connect(timeout=5)
    assert connected
    await communicator.send_to(text_data="hello")
    assert await communicator.receive_from() == "hello"
    await communicator.send_json_to({"message": "hi"})
    assert await communicator.receive_nothing()
    await communicator.disconnect()

    http = HttpCommunicator(Hello.as_asgi(), "GET", "/")
    response = await http.get_response()
    assert response["status"] == 200

    layer = get_channel_layer()
    if layer is not None:
        event: ChatEvent = {"type": "chat.message", "message": "x", "sender": "y"}
        await layer.group_send("chat_lobby", event)
        await layer.send(await layer.new_channel(), event)
