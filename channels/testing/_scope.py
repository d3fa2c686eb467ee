"""Scope building and event descriptions shared by the communicators."""

from __future__ import annotations

from collections.abc import Iterable
from typing import cast
from urllib.parse import unquote, urlsplit

from channels.types import Event, Headers, Scope

__all__ = ["base_scope", "checked_headers", "describe"]


def base_scope(kind: str, path: object, headers: Iterable[object] | None) -> Scope:
    """Return a scope of type ``kind`` for ``path`` (query string split off) and ``headers``."""
    if not isinstance(path, str):
        raise TypeError(
            f"path must be a str such as '/chat/?room=1'; got {type(path).__name__} {path!r}"
        )
    parts = urlsplit(path)
    return {
        "type": kind,
        "asgi": {"version": "3.0"},
        "path": unquote(parts.path),
        "raw_path": parts.path.encode("utf-8"),
        "query_string": parts.query.encode("utf-8"),
        "headers": checked_headers(headers or [], "test"),
    }


def checked_headers(headers: Iterable[object], given_by: str) -> Headers:
    """Return ``headers`` as they are, once checked to be ``(name, value)`` pairs of bytes.

    A list or tuple is returned unchanged (a list of two-item lists stays
    that), any other iterable as a list; what a test or an application passes
    is what it reads back.

    Raises:
        TypeError: ``given_by`` is ``"test"`` and a header is not a pair of bytes.
        AssertionError: ``given_by`` is ``"application"`` and a header is not one.
    """
    kept = headers if isinstance(headers, list | tuple) else list(headers)
    for header in kept:
        if not (
            isinstance(header, tuple | list)
            and len(header) == 2  # pyright: ignore[reportUnknownArgumentType] - any sized pair
            and isinstance(header[0], bytes)
            and isinstance(header[1], bytes)
        ):
            if given_by == "application":
                raise AssertionError(
                    f"expected the application's headers to be (name, value) pairs of bytes, "
                    f"got {header!r}"
                )
            raise TypeError(
                "headers must be (name, value) pairs of bytes, such as "
                f"(b'origin', b'http://localhost'); got {header!r}"
            )
    # The pairs may be lists at run time; Headers names the usual form.
    return cast(Headers, kept)


def describe(event: Event) -> str:
    """Describe an ASGI event for a failure message: its type and its telling keys."""
    kind = event.get("type")
    if kind in ("websocket.close", "websocket.disconnect"):
        return f"{kind} (code {event.get('code', 1000)})"
    if kind == "websocket.send":
        if event.get("text") is not None:
            return f"websocket.send (text {event['text']!r})"
        return f"websocket.send (bytes {event.get('bytes')!r})"
    if kind in ("http.response.start", "websocket.http.response.start"):
        return f"{kind} (status {event.get('status')!r})"
    if kind == "websocket.accept":
        return f"websocket.accept (subprotocol {event.get('subprotocol')!r})"
    return repr(dict(event))
