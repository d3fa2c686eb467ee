"""Scope building and event descriptions shared by the communicators."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

from channels.types import Headers, Scope

__all__ = ["base_scope", "describe", "header_pairs"]


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
        "headers": header_pairs(headers or ()),
    }


def header_pairs(headers: Iterable[object]) -> Headers:
    """Return ``headers`` as a list of ``(name, value)`` byte tuples, or raise TypeError."""
    pairs: Headers = []
    for header in headers:
        if not (
            isinstance(header, tuple | list)
            and len(header) == 2  # pyright: ignore[reportUnknownArgumentType] - any sized pair
            and isinstance(header[0], bytes)
            and isinstance(header[1], bytes)
        ):
            raise TypeError(
                "headers must be (name, value) pairs of bytes, such as "
                f"(b'origin', b'http://localhost'); got {header!r}"
            )
        pairs.append((header[0], header[1]))
    return pairs


def describe(event: Mapping[str, Any]) -> str:
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
