"""What runs when a server starts and stops the demo: its channel layer is checked, then closed.

uvicorn and hypercorn run these hooks (``ProtocolTypeRouter(..., lifespan=[...])``
in ``chat_project/asgi.py``); daphne sends no lifespan scope, so under daphne
the layer is opened by the first websocket instead.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager

from django.core.exceptions import ImproperlyConfigured

from channels.layers import get_channel_layer

__all__ = ["channel_layer"]


@asynccontextmanager
async def channel_layer() -> AsyncGenerator[None, None]:
    """Check the channel layer before the first connection; close it after the last.

    A message sent to a fresh channel and read back proves the layer works, so
    a server whose Redis is unreachable (down, or a wrong ``REDIS_URL``)
    refuses to start and says why, instead of failing every websocket.
    """
    layer = get_channel_layer()
    if layer is None:
        raise ImproperlyConfigured("the chat needs a 'default' layer in CHANNEL_LAYERS")
    channel = await layer.new_channel("chat.startup.")
    await layer.send(channel, {"type": "startup.check"})
    await layer.receive(channel)
    try:
        yield
    finally:
        # Releases the layer's connections (Redis) before the server exits.
        await layer.close()
