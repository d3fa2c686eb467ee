"""HttpCommunicator: send one HTTP request to an application and read its response."""

from __future__ import annotations

from collections.abc import Iterable

from typing_extensions import TypedDict

from channels.testing._scope import base_scope, describe, header_pairs
from channels.testing.application import ApplicationCommunicator
from channels.types import ASGIApplication, Headers

__all__ = ["HttpCommunicator", "HttpTestResponse"]


class HttpTestResponse(TypedDict):
    """The response that ``HttpCommunicator.get_response`` assembles."""

    status: int
    headers: Headers
    body: bytes


class HttpCommunicator(ApplicationCommunicator):
    """Drive an HTTP application: one request (``body`` in one chunk), one response.

    Every expectation that fails raises AssertionError saying what was
    expected and what arrived; nothing arriving in time raises TimeoutError.
    """

    def __init__(
        self,
        application: ASGIApplication,
        method: str,
        path: str,
        body: bytes = b"",
        headers: Iterable[tuple[bytes, bytes]] | None = None,
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
        start = await self._next_output("an http.response.start message", timeout)
        if start["type"] != "http.response.start":
            raise AssertionError(f"expected an http.response.start message, got {describe(start)}")
        chunks: list[bytes] = []
        more_body = True
        while more_body:
            event = await self._next_output("an http.response.body message", timeout)
            if event["type"] != "http.response.body":
                raise AssertionError(
                    f"expected an http.response.body message, got {describe(event)}"
                )
            chunks.append(event.get("body", b""))
            more_body = event.get("more_body", False)
        return {
            "status": start["status"],
            "headers": header_pairs(start.get("headers") or ()),
            "body": b"".join(chunks),
        }
