"""RedisPubSubChannelLayer and channels_redis 4.x's pub/sub layer reach each other.

Upstream runs in its own virtualenv (``make upstream`` builds .venv-upstream)
as a subprocess that follows a script of layer calls (see ``test_interop``
for the core layer's). Both directions, for channels and for groups.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import cryptography
import pytest
from redis.asyncio import Redis

from channels.layers.redis import RedisPubSubChannelLayer
from channels.layers.redis._hosts import consistent_hash
from tests.layers.redis._server import RedisServer, redis_server_available
from tests.layers.redis.conftest import REDIS_URL
from tests.layers.redis.test_interop import (
    OPTION_SETS,
    UPSTREAM_PYTHON,
    Upstream,
    as_plan,
    messages_for,
)

pytestmark = pytest.mark.usefixtures("redis_available")

# Runs inside .venv-upstream: reads a JSON plan from argv, prints one line per result.
# ``$0``, ``$1``... in a step stand for the channels its new_channel steps made.
_DRIVER = r"""
import asyncio, json, sys
try:
    import cryptography
except ImportError:
    sys.path.append(sys.argv[2])
from channels_redis.pubsub import RedisPubSubChannelLayer

def decode(value):
    if isinstance(value, dict):
        if set(value) == {"__bytes__"}:
            return bytes.fromhex(value["__bytes__"])
        return {k: decode(v) for k, v in value.items()}
    return value

def say(value):
    print(value, flush=True)

async def main(plan):
    layer = RedisPubSubChannelLayer(**plan["options"])
    made = {}
    for op, *args in plan["steps"]:
        args = [made.get(a, a) if isinstance(a, str) else a for a in args]
        if op == "new_channel":
            made[f"${len(made)}"] = name = await layer.new_channel()
            say(name)
        elif op == "say":
            say(args[0])
        elif op == "wait":
            sys.stdin.readline()
        elif op == "send":
            await layer.send(args[0], decode(args[1]))
        elif op == "group_add":
            await layer.group_add(args[0], args[1])
        elif op == "group_send":
            await layer.group_send(args[0], decode(args[1]))
        elif op == "receive":
            say(repr(await asyncio.wait_for(layer.receive(args[0]), 10)))
    await layer.flush()

asyncio.run(main(json.loads(sys.argv[1])))
"""


@pytest.fixture
def upstream_python() -> Path:
    if not UPSTREAM_PYTHON.exists():
        pytest.fail(
            f"the interop tests need upstream channels_redis in {UPSTREAM_PYTHON.parent.parent}; "
            "run `make upstream` to create it"
        )
    return UPSTREAM_PYTHON


@pytest.fixture
def prefix() -> str:
    return f"interop{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    client = Redis.from_url(REDIS_URL)  # pyright: ignore[reportUnknownMemberType] -- **kwargs untyped
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
def two_servers() -> Iterator[tuple[RedisServer, RedisServer]]:
    if not redis_server_available():
        pytest.fail("the sharding test needs a redis-server executable on PATH")
    with RedisServer() as first, RedisServer() as second:
        yield first, second


async def start_upstream(
    python: Path, tmp_path: Path, options: dict[str, Any], steps: list[list[Any]]
) -> Upstream:
    plan = json.dumps({"options": options, "steps": steps})
    # -I and a neutral cwd: our own ``channels`` must not shadow upstream's.
    process = await asyncio.create_subprocess_exec(
        str(python),
        "-I",
        "-c",
        _DRIVER,
        plan,
        str(Path(cryptography.__file__).parents[1]),
        cwd=tmp_path,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    return Upstream(process)


async def wait_for_subscribers(clients: Sequence[Redis], name: str, count: int) -> None:
    """Poll (bounded) until ``count`` connections, over all ``clients``, subscribe to ``name``.

    channels_redis sends SUBSCRIBE without waiting for Redis to confirm it, so
    a test sends to an upstream channel only once Redis lists the subscriber.
    """
    for _ in range(1000):
        total = 0
        for client in clients:
            # redis-py leaves the **kwargs of pubsub_numsub unannotated.
            total += (await client.pubsub_numsub(name))[0][1]  # pyright: ignore[reportUnknownMemberType]
        if total == count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{name!r} never reached {count} subscriber(s)")


async def receive(layer: RedisPubSubChannelLayer, channel: str) -> dict[str, Any]:
    return await asyncio.wait_for(layer.receive(channel), 10)


class TestChannels:
    @pytest.mark.parametrize("options", OPTION_SETS)
    async def test_upstream_sends_to_our_channel(
        self, prefix: str, upstream_python: Path, tmp_path: Path, options: dict[str, Any]
    ) -> None:
        layer = RedisPubSubChannelLayer(hosts=[REDIS_URL], prefix=prefix, **options)
        try:
            channel = await layer.new_channel()
            messages = messages_for(options)
            upstream = await start_upstream(
                upstream_python,
                tmp_path,
                {"hosts": [REDIS_URL], "prefix": prefix, **options},
                [["send", channel, as_plan(message)] for message in messages],
            )
            await upstream.finish()
            assert [await receive(layer, channel) for _ in messages] == messages
        finally:
            await layer.close()

    @pytest.mark.parametrize("options", OPTION_SETS)
    async def test_we_send_to_an_upstream_channel(
        self,
        prefix: str,
        upstream_python: Path,
        tmp_path: Path,
        redis: Redis,
        options: dict[str, Any],
    ) -> None:
        layer = RedisPubSubChannelLayer(hosts=[REDIS_URL], prefix=prefix, **options)
        messages = messages_for(options)
        try:
            upstream = await start_upstream(
                upstream_python,
                tmp_path,
                {"hosts": [REDIS_URL], "prefix": prefix, **options},
                [["new_channel"], *(["receive", "$0"] for _ in messages)],
            )
            channel = await upstream.line()
            assert channel.startswith(f"{prefix}specific.")
            await wait_for_subscribers([redis], channel, 1)
            for message in messages:
                await layer.send(channel, message)
            assert await upstream.finish() == [repr(message) for message in messages]
        finally:
            await layer.close()


class TestGroups:
    async def test_upstream_group_send_reaches_our_members(
        self, prefix: str, upstream_python: Path, tmp_path: Path
    ) -> None:
        layer = RedisPubSubChannelLayer(hosts=[REDIS_URL], prefix=prefix)
        try:
            members = [await layer.new_channel() for _ in range(3)]
            for channel in members:
                await layer.group_add("room", channel)
            upstream = await start_upstream(
                upstream_python,
                tmp_path,
                {"hosts": [REDIS_URL], "prefix": prefix},
                [["group_send", "room", {"type": "chat.message", "n": 1}]],
            )
            await upstream.finish()
            for channel in members:
                assert await receive(layer, channel) == {"type": "chat.message", "n": 1}
        finally:
            await layer.close()

    async def test_our_group_send_reaches_upstream_members(
        self, prefix: str, upstream_python: Path, tmp_path: Path, redis: Redis
    ) -> None:
        layer = RedisPubSubChannelLayer(hosts=[REDIS_URL], prefix=prefix)
        try:
            upstream = await start_upstream(
                upstream_python,
                tmp_path,
                {"hosts": [REDIS_URL], "prefix": prefix},
                [
                    ["new_channel"],
                    ["new_channel"],
                    ["group_add", "room", "$0"],
                    ["group_add", "room", "$1"],
                    ["receive", "$0"],
                    ["receive", "$1"],
                ],
            )
            await upstream.line()
            await upstream.line()
            await wait_for_subscribers([redis], f"{prefix}__group__room", 1)
            await layer.group_send("room", {"type": "chat.message", "n": 1})
            assert await upstream.finish() == [repr({"type": "chat.message", "n": 1})] * 2
        finally:
            await layer.close()

    async def test_one_group_spans_both_implementations(
        self, prefix: str, upstream_python: Path, tmp_path: Path, redis: Redis
    ) -> None:
        layer = RedisPubSubChannelLayer(hosts=[REDIS_URL], prefix=prefix)
        try:
            ours = await layer.new_channel()
            await layer.group_add("room", ours)
            upstream = await start_upstream(
                upstream_python,
                tmp_path,
                {"hosts": [REDIS_URL], "prefix": prefix},
                [
                    ["new_channel"],
                    ["group_add", "room", "$0"],
                    ["say", "joined"],
                    ["wait"],
                    ["group_send", "room", {"type": "from.upstream"}],
                    ["receive", "$0"],
                    ["receive", "$0"],
                ],
            )
            await upstream.line()
            assert await upstream.line() == "joined"
            await wait_for_subscribers([redis], f"{prefix}__group__room", 2)
            await layer.group_send("room", {"type": "from.ours"})
            assert await receive(layer, ours) == {"type": "from.ours"}
            upstream.go_on()
            assert await receive(layer, ours) == {"type": "from.upstream"}
            assert await upstream.finish() == [
                repr({"type": "from.ours"}),
                repr({"type": "from.upstream"}),
            ]
            # Upstream has exited; discarding our last member unsubscribes us too.
            await layer.group_discard("room", ours)
            await wait_for_subscribers([redis], f"{prefix}__group__room", 0)
        finally:
            await layer.close()


def spread(names: Iterable[str], *, each: int = 2) -> list[str]:
    """Take names from ``names`` until both of two shards hold ``each`` of them."""
    taken: list[str] = []
    per_shard = [0, 0]
    for name in names:
        shard = consistent_hash(name, 2)
        if per_shard[shard] < each:
            per_shard[shard] += 1
            taken.append(name)
        if min(per_shard) == each:
            return taken
    raise AssertionError(f"the names never covered both shards: {taken!r}")


class TestSharding:
    """Two separate servers: a name subscribed on one never hears a PUBLISH on the other."""

    async def test_upstream_reaches_our_channels_and_groups_on_each_server(
        self,
        prefix: str,
        upstream_python: Path,
        tmp_path: Path,
        two_servers: tuple[RedisServer, RedisServer],
    ) -> None:
        hosts = [server.url for server in two_servers]
        layer = RedisPubSubChannelLayer(hosts=hosts, prefix=prefix)
        try:
            ours = spread([await layer.new_channel() for _ in range(20)])
            groups = spread(f"room{n}" for n in range(100))
            for group, channel in zip(groups, ours, strict=True):
                await layer.group_add(group, channel)
            steps: list[list[Any]] = []
            for group, channel in zip(groups, ours, strict=True):
                steps.append(["send", channel, {"type": "direct"}])
                steps.append(["group_send", group, {"type": "grouped", "group": group}])
            upstream = await start_upstream(
                upstream_python, tmp_path, {"hosts": hosts, "prefix": prefix}, steps
            )
            await upstream.finish()
            for group, channel in zip(groups, ours, strict=True):
                got = [await receive(layer, channel) for _ in range(2)]
                # A channel and its group may sit on different servers: no order between them.
                assert sorted(got, key=repr) == [
                    {"type": "direct"},
                    {"type": "grouped", "group": group},
                ]
        finally:
            await layer.close()

    async def test_we_reach_upstream_channels_and_groups_on_each_server(
        self,
        prefix: str,
        upstream_python: Path,
        tmp_path: Path,
        two_servers: tuple[RedisServer, RedisServer],
    ) -> None:
        hosts = [server.url for server in two_servers]
        groups = spread(f"room{n}" for n in range(100))
        steps: list[list[Any]] = [["new_channel"] for _ in groups]
        steps += [["group_add", group, f"${n}"] for n, group in enumerate(groups)]
        steps += [["receive", f"${n}"] for n in range(len(groups)) for _ in range(2)]
        layer = RedisPubSubChannelLayer(hosts=hosts, prefix=prefix)
        clients = [Redis(host="127.0.0.1", port=server.port) for server in two_servers]
        try:
            upstream = await start_upstream(
                upstream_python, tmp_path, {"hosts": hosts, "prefix": prefix}, steps
            )
            theirs = [await upstream.line() for _ in groups]
            for group, channel in zip(groups, theirs, strict=True):
                await wait_for_subscribers(clients, channel, 1)
                await wait_for_subscribers(clients, f"{prefix}__group__{group}", 1)
            for group, channel in zip(groups, theirs, strict=True):
                await layer.send(channel, {"type": "direct"})
                await layer.group_send(group, {"type": "grouped", "group": group})
            # A channel and its group may sit on different servers: no order between them.
            assert sorted(await upstream.finish()) == sorted(
                line
                for group in groups
                for line in (repr({"type": "direct"}), repr({"type": "grouped", "group": group}))
            )
        finally:
            for client in clients:
                await client.aclose()
            await layer.close()
