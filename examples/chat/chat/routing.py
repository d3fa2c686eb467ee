"""The websocket routes: one room per URL, as in the Channels tutorial."""

from __future__ import annotations

from django.urls import re_path

from chat.consumers import ChatConsumer
from chat.rooms import ROOM_ROUTE

__all__ = ["websocket_urlpatterns"]

websocket_urlpatterns = [re_path(rf"^ws/chat/{ROOM_ROUTE}/$", ChatConsumer.as_asgi())]
