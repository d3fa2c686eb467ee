"""Minimal Django settings for the consumer and server workloads (both sides).

The workload scripts and the uvicorn app set ``DJANGO_SETTINGS_MODULE`` to
this module; ``benchmarks/`` is on ``sys.path`` when they run.
"""

from __future__ import annotations

__all__ = [
    "ALLOWED_HOSTS",
    "CHANNEL_LAYERS",
    "DATABASES",
    "INSTALLED_APPS",
    "SECRET_KEY",
    "USE_TZ",
]

SECRET_KEY = "benchmarks-only-not-secret"
USE_TZ = True
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = ["channels"]
# No database: the consumers never touch one.
DATABASES: dict[str, dict[str, str]] = {}
CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
