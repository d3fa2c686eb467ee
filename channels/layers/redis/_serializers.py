"""Message checks for both Redis layers, and a layer's serializer with them.

What goes to Redis and what comes back is checked here, once for both
layers: an outgoing message is a mapping without the reserved channel key and
serialises to at most ``MAX_MESSAGE_SIZE`` bytes; an incoming one decodes to a
dict. :class:`Serializer` looks ``serializer_format`` up in the public
registry (:mod:`channels.layers.redis.serializers`) and applies these checks
around it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final, cast

from channels._asserted import AssertedValueError
from channels.exceptions import MessageTooLarge
from channels.layers.base import require_message
from channels.layers.redis.serializers import (
    MessageDecodeError,
    MessageSerializer,
    MsgPackSerializer,
    registry,
)
from channels.types import ChannelMessage, ReceivedMessage

__all__ = [
    "CHANNEL_KEY",
    "MAX_MESSAGE_SIZE",
    "Serializer",
    "check_size",
    "outgoing",
    "received",
]

MAX_MESSAGE_SIZE: Final = 16 * 1024 * 1024
"""The largest serialised message the Redis layers send, in bytes (16 MiB).

Redis itself accepts values up to 512 MiB, but a message that large stalls
the server for every other client; 16 MiB leaves room for any sensible event.
"""

CHANNEL_KEY: Final = "__asgi_channel__"
"""The key that carries a message's channel (or channels) inside it, as channels_redis does."""


def outgoing(message: object) -> ReceivedMessage:
    """Return a copy of ``message`` to send, after checking it is a mapping without CHANNEL_KEY."""
    require_message(message)
    payload: ReceivedMessage = dict(cast(ChannelMessage, message))
    if CHANNEL_KEY in payload:
        raise AssertedValueError(
            f"a message must not carry the reserved key {CHANNEL_KEY!r}; got {message!r}"
        )
    return payload


def check_size(data: bytes, limit: int | None) -> bytes:
    """Return ``data`` if it fits in ``limit`` bytes (None: no limit); else MessageTooLarge."""
    if limit is not None and len(data) > limit:
        raise MessageTooLarge(len(data), limit)
    return data


def received(message: object) -> ReceivedMessage:
    """Return a decoded ``message`` if it is a dict, else raise MessageDecodeError."""
    if not isinstance(message, dict):
        raise MessageDecodeError(f"a message must decode to a dict; got {type(message).__name__}")
    return cast(ReceivedMessage, message)


class Serializer:
    """A layer's serializer, looked up in the registry.

    The layers apply the checks above around it (``outgoing``, ``check_size``,
    ``received``), since a subclass's ``serialize``/``deserialize`` replaces it.

    Args:
        serializer_format: a format registered in
            :data:`channels.layers.redis.serializers.registry`.
        options: keyword arguments for the registered class
            (``symmetric_encryption_keys``, ``random_prefix_length``, ``expiry``).

    Raises:
        SerializerDoesNotExist: if ``serializer_format`` is not registered.
    """

    def __init__(
        self,
        serializer_format: str = "msgpack",
        **options: Iterable[str | bytes] | float | None,
    ) -> None:
        self.inner: MessageSerializer = registry.get_serializer(serializer_format, **options)

    @property
    def plain_msgpack(self) -> bool:
        """Whether messages are the stock msgpack, unencrypted (a Lua script can build them)."""
        inner = self.inner
        return type(inner) is MsgPackSerializer and inner.crypter is None
