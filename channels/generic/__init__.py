"""Generic consumers for common protocols: see channels.generic.websocket."""

from __future__ import annotations

__all__: list[str] = []
