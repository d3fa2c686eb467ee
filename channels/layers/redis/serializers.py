"""How the Redis layers turn messages into bytes: a registry of serializer formats.

The same names and behaviour as ``channels_redis.serializers``, so code that
registers its own format keeps working::

    from channels.layers.redis.serializers import BaseMessageSerializer, registry

    class CBORSerializer(BaseMessageSerializer):
        def as_bytes(self, message, *args, **kwargs):
            return cbor2.dumps(message)

        def from_bytes(self, message, *args, **kwargs):
            return cbor2.loads(message)

    registry.register_serializer("cbor", CBORSerializer)
    # CHANNEL_LAYERS ... "CONFIG": {"serializer_format": "cbor"}

A layer asks the registry for its ``serializer_format`` once, when it is
built, passing ``symmetric_encryption_keys`` (both layers) and
``random_prefix_length`` and ``expiry`` (``RedisChannelLayer``) as keyword
arguments. Registering a format again replaces it for layers built after.
Any class with ``serialize(message) -> bytes`` and ``deserialize(bytes)``
that takes those keywords may be registered; a subclass of
:class:`BaseMessageSerializer` gets encryption and the random prefix, and
writes only ``as_bytes`` / ``from_bytes``.

The bytes of ``"msgpack"`` and ``"json"`` are channels_redis's: ``[random
prefix][payload]``, the payload Fernet-encrypted when keys are given.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Protocol, cast

import msgpack

from channels._asserted import AssertedTypeError

if TYPE_CHECKING:
    from cryptography.fernet import Fernet, MultiFernet

__all__ = [
    "BaseMessageSerializer",
    "JSONSerializer",
    "MessageDecodeError",
    "MessageSerializer",
    "MsgPackSerializer",
    "SerializerDoesNotExist",
    "SerializersRegistry",
    "registry",
]


class MessageDecodeError(ValueError):
    """A message read from Redis could not be decrypted or decoded."""


class SerializerDoesNotExist(KeyError, ValueError):
    """No serializer is registered for ``format``; ``registered`` lists those that are.

    A KeyError, as channels_redis raises, and a ValueError, as for any other
    bad setting.
    """

    def __init__(self, format: str, registered: Iterable[str]) -> None:
        super().__init__(format)
        self.format = format
        self.registered = sorted(registered)

    def __str__(self) -> str:
        return (
            f"serializer_format must be one of the registered formats {self.registered}; "
            f"got {self.format!r} (register it with "
            "channels.layers.redis.serializers.registry.register_serializer)"
        )


class MessageSerializer(Protocol):
    """What a layer needs from a serializer: bytes from a message, and back."""

    # Any: a message's values are whatever its sender put in (see channels.types.ChannelMessage).
    def serialize(self, message: dict[str, Any], /) -> bytes:
        """Turn ``message`` into bytes for Redis."""
        # Any: messages are arbitrary serialisable mappings (channels.types.ChannelMessage).
        ...

    def deserialize(self, message: bytes, /) -> Any:
        """Turn bytes read from Redis back into a message (the layer checks it is a dict)."""
        # Any: whatever the sender encoded; a layer accepts only a dict.
        ...


class BaseMessageSerializer:
    """A serializer with optional Fernet encryption and a random prefix; subclasses encode.

    Subclasses implement ``as_bytes`` and ``from_bytes``; ``serialize`` wraps
    the first (encrypt, then prefix) and ``deserialize`` unwraps for the second.

    Args:
        symmetric_encryption_keys: keys for Fernet encryption: messages are
            encrypted with the first and decrypted with any of them.
        random_prefix_length: random bytes put before each payload.
        expiry: with encryption, messages older than ``expiry + 10`` seconds
            fail to decrypt.
    """

    def __init__(
        self,
        symmetric_encryption_keys: Iterable[str | bytes] | None = None,
        random_prefix_length: int = 0,
        expiry: float | None = None,
    ) -> None:
        # Settings are untyped at run time, whatever the annotations say.
        if isinstance(cast(object, random_prefix_length), bool) or not isinstance(
            cast(object, random_prefix_length), int
        ):
            raise TypeError(f"random_prefix_length must be an int; got {random_prefix_length!r}")
        if random_prefix_length < 0:
            raise ValueError(f"random_prefix_length must be >= 0; got {random_prefix_length!r}")
        self.random_prefix_length = random_prefix_length
        self.expiry = expiry
        self.__key_count = 0
        self.crypter: MultiFernet | None = self.__make_crypter(symmetric_encryption_keys)

    def make_fernet(self, key: str | bytes) -> Fernet:
        """Return the Fernet cipher for ``key``, derived as channels_redis derives it.

        Any string becomes a Fernet key through SHA-256, so the same configured
        keys read each other's messages in both implementations.
        """
        from cryptography.fernet import Fernet

        raw = key.encode("utf-8") if isinstance(key, str) else key
        return Fernet(base64.urlsafe_b64encode(hashlib.sha256(raw).digest()))

    # Any: passed through to the registered serializer class, whose options are its own.
    def as_bytes(self, message: dict[str, Any], *args: Any, **kwargs: Any) -> bytes:
        """Encode ``message`` (subclasses implement this)."""
        # Any: a message's values, and the encoder's own options.
        raise NotImplementedError(f"{type(self).__name__} must implement as_bytes()")

    def from_bytes(self, message: bytes, *args: Any, **kwargs: Any) -> Any:
        """Decode what ``as_bytes`` made (subclasses implement this)."""
        # Any: whatever was encoded, and the decoder's own options.
        raise NotImplementedError(f"{type(self).__name__} must implement from_bytes()")

    def serialize(self, message: dict[str, Any]) -> bytes:
        """Encode ``message``, encrypt it if keys are set, and put the random prefix first."""
        try:
            data = self.as_bytes(message)
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"message must hold only values {type(self).__name__} can encode "
                f"(str, bytes, int, float, bool, None, lists and dicts of them): {exc}; "
                f"got {message!r}"
            ) from exc
        if self.crypter is not None:
            data = self.crypter.encrypt(data)
        if self.random_prefix_length:
            data = os.urandom(self.random_prefix_length) + data
        return data

    def deserialize(self, message: bytes) -> Any:
        """Undo ``serialize``; raise MessageDecodeError if ``message`` cannot be read."""
        # Any: whatever the sender encoded.
        payload = message[self.random_prefix_length :]
        if self.crypter is not None:
            payload = self.__decrypt(payload)
        try:
            return self.from_bytes(payload)
        except ValueError as exc:
            raise MessageDecodeError(
                f"a message could not be decoded by {type(self).__name__}: {exc}; "
                f"got {len(message)} bytes starting {message[:32]!r}"
            ) from exc

    def __decrypt(self, payload: bytes) -> bytes:
        from cryptography.fernet import InvalidToken

        crypter = cast("MultiFernet", self.crypter)
        ttl = None if self.expiry is None else int(self.expiry) + 10
        try:
            return crypter.decrypt(payload, ttl)
        except InvalidToken:
            raise MessageDecodeError(
                f"a message could not be decrypted with any of the {self.__key_count} "
                "symmetric_encryption_keys: it was encrypted with another key, was "
                f"altered, or is older than {ttl} seconds"
            ) from None

    def __make_crypter(self, keys: Iterable[str | bytes] | None) -> MultiFernet | None:
        if keys is None:
            return None
        if isinstance(keys, str | bytes):
            raise TypeError(
                "symmetric_encryption_keys must be a list of keys, even for one key; "
                f"got a {type(keys).__name__}"  # not the key itself: it is a secret
            )
        key_list = list(keys)
        if not key_list:
            return None
        for key in key_list:
            if not isinstance(cast(object, key), str | bytes) or not key:
                raise TypeError(
                    "each symmetric encryption key must be a non-empty str or bytes; "
                    f"got a {type(key).__name__}"
                )
        try:
            from cryptography.fernet import MultiFernet
        except ImportError as exc:
            raise ImportError(
                "symmetric_encryption_keys need the 'cryptography' package; "
                "install typed-channels[crypto]"
            ) from exc
        self.__key_count = len(key_list)
        return MultiFernet([self.make_fernet(key) for key in key_list])


class JSONSerializer(BaseMessageSerializer):
    """Messages as UTF-8 JSON: readable in Redis, but bytes values cannot be sent."""

    # Any: passed through to the registered serializer class, whose options are its own.
    def as_bytes(self, message: dict[str, Any], *args: Any, **kwargs: Any) -> bytes:
        """Encode ``message`` as JSON; extra arguments go to ``json.dumps``."""
        # Any: json.dumps's own options.
        return json.dumps(message, *args, **kwargs).encode("utf-8")

    def from_bytes(self, message: bytes, *args: Any, **kwargs: Any) -> Any:
        """Decode JSON; extra arguments go to ``json.loads``."""
        # Any: whatever was encoded, and json.loads's own options.
        return json.loads(message, *args, **kwargs)


class MsgPackSerializer(BaseMessageSerializer):
    """Messages as msgpack, the default: compact, and bytes values travel as they are."""

    # Any: passed through to the registered serializer class, whose options are its own.
    def as_bytes(self, message: dict[str, Any], *args: Any, **kwargs: Any) -> bytes:
        """Encode ``message`` with msgpack; extra arguments go to ``msgpack.packb``."""
        # Any: msgpack.packb's own options.
        return msgpack.packb(message, *args, **kwargs)

    def from_bytes(self, message: bytes, *args: Any, **kwargs: Any) -> Any:
        """Decode msgpack; extra arguments go to ``msgpack.unpackb``."""
        # Any: whatever was encoded, and msgpack.unpackb's own options.
        return msgpack.unpackb(message, *args, **kwargs)


_SerializerClass = Callable[..., MessageSerializer]
"""A serializer class: called with the layer's keyword arguments, it returns a serializer."""


class SerializersRegistry:
    """Serializer classes by format name; layers look their ``serializer_format`` up here."""

    def __init__(self) -> None:
        self._registry: dict[str, _SerializerClass] = {}

    def register_serializer(self, format: str, serializer_class: type[MessageSerializer]) -> None:
        """Register ``serializer_class`` for ``format``, replacing any class registered before.

        Raises:
            TypeError: (also an AssertionError, as channels_redis asserts) if
                ``serializer_class`` is not a class with ``serialize`` and
                ``deserialize``.
        """
        # Arguments are untyped at run time, whatever the annotations say.
        methods = [getattr(serializer_class, name, None) for name in ("serialize", "deserialize")]
        if not isinstance(cast(object, serializer_class), type) or not all(map(callable, methods)):
            raise AssertedTypeError(
                "serializer_class must be a class with serialize() and deserialize() methods, "
                f"such as a subclass of BaseMessageSerializer; got {serializer_class!r}"
            )
        if not isinstance(cast(object, format), str):
            raise AssertedTypeError(f"a serializer format must be a str; got {format!r}")
        self._registry[format] = cast(_SerializerClass, serializer_class)

    # Any: passed through to the registered serializer class, whose options are its own.
    def get_serializer(self, format: str, *args: Any, **kwargs: Any) -> MessageSerializer:
        """Return a new serializer for ``format``, built with ``args`` and ``kwargs``.

        Raises:
            SerializerDoesNotExist: if no class is registered for ``format``.
        """
        # Any: the arguments are the registered class's own.
        try:
            serializer_class = self._registry[format]
        except (KeyError, TypeError):  # TypeError: an unhashable format
            raise SerializerDoesNotExist(format, self._registry) from None
        return serializer_class(*args, **kwargs)


registry = SerializersRegistry()
"""The registry every Redis layer reads: ``"msgpack"`` and ``"json"`` to start with."""
registry.register_serializer("json", JSONSerializer)
registry.register_serializer("msgpack", MsgPackSerializer)
