"""Subclasses of the Redis layers: their own ``_names``, and overridden serialisation.

The layers keep their state and helpers under name-mangled names, so a
subclass that defines the obvious private names (``_state``, ``_client``,
``_serializer``...) for its own purposes does not break them. A subclass may
override ``serialize()`` / ``deserialize()``, as with channels_redis, and
every path that writes or reads a message uses them.
"""

from __future__ import annotations

import asyncio
import uuid
import zlib
from typing import Any

import pytest
import redis

from channels.layers.redis import MessageDecodeError, RedisChannelLayer, RedisPubSubChannelLayer
from tests.layers.redis.conftest import REDIS_URL, LayerMaker
from tests.layers.redis.test_core import wait_until

pytestmark = pytest.mark.usefixtures("redis_available")

_CLASHING_METHODS = (
    "_state",
    "_client",
    "_pool",
    "_run",
    "_read",
    "_deliver",
    "_dispatch",
    "_wake",
    "_shard",
    "_prepare",
    "_errors",
    "_check_message",
    "_close_state",
)


def _refuse(name: str) -> Any:
    # Any: the stand-in takes whatever the layer would have passed.
    def method(self: object, *args: object, **kwargs: object) -> None:
        raise AssertionError(f"the layer called the subclass's {name}")

    return method


def _clashing(base: type[Any]) -> type[Any]:
    """A subclass of ``base`` whose own private names would break an unmangled layer."""

    # type[Any]: the subclass is built at run time from ``base``.
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        base.__init__(self, *args, **kwargs)
        self._states = "mine"
        self._serializer = "mine"
        self._host_errors = "mine"
        self._rotation = "mine"
        self._channel_prefix = "mine"

    namespace: dict[str, object] = {name: _refuse(name) for name in _CLASHING_METHODS}
    namespace["__init__"] = __init__
    return type(f"Clashing{base.__name__}", (base,), namespace)


class TestRedisChannelLayer:
    async def test_a_subclass_with_common_private_names_works(self, prefix: str) -> None:
        layer = _clashing(RedisChannelLayer)(hosts=[REDIS_URL], prefix=prefix, capacity=5)
        try:
            channel = await layer.new_channel()
            await layer.group_add("room", channel)
            await layer.group_send("room", {"type": "hello"})
            await layer.send("plain", {"type": "direct"})
            assert await asyncio.wait_for(layer.receive(channel), 10) == {"type": "hello"}
            assert await asyncio.wait_for(layer.receive("plain"), 10) == {"type": "direct"}
            await layer.group_discard("room", channel)
            await layer.flush()
            assert layer._states == "mine"
        finally:
            await layer.close()

    async def test_blocking_timeout_stays_a_class_knob(self, make_layer: LayerMaker) -> None:
        # Subclasses (and tests) shorten it, so it keeps its plain name.
        assert make_layer()._blocking_timeout == 5.0  # pyright: ignore[reportPrivateUsage]


class TestRedisPubSubChannelLayer:
    async def test_a_subclass_with_common_private_names_works(self) -> None:
        layer = _clashing(RedisPubSubChannelLayer)(
            hosts=[REDIS_URL], prefix=f"test-pubsub-{uuid.uuid4().hex}"
        )
        try:
            channel = await layer.new_channel()
            await layer.group_add("room", channel)
            await layer.group_send("room", {"type": "hello"})
            assert await asyncio.wait_for(layer.receive(channel), 10) == {"type": "hello"}
            await layer.send(channel, {"type": "direct"})
            assert await asyncio.wait_for(layer.receive(channel), 10) == {"type": "direct"}
            await layer.group_discard("room", channel)
            assert layer._channel_prefix == "mine"
        finally:
            await layer.flush()
            await layer.close()


_UUID_TAG = "uuid:"


def _tag_uuids(message: dict[str, Any]) -> dict[str, Any]:
    return {
        key: _UUID_TAG + value.hex if isinstance(value, uuid.UUID) else value
        for key, value in message.items()
    }


def _untag_uuids(message: dict[str, Any]) -> dict[str, Any]:
    return {
        key: uuid.UUID(value.removeprefix(_UUID_TAG))
        if isinstance(value, str) and value.startswith(_UUID_TAG)
        else value
        for key, value in message.items()
    }


class UUIDLayer(RedisChannelLayer):
    """Carries uuid.UUID values, as subclasses of channels_redis's layer do."""

    def serialize(self, message: dict[str, Any]) -> bytes:
        return super().serialize(_tag_uuids(message))

    def deserialize(self, message: bytes) -> dict[str, Any]:
        return _untag_uuids(super().deserialize(message))


class ZlibLayer(UUIDLayer):
    """Bytes that are no longer msgpack: a path that assumed them would break."""

    def serialize(self, message: dict[str, Any]) -> bytes:
        return zlib.compress(super().serialize(message))

    def deserialize(self, message: bytes) -> dict[str, Any]:
        return super().deserialize(zlib.decompress(message))


@pytest.mark.parametrize("layer_class", [UUIDLayer, ZlibLayer])
class TestSerializeOverrides:
    """serialize()/deserialize() overrides take effect on every send and receive path."""

    async def test_send_and_receive(self, prefix: str, layer_class: type[UUIDLayer]) -> None:
        layer = layer_class(hosts=[REDIS_URL], prefix=prefix)
        ident = uuid.uuid4()
        try:
            specific = await layer.new_channel()
            await layer.send(specific, {"type": "t", "id": ident})
            await layer.send("plain", {"type": "t", "id": ident})
            # A process-specific channel goes through the reader; a normal one
            # with a message waiting is popped by its receiver.
            assert await asyncio.wait_for(layer.receive(specific), 10) == {"type": "t", "id": ident}
            assert await asyncio.wait_for(layer.receive("plain"), 10) == {"type": "t", "id": ident}
            waiting = [asyncio.ensure_future(layer.receive("plain")) for _ in range(2)]
            await layer.send("plain", {"type": "t", "id": ident})
            await layer.send("plain", {"type": "t", "id": ident})
            assert (
                await asyncio.wait_for(asyncio.gather(*waiting), 10)
                == [{"type": "t", "id": ident}] * 2
            )
        finally:
            await layer.close()

    @pytest.mark.parametrize("capacity", [{}, {"channel_capacity": {"nothing.*": 5}}])
    async def test_group_send(
        self, prefix: str, layer_class: type[UUIDLayer], capacity: dict[str, Any]
    ) -> None:
        # Without the override, one server and no channel_capacity would pack
        # the copies in a Lua script; the override makes that path step aside.
        layer = layer_class(hosts=[REDIS_URL], prefix=prefix, **capacity)
        ident = uuid.uuid4()
        try:
            members = [await layer.new_channel(), await layer.new_channel(), "plain.member"]
            for member in members:
                await layer.group_add("room", member)
            await layer.group_send("room", {"type": "g", "id": ident})
            for member in members:
                assert await asyncio.wait_for(layer.receive(member), 10) == {
                    "type": "g",
                    "id": ident,
                }
        finally:
            await layer.close()

    async def test_messages_put_back_in_redis(
        self, prefix: str, layer_class: type[UUIDLayer]
    ) -> None:
        layer = layer_class(hosts=[REDIS_URL], prefix=prefix)
        other = layer_class(hosts=[REDIS_URL], prefix=prefix)
        ident = uuid.uuid4()
        try:
            # Received by the reader for a receive that is cancelled: the
            # message goes back to Redis, serialised again, for anyone to take.
            first = [asyncio.ensure_future(layer.receive("plain")) for _ in range(2)]
            await asyncio.sleep(0)
            for receiving in first:
                receiving.cancel()
            await asyncio.wait(first)
            await layer.send("plain", {"type": "t", "id": ident})
            assert await asyncio.wait_for(other.receive("plain"), 10) == {"type": "t", "id": ident}
        finally:
            await layer.close()
            await other.close()


class PickyLayer(RedisChannelLayer):
    """A deserialize() override that raises something other than MessageDecodeError."""

    def deserialize(self, message: bytes) -> dict[str, Any]:
        decoded = super().deserialize(message)
        if decoded.get("bad"):
            raise RuntimeError("refused by the subclass")
        return decoded


class TestDeserializeOverrideFailing:
    @pytest.mark.parametrize("process", [True, False], ids=["process", "normal"])
    async def test_fails_one_receive_with_message_decode_error(
        self, prefix: str, process: bool
    ) -> None:
        layer = PickyLayer(hosts=[REDIS_URL], prefix=prefix)
        try:
            channel = await layer.new_channel() if process else "picky"
            await layer.send(channel, {"type": "t", "bad": True})
            await layer.send(channel, {"type": "t"})
            with pytest.raises(MessageDecodeError, match="RuntimeError: refused by the subclass"):
                await asyncio.wait_for(layer.receive(channel), 10)
            assert await asyncio.wait_for(layer.receive(channel), 10) == {"type": "t"}
        finally:
            await layer.close()


class TestClosePools:
    async def test_close_pools_does_what_close_does(self, prefix: str) -> None:
        name = f"{prefix}-pools"
        layer = RedisChannelLayer(
            hosts=[{"address": REDIS_URL, "client_name": name}], prefix=prefix
        )
        await layer.send("plain", {"type": "t"})
        waiting = asyncio.ensure_future(layer.receive("plain.other"))
        await asyncio.sleep(0)
        assert _connections_named(name) >= 1
        waiting.cancel()
        await asyncio.wait([waiting])

        async def released() -> bool:
            # Redis forgets a closed connection on its next turn: poll, bounded.
            return _connections_named(name) == 0

        await layer.close_pools()
        await wait_until(released, "the connections to close")
        assert await layer.receive("plain") == {"type": "t"}
        await layer.close_pools()
        await wait_until(released, "the connections to close")


def _connections_named(name: str) -> int:
    client = redis.Redis(host="127.0.0.1", port=6379)
    try:
        clients = client.client_list()  # pyright: ignore[reportUnknownMemberType] -- **kwargs untyped
        return sum(1 for entry in clients if entry.get("name") == name)
    finally:
        client.close()
