"""HttpCommunicator: send one HTTP request to an application and read its response."""

from __future__ import annotations

from collections.abc import Iterable
from typing import cast

from typing_extensions import TypedDict

from channels.testing._scope import base_scope, checked_headers, describe
from channels.testing.application import ApplicationCommunicator, receive_expected
from channels.types import ASGIApplication, HeaderPair, Headers

__all__ = ["HttpCommunicator", "HttpTestResponse"]


class HttpTestResponse(TypedDict):
    """The response that ``HttpCommunicator.get_response`` assembles."""

    status: int
    headers: Headers
    body: bytes


class HttpCommunicator(ApplicationCommunicator):
    """Drive an HTTP application: one request (``body`` in one chunk), one response.

    Every expectation that fails raises AssertionError saying what was
    expected and what arrived; nothing arriving in time raises asyncio.TimeoutError.
    """

    def __init__(
        self,
        application: ASGIApplication,
        method: str,
        path: str,
        body: bytes = b"",
        headers: Iterable[HeaderPair] | None = None,
    ) -> None:
        if not isinstance(body, bytes):  # pyright: ignore[reportUnnecessaryIsInstance] - untyped callers
            raise TypeError(f"body must be bytes; got {type(body).__name__} {body!r}")
        scope = base_scope("http", path, headers)
        scope["http_version"] = "1.1"
        scope["method"] = method.upper()
        super().__init__(application, scope)
        self.body = body
        self.sent_request = False

    async def get_response(self, timeout: float | None = 1) -> HttpTestResponse:
        """Send the request (once) and return the response, its body chunks joined.

        ``timeout`` applies to each event of the response.
        """
        if not self.sent_request:
            self.sent_request = True
            await self.send_input({"type": "http.request", "body": self.body})
        start = await receive_expected(self, "an http.response.start message", timeout)
        if start["type"] != "http.response.start":
            raise AssertionError(f"expected an http.response.start message, got {describe(start)}")
        chunks: list[bytes] = []
        more_body = True
        while more_body:
            event = await receive_expected(self, "an http.response.body message", timeout)
            if event["type"] != "http.response.body":
                raise AssertionError(
                    f"expected an http.response.body message, got {describe(event)}"
                )
            chunks.append(event.get("body", b""))
            more_body = event.get("more_body", False)
        # Every key of the start event but its type, as upstream: a
        # ``trailers`` flag the application sent is there too.
        response = cast(
            HttpTestResponse, {key: value for key, value in start.items() if key != "type"}
        )
        response["headers"] = checked_headers(start.get("headers") or [], "application")
        response["body"] = b"".join(chunks)
        return response
