"""The Django app configuration for channels."""

from __future__ import annotations

from django.apps import AppConfig

__all__ = ["ChannelsConfig"]


class ChannelsConfig(AppConfig):
    """Registers channels with Django (for ``runworker`` and the test tools)."""

    name: str = "channels"
