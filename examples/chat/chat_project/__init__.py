"""The chat demo's Django project: settings, URLs and the ASGI application."""

from __future__ import annotations

__all__: list[str] = []
