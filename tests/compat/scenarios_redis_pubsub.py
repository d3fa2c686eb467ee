"""Scenarios: RedisPubSubChannelLayer's groups and serialisation, against channels_redis's.

They use the Redis at 127.0.0.1:6379 under a random prefix, and import
``channels_redis.pubsub`` or ``channels.layers.redis.pubsub``, whichever this
interpreter has.
"""

from __future__ import annotations

import asyncio
import importlib
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, cast

from ._harness import Observation, raised, scenario

_REDIS_URL = "redis://127.0.0.1:6379"


def _layer_class() -> type[Any]:
    """RedisPubSubChannelLayer: channels_redis's or ours."""
    # type[Any]: the two sides' classes share no importable base.
    try:
        module = importlib.import_module("channels_redis.pubsub")
    except ImportError:
        module = importlib.import_module("channels.layers.redis.pubsub")
    layer_class: type[Any] = module.RedisPubSubChannelLayer
    return layer_class


def _prefix() -> str:
    return f"compat{uuid.uuid4().hex[:10]}"


async def _release(layer: Any) -> None:
    """Flush the layer and close its connections (upstream's flush closes them)."""
    # Any: either side's layer.
    await layer.flush()
    close: Callable[[], Awaitable[None]] | None = getattr(layer, "close", None)
    if close is not None:
        await close()


async def _outcome(call: Callable[[], Awaitable[object]]) -> Observation:
    """None if ``call()`` completed, else what it raised."""
    try:
        await call()
    except Exception as exc:
        return raised(exc)
    return None


async def _next(layer: Any, channel: str) -> Observation:
    """The next message on ``channel``, or "nothing" if none comes within a second."""
    # Any: either side's layer.
    try:
        message: Observation = await asyncio.wait_for(layer.receive(channel), 1)
    except asyncio.TimeoutError:
        return "nothing"
    return message


@scenario
async def group_add_needs_a_channel_this_process_receives() -> Observation:
    """group_add for a channel this process never received: an error, before any Redis call."""
    layer = _layer_class()(hosts=[_REDIS_URL], prefix=_prefix())
    try:
        return await _outcome(lambda: layer.group_add("compat-room", "compat.elsewhere"))
    finally:
        await _release(layer)


@scenario
async def group_send_reaches_local_members_until_discarded() -> Observation:
    """Three local members; one is discarded; a direct probe shows what it still holds."""
    layer = _layer_class()(hosts=[_REDIS_URL], prefix=_prefix())
    try:
        members = [await layer.new_channel() for _ in range(3)]
        for channel in members:
            await layer.group_add("compat-room", channel)
            await layer.group_add("compat-room", channel)
        await layer.group_send("compat-room", {"type": "first", "n": [1, 2]})
        got: list[Observation] = [await _next(layer, channel) for channel in members]
        await layer.group_discard("compat-room", members[0])
        await layer.group_discard("compat-room", "compat.never-added")
        await layer.group_send("compat-room", {"type": "second"})
        await layer.send(members[0], {"type": "probe"})
        got += [await _next(layer, channel) for channel in members]
        for channel in members[1:]:
            await layer.group_discard("compat-room", channel)
        await layer.group_send("compat-room", {"type": "to-nobody"})
        await layer.send(members[1], {"type": "probe"})
        got.append(await _next(layer, members[1]))
        return got
    finally:
        await _release(layer)


@scenario
async def group_is_one_pubsub_channel() -> Observation:
    """The Redis pub/sub channels this process subscribes to for a group: one, by name."""
    from redis.asyncio import Redis

    prefix = _prefix()
    layer = _layer_class()(hosts=[_REDIS_URL], prefix=prefix)
    client = Redis(host="127.0.0.1", port=6379)
    try:
        for _ in range(3):
            await layer.group_add("compat-room", await layer.new_channel())
        names: list[bytes | str] = await client.pubsub_channels(f"{prefix}__*")  # pyright: ignore[reportUnknownMemberType] -- **kwargs untyped
        decoded = [name.decode() if isinstance(name, bytes) else name for name in names]
        return sorted(name.replace(prefix, "<prefix>") for name in decoded)
    finally:
        await client.aclose()
        await _release(layer)


@scenario
async def serialize_override_carries_uuids() -> Observation:
    """A subclass overriding serialize()/deserialize() to carry a UUID, on every path."""
    base = _layer_class()

    # Any: the layer is either side's; the message values are whatever was sent.
    def serialize(self: Any, message: dict[str, Any]) -> bytes:
        tagged = {
            key: {"uuid": value.hex} if isinstance(value, uuid.UUID) else value
            for key, value in message.items()
        }
        data: bytes = base.serialize(self, tagged)
        return data

    def deserialize(self: Any, message: bytes) -> dict[str, Any]:
        decoded: dict[str, Any] = base.deserialize(self, message)
        return {
            key: uuid.UUID(cast("dict[str, str]", value)["uuid"])
            if isinstance(value, dict)
            else value
            for key, value in decoded.items()
        }

    uuid_layer: type[Any] = type(
        "UUIDLayer", (base,), {"serialize": serialize, "deserialize": deserialize}
    )
    ident = uuid.uuid4()
    layer = uuid_layer(hosts=[_REDIS_URL], prefix=_prefix())
    try:
        members = [await layer.new_channel() for _ in range(2)]
        for channel in members:
            await layer.group_add("compat-room", channel)
        await layer.send(members[0], {"type": "direct", "id": ident})
        await layer.group_send("compat-room", {"type": "grouped", "id": ident})
        received = [await layer.receive(members[0])] + [
            await layer.receive(channel) for channel in members
        ]
        return [[message["type"], message["id"] == ident] for message in received]
    finally:
        await _release(layer)


@scenario
async def membership_after_a_cancelled_receive() -> Observation:
    """A member whose only receive was cancelled, receiving again: does the group reach it?"""
    layer = _layer_class()(hosts=[_REDIS_URL], prefix=_prefix())
    try:
        channel = await layer.new_channel()
        await layer.group_add("compat-room", channel)
        cancelled = await _next(layer, channel)
        again = asyncio.ensure_future(layer.receive(channel))
        await asyncio.sleep(0.2)  # let the new receive subscribe again
        await layer.group_send("compat-room", {"type": "grouped"})
        try:
            after: Observation = await asyncio.wait_for(again, 1)
        except asyncio.TimeoutError:
            after = "nothing"
        return {"first receive": cancelled, "after receiving again": after}
    finally:
        await _release(layer)


@scenario
async def names_are_checked() -> Observation:
    """Channel and group names that no layer of Channels accepts."""
    layer = _layer_class()(hosts=[_REDIS_URL], prefix=_prefix())
    try:
        return {
            "send": await _outcome(lambda: layer.send("has space", {"type": "m"})),
            "group_send": await _outcome(lambda: layer.group_send("x" * 200, {"type": "m"})),
        }
    finally:
        await _release(layer)
