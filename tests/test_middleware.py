from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from django.urls import path

from channels.consumer import AsyncConsumer
from channels.middleware import BaseMiddleware
from channels.routing import ProtocolTypeRouter, URLRouter
from channels.types import ASGIApplication, Event, Receive, ReceivedEvent, Scope, Send


async def receive() -> ReceivedEvent:
    raise AssertionError("the test applications never receive")


async def send(event: Event) -> None:
    raise AssertionError("the test applications never send")


class Inner:
    """Records the scope it gets, changes it, and returns a marker."""

    def __init__(self) -> None:
        self.calls: list[tuple[Scope, Receive, Send]] = []

    # Any: Django's path() wants a view returning a response; ASGI ignores it.
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> Any:
        self.calls.append((scope, receive, send))
        scope["added_by_inner"] = True
        return "inner result"


class QueryAuthMiddleware(BaseMiddleware):
    """Sets scope["user"] from a ``?user=`` query parameter."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> Any:
        scope = dict(scope)
        query = parse_qs(scope.get("query_string", b"").decode())
        scope["user"] = query.get("user", ["anonymous"])[0]
        return await super().__call__(scope, receive, send)


class TestBaseMiddleware:
    def test_keeps_the_inner_application(self) -> None:
        inner = Inner()
        assert BaseMiddleware(inner).inner is inner

    async def test_runs_the_inner_application_with_receive_and_send(self) -> None:
        inner = Inner()
        result = await BaseMiddleware(inner)({"type": "http", "path": "/"}, receive, send)
        assert result == "inner result"
        [(scope, inner_receive, inner_send)] = inner.calls
        assert scope["path"] == "/"
        assert (inner_receive, inner_send) == (receive, send)

    async def test_the_inner_application_gets_a_copy_of_the_scope(self) -> None:
        inner = Inner()
        scope: Scope = {"type": "http", "path": "/"}
        await BaseMiddleware(inner)(scope, receive, send)
        assert inner.calls[0][0] is not scope
        assert "added_by_inner" not in scope


class TestSubclassedMiddleware:
    async def test_a_subclass_adds_to_the_scope_without_leaking_it(self) -> None:
        inner = Inner()
        scope: Scope = {"type": "websocket", "path": "/", "query_string": b"user=ada"}
        await QueryAuthMiddleware(inner)(scope, receive, send)
        assert inner.calls[0][0]["user"] == "ada"
        assert "user" not in scope

    async def test_middleware_wraps_routers_and_sits_in_routes(self) -> None:
        inner = Inner()
        application = ProtocolTypeRouter(
            {
                "websocket": QueryAuthMiddleware(
                    URLRouter([path("ws/<str:room>/", QueryAuthMiddleware(inner))])
                )
            }
        )
        scope: Scope = {"type": "websocket", "path": "/ws/lobby/", "query_string": b""}
        assert await application(scope, receive, send) == "inner result"
        routed = inner.calls[0][0]
        assert routed["user"] == "anonymous"
        assert routed["url_route"]["kwargs"] == {"room": "lobby"}

    def test_accepts_consumer_applications(self) -> None:
        app = AsyncConsumer.as_asgi()
        assert QueryAuthMiddleware(app).inner is app

    async def test_a_subclass_defining_obvious_private_names_still_works(self) -> None:
        class Private(BaseMiddleware):
            _inner = "subclass"
            _scope = "subclass"
            _app = "subclass"

            def __init__(self, inner: ASGIApplication) -> None:
                super().__init__(inner)
                self._application = "subclass"

            def _call(self) -> str:
                return "subclass"

            def _copy(self) -> str:
                return "subclass"

        inner = Inner()
        middleware = Private(inner)
        scope: Scope = {"type": "http", "path": "/"}
        assert await middleware(scope, receive, send) == "inner result"
        assert middleware.inner is inner
        assert inner.calls[0][0] is not scope
        assert "added_by_inner" not in scope

    async def test_a_subclass_may_swap_inner_after_init(self) -> None:
        first, second = Inner(), Inner()
        middleware = BaseMiddleware(first)
        middleware.inner = second
        await middleware({"type": "http", "path": "/"}, receive, send)
        assert (len(first.calls), len(second.calls)) == (0, 1)
