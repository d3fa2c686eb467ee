"""Settings for the ``runworker`` subprocess test: a layer and an app, nothing else."""

from __future__ import annotations

from channels.types import Receive, Scope, Send

SECRET_KEY = "tests-only-secret-key-not-for-production"
INSTALLED_APPS = ["channels"]
USE_TZ = True
CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
ASGI_APPLICATION = "tests.worker_settings.application"


async def application(scope: Scope, receive: Receive, send: Send) -> None:
    """Take every message and do nothing with it."""
    while True:
        await receive()
