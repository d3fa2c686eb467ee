"""Typed, drop-in Django Channels: ASGI consumers, routing and channel layers."""

from __future__ import annotations

__all__ = ["DEFAULT_CHANNEL_LAYER", "__version__"]

__version__ = "0.1.0"

#: The alias of the channel layer that consumers use unless told otherwise.
DEFAULT_CHANNEL_LAYER = "default"
