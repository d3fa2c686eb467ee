"""The RESP replies the layers' own connections receive, parsed from a byte buffer.

Only what those connections get (subscribers, and the pipelined command
connections of ``_publisher``): arrays and pushes (RESP2 ``*``, RESP3 ``>``,
a :class:`Push`) of bulk strings, integers, doubles, simple strings and
nulls, and error lines. It reads from a position in a buffer and says where
the reply ends, or how long the buffer must grow before it can: a reply split
over many reads is parsed once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from typing import Final

from redis.exceptions import InvalidResponse, ResponseError

__all__ = ["Push", "ReplyProtocol", "pack_args", "pack_command", "parse_items", "parse_reply"]

_CRLF: Final = b"\r\n"
_ARRAYS: Final = frozenset(b"*>")  # RESP2 array, RESP3 push
_PUSH: Final = ord(">")
_NULL: Final = frozenset(b"_")


class Push(list[object]):
    """A RESP3 push: an array the server sent on its own, not a reply to a command."""


def parse_reply(data: bytes, pos: int) -> tuple[object, int] | int:
    """Parse the reply at ``pos``: ``(reply, end)``, or the length ``data`` must reach first.

    Reads what the layers' connections receive, in RESP2 or RESP3: arrays and
    pushes (a :class:`Push`) of bulk strings, integers, doubles and simple
    strings; errors come back as ResponseError objects.
    """
    end = data.find(_CRLF, pos)
    if end < 0:
        return len(data) + 1
    kind = data[pos]
    after = end + 2
    if kind in _ARRAYS:
        items: list[object] = Push() if kind == _PUSH else []
        after, needed = parse_items(data, after, int(data[pos + 1 : end]), items)
        return needed if needed else (items, after)
    if kind == ord("$"):
        size = int(data[pos + 1 : end])
        if size < 0:
            return None, after
        if len(data) < after + size + 2:
            return after + size + 2
        return data[after : after + size], after + size + 2
    if kind == ord(":"):
        return int(data[pos + 1 : end]), after
    if kind == ord(","):
        return float(data[pos + 1 : end]), after
    if kind == ord("+"):
        return data[pos + 1 : end], after
    if kind == ord("-"):
        return ResponseError(data[pos + 1 : end].decode("utf-8", "replace")), after
    if kind in _NULL:
        return None, after
    raise InvalidResponse(f"unexpected RESP type byte {bytes([kind])!r} in a reply from Redis")


def parse_items(data: bytes, pos: int, count: int, items: list[object]) -> tuple[int, int]:
    """Append the next ``count`` replies at ``pos`` to ``items``, as many as ``data`` holds whole.

    Returns the position after the last one appended, and 0 when all
    ``count`` were, or else the length ``data`` must reach for the next one
    (so a large array arriving over many reads is read on from there).
    """
    for _ in range(count):
        if data.startswith(b"$", pos):
            # A bulk string, the usual item, read here: a group's members
            # can be thousands of them, and a call each would double the cost.
            line = data.find(_CRLF, pos)
            if line < 0:
                return pos, len(data) + 1
            size = int(data[pos + 1 : line])
            if size < 0:
                items.append(None)
                pos = line + 2
                continue
            start = line + 2
            if len(data) < start + size + 2:
                return pos, start + size + 2
            items.append(data[start : start + size])
            pos = start + size + 2
            continue
        parsed = parse_reply(data, pos)
        if isinstance(parsed, int):
            return pos, parsed
        item, pos = parsed
        items.append(item)
    return pos, 0


class ReplyProtocol(asyncio.Protocol):
    """A connection's bytes split into replies as they arrive, until the connection is cut.

    Subclasses say what a reply means (``replied``) and what cutting does
    (``cut``, which must clear ``live``). Bytes that do not parse cut the
    connection; so does its loss.
    """

    def __init__(self) -> None:
        self.live = True
        self._pending = bytearray()
        self._needed = 0

    def replied(self, reply: object) -> None:
        """Take one reply."""
        raise NotImplementedError

    def cut(self, reason: BaseException) -> None:
        """Stop taking replies, for ``reason``."""
        raise NotImplementedError

    def data_received(self, data: bytes) -> None:
        """Hand every complete reply in ``data`` (and what came before it) to ``replied``."""
        if self._pending:
            self._pending += data
            if len(self._pending) < self._needed:
                return
            data = bytes(self._pending)
            self._pending.clear()
        pos = 0
        try:
            while pos < len(data) and self.live:
                parsed = parse_reply(data, pos)
                if isinstance(parsed, int):
                    self._needed = parsed - pos
                    self._pending += data[pos:]
                    return
                reply, pos = parsed
                self.replied(reply)
        except (ValueError, InvalidResponse) as exc:
            self.cut(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        """Cut, unless cut already."""
        self.cut(exc or ConnectionError("the server closed the connection"))


def pack_command(
    args: Sequence[str | bytes | float], packed: dict[tuple[type, str | bytes | float], bytes]
) -> bytes:
    """Pack one command in RESP, as redis-py would (floats by repr, text as UTF-8).

    ``packed`` keeps each argument's packing for the next commands of the
    batch, by type too: 60 and 60.0 pack differently.
    """
    return b"*%d\r\n%b" % (len(args), pack_args(args, packed))


def pack_args(
    args: Iterable[str | bytes | float], packed: dict[tuple[type, str | bytes | float], bytes]
) -> bytes:
    """Pack ``args`` as the bulk strings of a command (see :func:`pack_command`), no header."""
    parts: list[bytes] = []
    for arg in args:
        bulk = packed.get((type(arg), arg))
        if bulk is None:
            data = arg if isinstance(arg, bytes) else str(arg).encode("utf-8")
            bulk = packed[type(arg), arg] = b"$%d\r\n%s\r\n" % (len(data), data)
        parts.append(bulk)
    return b"".join(parts)
