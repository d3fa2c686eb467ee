"""Tools for testing Channels applications: communicators that play the server.

As upstream, importing this package loads ``channels.routing`` and, when the
optional ``daphne`` package is installed, ``channels.testing.live``; without
daphne, ``ChannelsLiveServerTestCase`` raises ImportError on first use. The
layer conformance kit lives in ``channels.testing.layers`` and is not
imported here, because it needs the optional ``hypothesis`` package.
"""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING

import channels.routing  # noqa: F401  # upstream's import loads it; code relies on that
from channels.testing.application import ApplicationCommunicator
from channels.testing.http import HttpCommunicator
from channels.testing.websocket import WebsocketCommunicator

if TYPE_CHECKING or importlib.util.find_spec("daphne") is not None:
    from channels.testing.live import ChannelsLiveServerTestCase

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
