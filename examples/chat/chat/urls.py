"""The chat app's HTTP routes."""

from __future__ import annotations

from django.urls import path, re_path

from chat import views
from chat.rooms import ROOM_ROUTE

__all__ = ["urlpatterns"]

urlpatterns = [
    path("", views.lobby, name="lobby"),
    re_path(rf"^chat/{ROOM_ROUTE}/$", views.room, name="room"),
]
