"""The demo's HTTP routes: the chat app owns them all."""

from __future__ import annotations

from django.urls import include, path

__all__ = ["urlpatterns"]

urlpatterns = [path("", include("chat.urls"))]
