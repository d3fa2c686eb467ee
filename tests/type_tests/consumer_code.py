"""User code: consumers of every kind that log users in, read the scope, decode JSON, join groups.

Written the way the Channels docs and tutorials write a typed app. Checked by
mypy --strict and pyright strict, never run: no line here may need a cast or
an ignore.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any, Literal, TypedDict

from asgiref.sync import async_to_sync
from django.contrib.auth import authenticate
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser
from django.contrib.sessions.backends.db import SessionStore
from django.urls import path, re_path
from typing_extensions import assert_type

from channels.auth import get_user, login, logout
from channels.consumer import AsyncConsumer, SyncConsumer
from channels.db import database_sync_to_async
from channels.generic.http import AsyncHttpConsumer
from channels.generic.websocket import (
    AsyncJsonWebsocketConsumer,
    AsyncWebsocketConsumer,
    JsonWebsocketConsumer,
    WebsocketConsumer,
)
from channels.routing import ChannelNameRouter, URLRouter
from channels.types import WebSocketConnectEvent, WebSocketReceiveEvent

# -- login, logout and get_user with the scope of every consumer kind ---------


class AccountConsumer(AsyncJsonWebsocketConsumer):
    """Log in and out over a websocket, with a protocol of JSON objects."""

    async def receive_json(self, content: dict[str, Any], **kwargs: Any) -> None:
        action = content.get("action")
        if action == "login":
            user = await database_sync_to_async(authenticate)(
                username=content["username"], password=content["password"]
            )
            if user is None:
                await self.send_json({"error": "wrong username or password"})
                return
            await login(self.scope, user)
            await database_sync_to_async(self.scope["session"].save)()
            await self.send_json({"user": user.get_username()})
        elif action == "logout":
            await logout(self.scope)
        else:
            current = await get_user(self.scope)
            await self.send_json({"authenticated": current.is_authenticated})


class SyncAccountConsumer(WebsocketConsumer):
    """The sync flavour: the async helpers through async_to_sync, as the docs show."""

    def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        user = authenticate(username="alice", password=text_data or "")
        if user is not None:
            async_to_sync(login)(self.scope, user)
            self.scope["session"].save()
        else:
            async_to_sync(logout)(self.scope)
        self.send(text_data=str(async_to_sync(get_user)(self.scope).is_authenticated))


class WhoAmI(AsyncHttpConsumer):
    async def handle(self, body: bytes) -> None:
        user = await get_user(self.scope)
        if not user.is_authenticated:
            await self.send_response(401, b"log in first")
            return
        await self.send_response(200, user.get_username().encode())


class LogoutEverywhere(AsyncHttpConsumer):
    async def handle(self, body: bytes) -> None:
        await logout(self.scope)
        await self.send_response(204, b"")


class RawPresence(AsyncConsumer):
    """A consumer on the bare ASGI events."""

    async def websocket_connect(self, event: WebSocketConnectEvent) -> None:
        user = await get_user(self.scope)
        if isinstance(user, AnonymousUser):
            await self.send({"type": "websocket.close", "code": 4401})
            return
        await login(self.scope, user)
        await self.send({"type": "websocket.accept"})

    async def websocket_receive(self, event: WebSocketReceiveEvent) -> None:
        await self.send({"type": "websocket.send", "text": event.get("text") or ""})


class SyncWorker(SyncConsumer):
    def audit_event(self, message: dict[str, Any]) -> None:
        user = async_to_sync(get_user)(self.scope)
        print(user.get_username(), message["text"])


async def log_in_with_a_plain_scope(user: AbstractBaseUser) -> None:
    scope: dict[str, Any] = {"type": "websocket", "session": SessionStore()}
    await login(scope, user, backend="django.contrib.auth.backends.ModelBackend")
    assert_type(await get_user(scope), AbstractBaseUser | AnonymousUser)
    await logout(scope)


# -- receive_json narrowed to what the protocol sends -------------------------


class Point(TypedDict):
    x: float
    y: float


class BatchConsumer(AsyncJsonWebsocketConsumer):
    """Clients send lists of points."""

    async def receive_json(self, content: list[Any], **kwargs: Any) -> None:
        points: list[Point] = [{"x": float(item[0]), "y": float(item[1])} for item in content]
        await self.send_json({"received": len(points)})


class LooseConsumer(AsyncJsonWebsocketConsumer):
    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        await self.send_json(content)


class SyncCommandConsumer(JsonWebsocketConsumer):
    def receive_json(self, content: dict[str, Any], **kwargs: Any) -> None:
        self.send_json({"ok": content.get("command") == "ping"})


class SyncListConsumer(JsonWebsocketConsumer):
    def receive_json(self, content: list[Any], **kwargs: Any) -> None:
        self.send_json(sorted(content))


class UntypedKwargsConsumer(JsonWebsocketConsumer):
    def receive_json(self, content: Any, **kwargs: object) -> None:
        self.send_json(content)


class PriceConsumer(AsyncJsonWebsocketConsumer):
    """Prices are decoded as Decimal, so receive_json takes what decode_json builds."""

    @classmethod
    async def decode_json(cls, text_data: str) -> dict[str, Decimal]:
        prices: dict[str, Decimal] = json.loads(text_data, parse_float=Decimal)
        return prices

    @classmethod
    async def encode_json(cls, content: object) -> str:
        return json.dumps(content, default=str)

    async def receive_json(self, content: dict[str, Decimal], **kwargs: Any) -> None:
        await self.send_json({"total": sum(content.values(), Decimal(0))})


class SyncDictDecoder(JsonWebsocketConsumer):
    @classmethod
    def decode_json(cls, text_data: str) -> dict[str, Any]:
        decoded: dict[str, Any] = json.loads(text_data)
        return decoded


# -- groups: a list, tuple, set or frozenset ----------------------------------


class RoomEvent(TypedDict):
    type: Literal["room.message"]
    text: str


class Lobby(AsyncWebsocketConsumer):
    groups = ["lobby"]

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        event: RoomEvent = {"type": "room.message", "text": text_data or ""}
        await self.channel_layer.group_send("lobby", event)

    async def room_message(self, event: RoomEvent) -> None:
        await self.send(text_data=event["text"])


class Announcements(WebsocketConsumer):
    groups = ("announcements", "lobby")


class Notifications(AsyncJsonWebsocketConsumer):
    groups = {"notifications"}


class Alerts(JsonWebsocketConsumer):
    groups = frozenset({"alerts", "notifications"})


class PerUserGroups(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        self.groups = [f"user_{self.scope['user'].pk}", "everyone"]
        for group in self.groups:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()


# -- the scope a consumer reads: subprotocols, url_route, user ----------------


class GraphQLSocket(AsyncWebsocketConsumer):
    """Speaks graphql-transport-ws when the client offers it."""

    async def connect(self) -> None:
        offered = self.scope["subprotocols"]
        assert_type(offered, list[str])
        if "graphql-transport-ws" not in offered:
            await self.close(code=4406)
            return
        room = self.scope["url_route"]["kwargs"].get("room", "default")
        self.room = str(room)
        await self.accept(subprotocol="graphql-transport-ws")


websocket_urlpatterns = [
    path("ws/account/", AccountConsumer.as_asgi()),
    path("ws/account/sync/", SyncAccountConsumer.as_asgi()),
    path("ws/raw/", RawPresence.as_asgi()),
    path("ws/batch/", BatchConsumer.as_asgi()),
    path("ws/loose/", LooseConsumer.as_asgi()),
    path("ws/command/", SyncCommandConsumer.as_asgi()),
    path("ws/list/", SyncListConsumer.as_asgi()),
    path("ws/untyped/", UntypedKwargsConsumer.as_asgi()),
    path("ws/prices/", PriceConsumer.as_asgi()),
    path("ws/dict/", SyncDictDecoder.as_asgi()),
    path("ws/lobby/", Lobby.as_asgi()),
    path("ws/announcements/", Announcements.as_asgi()),
    path("ws/notifications/", Notifications.as_asgi()),
    path("ws/alerts/", Alerts.as_asgi()),
    path("ws/me/", PerUserGroups.as_asgi()),
    re_path(r"^ws/graphql/(?P<room>\w+)/$", GraphQLSocket.as_asgi()),
]
http_urlpatterns = [
    path("me/", WhoAmI.as_asgi()),
    path("logout/", LogoutEverywhere.as_asgi()),
]
routes = URLRouter(websocket_urlpatterns + http_urlpatterns)
workers = ChannelNameRouter({"audit": SyncWorker.as_asgi()})
