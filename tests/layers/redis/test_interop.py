"""RedisChannelLayer and upstream channels_redis 4.x exchange messages on one Redis.

Upstream runs in its own virtualenv (``make upstream`` builds .venv-upstream)
as a subprocess that follows a script of layer calls.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any, cast

import cryptography
import pytest

from channels.layers.redis import RedisChannelLayer
from channels.layers.redis._hosts import consistent_hash
from tests.layers.redis.conftest import REDIS_URL, LayerMaker

UPSTREAM_PYTHON = Path(__file__).resolve().parents[3] / ".venv-upstream" / "bin" / "python"

# Runs inside .venv-upstream: reads a JSON plan from argv, prints one line per result.
# .venv-upstream may lack the optional ``cryptography``: then it is borrowed
# from this venv (same interpreter), appended after upstream's own packages.
_DRIVER = r"""
import asyncio, json, sys
try:
    import cryptography
except ImportError:
    sys.path.append(sys.argv[2])
from channels_redis.core import RedisChannelLayer
from channels_redis.utils import _consistent_hash

def decode(value):
    if isinstance(value, dict):
        if set(value) == {"__bytes__"}:
            return bytes.fromhex(value["__bytes__"])
        return {k: decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode(v) for v in value]
    return value

def say(value):
    print(value, flush=True)

async def main(plan):
    layer = RedisChannelLayer(**plan["options"])
    names = {}
    for op, *args in plan["steps"]:
        args = [names.get(a, a) if isinstance(a, str) else a for a in args]
        if op == "new_channel":
            names["$channel"] = await layer.new_channel()
            say(names["$channel"])
        elif op == "wait":
            sys.stdin.readline()
        elif op == "send":
            await layer.send(args[0], decode(args[1]))
        elif op == "group_add":
            await layer.group_add(args[0], args[1])
        elif op == "group_send":
            await layer.group_send(args[0], decode(args[1]))
        elif op == "receive":
            say(repr(await asyncio.wait_for(layer.receive(args[0]), 4)))
        elif op == "hash":
            say(json.dumps([_consistent_hash(v, args[1]) for v in args[0]]))
    await layer.close_pools()

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


class Upstream:
    """A running upstream process following a plan."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    async def line(self) -> str:
        stdout = self.process.stdout
        if stdout is None:
            raise RuntimeError("upstream was started without a stdout pipe")
        line = await asyncio.wait_for(stdout.readline(), 20)
        if not line:
            await self.finish()
            pytest.fail("upstream exited before printing the expected line")
        return line.decode().rstrip("\n")

    def go_on(self) -> None:
        """Release a ``wait`` step."""
        stdin = self.process.stdin
        if stdin is None:
            raise RuntimeError("upstream was started without a stdin pipe")
        stdin.write(b"go\n")

    async def finish(self) -> list[str]:
        stdout, stderr = await asyncio.wait_for(self.process.communicate(), 20)
        if self.process.returncode:
            pytest.fail(f"upstream failed ({self.process.returncode}):\n{stderr.decode()}")
        return stdout.decode().splitlines()


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


MESSAGES: list[dict[str, Any]] = [
    {"type": "chat.message", "text": "héllo", "n": 1},
    {"type": "bin", "data": b"\x00\x01\xff", "nested": {"list": [1, 2.5, None, True]}},
]


def as_plan(message: dict[str, Any]) -> dict[str, Any]:
    """Encode bytes for the JSON plan; the driver decodes them back."""
    return {
        key: {"__bytes__": value.hex()}
        if isinstance(value, bytes)
        else as_plan(cast(dict[str, Any], value))
        if isinstance(value, dict)
        else value
        for key, value in message.items()
    }


OPTION_SETS = [
    pytest.param({}, id="msgpack"),
    pytest.param({"serializer_format": "json"}, id="json"),
    pytest.param({"symmetric_encryption_keys": ["one", "two"]}, id="encrypted"),
]


def messages_for(options: dict[str, Any]) -> list[dict[str, Any]]:
    # JSON cannot carry bytes, in either implementation.
    return MESSAGES[:1] if options.get("serializer_format") == "json" else MESSAGES


class TestNormalChannels:
    @pytest.mark.parametrize("options", OPTION_SETS)
    async def test_ours_to_upstream(
        self,
        make_layer: LayerMaker,
        prefix: str,
        upstream_python: Path,
        tmp_path: Path,
        options: dict[str, Any],
    ) -> None:
        layer = make_layer(**options)
        messages = messages_for(options)
        for message in messages:
            await layer.send("interop", message)
        upstream = await start_upstream(
            upstream_python,
            tmp_path,
            {"hosts": [REDIS_URL], "prefix": prefix, **options},
            [["receive", "interop"] for _ in messages],
        )
        assert await upstream.finish() == [repr(message) for message in messages]
        await layer.close()

    @pytest.mark.parametrize("options", OPTION_SETS)
    async def test_upstream_to_ours(
        self,
        make_layer: LayerMaker,
        prefix: str,
        upstream_python: Path,
        tmp_path: Path,
        options: dict[str, Any],
    ) -> None:
        layer = make_layer(**options)
        messages = messages_for(options)
        upstream = await start_upstream(
            upstream_python,
            tmp_path,
            {"hosts": [REDIS_URL], "prefix": prefix, **options},
            [["send", "interop", as_plan(message)] for message in messages],
        )
        await upstream.finish()
        assert [await layer.receive("interop") for _ in messages] == messages
        await layer.close()


class TestProcessChannelsAndGroups:
    async def test_upstream_process_receives_from_ours(
        self, make_layer: LayerMaker, prefix: str, upstream_python: Path, tmp_path: Path
    ) -> None:
        layer = make_layer()
        upstream = await start_upstream(
            upstream_python,
            tmp_path,
            {"hosts": [REDIS_URL], "prefix": prefix},
            [["new_channel"], ["receive", "$channel"], ["receive", "$channel"]],
        )
        channel = await upstream.line()
        await layer.send(channel, {"type": "direct"})
        await layer.group_add("room", channel)
        await layer.group_add("room", "ours.shared")
        await layer.group_send("room", {"type": "grouped"})
        assert await upstream.finish() == [repr({"type": "direct"}), repr({"type": "grouped"})]
        assert await layer.receive("ours.shared") == {"type": "grouped"}
        await layer.close()

    async def test_our_process_receives_from_upstream(
        self, make_layer: LayerMaker, prefix: str, upstream_python: Path, tmp_path: Path
    ) -> None:
        layer = make_layer()
        channels = [await layer.new_channel(), await layer.new_channel()]
        await layer.group_add("room", channels[0])
        upstream = await start_upstream(
            upstream_python,
            tmp_path,
            {"hosts": [REDIS_URL], "prefix": prefix},
            [
                ["group_add", "room", channels[1]],
                ["group_send", "room", {"type": "grouped"}],
                ["send", channels[0], {"type": "direct"}],
            ],
        )
        await upstream.finish()
        assert await layer.receive(channels[0]) == {"type": "grouped"}
        assert await layer.receive(channels[0]) == {"type": "direct"}
        assert await layer.receive(channels[1]) == {"type": "grouped"}
        await layer.close()

    async def test_capacity_is_shared(
        self, make_layer: LayerMaker, prefix: str, upstream_python: Path, tmp_path: Path
    ) -> None:
        layer = make_layer(capacity=2)
        upstream = await start_upstream(
            upstream_python,
            tmp_path,
            {"hosts": [REDIS_URL], "prefix": prefix, "capacity": 2},
            [["send", "full", {"type": "up"}], ["send", "full", {"type": "up"}]],
        )
        await upstream.finish()
        with pytest.raises(Exception, match="is full") as info:
            await layer.send("full", {"type": "ours"})
        assert type(info.value).__name__ == "ChannelFull"
        await layer.close()


class TestSharding:
    async def test_same_hash_as_upstream(
        self, upstream_python: Path, tmp_path: Path, prefix: str
    ) -> None:
        names = [f"name.{n}" for n in range(200)] + ["specific.abc!", "group-x", "ünï"]
        expected: list[list[int]] = []
        for ring in range(1, 6):
            upstream = await start_upstream(
                upstream_python, tmp_path, {"prefix": prefix}, [["hash", names, ring]]
            )
            expected.append(json.loads((await upstream.finish())[0]))
        assert [[consistent_hash(name, ring) for name in names] for ring in range(1, 6)] == (
            expected
        )

    async def test_sharded_group_send_reaches_upstream(
        self, prefix: str, upstream_python: Path, tmp_path: Path
    ) -> None:
        hosts = [f"{REDIS_URL}/0", f"{REDIS_URL}/1", f"{REDIS_URL}/2"]
        layer = RedisChannelLayer(hosts=hosts, prefix=prefix)
        upstream = await start_upstream(
            upstream_python,
            tmp_path,
            {"hosts": hosts, "prefix": prefix},
            [["new_channel"], ["receive", "$channel"]],
        )
        channel = await upstream.line()
        await layer.group_add("room", channel)
        await layer.group_send("room", {"type": "sharded"})
        assert await upstream.finish() == [repr({"type": "sharded"})]
        await layer.flush()
        await layer.close()

    async def test_upstream_round_robin_sends_reach_ours(
        self, prefix: str, upstream_python: Path, tmp_path: Path
    ) -> None:
        # channels_redis spreads sends to a normal channel over every shard.
        hosts = [f"{REDIS_URL}/0", f"{REDIS_URL}/1", f"{REDIS_URL}/2"]
        layer = RedisChannelLayer(hosts=hosts, prefix=prefix)
        upstream = await start_upstream(
            upstream_python,
            tmp_path,
            {"hosts": hosts, "prefix": prefix},
            [["send", "spread", {"type": "t", "n": n}] for n in range(6)],
        )
        await upstream.finish()
        received = [await layer.receive("spread") for _ in range(6)]
        assert sorted(message["n"] for message in received) == list(range(6))
        await layer.flush()
        await layer.close()


def test_runs_on_this_interpreter() -> None:
    # The driver is run by the upstream venv, never by this interpreter.
    assert sys.executable != str(UPSTREAM_PYTHON)
