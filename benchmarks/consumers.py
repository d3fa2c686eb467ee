"""The consumers every consumer and server workload runs (importable by both sides).

Imported after Django is set up (``channels.generic`` needs settings).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from channels.generic.websocket import (
    AsyncJsonWebsocketConsumer,
    AsyncWebsocketConsumer,
    WebsocketConsumer,
)

__all__ = ["AsyncEcho", "BroadcastMember", "JsonEcho", "SyncEcho"]

ROOM = "room"


class AsyncEcho(AsyncWebsocketConsumer):
    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        await self.send(text_data=text_data, bytes_data=bytes_data)


class JsonEcho(AsyncJsonWebsocketConsumer):
    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        await self.send_json(content)


class SyncEcho(WebsocketConsumer):
    def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        self.send(text_data=text_data, bytes_data=bytes_data)


class BroadcastMember(AsyncWebsocketConsumer):
    """Joins the room; text it receives is sent to the whole room (one sender, many receivers)."""

    groups: Iterable[str] = [ROOM]

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        await self.channel_layer.group_send(ROOM, {"type": "room.message", "text": text_data})

    async def room_message(self, event: dict[str, Any]) -> None:
        await self.send(text_data=event["text"])
