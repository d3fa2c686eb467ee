"""The ASGI application the live-server tests serve (ASGI_APPLICATION in tests.settings)."""

from __future__ import annotations

from django.core.asgi import get_asgi_application
from django.urls import path

from channels.generic.websocket import AsyncWebsocketConsumer
from channels.routing import ProtocolTypeRouter, URLRouter


class EchoConsumer(AsyncWebsocketConsumer):
    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        await self.send(text_data=f"echo: {text_data}")


application = ProtocolTypeRouter(
    {
        "http": get_asgi_application(),
        "websocket": URLRouter([path("ws/echo/", EchoConsumer.as_asgi())]),
    }
)
