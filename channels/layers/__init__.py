"""Channel layers: how consumers and processes send each other messages."""

from __future__ import annotations

from channels.layers.base import BaseChannelLayer
from channels.layers.in_memory import InMemoryChannelLayer
from channels.layers.manager import ChannelLayerManager, channel_layers, get_channel_layer
from channels.layers.protocols import (
    ChannelLayer,
    ClosableChannelLayer,
    FlushableChannelLayer,
    FullChannelLayer,
    GroupChannelLayer,
)

__all__ = [
    "BaseChannelLayer",
    "ChannelLayer",
    "ChannelLayerManager",
    "ClosableChannelLayer",
    "FlushableChannelLayer",
    "FullChannelLayer",
    "GroupChannelLayer",
    "InMemoryChannelLayer",
    "channel_layers",
    "get_channel_layer",
]
