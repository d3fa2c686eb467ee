"""Scenarios: ProtocolTypeRouter and the ASGI lifespan scope uvicorn and hypercorn send."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from channels.routing import ProtocolTypeRouter

from ._harness import Observation, drive, scenario

_STARTUP = {"type": "lifespan.startup"}
_SHUTDOWN = {"type": "lifespan.shutdown"}


def _lifespan_scope() -> dict[str, object]:
    return {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": {}}


async def _websocket_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    raise AssertionError("no websocket connection in these scenarios")


@scenario
async def router_without_a_lifespan_entry() -> Observation:
    """A server's lifespan scope reaches a router that has no "lifespan" application."""
    router = ProtocolTypeRouter({"websocket": _websocket_app})
    return await drive(router, _lifespan_scope(), [_STARTUP, _SHUTDOWN])


@scenario
async def router_with_a_lifespan_entry() -> Observation:
    """A "lifespan" application in the mapping gets the scope and answers the server."""
    scopes: list[Observation] = []

    async def lifespan(
        scope: dict[str, Any],
        receive: Callable[[], Awaitable[Mapping[str, Any]]],
        send: Callable[[Mapping[str, Any]], Awaitable[None]],
    ) -> None:
        scopes.append(sorted(scope))
        while True:
            event = await receive()
            phase = str(event["type"]).removeprefix("lifespan.")
            await send({"type": f"lifespan.{phase}.complete"})
            if phase == "shutdown":
                return

    router = ProtocolTypeRouter({"websocket": _websocket_app, "lifespan": lifespan})
    outcome = await drive(router, _lifespan_scope(), [_STARTUP, _SHUTDOWN])
    return {**outcome, "scopes": scopes}
