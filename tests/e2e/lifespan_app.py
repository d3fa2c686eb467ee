"""An application with lifespan hooks, for uvicorn, hypercorn and runworker as real processes.

This module is also its own Django settings module
(``DJANGO_SETTINGS_MODULE=tests.e2e.lifespan_app``). The hook appends one line
per startup and per shutdown to the file ``LIFESPAN_JOURNAL`` names, with the
process id and the token it puts in the lifespan state; ``LIFESPAN_FAIL=1``
makes its startup fail. A websocket on any path is accepted and sent the
token it finds in ``scope["state"]``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from pathlib import Path

from channels.consumer import AsyncConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.routing import ChannelNameRouter, ProtocolTypeRouter

SECRET_KEY = "tests-only-secret-key-not-for-production"
INSTALLED_APPS = ["channels"]
USE_TZ = True
CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
ASGI_APPLICATION = "tests.e2e.lifespan_app.application"

FAILURE = "the journal hook refuses to start: LIFESPAN_FAIL is set"


def _write(line: str) -> None:
    with Path(os.environ["LIFESPAN_JOURNAL"]).open("a") as journal:
        journal.write(f"{line}\n")


@asynccontextmanager
async def journal_hook() -> AsyncGenerator[dict[str, str], None]:
    """Record startup and shutdown; share a token made at startup."""
    token = uuid.uuid4().hex
    _write(f"startup {os.getpid()} {token}")
    if os.environ.get("LIFESPAN_FAIL") == "1":
        raise RuntimeError(FAILURE)
    yield {"token": token}
    _write(f"shutdown {os.getpid()}")


class TokenConsumer(AsyncWebsocketConsumer):
    """Sends the client the token from the lifespan state."""

    async def connect(self) -> None:
        await self.accept()
        token: str = self.scope["state"]["token"]
        await self.send(text_data=token)


class IdleConsumer(AsyncConsumer):
    """Takes worker messages and does nothing with them."""


application = ProtocolTypeRouter(
    {
        "websocket": TokenConsumer.as_asgi(),
        "channel": ChannelNameRouter({"jobs": IdleConsumer.as_asgi()}),
    },
    lifespan=[journal_hook],
)
