"""Lines that mypy --strict and pyright strict must both reject.

Each line marked ``# rejected`` must get an error from each checker, and no
other line may get one. ``tests/test_type_checks.py`` runs both checkers on
this file (the normal runs exclude it).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from django.core.asgi import get_asgi_application
from django.urls import path

from channels.auth import AuthMiddlewareStack, get_user, login
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer, WebsocketConsumer
from channels.layers import get_channel_layer
from channels.middleware import BaseMiddleware
from channels.routing import ChannelNameRouter, ProtocolTypeRouter, URLRouter
from channels.testing import WebsocketCommunicator

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class ChatConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        await self.channel_layer.group_add(42, self.channel_name)  # rejected

    async def receive(self, text_data: int = 0) -> None:  # rejected
        await self.channel_layer.group_send("room", "not a mapping")  # rejected


class WrongDisconnect(AsyncWebsocketConsumer):
    async def disconnect(self, close_code: str) -> None:  # rejected
        pass


@database_sync_to_async
def count(active: bool) -> int:
    return 0


async def misuse() -> None:
    await count(active="yes")  # rejected
    layer = get_channel_layer()
    if layer is not None:
        await layer.send("channel", ["not", "a", "mapping"])  # rejected
    WebsocketCommunicator(ChatConsumer, "/ws/")  # rejected


ProtocolTypeRouter({"websocket": ChatConsumer})  # rejected
ProtocolTypeRouter({"websocket": "chat.consumers.ChatConsumer"})  # rejected
ProtocolTypeRouter({"websocket": 5})  # rejected
URLRouter([path("ws/", ChatConsumer)])  # rejected
BaseMiddleware("chat.consumers.ChatConsumer")  # rejected


class Lobby(AsyncWebsocketConsumer):
    groups = "lobby"  # rejected


class SyncLobby(WebsocketConsumer):
    groups: str = "lobby"  # rejected


class LoginWithTheConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        await get_user(self.scope["user"])  # rejected
        await login(self, None)  # rejected


class PlainMiddleware:
    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]]) -> None:
        self.app = app


class TokenMiddleware(BaseMiddleware):
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await super().__call__(scope, receive, send)


BaseMiddleware(ChatConsumer)  # rejected
BaseMiddleware(5)  # rejected
AuthMiddlewareStack(ChatConsumer)  # rejected
PlainMiddleware(ChatConsumer)  # rejected
PlainMiddleware("chat.consumers.ChatConsumer")  # rejected
PlainMiddleware(5)  # rejected
TokenMiddleware(ChatConsumer)  # rejected
TokenMiddleware("chat.consumers.ChatConsumer")  # rejected
ChannelNameRouter({"thumbnails": ChatConsumer})  # rejected
ProtocolTypeRouter({"http": get_asgi_application})  # rejected
ProtocolTypeRouter({"websocket": PlainMiddleware})  # rejected
