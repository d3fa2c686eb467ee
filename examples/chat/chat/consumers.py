"""The websocket side of a room: one consumer per connected client.

Every consumer joins its room's group. A chat line goes to the group and every
member relays it to its client. Presence needs no shared store, so it works
the same on the in-memory layer and across processes on Redis: a newcomer says
hello to the group, each member answers it directly, and a leaving member says
so; each consumer keeps its own view of who is in the room.

The display name comes from the session (the lobby form sets it). A client
without one, such as a script that skips the lobby, is called "anonymous".
"""

from __future__ import annotations

import contextlib
import json

from django.contrib.sessions.backends.base import SessionBase

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer, JSONValue
from chat.events import (
    ChatFrame,
    ChatMessageEvent,
    ErrorFrame,
    MembersFrame,
    PresenceEvent,
    PresenceLeftEvent,
)
from chat.rooms import group_name

__all__ = ["ANONYMOUS", "MAX_MESSAGE_LENGTH", "ChatConsumer"]

ANONYMOUS = "anonymous"
"""The name of a client whose session holds no display name."""

MAX_MESSAGE_LENGTH = 2000
"""The longest chat line, in characters."""


# A thread, not ``session.aget``: Django 4.2 has no async session API.
@database_sync_to_async
def _display_name(session: SessionBase) -> str:
    name = session.get("display_name")
    return name if isinstance(name, str) and name else ANONYMOUS


def _chat_line(text_data: str | None) -> str | ErrorFrame:
    """Return the chat line a client frame carries, or the error to send back."""
    if text_data is None:
        return _error("send text frames holding JSON; got a binary frame")
    try:
        content: JSONValue = json.loads(text_data)
    except json.JSONDecodeError:
        return _error(f'send JSON like {{"message": "hi"}}; got {text_data[:100]!r}')
    message = content.get("message") if isinstance(content, dict) else None
    if not isinstance(message, str) or not message.strip():
        return _error(f"send an object with a non-empty string 'message'; got {content!r:.100}")
    if len(message) > MAX_MESSAGE_LENGTH:
        return _error(
            f"a message holds at most {MAX_MESSAGE_LENGTH} characters; got {len(message)}"
        )
    return message


def _error(error: str) -> ErrorFrame:
    return {"type": "error", "error": error}


class ChatConsumer(AsyncWebsocketConsumer):
    """One client in one room: relays its lines to the room and the room's to it."""

    room: str
    group: str
    display_name: str
    #: Who this consumer knows to be in the room: channel name -> display name.
    members: dict[str, str]

    async def connect(self) -> None:
        """Join the room's group, accept, and announce the newcomer."""
        self.room = self.scope["url_route"]["kwargs"]["room"]
        self.group = group_name(self.room)
        self.display_name = await _display_name(self.scope["session"])
        self.members = {}
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        hello: PresenceEvent = {
            "type": "presence.hello",
            "channel": self.channel_name,
            "name": self.display_name,
        }
        await self.channel_layer.group_send(self.group, hello)

    async def disconnect(self, code: int, /) -> None:
        """Leave the room's group and tell the others."""
        await self.channel_layer.group_discard(self.group, self.channel_name)
        left: PresenceLeftEvent = {"type": "presence.left", "channel": self.channel_name}
        await self.channel_layer.group_send(self.group, left)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Send the client's line to everyone in the room, or an error back to it."""
        line = _chat_line(text_data)
        if not isinstance(line, str):
            await self._send_frame(line)
            return
        event: ChatMessageEvent = {
            "type": "chat.message",
            "message": line,
            "name": self.display_name,
        }
        await self.channel_layer.group_send(self.group, event)

    async def chat_message(self, event: ChatMessageEvent) -> None:
        """Relay a line said in the room to the client."""
        await self._send_frame({"type": "chat", "message": event["message"], "name": event["name"]})

    async def presence_hello(self, event: PresenceEvent) -> None:
        """Count the newcomer in, and tell it that this member is here too."""
        if event["channel"] != self.channel_name:
            here: PresenceEvent = {
                "type": "presence.here",
                "channel": self.channel_name,
                "name": self.display_name,
            }
            await self.channel_layer.send(event["channel"], here)
        await self._count_in(event)

    async def presence_here(self, event: PresenceEvent) -> None:
        """Count in a member that was in the room before this one."""
        await self._count_in(event)

    async def presence_left(self, event: PresenceLeftEvent) -> None:
        """Count out a member whose socket closed."""
        if self.members.pop(event["channel"], None) is not None:
            await self._send_members()

    async def _count_in(self, event: PresenceEvent) -> None:
        self.members[event["channel"]] = event["name"]
        await self._send_members()

    async def _send_members(self) -> None:
        names = sorted(self.members.values(), key=str.casefold)
        frame: MembersFrame = {"type": "members", "count": len(names), "names": names}
        await self._send_frame(frame)

    async def _send_frame(self, frame: ChatFrame | MembersFrame | ErrorFrame) -> None:
        # A room event can arrive just after the client vanished. ASGI servers
        # then raise an OSError (uvicorn's ClientDisconnected); the socket's
        # websocket.disconnect is already queued and leaves the room, so the
        # consumer must live on to handle it.
        with contextlib.suppress(OSError):
            await self.send(text_data=json.dumps(frame))
