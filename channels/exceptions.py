"""Exceptions raised by channels.

The hierarchy::

    Exception
    ├── AcceptConnection       raised in a websocket connect handler to accept
    ├── DenyConnection         raised in a websocket connect handler to refuse
    ├── StopConsumer           raised in a handler to end the consumer cleanly
    ├── ChannelFull            a send found the channel at its capacity
    ├── MessageTooLarge        a message is larger than the layer can carry
    ├── RequestAborted         an HTTP client went away mid-request
    │   └── RequestTimeout     an HTTP request body took too long to arrive
    └── ValueError
        └── InvalidChannelLayerError   CHANNEL_LAYERS is wrong or incomplete
"""

from __future__ import annotations

__all__ = [
    "AcceptConnection",
    "ChannelFull",
    "DenyConnection",
    "InvalidChannelLayerError",
    "MessageTooLarge",
    "RequestAborted",
    "RequestTimeout",
    "StopConsumer",
]


class RequestAborted(Exception):
    """The client closed the connection before the request was complete."""


class RequestTimeout(RequestAborted):
    """The request body did not arrive in time."""


class InvalidChannelLayerError(ValueError):
    """The channel layer configuration is missing or wrong."""


class AcceptConnection(Exception):
    """Raised in a websocket connect handler to accept the connection."""


class DenyConnection(Exception):
    """Raised in a websocket connect handler to refuse the connection."""


class ChannelFull(Exception):
    """A message could not be sent because the channel is at its capacity.

    ``channel`` names the full channel and ``capacity`` its limit, when known.
    """

    def __init__(self, channel: str = "", capacity: int | None = None) -> None:
        self.channel = channel
        self.capacity = capacity
        if not channel:
            super().__init__()
        elif capacity is None:
            super().__init__(channel)
        else:
            super().__init__(f"channel {channel!r} is full: it holds {capacity} messages")


class MessageTooLarge(Exception):
    """A message is larger than the channel layer accepts.

    ``size`` is the message's size in bytes and ``limit`` the largest allowed.
    """

    def __init__(self, size: int | None = None, limit: int | None = None) -> None:
        self.size = size
        self.limit = limit
        if size is None or limit is None:
            super().__init__()
        else:
            super().__init__(
                f"message is too large: {size} bytes once serialised, the limit is {limit} bytes"
            )


class StopConsumer(Exception):
    """Raised by a handler to stop the consumer; not an error."""
