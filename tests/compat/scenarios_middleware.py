"""Scenarios: BaseMiddleware, alone, subclassed, and stacked around routers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.urls import path

from channels.middleware import BaseMiddleware
from channels.routing import ProtocolTypeRouter, URLRouter

from ._harness import Observation, scenario

# The scope is a plain dict here: ``channels.types`` is ours only.
Scope = dict[str, Any]


async def _receive() -> dict[str, Any]:
    return {"type": "http.request"}


async def _send(event: Mapping[str, Any]) -> None:
    pass


class _Inner:
    """Keeps the scope it got, adds a key to it, and returns a marker."""

    def __init__(self) -> None:
        self.calls: list[tuple[Scope, Any, Any]] = []

    # Any: Django's path() wants a view returning a response; ASGI ignores it.
    async def __call__(self, scope: Scope, receive: Any, send: Any) -> Any:
        self.calls.append((scope, receive, send))
        scope["added_by_inner"] = True
        return "inner result"


@scenario
async def base_middleware_copies_the_scope() -> Observation:
    """The inner application gets a copy of the scope, the same receive and send."""
    inner = _Inner()
    middleware = BaseMiddleware(inner)
    scope: Scope = {"type": "http", "path": "/", "nested": {"a": 1}}
    returned = await middleware(scope, _receive, _send)
    inner_scope, receive, send = inner.calls[0]
    return {
        "returned": returned,
        "inner-kept": middleware.inner is inner,
        "copy": inner_scope is not scope,
        "shallow": inner_scope["nested"] is scope["nested"],
        "outer-untouched": sorted(scope),
        "inner-keys": sorted(inner_scope),
        "same-callables": receive is _receive and send is _send,
        "copy-type": type(inner_scope).__name__,
    }


@scenario
async def base_middleware_subclass_adds_to_the_scope() -> Observation:
    """A subclass adds a key; applications outside it never see it."""

    class User(BaseMiddleware):
        _inner = "subclass"
        _scope = "subclass"

        def __init__(self, inner: Any) -> None:
            super().__init__(inner)
            self._application = "subclass"

        async def __call__(self, scope: Scope, receive: Any, send: Any) -> Any:
            scope = dict(scope)
            scope["user"] = "ada"
            return await super().__call__(scope, receive, send)

    inner = _Inner()
    router = ProtocolTypeRouter(
        {"websocket": User(URLRouter([path("ws/<str:room>/", User(inner))]))}
    )
    scope: Scope = {"type": "websocket", "path": "/ws/lobby/"}
    returned = await router(scope, _receive, _send)
    routed = inner.calls[0][0]
    return {
        "returned": returned,
        "user": routed["user"],
        "url_route-kwargs": dict(routed["url_route"]["kwargs"]),
        "outer-untouched": sorted(scope),
    }


@scenario
async def base_middleware_inner_swapped() -> Observation:
    """``inner`` is a plain attribute: replacing it changes what runs."""
    first, second = _Inner(), _Inner()
    middleware = BaseMiddleware(first)
    middleware.inner = second
    await middleware({"type": "http", "path": "/"}, _receive, _send)
    return [len(first.calls), len(second.calls)]
