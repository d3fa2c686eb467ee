"""Scenarios: BaseChannelLayer's checks, InMemoryChannelLayer, the layer manager, the Redis layers.

The Redis scenarios use the Redis at 127.0.0.1:6379 under a random key prefix,
and import upstream's layers from ``channels_redis`` or ours from
``channels.layers.redis``, whichever this interpreter has.
"""

from __future__ import annotations

import asyncio
import importlib
import re
import string
import sys
import tempfile
import uuid
import warnings
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import MappingProxyType
from typing import Any, cast

from django.test import override_settings

from channels.layers import (
    BaseChannelLayer,
    InMemoryChannelLayer,
    channel_layers,
    get_channel_layer,
)

from ._harness import Observation, raised, scenario

_REDIS_URL = "redis://127.0.0.1:6379"


def _outcome(call: Callable[..., object], *args: object, **kwargs: object) -> Observation:
    """What ``call(*args, **kwargs)`` returned (a bool, str, int or None), or what it raised."""
    try:
        result = call(*args, **kwargs)
    except Exception as exc:
        return raised(exc)
    if result is None or isinstance(result, bool | int | str):
        return result
    return f"<{type(result).__name__}>"


async def _async_outcome(call: Callable[[], Any]) -> Observation:
    # Any: the coroutine's result is described, not used.
    try:
        result = await call()
    except Exception as exc:
        return raised(exc)
    if result is None or isinstance(result, bool | int | str):
        return result
    return f"<{type(result).__name__}>"


# -- BaseChannelLayer ------------------------------------------------------------


def _base(**settings: Any) -> BaseChannelLayer:
    """BaseChannelLayer itself, as upstream code and tests build it to reach its checks."""
    # Any: the keyword arguments go to the constructor unchanged.
    return BaseChannelLayer(**settings)  # type: ignore[abstract]  # instantiable at run time, as upstream


@scenario
async def base_layer_instantiates_and_refuses_what_it_lacks() -> Observation:
    """BaseChannelLayer() itself: its settings, and the methods a layer must provide."""
    layer = _base(expiry=30, capacity=7)
    seen: dict[str, Observation] = {
        "expiry": layer.expiry,
        "capacity": layer.capacity,
        "MAX_NAME_LENGTH": layer.MAX_NAME_LENGTH,
        "get_capacity": layer.get_capacity("any.channel"),
    }
    calls: dict[str, Callable[[], Any]] = {
        "send": lambda: layer.send("c", {"type": "m"}),
        "receive": lambda: layer.receive("c"),
        "new_channel": lambda: layer.new_channel(),
        "flush": lambda: layer.flush(),
        "group_add": lambda: layer.group_add("g", "c"),
        "group_discard": lambda: layer.group_discard("g", "c"),
        "group_send": lambda: layer.group_send("g", {"type": "m"}),
    }
    for name, call in calls.items():
        seen[name] = await _async_outcome(call)
    return seen


_CHANNEL_NAMES: list[object] = [
    "chat",
    "chat.room-1_x",
    "specific.abc!def",
    "specific.abc!",
    "abc!d-e_f.g",
    "x" * 99,
    "x" * 100,
    "",
    "bad name",
    "a!b!c",
    "!abc",
    "semi;colon",
    42,
    None,
    b"bytes",
]

_GROUP_NAMES: list[object] = [
    "room",
    "room.1-a_b",
    "g" * 99,
    "g" * 100,
    "",
    "a!b",
    "bad group",
    3,
    None,
]


@scenario
def base_channel_names() -> Observation:
    """require_valid_channel_name: what passes, what raises, and with receive=True."""
    layer = _base()
    seen: dict[str, Observation] = {}
    for name in _CHANNEL_NAMES:
        seen[repr(name)] = _outcome(layer.require_valid_channel_name, name)
    for name in ["a!b", "a!", "abc", "x.y!z"]:
        seen[f"receive {name!r}"] = _outcome(layer.require_valid_channel_name, name, receive=True)
    return seen


@scenario
def base_group_names() -> Observation:
    """require_valid_group_name: what passes and what raises."""
    layer = _base()
    return {repr(name): _outcome(layer.require_valid_group_name, name) for name in _GROUP_NAMES}


@scenario
def base_non_ascii_and_newline_names() -> Observation:
    """Names upstream's regex lets through although its rule says ASCII only."""
    layer = _base()
    seen: dict[str, Observation] = {}
    for name in ["abc\n", "\u0661\u0662", "a!\u00e9", "a!\u0661"]:
        seen[f"channel {name!r}"] = _outcome(layer.require_valid_channel_name, name)
    for name in ["room\n", "\u0661"]:
        seen[f"group {name!r}"] = _outcome(layer.require_valid_group_name, name)
    return seen


@scenario
def base_name_helpers() -> Observation:
    """match_type_and_length, non_local_name and the deprecated valid_*_name aliases."""
    layer = _base()
    seen: dict[str, Observation] = {
        "match 'abc'": layer.match_type_and_length("abc"),
        "match 99": layer.match_type_and_length("x" * 99),
        "match 100": layer.match_type_and_length("x" * 100),
        "match int": layer.match_type_and_length(5),
        "non_local a.b!c": layer.non_local_name("a.b!c"),
        "non_local abc": layer.non_local_name("abc"),
        "non_local a!": layer.non_local_name("a!"),
        "non_local a!b!c": layer.non_local_name("a!b!c"),
        "valid_channel_names": _outcome(layer.valid_channel_names, ["a", "b!c"]),
        "valid_channel_names empty": _outcome(layer.valid_channel_names, []),
        "valid_channel_names str": _outcome(layer.valid_channel_names, "abc"),
    }
    for method, name in [
        ("valid_channel_name", "abc"),
        ("valid_channel_name", "bad name"),
        ("valid_group_name", "room"),
        ("valid_group_name", "bad!group"),
    ]:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            outcome = _outcome(getattr(layer, method), name)
        seen[f"{method} {name!r}"] = {
            "outcome": outcome,
            "warnings": [warning.category.__name__ for warning in caught],
        }
    return seen


@scenario
def base_compile_capacities() -> Observation:
    """compile_capacities: globs and compiled regexes become (pattern, capacity) pairs."""
    layer = _base()
    compiled = layer.compile_capacities({"http.*": 10, re.compile(r"^ws\.\d+$"): 20})
    probes = ["http.request", "http", "ws.12", "ws.x", "other"]
    return {
        "count": len(compiled),
        "capacities": [capacity for _, capacity in compiled],
        "matches": {
            probe: [bool(pattern.match(probe)) for pattern, _ in compiled] for probe in probes
        },
    }


@scenario
def base_get_capacity_with_channel_capacity() -> Observation:
    """get_capacity when channel_capacity is given (upstream never compiles it)."""
    layer = _base(capacity=5, channel_capacity={"http.*": 10})
    return {name: _outcome(layer.get_capacity, name) for name in ["http.x", "other"]}


# -- InMemoryChannelLayer -------------------------------------------------------------


@scenario
def in_memory_settings() -> Observation:
    """The attributes apps read on a new layer."""
    default = InMemoryChannelLayer()
    custom = InMemoryChannelLayer(expiry=5, group_expiry=50, capacity=2)
    return {
        "default": [default.expiry, default.group_expiry, default.capacity],
        "custom": [custom.expiry, custom.group_expiry, custom.capacity],
        "extensions": sorted(default.extensions),
        "extensions is a list": isinstance(default.extensions, list),
        "get_capacity": custom.get_capacity("any"),
        "hooks": [
            callable(getattr(default, name, None))
            for name in ("_clean_expired", "_remove_from_groups", "flush", "close")
        ],
    }


@scenario
async def in_memory_send_receive() -> Observation:
    """Order per channel, independent channels, and copies on send."""
    layer = InMemoryChannelLayer()
    sent = {"type": "m", "n": 0, "items": [1, {"deep": True}]}
    await layer.send("ordered", sent)
    sent["items"][1]["deep"] = False  # type: ignore[index]  # the sender mutates after send
    for n in range(1, 4):
        await layer.send("ordered", {"type": "m", "n": n})
    await layer.send("other", {"type": "other"})
    received = [await layer.receive("ordered") for _ in range(4)]
    return {
        "received": [message["n"] for message in received],
        "first": received[0],
        "other": await layer.receive("other"),
        "process-specific name": await _async_outcome(lambda: layer.send("a.b!c", {"type": "x"})),
        "receive on it": await layer.receive("a.b!c"),
    }


@scenario
async def in_memory_new_channel() -> Observation:
    """new_channel's name: the prefix, ``.inmemory!`` and 12 random letters."""
    layer = InMemoryChannelLayer()
    names = [await layer.new_channel() for _ in range(20)]
    custom = await layer.new_channel("worker")
    return {
        "distinct": len(set(names)),
        "shape": sorted(
            {
                (name.rpartition("!")[0] + "!", len(name.rpartition("!")[2]))
                for name in [*names, custom]
            }
        ),
        "letters": all(set(name.rpartition("!")[2]) <= set(string.ascii_letters) for name in names),
        "usable": await _async_outcome(lambda: layer.send(custom, {"type": "x"})),
    }


@scenario
async def in_memory_capacity() -> Observation:
    """A full channel raises ChannelFull; group_send skips a full member quietly."""
    layer = InMemoryChannelLayer(capacity=2)
    await layer.send("c", {"type": "m", "n": 1})
    await layer.send("c", {"type": "m", "n": 2})
    full = await _async_outcome(lambda: layer.send("c", {"type": "m", "n": 3}))
    await layer.group_add("g", "c")
    await layer.group_add("g", "free")
    group_send = await _async_outcome(lambda: layer.group_send("g", {"type": "news"}))
    unlimited = InMemoryChannelLayer(capacity=0)
    for n in range(150):
        await unlimited.send("big", {"type": "m", "n": n})
    return {
        "full": full,
        "group_send": group_send,
        "c": [(await layer.receive("c"))["n"] for _ in range(2)],
        "free": await layer.receive("free"),
        "capacity 0 holds": unlimited.channels["big"].qsize(),
    }


@scenario
async def in_memory_channel_capacity() -> Observation:
    """channel_capacity globs (upstream's in-memory layer fails on every send with them)."""
    layer = InMemoryChannelLayer(capacity=5, channel_capacity={"tiny.*": 1})
    return {
        "first": await _async_outcome(lambda: layer.send("tiny.a", {"type": "m"})),
        "second": await _async_outcome(lambda: layer.send("tiny.a", {"type": "m"})),
        "other": await _async_outcome(lambda: layer.send("big", {"type": "m"})),
    }


@scenario
async def in_memory_bad_input() -> Observation:
    """Bad names raise TypeError; group operations check their names."""
    layer = InMemoryChannelLayer()
    calls: dict[str, Callable[[], Any]] = {
        "send bad name": lambda: layer.send("bad name", {"type": "m"}),
        "receive bad name": lambda: layer.receive("bad name"),
        "group_add bad group": lambda: layer.group_add("bad!group", "c"),
        "group_add bad channel": lambda: layer.group_add("g", "bad name"),
        "group_discard bad group": lambda: layer.group_discard("bad group", "c"),
        "group_discard bad channel": lambda: layer.group_discard("g", "bad name"),
        "group_send bad group": lambda: layer.group_send("bad group", {"type": "m"}),
        "group_discard unknown": lambda: layer.group_discard("nobody", "c"),
        "group_send empty group": lambda: layer.group_send("nobody", {"type": "m"}),
    }
    return {name: await _async_outcome(call) for name, call in calls.items()}


@scenario
async def in_memory_message_not_a_dict() -> Observation:
    """A message that is not a mapping: upstream asserts, ours raises an AssertionError too."""
    layer = InMemoryChannelLayer()
    calls: dict[str, Callable[[], Any]] = {
        "send str": lambda: layer.send("c", "text"),  # type: ignore[arg-type]  # the bad input
        "send list": lambda: layer.send("c", ["type", "m"]),  # type: ignore[arg-type]  # the bad input
        "group_send str": lambda: layer.group_send("g", "text"),  # type: ignore[arg-type]  # the bad input
    }
    return {name: await _async_outcome(call) for name, call in calls.items()}


@scenario
async def in_memory_message_any_mapping() -> Observation:
    """A message that is a mapping but not a dict."""
    layer = InMemoryChannelLayer()
    return await _async_outcome(lambda: layer.send("c", MappingProxyType({"type": "m"})))


@scenario
async def in_memory_groups() -> Observation:
    """group_add, group_discard and group_send, and what ``layer.groups`` shows."""
    layer = InMemoryChannelLayer()
    seen: dict[str, Observation] = {"empty": layer.groups == {}, "len empty": len(layer.groups)}
    for channel in ("a", "b", "c"):
        await layer.group_add("room", channel)
    await layer.group_add("room", "a")
    await layer.group_add("lobby", "a")
    await layer.group_discard("room", "b")
    await layer.group_discard("room", "never")
    await layer.group_send("room", {"type": "hello"})
    seen.update(
        {
            "room in groups": "room" in layer.groups,
            "nobody in groups": "nobody" in layer.groups,
            "len room": len(layer.groups["room"]),
            "members": sorted(layer.groups["room"]),
            "member keys": sorted(layer.groups["room"].keys()),
            "a in room": "a" in layer.groups["room"],
            "b in room": "b" in layer.groups["room"],
            "groups": sorted(layer.groups),
            "get missing": len(layer.groups.get("nobody", {})),
            "get missing list": len(layer.groups.get("nobody", [])),
            "values are floats": all(
                isinstance(joined, float)
                for members in layer.groups.values()
                for joined in members.values()
            ),
            "missing group": _outcome(lambda: layer.groups["nobody"]),
            "a got": await layer.receive("a"),
            "c got": await layer.receive("c"),
        }
    )
    await layer.group_discard("room", "a")
    await layer.group_discard("room", "c")
    await layer.group_discard("lobby", "a")
    seen["after discarding all"] = layer.groups == {}
    seen["room after"] = "room" in layer.groups
    return seen


@scenario
async def in_memory_channels_mapping() -> Observation:
    """What ``layer.channels`` shows: channels with messages or a waiting receiver."""
    layer = InMemoryChannelLayer(capacity=3)
    seen: dict[str, Observation] = {"empty": list(layer.channels)}
    await layer.send("a", {"type": "m"})
    await layer.send("a", {"type": "m"})
    await layer.send("b", {"type": "m"})
    seen.update(
        {
            "after sends": sorted(layer.channels),
            "keys": sorted(layer.channels.keys()),
            "len": len(layer.channels),
            "a in": "a" in layer.channels,
            "a qsize": layer.channels["a"].qsize(),
            "a empty": layer.channels["a"].empty(),
            "a full": layer.channels["a"].full(),
            "a maxsize": layer.channels["a"].maxsize,
            "missing": _outcome(lambda: layer.channels["nope"]),
        }
    )
    await layer.receive("b")
    seen["after receiving b"] = sorted(layer.channels)
    waiting = asyncio.create_task(layer.receive("waiting"))
    await asyncio.sleep(0)
    seen["with a waiting receiver"] = sorted(layer.channels)
    seen["waiting qsize"] = layer.channels["waiting"].qsize()
    waiting.cancel()
    try:
        await waiting
    except asyncio.CancelledError:
        seen["cancelled"] = True
    seen["after cancelling"] = sorted(layer.channels)
    await layer.group_add("g", "member")
    await layer.group_send("g", {"type": "m"})
    seen["member with a message"] = "member" in layer.channels
    await layer.receive("member")
    seen["member received"] = "member" in layer.channels
    return seen


@scenario
async def in_memory_flush_and_close() -> Observation:
    """flush drops messages and groups; the layer works afterwards; close returns None."""
    layer = InMemoryChannelLayer()
    await layer.send("c", {"type": "old"})
    await layer.group_add("g", "c")
    seen: dict[str, Observation] = {
        "flush returns": await _async_outcome(layer.flush),
        "groups": layer.groups == {},
        "channels": list(layer.channels),
    }
    await layer.group_send("g", {"type": "to-nobody"})
    await layer.send("c", {"type": "new"})
    seen["received"] = await layer.receive("c")
    seen["close returns"] = await _async_outcome(layer.close)
    await layer.send("c", {"type": "after-close"})
    seen["after close"] = await layer.receive("c")
    return seen


@scenario
async def in_memory_expiry_hooks() -> Observation:
    """_clean_expired drops expired messages (and their channel's memberships)."""
    # A negative expiry puts every deadline in the past: no waiting needed.
    layer = InMemoryChannelLayer(expiry=-1)
    await layer.group_add("g", "dead")
    await layer.group_add("g", "alive")
    await layer.send("dead", {"type": "unread"})
    cleaned = _outcome(layer._clean_expired)  # pyright: ignore[reportPrivateUsage]  # upstream's hook
    return {
        "returns": cleaned,
        "members of g": sorted(layer.groups.get("g", {})),
        "channels": list(layer.channels),
    }


@scenario
async def in_memory_group_expiry() -> Observation:
    """A membership older than group_expiry lapses; the group's members are then none."""
    layer = InMemoryChannelLayer(group_expiry=-10)
    await layer.group_add("g", "c")
    layer._clean_expired()  # pyright: ignore[reportPrivateUsage]  # upstream's hook, which libraries call
    await layer.group_send("g", {"type": "to-nobody"})
    await layer.send("c", {"type": "direct"})
    return {
        "members of g": len(layer.groups.get("g", {})),
        "received": await layer.receive("c"),
    }


@scenario
async def in_memory_empty_group_after_expiry() -> Observation:
    """Whether a group whose last member lapsed is still a key of ``layer.groups``."""
    layer = InMemoryChannelLayer(group_expiry=-10)
    await layer.group_add("g", "c")
    layer._clean_expired()  # pyright: ignore[reportPrivateUsage]  # upstream's hook, which libraries call
    return {"g in groups": "g" in layer.groups}


@scenario
async def in_memory_send_drops_expired_messages() -> Observation:
    """Upstream's own test: after a send elsewhere, does an expired channel still count?"""
    layer = InMemoryChannelLayer(expiry=-1)
    await layer.send("expired", {"type": "m"})
    layer_two = InMemoryChannelLayer()
    await layer_two.send("kept", {"type": "m"})
    return {"expired layer": len(layer.channels), "other layer": len(layer_two.channels)}


@scenario
async def in_memory_remove_from_groups() -> Observation:
    """_remove_from_groups drops a channel from every group, and nothing else."""
    layer = InMemoryChannelLayer()
    for group in ("a", "b"):
        await layer.group_add(group, "leaving")
        await layer.group_add(group, "staying")
    removed = _outcome(layer._remove_from_groups, "leaving")  # pyright: ignore[reportPrivateUsage]  # upstream's hook
    layer._remove_from_groups("never-joined")  # pyright: ignore[reportPrivateUsage]  # upstream's hook, which libraries call
    return {
        "returns": removed,
        "groups": {group: sorted(members) for group, members in layer.groups.items()},
    }


@scenario
async def in_memory_subclass_private_names() -> Observation:
    """A subclass with its own ``_groups``, ``_channels``... still works."""

    class Mine(InMemoryChannelLayer):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self._groups = "mine"
            self._channels = "mine"
            self._expire = "mine"
            self._reset = "mine"
            self._clock = "mine"

        def own(self) -> list[str]:
            return [self._groups, self._channels, self._expire]

    layer = Mine(capacity=5)
    await layer.group_add("g", "a")
    await layer.group_send("g", {"type": "m"})
    await layer.send("b", {"type": "direct"})
    received = [await layer.receive("a"), await layer.receive("b")]
    await layer.flush()
    return {"received": received, "own": layer.own()}


# -- the manager -----------------------------------------------------------------------

_IN_MEMORY = "channels.layers.InMemoryChannelLayer"


@scenario
def manager_lookup() -> Observation:
    """get_channel_layer: the cached default, an unknown alias, set()."""
    default = get_channel_layer()
    replacement = InMemoryChannelLayer()
    old = channel_layers.set("default", replacement)
    try:
        swapped = get_channel_layer() is replacement
    finally:
        channel_layers.set("default", old)  # type: ignore[arg-type]  # the layer it replaced
    return {
        "default": type(default).__name__,
        "cached": get_channel_layer() is default,
        "unknown": get_channel_layer("nope") is None,
        "unknown in manager": "nope" in channel_layers,
        "default in manager": "default" in channel_layers,
        "unknown item": _outcome(lambda: channel_layers["nope"]),
        "set returned the old": old is default,
        "swapped": swapped,
        "restored": get_channel_layer() is default,
    }


@scenario
def manager_settings() -> Observation:
    """CONFIG and TEST_CONFIG reach the backend; override_settings drops cached layers."""
    before = get_channel_layer()
    config = {
        "default": {
            "BACKEND": _IN_MEMORY,
            "CONFIG": {"capacity": 7},
            "TEST_CONFIG": {"expiry": 3},
        },
        "plain": {"BACKEND": _IN_MEMORY},
    }
    with override_settings(CHANNEL_LAYERS=config):
        inside = get_channel_layer()
        test_layer = channel_layers.make_test_backend("default")
        seen: dict[str, Observation] = {
            "new layer inside": inside is not before,
            "capacity": getattr(inside, "capacity", None),
            "test backend": type(test_layer).__name__,
            "test expiry": getattr(test_layer, "expiry", None),
            "test backend is not cached": test_layer is not get_channel_layer(),
            "no TEST_CONFIG": _outcome(lambda: channel_layers.make_test_backend("plain")),
            "make_backend is new": channel_layers.make_backend("default") is not inside,
        }
    after = get_channel_layer()
    seen["new layer after"] = after is not inside and after is not before
    return seen


def _backend_outcome(entry: dict[str, object]) -> Observation:
    with override_settings(CHANNEL_LAYERS={"default": entry}):
        return _outcome(lambda: channel_layers.make_backend("default"))


@scenario
def manager_bad_settings() -> Observation:
    """What a wrong CHANNEL_LAYERS entry raises, and what BACKEND may name."""
    return {
        "no BACKEND": _backend_outcome({"CONFIG": {}}),
        "ROUTING": _backend_outcome({"BACKEND": _IN_MEMORY, "ROUTING": "x.routing"}),
        "no module": _backend_outcome({"BACKEND": "nosuch.layers.Layer"}),
        "no class": _backend_outcome({"BACKEND": "channels.layers.NoSuchLayer"}),
        "not dotted": _backend_outcome({"BACKEND": "InMemoryChannelLayer"}),
        "CONFIG not a dict": _backend_outcome({"BACKEND": _IN_MEMORY, "CONFIG": ["capacity"]}),
        "unknown CONFIG key": _backend_outcome({"BACKEND": _IN_MEMORY, "CONFIG": {"nope": 1}}),
        "any callable": _backend_outcome({"BACKEND": "collections.OrderedDict"}),
    }


@scenario
def manager_backend_module_fails_to_import() -> Observation:
    """A BACKEND module that exists but raises ImportError while importing."""
    with tempfile.TemporaryDirectory() as scratch:
        name = f"compat_broken_{uuid.uuid4().hex[:8]}"
        Path(scratch, f"{name}.py").write_text("import a_module_that_is_not_installed\n")
        sys.path.insert(0, scratch)
        try:
            return _backend_outcome({"BACKEND": f"{name}.Layer"})
        finally:
            sys.path.remove(scratch)


# -- the Redis layers -----------------------------------------------------------------------


def _redis_layer_classes() -> tuple[type[Any], type[Any]]:
    """(RedisChannelLayer, RedisPubSubChannelLayer): channels_redis's or ours."""
    # type[Any]: the two sides' classes share no importable base.
    try:
        core = importlib.import_module("channels_redis.core")
        pubsub = importlib.import_module("channels_redis.pubsub")
    except ImportError:
        ours = importlib.import_module("channels.layers.redis")
        return ours.RedisChannelLayer, ours.RedisPubSubChannelLayer
    return core.RedisChannelLayer, pubsub.RedisPubSubChannelLayer


def _jsonable(value: object) -> Observation:
    """A received message as JSON-able data: bytes become their repr."""
    if isinstance(value, dict):
        items = cast("dict[object, object]", value)
        return {str(key): _jsonable(item) for key, item in items.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in cast("list[object] | tuple[object, ...]", value)]
    if isinstance(value, bytes):
        return repr(value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return f"<{type(value).__name__}>"


def _prefix() -> str:
    return f"compat{uuid.uuid4().hex[:10]}"


async def _release(layer: Any) -> None:
    """Flush the layer's keys and close its connections, however this side spells it."""
    # Any: either side's layer.
    await layer.flush()
    for name in ("close_pools", "close"):
        method = getattr(layer, name, None)
        if method is not None:
            await method()
            return


async def _release_pubsub(layer: Any) -> None:
    """Flush the layer and close its connections (upstream's flush closes them)."""
    # Any: either side's layer.
    await layer.flush()
    close: Callable[[], Awaitable[None]] | None = getattr(layer, "close", None)
    if close is not None:
        await close()


@scenario
async def redis_send_receive() -> Observation:
    """RedisChannelLayer: order on a normal channel, a process-specific channel, new_channel."""
    layer_class, _ = _redis_layer_classes()
    layer = layer_class(hosts=[_REDIS_URL], prefix=_prefix())
    try:
        for n in range(3):
            await layer.send("compat.normal", {"type": "m", "n": n, "data": [1, "two", None]})
        specific = await layer.new_channel()
        custom = await layer.new_channel("worker")
        await layer.send(specific, {"type": "specific", "bytes": b"\x00\xff"})
        name, _, suffix = specific.rpartition("!")
        return {
            "received": [_jsonable(await layer.receive("compat.normal")) for _ in range(3)],
            "specific": _jsonable(await layer.receive(specific)),
            "new_channel prefix": name.startswith("specific.") and name.count(".") == 1,
            "new_channel lengths": [len(name.partition(".")[2]), len(suffix)],
            "custom prefix": custom.startswith("worker."),
            "distinct": specific != await layer.new_channel(),
            "extensions": sorted(layer.extensions),
        }
    finally:
        await _release(layer)


@scenario
async def redis_groups_and_capacity() -> Observation:
    """RedisChannelLayer: group_send reaches members, ChannelFull, full members skipped."""
    layer_class, _ = _redis_layer_classes()
    layer = layer_class(hosts=[_REDIS_URL], prefix=_prefix(), capacity=2)
    try:
        one, two = await layer.new_channel(), await layer.new_channel()
        await layer.group_add("compat-room", one)
        await layer.group_add("compat-room", two)
        await layer.group_send("compat-room", {"type": "hello"})
        got = [await layer.receive(one), await layer.receive(two)]
        await layer.group_discard("compat-room", two)
        await layer.group_send("compat-room", {"type": "after-discard"})
        got.append(await layer.receive(one))
        await layer.send("compat.full", {"type": "m"})
        await layer.send("compat.full", {"type": "m"})
        full = await _async_outcome(lambda: layer.send("compat.full", {"type": "m"}))
        await layer.group_add("compat-full", "compat.full")
        skipped = await _async_outcome(lambda: layer.group_send("compat-full", {"type": "x"}))
        return {
            "received": got,
            "full": full,
            "group_send to a full member": skipped,
            "bad channel": await _async_outcome(lambda: layer.send("bad name", {"type": "m"})),
            "bad group": await _async_outcome(lambda: layer.group_add("bad group", one)),
        }
    finally:
        await _release(layer)


@scenario
async def redis_message_not_a_dict() -> Observation:
    """RedisChannelLayer given a message that is not a dict (upstream asserts)."""
    layer_class, _ = _redis_layer_classes()
    layer = layer_class(hosts=[_REDIS_URL], prefix=_prefix())
    try:
        return {"send str": await _async_outcome(lambda: layer.send("compat.c", "text"))}
    finally:
        await _release(layer)


@scenario
async def redis_flush() -> Observation:
    """RedisChannelLayer.flush drops queued messages and groups; the layer works on."""
    layer_class, _ = _redis_layer_classes()
    layer = layer_class(hosts=[_REDIS_URL], prefix=_prefix())
    try:
        channel = await layer.new_channel()
        await layer.send("compat.flushed", {"type": "old"})
        await layer.group_add("compat-flushed", channel)
        await layer.flush()
        await layer.group_send("compat-flushed", {"type": "to-nobody"})
        await layer.send("compat.flushed", {"type": "new"})
        await layer.send(channel, {"type": "direct"})
        return {
            "normal": await layer.receive("compat.flushed"),
            "specific": await layer.receive(channel),
        }
    finally:
        await _release(layer)


@scenario
async def redis_pubsub_basics() -> Observation:
    """RedisPubSubChannelLayer: send and receive on a new channel, groups, flush."""
    _, layer_class = _redis_layer_classes()
    layer = layer_class(hosts=[_REDIS_URL], prefix=_prefix())
    try:
        one, two = await layer.new_channel(), await layer.new_channel()
        await layer.send(one, {"type": "direct", "n": 1})
        got = [await layer.receive(one)]
        await layer.group_add("compat-room", one)
        await layer.group_add("compat-room", two)
        await layer.group_send("compat-room", {"type": "hello"})
        got += [await layer.receive(one), await layer.receive(two)]
        await layer.group_discard("compat-room", two)
        await layer.group_send("compat-room", {"type": "after-discard"})
        await layer.send(two, {"type": "direct-two"})
        got += [await layer.receive(one), await layer.receive(two)]
        return {"received": got, "distinct": one != two, "extensions": sorted(layer.extensions)}
    finally:
        await _release_pubsub(layer)


@scenario
async def redis_pubsub_new_channel_name() -> Observation:
    """RedisPubSubChannelLayer.new_channel's name (upstream: ``<prefix>specific.<hex>``)."""
    _, layer_class = _redis_layer_classes()
    layer = layer_class(hosts=[_REDIS_URL], prefix="compat")
    try:
        name = await layer.new_channel()
        return {"starts": name[: name.index(".") + 1], "bang": "!" in name}
    finally:
        await _release_pubsub(layer)
