"""The channel layer interface, split by capability.

A channel layer carries messages between consumers. The core interface sends,
receives and names channels; optional *extensions* add groups and flushing,
and a layer that holds resources can be closed. Each capability is its own
Protocol so that code can ask for exactly what it uses, and third parties can
satisfy them structurally without inheriting anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from channels.types import ChannelMessage, ReceivedMessage

__all__ = [
    "ChannelLayer",
    "ClosableChannelLayer",
    "FlushableChannelLayer",
    "FullChannelLayer",
    "GroupChannelLayer",
]


@runtime_checkable
class ChannelLayer(Protocol):
    """The core of every channel layer: send, receive and name channels."""

    @property
    def extensions(self) -> Sequence[str]:
        """The optional extensions this layer implements, such as ``"groups"``."""
        ...

    async def send(self, channel: str, message: ChannelMessage) -> None:
        """Send ``message`` to ``channel``; raise ChannelFull when it is at capacity."""
        ...

    async def receive(self, channel: str) -> ReceivedMessage:
        """Wait for and return the next message on ``channel``."""
        ...

    async def new_channel(self, prefix: str = "specific.") -> str:
        """Return a new, unique process-specific channel name starting with ``prefix``."""
        ...


@runtime_checkable
class GroupChannelLayer(ChannelLayer, Protocol):
    """A channel layer with the ``groups`` extension: named sets of channels."""

    async def group_add(self, group: str, channel: str) -> None:
        """Add ``channel`` to ``group``, or refresh its membership."""
        ...

    async def group_discard(self, group: str, channel: str) -> None:
        """Remove ``channel`` from ``group``; no error if it is not a member."""
        ...

    async def group_send(self, group: str, message: ChannelMessage) -> None:
        """Send ``message`` to every channel in ``group``, skipping full ones."""
        ...


@runtime_checkable
class FlushableChannelLayer(ChannelLayer, Protocol):
    """A channel layer with the ``flush`` extension."""

    async def flush(self) -> None:
        """Drop every message, channel and group this layer holds."""
        ...


@runtime_checkable
class ClosableChannelLayer(ChannelLayer, Protocol):
    """A channel layer that holds resources (connections, tasks) to release."""

    async def close(self) -> None:
        """Release the layer's resources; it may be used again afterwards."""
        ...


@runtime_checkable
class FullChannelLayer(GroupChannelLayer, FlushableChannelLayer, ClosableChannelLayer, Protocol):
    """Every method a layer configured in CHANNEL_LAYERS offers to consumers.

    A layer that lacks an extension still has its methods and raises
    NotImplementedError from them, as BaseChannelLayer does; ``extensions``
    says which ones work.
    """
