"""The chat app's configuration."""

from __future__ import annotations

from django.apps import AppConfig

__all__ = ["ChatConfig"]


class ChatConfig(AppConfig):
    name = "chat"
