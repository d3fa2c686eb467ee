"""Subclasses of the Redis layers may use any ``_name`` of their own.

The layers keep their state and helpers under name-mangled names, so a
subclass that defines the obvious private names (``_state``, ``_client``,
``_serializer``...) for its own purposes does not break them.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from channels.layers.redis import RedisChannelLayer, RedisPubSubChannelLayer
from tests.layers.redis.conftest import REDIS_URL, LayerMaker

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
