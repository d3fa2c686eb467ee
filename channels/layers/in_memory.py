from __future__ import annotations

from channels.layers.base import BaseChannelLayer

__all__ = ["InMemoryChannelLayer"]


class InMemoryChannelLayer(BaseChannelLayer):
    """placeholder"""
