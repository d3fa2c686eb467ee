"""Security checks for ASGI connections; see ``channels.security.websocket``."""

from __future__ import annotations

__all__: list[str] = []
