"""Tools for testing Channels applications: communicators that play the server.

``ChannelsLiveServerTestCase`` is imported on first use, because it needs the
optional ``daphne`` package. The layer conformance kit lives in
``channels.testing.layers`` and is not imported here, because it needs the
optional ``hypothesis`` package.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from channels.testing.application import ApplicationCommunicator
from channels.testing.http import HttpCommunicator
from channels.testing.websocket import WebsocketCommunicator

if TYPE_CHECKING:
    from channels.testing.live import ChannelsLiveServerTestCase

__all__ = [
    "ApplicationCommunicator",
    "ChannelsLiveServerTestCase",
    "HttpCommunicator",
    "WebsocketCommunicator",
]


def __getattr__(name: str) -> object:
    if name == "ChannelsLiveServerTestCase":
        from channels.testing.live import ChannelsLiveServerTestCase

        return ChannelsLiveServerTestCase
    raise AttributeError(f"module 'channels.testing' has no attribute {name!r}")
