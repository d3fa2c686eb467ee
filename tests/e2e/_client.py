"""A chat client for the tests: the lobby over HTTP, then the room's websocket."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from http.cookiejar import CookieJar
from typing import Any
from urllib.parse import urlencode
from urllib.request import (
    HTTPCookieProcessor,
    OpenerDirector,
    ProxyHandler,
    Request,
    build_opener,
)

from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Origin

from tests.e2e._servers import ChatServer

__all__ = ["ChatClient", "Page", "enter_lobby", "fetch", "join", "post_lobby"]

# How long one expected frame may take to arrive, and how many unrelated
# frames (member counts) may come before it.
RECEIVE_TIMEOUT = 10.0
_MAX_SKIPPED_FRAMES = 50

_CSRF_FIELD = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


@dataclass(frozen=True)
class Page:
    """Where an HTTP request ended up after redirects, what it showed, and the session."""

    url: str
    text: str
    cookie: str


def _opener(jar: CookieJar) -> OpenerDirector:
    # No proxy: everything here is on the loopback interface.
    return build_opener(ProxyHandler({}), HTTPCookieProcessor(jar))


def fetch(url: str) -> Page:
    """GET ``url`` with no session, following redirects."""
    jar = CookieJar()
    with _opener(jar).open(url, timeout=RECEIVE_TIMEOUT) as response:
        return Page(response.geturl(), response.read().decode(), _cookie_header(jar))


def post_lobby(server: ChatServer, name: str, room: str) -> Page:
    """Post the lobby form as a browser would (CSRF token included)."""
    jar = CookieJar()
    opener = _opener(jar)
    lobby = f"{server.http_url}/"
    with opener.open(lobby, timeout=RECEIVE_TIMEOUT) as response:
        page: str = response.read().decode()
    token = _CSRF_FIELD.search(page)
    if token is None:
        raise AssertionError(f"no CSRF token in the lobby page:\n{page}")
    form = urlencode({"csrfmiddlewaretoken": token[1], "name": name, "room": room}).encode()
    with opener.open(Request(lobby, data=form), timeout=RECEIVE_TIMEOUT) as response:
        return Page(response.geturl(), response.read().decode(), _cookie_header(jar))


def enter_lobby(server: ChatServer, name: str, room: str) -> str:
    """Enter ``room`` through the lobby; return the Cookie header of the session."""
    page = post_lobby(server, name, room)
    if page.url != server.room_url(room):
        raise AssertionError(f"the lobby should lead to {server.room_url(room)}; got {page.url}")
    return page.cookie


def _cookie_header(jar: CookieJar) -> str:
    return "; ".join(f"{cookie.name}={cookie.value}" for cookie in jar)


class ChatClient:
    """One websocket in a room, reading the frames the room sends."""

    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection

    async def say(self, message: str) -> None:
        await self.connection.send(json.dumps({"message": message}))

    async def frame(self) -> dict[str, Any]:
        """Return the next frame, decoded."""
        data = await asyncio.wait_for(self.connection.recv(), RECEIVE_TIMEOUT)
        frame: object = json.loads(data)
        if not isinstance(frame, dict):
            raise AssertionError(f"frames should be JSON objects; got {data!r}")
        return frame  # pyright: ignore[reportUnknownVariableType] -- JSON object keys are str

    async def next_of(self, kind: str) -> dict[str, Any]:
        """Return the next frame of type ``kind``, skipping others."""
        skipped: list[dict[str, Any]] = []
        while len(skipped) < _MAX_SKIPPED_FRAMES:
            frame = await self.frame()
            if frame.get("type") == kind:
                return frame
            skipped.append(frame)
        raise AssertionError(f"no {kind!r} frame among {skipped!r}")

    async def messages(self, count: int) -> list[tuple[str, str]]:
        """Return the next ``count`` chat lines as (name, message) pairs."""
        lines: list[tuple[str, str]] = []
        for _ in range(count):
            frame = await self.next_of("chat")
            lines.append((frame["name"], frame["message"]))
        return lines

    async def wait_for_count(self, count: int) -> list[str]:
        """Read member updates until the room holds ``count`` people; return their names."""
        seen: list[int] = []
        while len(seen) < _MAX_SKIPPED_FRAMES:
            frame = await self.next_of("members")
            if frame["count"] == count:
                names: list[str] = frame["names"]
                return names
            seen.append(frame["count"])
        raise AssertionError(f"the room never held {count} people; counts were {seen!r}")

    def drop(self) -> None:
        """Lose the connection without a closing handshake, as a crashed client would."""
        self.connection.transport.abort()


@asynccontextmanager
async def join(
    server: ChatServer, room: str, name: str | None = None, origin: str | None = None
) -> AsyncGenerator[ChatClient, None]:
    """Connect to ``room``, through the lobby as ``name`` unless it is None."""
    headers: dict[str, str] = {}
    if name is not None:
        headers["Cookie"] = await asyncio.to_thread(enter_lobby, server, name, room)
    async with connect(
        server.websocket_url(room),
        origin=Origin(origin if origin is not None else server.http_url),
        additional_headers=headers,
        proxy=None,
        open_timeout=RECEIVE_TIMEOUT,
        close_timeout=RECEIVE_TIMEOUT,
    ) as connection:
        yield ChatClient(connection)
