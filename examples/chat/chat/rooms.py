"""What a room name may be, and the channel-layer group a room maps to."""

from __future__ import annotations

__all__ = ["ROOM_NAME", "ROOM_ROUTE", "group_name"]

ROOM_NAME = r"[A-Za-z0-9_-]{1,50}"
"""A room name: short ASCII words, so that it is also part of a valid group name."""

ROOM_ROUTE = rf"(?P<room>{ROOM_NAME})"
"""The URL fragment that captures a room name as the ``room`` keyword."""


def group_name(room: str) -> str:
    """Return the channel-layer group of everyone in ``room``."""
    return f"chat.{room}"
