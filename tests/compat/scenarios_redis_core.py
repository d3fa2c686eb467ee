"""Scenarios: channels_redis's public surface on RedisChannelLayer, and its serializer registry.

``serialize()`` / ``deserialize()`` overrides, ``close_pools()``, and the
``serializers`` module (``registry``, ``BaseMessageSerializer``...). Upstream's
come from ``channels_redis``, ours from ``channels.layers.redis``, whichever
this interpreter has; Redis is the one at 127.0.0.1:6379, under a random prefix.
"""

from __future__ import annotations

import functools
import importlib
import json
import uuid
from types import ModuleType
from typing import Any

from ._harness import Observation, jsonable, raised, scenario

_REDIS_URL = "redis://127.0.0.1:6379"


def _modules() -> tuple[ModuleType, ModuleType]:
    """(the module with RedisChannelLayer, the serializers module): channels_redis's or ours."""
    try:
        return (
            importlib.import_module("channels_redis.core"),
            importlib.import_module("channels_redis.serializers"),
        )
    except ImportError:
        return (
            importlib.import_module("channels.layers.redis"),
            importlib.import_module("channels.layers.redis.serializers"),
        )


def _layer(**options: Any) -> Any:
    """A RedisChannelLayer of this side; Any: either side's class, with its keywords."""
    core, _ = _modules()
    return core.RedisChannelLayer(
        hosts=[_REDIS_URL], prefix=f"compat{uuid.uuid4().hex[:10]}", **options
    )


def _uuid_layer_class() -> type[Any]:
    """A subclass that carries uuid.UUID values by overriding serialize/deserialize."""
    # type[Any]: built on either side's class.
    core, _ = _modules()

    def serialize(self: Any, message: dict[str, Any]) -> bytes:
        tagged = {
            key: "uuid:" + value.hex if isinstance(value, uuid.UUID) else value
            for key, value in message.items()
        }
        data: bytes = core.RedisChannelLayer.serialize(self, tagged)
        return data

    def deserialize(self: Any, message: bytes) -> dict[str, Any]:
        decoded: dict[str, Any] = core.RedisChannelLayer.deserialize(self, message)
        return {
            key: uuid.UUID(value[5:])
            if isinstance(value, str) and value.startswith("uuid:")
            else value
            for key, value in decoded.items()
        }

    namespace = {"serialize": serialize, "deserialize": deserialize}
    return type("UUIDLayer", (core.RedisChannelLayer,), namespace)


_ID = uuid.UUID("12345678-1234-5678-1234-567812345678")


@scenario
async def serialize_override_carries_uuids() -> Observation:
    """A subclass's serialize()/deserialize() apply to send, receive and group_send."""
    layer = _uuid_layer_class()(hosts=[_REDIS_URL], prefix=f"compat{uuid.uuid4().hex[:10]}")
    try:
        specific = await layer.new_channel()
        await layer.group_add("compat-room", specific)
        await layer.group_add("compat-room", "compat.member")
        await layer.send(specific, {"type": "direct", "id": _ID})
        await layer.send("compat.normal", {"type": "normal", "id": _ID})
        await layer.group_send("compat-room", {"type": "group", "id": _ID})
        received = [
            await layer.receive(specific),
            await layer.receive("compat.normal"),
            await layer.receive(specific),
            await layer.receive("compat.member"),
        ]
        return [{key: repr(value) for key, value in message.items()} for message in received]
    finally:
        await layer.flush()
        await layer.close_pools()


@scenario
async def layer_serialize_and_deserialize() -> Observation:
    """The layer's own serialize()/deserialize(): msgpack behind the random prefix."""
    import msgpack

    plain = _layer(random_prefix_length=0)
    prefixed = _layer()
    json_layer = _layer(serializer_format="json", random_prefix_length=0)
    message = {"type": "t", "n": [1, 2.5, None, True], "bytes": b"\x00\xff"}
    data = prefixed.serialize(message)
    return {
        "plain is msgpack": plain.serialize(message) == msgpack.packb(message),
        "prefixed length": len(data) - len(msgpack.packb(message)),
        "round trip": jsonable(prefixed.deserialize(data)),
        "json": jsonable(json_layer.serialize({"type": "t", "n": 1})),
        "json back": jsonable(json_layer.deserialize(b'{"type": "t"}')),
    }


@scenario
async def close_pools_then_use_again() -> Observation:
    """close_pools() releases the connections; the layer works on afterwards."""
    layer = _layer()
    try:
        await layer.send("compat.pools", {"type": "before"})
        result = await layer.close_pools()
        await layer.send("compat.pools", {"type": "after"})
        return {
            "close_pools returns": result,
            "received": [await layer.receive("compat.pools") for _ in range(2)],
        }
    finally:
        await layer.flush()
        await layer.close_pools()


@scenario
def unknown_serializer_format() -> Observation:
    """A serializer_format nobody registered."""
    try:
        _layer(serializer_format="compat-nothing")
    except Exception as exc:
        return raised(exc)
    return "built"


@scenario
def serializer_registry() -> Observation:
    """The registry: stock formats, a class of one's own, replacing a format, bad input."""
    _, serializers = _modules()
    registry = serializers.registry
    created: list[dict[str, Any]] = []

    class Custom:
        def __init__(self, **options: Any) -> None:
            created.append(options)

        def serialize(self, message: dict[str, Any]) -> bytes:
            return json.dumps(message, sort_keys=True).encode()

        def deserialize(self, message: bytes) -> Any:  # Any: what json.loads returns
            return json.loads(message)

    def as_bytes(self: object, message: Any, *args: Any, **kwargs: Any) -> bytes:
        return json.dumps(message).encode()[::-1]

    def from_bytes(self: object, message: bytes, *args: Any, **kwargs: Any) -> Any:
        return json.loads(message[::-1])

    # Built with type(): the base is either side's BaseMessageSerializer.
    reversing = type(
        "Reversed",
        (serializers.BaseMessageSerializer,),
        {"as_bytes": as_bytes, "from_bytes": from_bytes},
    )

    def outcome(call: Any) -> Observation:
        try:
            result = call()
        except Exception as exc:
            return raised(exc)
        return type(result).__name__

    registry.register_serializer("compat-custom", Custom)
    custom = registry.get_serializer("compat-custom", expiry=5, symmetric_encryption_keys=None)
    registry.register_serializer("compat-custom", reversing)
    reversed_ = registry.get_serializer("compat-custom", random_prefix_length=2)
    data = reversed_.serialize({"type": "t"})
    return {
        "names": sorted(
            name
            for name in (
                "registry",
                "SerializersRegistry",
                "BaseMessageSerializer",
                "JSONSerializer",
                "MsgPackSerializer",
                "SerializerDoesNotExist",
            )
            if hasattr(serializers, name)
        ),
        "registry class": type(registry).__name__,
        "stock": [
            outcome(functools.partial(registry.get_serializer, name))
            for name in ("json", "msgpack")
        ],
        "custom keywords": created,
        "custom bytes": jsonable(custom.serialize({"type": "t", "a": 1})),
        "replaced": type(reversed_).__name__,
        "replaced round trip": reversed_.deserialize(data),
        "prefix kept": len(data) - len(json.dumps({"type": "t"})),
        "unknown": outcome(lambda: registry.get_serializer("compat-unknown")),
        "not a class": outcome(lambda: registry.register_serializer("compat-bad", Custom())),
        "no methods": outcome(lambda: registry.register_serializer("compat-bad", dict)),
        "encrypted round trip": outcome(
            lambda: serializers.MsgPackSerializer(symmetric_encryption_keys=["k"]).deserialize(
                serializers.MsgPackSerializer(symmetric_encryption_keys=["k"]).serialize(
                    {"type": "t"}
                )
            )
        ),
    }


@scenario
def deserialize_unreadable() -> Observation:
    """deserialize() of bytes that are not a message, or encrypted with another key."""
    layer = _layer(random_prefix_length=0)
    keyed = _layer(symmetric_encryption_keys=["one"])
    other = _layer(symmetric_encryption_keys=["two"])

    def outcome(call: Any) -> Observation:
        try:
            return jsonable(call())
        except Exception as exc:
            return raised(exc)

    return {
        "garbage": outcome(lambda: layer.deserialize(b"\xc1garbage")),
        "other key": outcome(lambda: keyed.deserialize(other.serialize({"type": "t"}))),
    }


@scenario
async def a_send_after_a_cancelled_receive() -> Observation:
    """A receive cancelled while it waits for Redis, then a send: what another process gets."""
    import asyncio

    core, _ = _modules()
    prefix = f"compat{uuid.uuid4().hex[:10]}"
    layer = core.RedisChannelLayer(hosts=[_REDIS_URL], prefix=prefix)
    other = core.RedisChannelLayer(hosts=[_REDIS_URL], prefix=prefix)  # another process
    try:
        await layer.send("compat.cancelled", {"type": "t", "n": 0})
        waiting = asyncio.ensure_future(layer.receive("compat.cancelled"))
        for _ in range(3):
            await asyncio.sleep(0)  # the receive's pop goes out to Redis
        waiting.cancel()
        await layer.send("compat.cancelled", {"type": "t", "n": 1})
        got: list[object] = []
        for _ in range(2):
            try:
                message = await asyncio.wait_for(other.receive("compat.cancelled"), 1)
                got.append(message["n"])
            except asyncio.TimeoutError:
                got.append("nothing within 1 s")
        return {"another process receives": got}
    finally:
        await layer.flush()
        await layer.close_pools()
        await other.close_pools()


@scenario
async def expired_messages_do_not_count_against_capacity() -> Observation:
    """A channel full of expired messages: does send() and group_send() still deliver?"""
    import time

    import redis

    layer = _layer(capacity=1, expiry=60)
    client = redis.Redis(host="127.0.0.1", port=6379)
    # Every message of the key, rescored as if sent two minutes ago.
    age = (
        "for _, m in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do "
        "redis.call('ZADD', KEYS[1], 'XX', ARGV[1], m) end return 1"
    )
    seen: dict[str, Observation] = {}
    try:
        await layer.group_add("room", "compat.aged")
        for way in ("send", "group_send"):
            await layer.send("compat.aged", {"type": "old"})
            client.eval(age, 1, layer.prefix + "compat.aged", time.time() - 120)
            try:
                if way == "send":
                    await layer.send("compat.aged", {"type": "new"})
                else:
                    await layer.group_send("room", {"type": "new"})
                seen[way] = jsonable(await layer.receive("compat.aged"))
            except Exception as exc:
                seen[way] = raised(exc)
        return seen
    finally:
        client.close()
        await layer.flush()
        await layer.close_pools()
