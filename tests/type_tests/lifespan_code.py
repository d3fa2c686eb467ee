"""Lifespan hooks and consumers reading ``scope["state"]``, as users write them.

Checked by mypy --strict and pyright strict, never run: no cast, no ignore.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from typing import Any, Literal, TypedDict

from typing_extensions import assert_type

from channels.consumer import AsyncConsumer
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.layers import get_channel_layer
from channels.lifespan import Lifespan, LifespanFailed, LifespanHook, LifespanState, run_lifespan
from channels.routing import ChannelNameRouter, ProtocolTypeRouter
from channels.testing import WebsocketCommunicator


class Client:
    """Stands for an HTTP client or a connection pool the app opens once."""

    async def get(self, url: str) -> str:
        return url

    async def aclose(self) -> None:
        pass


@asynccontextmanager
async def http_client() -> AsyncGenerator[dict[str, Client], None]:
    client = Client()
    try:
        yield {"client": client}
    finally:
        await client.aclose()


class Settings(TypedDict):
    region: str
    retries: int


@asynccontextmanager
async def settings() -> AsyncGenerator[Settings, None]:
    yield {"region": "eu", "retries": 3}


@asynccontextmanager
async def close_layer() -> AsyncGenerator[None, None]:
    yield
    layer = get_channel_layer()
    if layer is not None:
        await layer.close()


class Pool:
    """A class whose instances are async context managers is a hook as well."""

    async def __aenter__(self) -> dict[str, Pool]:
        return {"pool": self}

    async def __aexit__(self, *exc_info: object) -> None:
        pass


class FetchConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self) -> None:
        client: Client = self.scope["state"]["client"]
        region: str = self.scope["state"]["region"]
        await self.accept()
        await self.send_json({"page": await client.get(f"https://{region}.example.com/")})


class Jobs(AsyncConsumer):
    async def job_run(self, event: dict[str, str]) -> None:
        pool: Pool = self.scope["state"]["pool"]
        assert_type(self.scope["state"], dict[str, Any])
        del pool


hooks: list[LifespanHook] = [http_client, settings, close_layer, Pool]

application = ProtocolTypeRouter(
    {
        "websocket": FetchConsumer.as_asgi(),
        "channel": ChannelNameRouter({"jobs": Jobs.as_asgi()}),
    },
    lifespan=hooks,
)

with_own_lifespan = ProtocolTypeRouter(
    {"websocket": FetchConsumer.as_asgi(), "lifespan": Lifespan([http_client])}
)


async def test_with_the_state() -> None:
    """In a test: run the lifespan as a server would, then give each connection the state."""
    try:
        async with run_lifespan(application) as state:
            assert_type(state, LifespanState | None)
            communicator = WebsocketCommunicator(application, "/ws/")
            communicator.scope["state"] = dict(state or {})
            connected, _ = await communicator.connect()
            assert connected
            await communicator.disconnect()
    except LifespanFailed as failure:
        assert_type(failure.phase, Literal["startup", "shutdown"])
        raise
