"""The ASGI application that daphne, uvicorn and hypercorn serve.

HTTP goes to Django (static files included, so one command serves the whole
demo); websockets go through the origin check, then cookies, sessions and the
user, then the room routes. The router answers the server's lifespan: at
startup it checks the channel layer, at shutdown it closes it (``chat.lifespan``).
"""

from __future__ import annotations

import os

from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chat_project.settings")
# Set Django up before anything imports models (the auth middleware does).
_django_application = get_asgi_application()

from chat.lifespan import channel_layer  # noqa: E402
from chat.routing import websocket_urlpatterns  # noqa: E402

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

__all__ = ["application"]

application = ProtocolTypeRouter(
    {
        # A demo convenience: a real deployment serves static files elsewhere.
        "http": ASGIStaticFilesHandler(_django_application),
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
    },
    lifespan=[channel_layer],
)
