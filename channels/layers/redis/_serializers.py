"""Message serialisation for the Redis layers, byte-compatible with channels_redis 4.x.

A message travels as ``[random prefix][payload]``: the payload is the message
packed with msgpack (or JSON), Fernet-encrypted when keys are configured; the
random prefix keeps equal messages distinct members of a Redis sorted set.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final, cast

import msgpack

from channels.exceptions import MessageTooLarge

__all__ = ["FORMATS", "MAX_MESSAGE_SIZE", "MessageDecodeError", "Serializer"]

MAX_MESSAGE_SIZE: Final = 16 * 1024 * 1024
"""The largest serialised message the Redis layers send, in bytes (16 MiB).

Redis itself accepts values up to 512 MiB, but a message that large stalls
the server for every other client; 16 MiB leaves room for any sensible event.
"""

# Messages are arbitrary serialisable mappings (see channels.types.ChannelMessage).
_Dumps = Callable[[Mapping[str, Any]], bytes]
_Loads = Callable[[bytes], Any]


def _msgpack_dumps(message: Mapping[str, Any]) -> bytes:
    return msgpack.packb(message, use_bin_type=True)


def _msgpack_loads(data: bytes) -> Any:  # Any: whatever the sender packed
    return msgpack.unpackb(data, raw=False)


def _json_dumps(message: Mapping[str, Any]) -> bytes:
    return json.dumps(message).encode("utf-8")


def _json_loads(data: bytes) -> Any:  # Any: whatever the sender encoded
    return json.loads(data)


FORMATS: Final[Mapping[str, tuple[_Dumps, _Loads]]] = {
    "json": (_json_dumps, _json_loads),
    "msgpack": (_msgpack_dumps, _msgpack_loads),
}
"""The serializer formats by name: the values ``serializer_format`` accepts."""


class MessageDecodeError(ValueError):
    """A message read from Redis could not be decrypted or decoded."""


class Serializer:
    """Turns messages into bytes and back, as channels_redis does on the wire.

    Args:
        serializer_format: ``"msgpack"`` (the default) or ``"json"``.
        symmetric_encryption_keys: keys for Fernet encryption: messages are
            encrypted with the first and decrypted with any of them.
        random_prefix_length: random bytes put before each payload.
        expiry: messages older than ``expiry + 10`` seconds fail to decrypt.
        max_size: the largest serialised message allowed, or None for no limit.
    """

    def __init__(
        self,
        serializer_format: str = "msgpack",
        symmetric_encryption_keys: Iterable[str | bytes] | None = None,
        random_prefix_length: int = 0,
        expiry: float | None = None,
        max_size: int | None = MAX_MESSAGE_SIZE,
    ) -> None:
        if serializer_format not in FORMATS:
            raise ValueError(
                f"serializer_format must be one of {sorted(FORMATS)}; got {serializer_format!r}"
            )
        if random_prefix_length < 0:
            raise ValueError(f"random_prefix_length must be >= 0; got {random_prefix_length!r}")
        self.serializer_format = serializer_format
        self.random_prefix_length = random_prefix_length
        self.expiry = expiry
        self.max_size = max_size
        self._dumps, self._loads = FORMATS[serializer_format]
        self._crypter = _make_crypter(symmetric_encryption_keys)

    @property
    def encrypted(self) -> bool:
        """Whether messages are encrypted."""
        return self._crypter is not None

    def dumps(self, message: Mapping[str, Any]) -> bytes:
        """Serialise ``message``; raise MessageTooLarge past ``max_size`` bytes."""
        try:
            data = self._dumps(message)
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"message must hold only {self.serializer_format}-serialisable values "
                f"(str, bytes, int, float, bool, None, lists and dicts of them): {exc}; "
                f"got {message!r}"
            ) from exc
        if self._crypter is not None:
            data = self._crypter.encrypt(data)
        if self.random_prefix_length:
            data = os.urandom(self.random_prefix_length) + data
        if self.max_size is not None and len(data) > self.max_size:
            raise MessageTooLarge(len(data), self.max_size)
        return data

    def loads(self, data: bytes) -> dict[str, Any]:
        """Deserialise a message; raise MessageDecodeError if it cannot be read."""
        payload = data[self.random_prefix_length :]
        if self._crypter is not None:
            payload = self._crypter.decrypt(payload, self.expiry)
        try:
            message = self._loads(payload)
        except ValueError as exc:
            raise MessageDecodeError(
                f"a message is not valid {self.serializer_format}: {exc}; "
                f"got {len(data)} bytes starting {data[:32]!r}"
            ) from exc
        if not isinstance(message, dict):
            raise MessageDecodeError(
                f"a message must decode to a dict; got {type(message).__name__}"
            )
        return message  # pyright: ignore[reportUnknownVariableType] -- keys and values are whatever was sent


class _Crypter:
    """Fernet encryption with several keys: encrypt with the first, decrypt with any."""

    def __init__(self, keys: list[str | bytes]) -> None:
        try:
            from cryptography.fernet import Fernet, MultiFernet
        except ImportError as exc:
            raise ImportError(
                "symmetric_encryption_keys need the 'cryptography' package; "
                "install typed-channels[crypto]"
            ) from exc
        # channels_redis derives the Fernet key from any string by SHA-256, so
        # the same configured keys interoperate.
        self._multi = MultiFernet(
            [
                Fernet(base64.urlsafe_b64encode(hashlib.sha256(_as_bytes(key)).digest()))
                for key in keys
            ]
        )
        self._key_count = len(keys)

    def encrypt(self, data: bytes) -> bytes:
        return self._multi.encrypt(data)

    def decrypt(self, data: bytes, expiry: float | None) -> bytes:
        from cryptography.fernet import InvalidToken

        ttl = None if expiry is None else int(expiry) + 10
        try:
            return self._multi.decrypt(data, ttl)
        except InvalidToken:
            raise MessageDecodeError(
                f"a message could not be decrypted with any of the {self._key_count} "
                "symmetric_encryption_keys: it was encrypted with another key, was "
                f"altered, or is older than {ttl} seconds"
            ) from None


def _as_bytes(key: str | bytes) -> bytes:
    return key.encode("utf-8") if isinstance(key, str) else key


def _make_crypter(keys: Iterable[str | bytes] | None) -> _Crypter | None:
    if keys is None:
        return None
    if isinstance(keys, str | bytes):
        raise TypeError(
            "symmetric_encryption_keys must be a list of keys, even for one key; "
            f"got {keys!r}"  # no secret leaks: the caller passed it in the wrong shape
        )
    key_list = list(keys)
    if not key_list:
        return None
    for key in key_list:
        # Settings are untyped at run time, whatever the annotation says.
        if not isinstance(cast(object, key), str | bytes) or not key:
            raise TypeError(
                "each symmetric encryption key must be a non-empty str or bytes; "
                f"got a {type(key).__name__}"
            )
    return _Crypter(key_list)
