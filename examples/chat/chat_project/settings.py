"""Settings for the chat demo.

The embedded default needs nothing running: SQLite and the in-memory channel
layer, one process. Environment variables change that:

* ``REDIS_URL`` (e.g. ``redis://127.0.0.1:6379``) switches to the Redis layer,
  so several server processes share rooms; ``CHAT_REDIS_PREFIX`` sets its key
  prefix (the end-to-end tests use a unique one per run).
* ``CHAT_DATABASE`` points SQLite at another file (the tests use a temporary one).
* ``CHAT_DEBUG=1`` turns on Django's debug pages.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

__all__ = [
    "ALLOWED_HOSTS",
    "ASGI_APPLICATION",
    "BASE_DIR",
    "CHANNEL_LAYERS",
    "DATABASES",
    "DEBUG",
    "DEFAULT_AUTO_FIELD",
    "INSTALLED_APPS",
    "MIDDLEWARE",
    "ROOT_URLCONF",
    "SECRET_KEY",
    "STATIC_URL",
    "TEMPLATES",
    "USE_TZ",
]

BASE_DIR = Path(__file__).resolve().parent.parent

# A demo key: the demo never leaves the loopback interface.
SECRET_KEY = os.environ.get("CHAT_SECRET_KEY", "chat-demo-only-not-a-secret")
DEBUG = os.environ.get("CHAT_DEBUG") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.staticfiles",
    "channels",
    "chat",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "chat_project.urls"
ASGI_APPLICATION = "chat_project.asgi.application"

TEMPLATES: list[dict[str, Any]] = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
            ],
        },
    },
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("CHAT_DATABASE") or BASE_DIR / "db.sqlite3",
    },
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
STATIC_URL = "static/"


def _channel_layers() -> dict[str, dict[str, Any]]:
    redis_url = os.environ.get("REDIS_URL")
    if not redis_url:
        return {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    return {
        "default": {
            "BACKEND": "channels.layers.redis.RedisChannelLayer",
            "CONFIG": {
                "hosts": [redis_url],
                "prefix": os.environ.get("CHAT_REDIS_PREFIX", "chat-demo"),
            },
        },
    }


CHANNEL_LAYERS = _channel_layers()
