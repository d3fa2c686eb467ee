"""User code: ASGI middleware typed with plain-dict aliases, composed with Django's handler.

App code usually types ASGI with aliases of its own over plain dicts, as
below. Middleware typed that way, subclassing BaseMiddleware or not, must
take this package's routers, middleware and ``as_asgi()`` applications and
be taken by them, and Django's ``ASGIHandler`` must fit wherever this
package expects an application. Checked by mypy --strict and pyright
strict, never run: no line here may need a cast or an ignore.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser, User
from django.core import signing
from django.core.asgi import get_asgi_application
from django.urls import path, re_path

from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async
from channels.generic.http import AsyncHttpConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.middleware import BaseMiddleware
from channels.routing import ChannelNameRouter, ProtocolTypeRouter, URLRouter
from channels.security.websocket import AllowedHostsOriginValidator
from channels.sessions import SessionMiddlewareStack
from channels.types import ASGIApplication

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


@database_sync_to_async
def user_for_token(token: str) -> AbstractBaseUser | AnonymousUser:
    try:
        user_id = signing.loads(token, salt="websocket-token", max_age=300)
    except signing.BadSignature:
        return AnonymousUser()
    return User.objects.filter(pk=user_id).first() or AnonymousUser()


class TokenAuthMiddleware(BaseMiddleware):
    """Put the user named by a signed ``?token=`` in ``scope["user"]``."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope = dict(scope)
        query = parse_qs(scope["query_string"].decode())
        scope["user"] = await user_for_token(query.get("token", [""])[0])
        await super().__call__(scope, receive, send)


def TokenAuthMiddlewareStack(inner: ASGIApp) -> TokenAuthMiddleware:
    return TokenAuthMiddleware(AuthMiddlewareStack(inner))


class AcceptHeaderMiddleware:
    """Add a header to every websocket handshake the inner application accepts."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_header(message: Message) -> None:
            if message["type"] == "websocket.accept":
                message = {**message, "headers": [*message.get("headers", []), (b"x-app", b"1")]}
            await send(message)

        await self.app(scope, receive, send_with_header)


class WebsocketOnly:
    """Refuse every connection that is not a websocket, else run the inner application."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            await send({"type": "http.response.start", "status": 404, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        await self.app(scope, receive, send)


class ChatConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        await self.accept()


class Events(AsyncHttpConsumer):
    async def handle(self, body: bytes) -> None:
        await self.send_response(200, b"data: hi\n\n", headers=[(b"content-type", b"text/plain")])


django_asgi_app = get_asgi_application()
websocket_routes = URLRouter([path("ws/chat/<str:room>/", ChatConsumer.as_asgi())])

# Django's handler where this package expects an application.
http_app = ProtocolTypeRouter({"http": django_asgi_app})
with_sessions = SessionMiddlewareStack(django_asgi_app)
with_auth = AuthMiddlewareStack(django_asgi_app)
wrapped_django = BaseMiddleware(django_asgi_app)
token_django = TokenAuthMiddleware(django_asgi_app)
as_application: ASGIApplication = django_asgi_app
events_then_django = URLRouter(
    [path("events/", Events.as_asgi()), re_path(r"", BaseMiddleware(django_asgi_app))]
)

# This package's applications where the app's own middleware expects one.
headers_on_routes = AcceptHeaderMiddleware(websocket_routes)
headers_on_consumer = AcceptHeaderMiddleware(ChatConsumer.as_asgi())
headers_on_auth = AcceptHeaderMiddleware(AuthMiddlewareStack(websocket_routes))
headers_on_origin = AcceptHeaderMiddleware(AllowedHostsOriginValidator(websocket_routes))
headers_on_base = AcceptHeaderMiddleware(BaseMiddleware(websocket_routes))
headers_on_worker = AcceptHeaderMiddleware(ChannelNameRouter({"events": Events.as_asgi()}))
only_websockets = WebsocketOnly(ProtocolTypeRouter({"websocket": websocket_routes}))
inner_app: ASGIApp = URLRouter([path("ws/", ChatConsumer.as_asgi())])

# The app's own middleware where this package expects an application, and in one another.
application = ProtocolTypeRouter(
    {
        "http": events_then_django,
        "websocket": AllowedHostsOriginValidator(
            TokenAuthMiddlewareStack(AcceptHeaderMiddleware(websocket_routes))
        ),
    }
)
layered = WebsocketOnly(TokenAuthMiddleware(AcceptHeaderMiddleware(BaseMiddleware(inner_app))))
on_a_route = URLRouter([path("ws/", BaseMiddleware(layered))])
sessions_outside = SessionMiddlewareStack(WebsocketOnly(websocket_routes))
as_ours: ASGIApplication = TokenAuthMiddleware(inner_app)
as_theirs: ASGIApp = AuthMiddlewareStack(layered)
