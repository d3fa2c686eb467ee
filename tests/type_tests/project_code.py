"""User code around the consumers: a management command, a signal handler and app tests.

A Channels project sends to groups from sync code (commands, signals, views)
with ``async_to_sync``, and its tests drive consumers with the communicators,
putting a user in the scope by hand. Checked by mypy --strict and pyright
strict, never run: no line here may need a cast or an ignore.
"""

from __future__ import annotations

from typing import Any, Literal, TypedDict

from asgiref.sync import async_to_sync
from django.contrib.auth.models import AnonymousUser, User
from django.contrib.sessions.backends.db import SessionStore
from django.core.asgi import get_asgi_application
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models.signals import post_save
from django.dispatch import receiver
from django.urls import path

from channels.auth import AuthMiddlewareStack, login
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.layers import get_channel_layer
from channels.routing import ProtocolTypeRouter, URLRouter
from channels.testing import ApplicationCommunicator, HttpCommunicator, WebsocketCommunicator


class Announcement(TypedDict):
    type: Literal["chat.announcement"]
    text: str


class ChatConsumer(AsyncJsonWebsocketConsumer):
    groups = ["announcements"]

    async def connect(self) -> None:
        if not self.scope["user"].is_authenticated:
            await self.close(code=4401)
            return
        await self.accept()
        await self.send_json({"hello": self.scope["user"].get_username()})

    async def receive_json(self, content: dict[str, Any], **kwargs: Any) -> None:
        await self.send_json({"echo": content})

    async def chat_announcement(self, event: Announcement) -> None:
        await self.send_json({"announcement": event["text"]})


application = ProtocolTypeRouter(
    {
        "http": get_asgi_application(),
        "websocket": AuthMiddlewareStack(URLRouter([path("ws/chat/", ChatConsumer.as_asgi())])),
    }
)


class Command(BaseCommand):
    """``manage.py announce "text"``: send an announcement to every connected client."""

    help = "Send an announcement to every connected chat client."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("text")
        parser.add_argument("--group", default="announcements")

    def handle(self, *args: Any, **options: Any) -> None:
        layer = get_channel_layer()
        if layer is None:
            raise CommandError("CHANNEL_LAYERS is not configured")
        event: Announcement = {"type": "chat.announcement", "text": options["text"]}
        async_to_sync(layer.group_send)(options["group"], event)
        self.stdout.write(self.style.SUCCESS(f"announced to {options['group']}"))


@receiver(post_save, sender=User)
def announce_new_user(sender: type[User], instance: User, created: bool, **kwargs: Any) -> None:
    layer = get_channel_layer()
    if created and layer is not None:
        event: Announcement = {"type": "chat.announcement", "text": f"{instance} joined"}
        async_to_sync(layer.group_send)("announcements", event)
        async_to_sync(layer.send)("audit", {"type": "user.created", "id": instance.pk})


async def test_the_user_in_the_scope_is_greeted() -> None:
    user = await User.objects.acreate(username="alice")
    communicator = WebsocketCommunicator(application, "/ws/chat/")
    communicator.scope["user"] = user
    connected, subprotocol = await communicator.connect()
    assert connected
    assert subprotocol is None
    assert await communicator.receive_json_from() == {"hello": "alice"}
    await communicator.send_json_to({"message": "hi"})
    assert await communicator.receive_json_from(timeout=2) == {"echo": {"message": "hi"}}
    await communicator.disconnect()


async def test_anonymous_users_are_refused() -> None:
    communicator = WebsocketCommunicator(application, "/ws/chat/", subprotocols=["chat"])
    communicator.scope["user"] = AnonymousUser()
    connected, code = await communicator.connect()
    assert not connected
    assert code == 4401


async def test_a_logged_in_session() -> None:
    user = await User.objects.acreate(username="bob")
    communicator = WebsocketCommunicator(ChatConsumer.as_asgi(), "/ws/chat/")
    communicator.scope["session"] = SessionStore()
    await login(communicator.scope, user, backend="django.contrib.auth.backends.ModelBackend")
    connected, _ = await communicator.connect()
    assert connected


async def test_the_django_views_answer() -> None:
    communicator = HttpCommunicator(application, "GET", "/admin/login/")
    response = await communicator.get_response()
    assert response["status"] == 200
    direct = HttpCommunicator(get_asgi_application(), "GET", "/admin/login/")
    assert (await direct.get_response())["status"] == 200


async def test_a_worker_message() -> None:
    scope: dict[str, Any] = {"type": "channel", "channel": "audit"}
    communicator = ApplicationCommunicator(ChatConsumer.as_asgi(), scope)
    await communicator.send_input({"type": "chat.announcement", "text": "hi"})
    await communicator.wait()
