"""Tools for testing Channels applications: communicators that play the server.

As upstream, importing this package loads ``channels.routing`` and, when the
optional ``daphne`` package is installed, ``channels.testing.live``; without
daphne, ``ChannelsLiveServerTestCase`` raises ImportError on first use. The
layer conformance kit lives in ``channels.testing.layers`` and is not
imported here, because it needs the optional ``hypothesis`` package.
"""

from __future__ import annotations

# Upstream's import loads channels.routing (through the live server); code relies on it.
import channels.routing  # noqa: F401  # pyright: ignore[reportUnusedImport]
from channels.testing.application import ApplicationCommunicator
from channels.testing.http import HttpCommunicator
from channels.testing.websocket import WebsocketCommunicator

try:
    from channels.testing.live import ChannelsLiveServerTestCase
except ModuleNotFoundError as exc:  # pragma: no cover - only without the daphne extra
    if exc.name != "daphne":
        raise

__all__ = [
    "ApplicationCommunicator",
    "ChannelsLiveServerTestCase",
    "HttpCommunicator",
    "WebsocketCommunicator",
]


def __getattr__(name: str) -> object:
    if name == "ChannelsLiveServerTestCase":
        # Only reached without daphne: this import raises the ImportError that says so.
        from channels.testing.live import ChannelsLiveServerTestCase

        return ChannelsLiveServerTestCase
    raise AttributeError(f"module 'channels.testing' has no attribute {name!r}")
