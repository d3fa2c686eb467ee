"""Django management integration for channels."""

from __future__ import annotations

__all__: list[str] = []
