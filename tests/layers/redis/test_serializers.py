"""channels.layers.redis.serializers: the registry of formats, as channels_redis documents it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import msgpack
import pytest

from channels.layers.redis import RedisChannelLayer, RedisPubSubChannelLayer, serializers
from channels.layers.redis._serializers import Serializer, check_size, outgoing, received
from channels.layers.redis.serializers import (
    BaseMessageSerializer,
    JSONSerializer,
    MessageDecodeError,
    MsgPackSerializer,
    SerializerDoesNotExist,
    SerializersRegistry,
    registry,
)
from tests.layers.redis.conftest import LayerMaker


class RecordingSerializer:
    """A serializer that is no BaseMessageSerializer: serialize/deserialize and keywords."""

    def __init__(self, **options: object) -> None:
        self.options = options

    def serialize(self, message: dict[str, Any]) -> bytes:
        return b"R" + json.dumps(message, sort_keys=True).encode()

    def deserialize(self, message: bytes) -> Any:  # Any: what json.loads returns
        return json.loads(message[1:])


class ReversingSerializer(BaseMessageSerializer):
    """A subclass that writes only as_bytes/from_bytes: reversed JSON."""

    def as_bytes(self, message: dict[str, Any], *args: Any, **kwargs: Any) -> bytes:
        return json.dumps(message).encode()[::-1]

    def from_bytes(self, message: bytes, *args: Any, **kwargs: Any) -> Any:
        return json.loads(message[::-1])


@pytest.fixture
def formats() -> Iterator[SerializersRegistry]:
    """The shared registry, put back as it was after the test."""
    saved = dict(registry._registry)  # pyright: ignore[reportPrivateUsage]
    try:
        yield registry
    finally:
        registry._registry.clear()  # pyright: ignore[reportPrivateUsage]
        registry._registry.update(saved)  # pyright: ignore[reportPrivateUsage]


class TestPublicSurface:
    def test_names_channels_redis_documents(self) -> None:
        assert {
            "registry",
            "SerializersRegistry",
            "BaseMessageSerializer",
            "JSONSerializer",
            "MsgPackSerializer",
            "SerializerDoesNotExist",
        } <= set(serializers.__all__)
        for name in serializers.__all__:
            assert hasattr(serializers, name)

    def test_base_class_has_a_plain_metaclass(self) -> None:
        # Users subclass it, possibly with a metaclass of their own.
        assert type(BaseMessageSerializer) is type

    def test_stock_formats_are_registered(self) -> None:
        assert isinstance(registry, SerializersRegistry)
        assert isinstance(registry.get_serializer("msgpack"), MsgPackSerializer)
        assert isinstance(registry.get_serializer("json"), JSONSerializer)


class TestRegistry:
    def test_a_class_with_serialize_and_deserialize_gets_the_layers_keywords(
        self, formats: SerializersRegistry
    ) -> None:
        formats.register_serializer("recording", RecordingSerializer)
        made = formats.get_serializer("recording", expiry=5, random_prefix_length=3)
        assert isinstance(made, RecordingSerializer)
        assert made.options == {"expiry": 5, "random_prefix_length": 3}

    def test_registering_again_replaces(self, formats: SerializersRegistry) -> None:
        formats.register_serializer("json", ReversingSerializer)
        assert isinstance(formats.get_serializer("json"), ReversingSerializer)

    def test_unknown_format_names_the_registered_ones(self, formats: SerializersRegistry) -> None:
        formats.register_serializer("recording", RecordingSerializer)
        with pytest.raises(SerializerDoesNotExist) as info:
            formats.get_serializer("pickle")
        assert str(info.value) == (
            "serializer_format must be one of the registered formats "
            "['json', 'msgpack', 'recording']; got 'pickle' (register it with "
            "channels.layers.redis.serializers.registry.register_serializer)"
        )
        # channels_redis raises a KeyError; a bad setting is a ValueError here too.
        assert isinstance(info.value, KeyError)
        assert isinstance(info.value, ValueError)
        assert info.value.format == "pickle"

    @pytest.mark.parametrize(
        "candidate",
        [
            pytest.param(RecordingSerializer(), id="an-instance"),
            pytest.param(dict, id="no-serialize"),
            pytest.param(json.dumps, id="a-function"),
        ],
    )
    def test_refuses_what_is_not_a_serializer_class(
        self, formats: SerializersRegistry, candidate: Any
    ) -> None:
        with pytest.raises(TypeError, match="must be a class with serialize") as info:
            formats.register_serializer("bad", candidate)
        assert isinstance(info.value, AssertionError)  # channels_redis asserts
        assert "bad" not in formats._registry  # pyright: ignore[reportPrivateUsage]

    def test_refuses_a_format_that_is_not_a_str(self, formats: SerializersRegistry) -> None:
        with pytest.raises(TypeError, match="format must be a str; got 42"):
            formats.register_serializer(42, RecordingSerializer)  # type: ignore[arg-type]  # the wrong type is the test


class TestBaseMessageSerializer:
    def test_stock_formats_write_channels_redis_bytes(self) -> None:
        message = {"type": "t", "data": b"\x00\xff", "n": [1, 2.5, None]}
        assert MsgPackSerializer().serialize(message) == msgpack.packb(message)
        text = {"type": "t", "n": [1, 2.5, None]}
        assert JSONSerializer().serialize(text) == json.dumps(text).encode()

    def test_random_prefix_comes_first_and_is_dropped(self) -> None:
        serializer = MsgPackSerializer(random_prefix_length=12)
        data = serializer.serialize({"type": "t"})
        assert data[12:] == msgpack.packb({"type": "t"})
        assert data != serializer.serialize({"type": "t"})
        assert serializer.deserialize(data) == {"type": "t"}

    def test_a_subclass_writes_only_as_bytes_and_from_bytes(self) -> None:
        serializer = ReversingSerializer(symmetric_encryption_keys=["k"], random_prefix_length=4)
        data = serializer.serialize({"type": "t"})
        assert b"type" not in data
        assert serializer.deserialize(data) == {"type": "t"}

    def test_encryption_uses_any_key_to_read(self) -> None:
        old = MsgPackSerializer(symmetric_encryption_keys=["old"])
        rotating = MsgPackSerializer(symmetric_encryption_keys=["new", "old"])
        assert rotating.deserialize(old.serialize({"type": "t"})) == {"type": "t"}
        with pytest.raises(MessageDecodeError, match="any of the 1 symmetric_encryption_keys"):
            old.deserialize(rotating.serialize({"type": "t"}))

    def test_undecodable_bytes(self) -> None:
        with pytest.raises(MessageDecodeError, match="could not be decoded by JSONSerializer"):
            JSONSerializer().deserialize(b"{not json")

    def test_the_base_alone_cannot_encode(self) -> None:
        with pytest.raises(NotImplementedError, match="must implement as_bytes"):
            BaseMessageSerializer().serialize({"type": "t"})
        with pytest.raises(NotImplementedError, match="must implement from_bytes"):
            BaseMessageSerializer().deserialize(b"")

    @pytest.mark.parametrize(
        ("options", "error", "match"),
        [
            pytest.param({"random_prefix_length": -1}, ValueError, ">= 0", id="negative"),
            pytest.param({"random_prefix_length": "12"}, TypeError, "an int", id="str-length"),
            pytest.param(
                {"symmetric_encryption_keys": "key"}, TypeError, "a list of keys", id="keys-str"
            ),
            pytest.param(
                {"symmetric_encryption_keys": [""]}, TypeError, "non-empty str", id="empty-key"
            ),
        ],
    )
    def test_bad_options(self, options: Any, error: type[Exception], match: str) -> None:
        with pytest.raises(error, match=match):
            MsgPackSerializer(**options)


class TestLayerChecks:
    def test_outgoing_refuses_the_reserved_key(self) -> None:
        with pytest.raises(ValueError, match="reserved key '__asgi_channel__'") as info:
            outgoing({"type": "t", "__asgi_channel__": "x"})
        assert isinstance(info.value, AssertionError)

    def test_a_message_must_decode_to_a_dict(self) -> None:
        with pytest.raises(MessageDecodeError, match="must decode to a dict; got list"):
            received(Serializer("json").inner.deserialize(b"[1, 2]"))

    def test_size_limit(self) -> None:
        with pytest.raises(Exception, match="the limit is 10 bytes"):
            check_size(Serializer().inner.serialize({"type": "x" * 20}), 10)


class TestLayersUseTheRegistry:
    async def test_core_layer_sends_with_a_registered_format(
        self, formats: SerializersRegistry, make_layer: LayerMaker
    ) -> None:
        formats.register_serializer("recording", RecordingSerializer)
        layer = make_layer(serializer_format="recording")
        reader = make_layer(serializer_format="recording")
        channel = await reader.new_channel()
        await layer.send(channel, {"type": "t", "n": 1})
        await layer.send("plain", {"type": "t", "n": 2})
        assert await reader.receive(channel) == {"type": "t", "n": 1}
        assert await reader.receive("plain") == {"type": "t", "n": 2}
        await layer.close()
        await reader.close()

    async def test_core_layer_passes_its_keywords(self, formats: SerializersRegistry) -> None:
        formats.register_serializer("recording", RecordingSerializer)
        seen: list[dict[str, object]] = []

        class Spy(RecordingSerializer):
            def __init__(self, **options: object) -> None:
                super().__init__(**options)
                seen.append(options)

        formats.register_serializer("spy", Spy)
        RedisChannelLayer(serializer_format="spy", expiry=7, random_prefix_length=3)
        RedisPubSubChannelLayer(serializer_format="spy")
        assert seen[0] == {
            "symmetric_encryption_keys": None,
            "random_prefix_length": 3,
            "expiry": 7,
        }
        assert seen[1] == {"symmetric_encryption_keys": None}

    @pytest.mark.parametrize("layer_class", [RedisChannelLayer, RedisPubSubChannelLayer])
    def test_unknown_format(self, layer_class: type[Any]) -> None:
        with pytest.raises(SerializerDoesNotExist, match="got 'yaml'"):
            layer_class(serializer_format="yaml")
