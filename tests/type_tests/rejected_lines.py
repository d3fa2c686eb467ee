"""Lines that mypy --strict and pyright strict must both reject.

Each line marked ``# rejected`` must get an error from each checker, and no
other line may get one. ``tests/test_type_checks.py`` runs both checkers on
this file (the normal runs exclude it).
"""

from __future__ import annotations

from django.urls import path

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer
from channels.middleware import BaseMiddleware
from channels.routing import ProtocolTypeRouter, URLRouter
from channels.testing import WebsocketCommunicator


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
