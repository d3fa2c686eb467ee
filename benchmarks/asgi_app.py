"""The ASGI app uvicorn serves in the real-server workload (importable by both sides).

``/echo/`` echoes text frames; ``/broadcast/`` joins one room, and text sent
by any member goes to every member (in-memory layer). Served as
``uvicorn asgi_app:application --app-dir benchmarks``.
"""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "django_settings")

import django

django.setup()

from consumers import AsyncEcho, BroadcastMember  # noqa: E402
from django.urls import path  # noqa: E402

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

__all__ = ["application"]

application = ProtocolTypeRouter(
    {
        "websocket": URLRouter(
            [
                path("echo/", AsyncEcho.as_asgi()),
                path("broadcast/", BroadcastMember.as_asgi()),
            ]
        )
    }
)
