"""WebsocketCommunicator: open, talk to and close a websocket application in a test."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, Literal

from channels._asserted import AssertedTypeError
from channels.testing._scope import base_scope, checked_headers, describe
from channels.testing.application import ApplicationCommunicator, receive_expected
from channels.types import ASGIApplication, HeaderPair, Headers

__all__ = ["WebsocketCommunicator"]


class WebsocketCommunicator(ApplicationCommunicator):
    """Drive a websocket application: connect, send and receive frames, disconnect.

    The scope is built from ``path`` (its query string split off), ``headers``
    (``(name, value)`` byte pairs) and ``subprotocols``; ``spec_version`` goes
    into ``scope["asgi"]`` and, as upstream Channels puts it, ``scope``.
    ``scope`` is a plain dict: set extra keys, such as ``"user"``, before
    ``connect()``.

    Every expectation that fails raises AssertionError saying what was
    expected and what arrived; nothing arriving in time raises asyncio.TimeoutError.
    """

    def __init__(
        self,
        application: ASGIApplication,
        path: str,
        headers: Iterable[HeaderPair] | None = None,
        subprotocols: Iterable[str] | None = None,
        spec_version: str | None = None,
    ) -> None:
        scope = base_scope("websocket", path, headers)
        scope["subprotocols"] = list(subprotocols or ())
        if spec_version is not None:
            scope["asgi"]["spec_version"] = spec_version
            scope["spec_version"] = spec_version
        super().__init__(application, scope)
        #: The headers of the ``websocket.accept``, once ``connect()`` has been accepted.
        self.response_headers: Headers | None = None

    async def connect(
        self, timeout: float | None = 1
    ) -> tuple[Literal[True], str | None] | tuple[Literal[False], int]:
        """Send ``websocket.connect`` and return how the application answered.

        Returns ``(True, subprotocol)`` when it accepts, ``(False, close_code)``
        when it closes, and ``(False, status)`` when it refuses with an HTTP
        response (``websocket.http.response.start``, whose headers become
        ``response_headers``; the body events stay queued for
        ``receive_output``).
        """
        await self.send_input({"type": "websocket.connect"})
        event = await receive_expected(self, "websocket.accept or websocket.close", timeout)
        kind = event["type"]
        if kind == "websocket.accept":
            self.response_headers = checked_headers(event.get("headers") or [], "application")
            subprotocol: str | None = event.get("subprotocol")
            return True, subprotocol
        if kind == "websocket.close":
            code: int = event.get("code", 1000)
            return False, code
        if kind == "websocket.http.response.start":
            self.response_headers = checked_headers(event.get("headers") or [], "application")
            status: int = event["status"]
            return False, status
        raise AssertionError(f"expected websocket.accept or websocket.close, got {describe(event)}")

    async def send_to(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Send the application one frame: text or bytes, exactly one of them.

        Raises:
            TypeError: not exactly one is given, or it has the wrong type (also
                an AssertionError, as upstream asserts these).
        """
        if text_data is not None and bytes_data is None:
            if not isinstance(text_data, str):  # pyright: ignore[reportUnnecessaryIsInstance] - untyped callers
                raise AssertedTypeError(f"text_data must be a str; got {text_data!r}")
            await self.send_input({"type": "websocket.receive", "text": text_data})
        elif bytes_data is not None and text_data is None:
            if not isinstance(bytes_data, bytes):  # pyright: ignore[reportUnnecessaryIsInstance] - untyped callers
                raise AssertedTypeError(f"bytes_data must be bytes; got {bytes_data!r}")
            await self.send_input({"type": "websocket.receive", "bytes": bytes_data})
        else:
            raise AssertedTypeError(
                "send_to() takes exactly one of text_data (a str) and bytes_data (bytes); "
                f"got text_data={text_data!r}, bytes_data={bytes_data!r}"
            )

    async def send_json_to(self, data: object) -> None:
        """Send ``data`` encoded as JSON in a text frame."""
        await self.send_to(text_data=json.dumps(data))

    async def receive_from(self, timeout: float | None = 1) -> str | bytes:
        """Return the payload of the next frame the application sends: str or bytes."""
        event = await receive_expected(self, "a websocket.send message", timeout)
        if event["type"] != "websocket.send":
            raise AssertionError(f"expected a websocket.send message, got {describe(event)}")
        text, data = event.get("text"), event.get("bytes")
        if (text is None) == (data is None):
            raise AssertionError(
                "expected a websocket.send message with exactly one of 'text' and 'bytes', "
                f"got {dict(event)!r}"
            )
        if text is not None:
            if not isinstance(text, str):
                raise AssertionError(
                    f"expected the 'text' of a websocket.send to be a str, got {text!r}"
                )
            return text
        if not isinstance(data, bytes):
            raise AssertionError(
                f"expected the 'bytes' of a websocket.send to be bytes, got {data!r}"
            )
        return data

    # JSON decodes to any value; Any lets tests index the result without casts.
    async def receive_json_from(self, timeout: float | None = 1) -> Any:
        """Return the decoded JSON of the next frame, which must be a text frame."""
        payload = await self.receive_from(timeout)
        if not isinstance(payload, str):
            raise AssertionError(
                f"expected a text frame holding JSON, got a binary frame {payload!r}"
            )
        # A frame that is not JSON raises json.JSONDecodeError, as upstream.
        return json.loads(payload)

    async def disconnect(self, code: int = 1000, timeout: float | None = 1) -> None:
        """Send ``websocket.disconnect`` with ``code`` and wait for the application to exit."""
        await self.send_input({"type": "websocket.disconnect", "code": code})
        await self.wait(timeout)
