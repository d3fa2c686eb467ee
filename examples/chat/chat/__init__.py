"""The chat app: a lobby, rooms, and a websocket consumer per room."""

from __future__ import annotations

__all__: list[str] = []
