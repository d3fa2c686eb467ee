"""Django settings for the test suite.

PostgreSQL (this machine's, trust auth) is used when it answers; otherwise an
on-disk SQLite database, so the suite runs anywhere.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

_BASE = Path(__file__).resolve().parent


def _postgres_answers() -> bool:
    if os.environ.get("CHANNELS_TEST_DB") == "sqlite":
        return False
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1):
            return True
    except OSError:
        return False


SECRET_KEY = "tests-only-secret-key-not-for-production"
DEBUG = False
USE_TZ = True
ALLOWED_HOSTS = ["testserver", "localhost", "127.0.0.1"]
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.staticfiles",
    "channels",
    "tests",
]
MIDDLEWARE: list[str] = []
ROOT_URLCONF = "tests.urls"
STATIC_URL = "/static/"
STATICFILES_DIRS = [_BASE / "static"]
ASGI_APPLICATION = "tests.live_app.application"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

_POSTGRES: dict[str, object] = {
    "ENGINE": "django.db.backends.postgresql",
    "NAME": "test",
    "USER": "postgres",
    "HOST": "127.0.0.1",
    "PORT": "5432",
    "TEST": {"NAME": f"test_channels_{os.getpid()}"},
}
_SQLITE: dict[str, object] = {
    "ENGINE": "django.db.backends.sqlite3",
    "NAME": str(_BASE / "db.sqlite3"),
    "TEST": {"NAME": str(_BASE / f"test_db_{os.getpid()}.sqlite3")},
}
DATABASES = {"default": _POSTGRES if _postgres_answers() else _SQLITE}

CHANNEL_LAYERS = {
    "default": {"BACKEND": "channels.layers.InMemoryChannelLayer"},
}
