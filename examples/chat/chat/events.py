"""The messages of the chat, typed: between consumers, and to the browser.

Consumers of a room talk through its group (``chat.message``,
``presence.*``); each consumer then tells its own client with a JSON frame.
A frame that carries a chat line always has ``"message"``, as in the Channels
tutorial's protocol; the other frames say what they are in ``"type"``.
"""

from __future__ import annotations

from typing import Literal, TypedDict

__all__ = [
    "ChatFrame",
    "ChatMessageEvent",
    "ErrorFrame",
    "MembersFrame",
    "PresenceEvent",
    "PresenceLeftEvent",
]


class ChatMessageEvent(TypedDict):
    """Someone in the room said something (sent to the room's group)."""

    type: Literal["chat.message"]
    message: str
    name: str


class PresenceEvent(TypedDict):
    """A member is in the room.

    ``presence.hello`` goes to the group when a member joins; every other
    member answers the newcomer's channel directly with ``presence.here``.
    """

    type: Literal["presence.hello", "presence.here"]
    channel: str
    name: str


class PresenceLeftEvent(TypedDict):
    """A member's socket closed (sent to the room's group)."""

    type: Literal["presence.left"]
    channel: str


class ChatFrame(TypedDict):
    """A chat line, as the browser receives it."""

    type: Literal["chat"]
    message: str
    name: str


class MembersFrame(TypedDict):
    """Who is in the room now, sent whenever that changes."""

    type: Literal["members"]
    count: int
    names: list[str]


class ErrorFrame(TypedDict):
    """What was wrong with a frame the client sent (only that client sees it)."""

    type: Literal["error"]
    error: str
