"""The calls a cluster group_send keeps per group (``_fanout``), checked without a server."""

from __future__ import annotations

import msgpack
import pytest
from redis.crc import key_slot

from channels.layers.redis import _fanout
from channels.layers.redis._errors import HostErrors
from channels.layers.redis._fanout import FanoutPlans
from channels.layers.redis._layout import Layout
from channels.layers.redis._resp import pack_command
from channels.layers.redis._scripts import GROUP_SEND, Arg
from channels.types import ReceivedMessage


def _never(data: bytes) -> ReceivedMessage:
    raise AssertionError("no message is decoded here")


def _layout() -> Layout:
    return Layout(
        prefix="p",
        client_prefix="abc",
        ring_size=1,
        expiry=60,
        host_errors=[HostErrors("cluster")],
        non_local_name=lambda name: name.split("!")[0] + "!" if "!" in name else name,
        capacity=lambda channel: 7 if channel.startswith("small") else 100,
        encode=lambda message: b"",
        decode=_never,
        blocking_timeout=5,
        reconnect_timeout=5,
        cluster=True,
    )


MEMBERS = [
    b"a.1",
    b"small.2",
    b"proc.x!1",
    b"proc.x!2",
    b"proc.y!1",
    *(b"n%d" % n for n in range(50)),
]
HEAD: list[Arg] = [1_700_000_000.5, 1_699_999_940, 61, b"\x82\xa4type\xa1t\xb0__asgi_channel__"]


class TestFanoutPlans:
    def test_the_packed_calls_are_what_redis_py_would_send(self) -> None:
        sends = FanoutPlans(_layout()).make("room", "d", MEMBERS).sends(HEAD)
        assert len(sends.calls) == len(sends.packed) == len(sends.channels)
        for (keys, args), data in zip(sends.calls, sends.packed, strict=True):
            assert data == pack_command(("EVALSHA", GROUP_SEND.sha, len(keys), *keys, *args), {})

    def test_each_call_holds_one_slot_and_capacity_and_every_member_once(self) -> None:
        layout = _layout()
        sends = FanoutPlans(layout).make("room", "d", MEMBERS).sends(HEAD)
        by_key: dict[str, list[str]] = {}
        for (keys, args), channels in zip(sends.calls, sends.channels, strict=True):
            assert len({key_slot(key.encode()) for key in keys}) == 1
            assert list(args[:4]) == HEAD
            capacity, *arrays = args[4:]
            assert len(arrays) == len(keys)
            for key, array, names in zip(keys, arrays, channels, strict=True):
                assert isinstance(array, bytes)
                assert msgpack.unpackb(array) == names
                assert {layout.key(name) for name in names} == {key}
                assert capacity == layout.capacity(names[0])
                by_key[key] = names
        assert sorted(name for names in by_key.values() for name in names) == sorted(
            member.decode() for member in MEMBERS
        )
        # A process's channels share its key: one copy names them all.
        assert by_key[layout.key("proc.x!1")] == ["proc.x!1", "proc.x!2"]

    def test_keys_of_one_slot_with_different_capacities_go_in_separate_calls(self) -> None:
        layout = _layout()
        # Both names fall in one bucket, so one slot; "small." channels hold 7.
        assert layout.shard("a.1") == layout.shard("small.71")
        sends = FanoutPlans(layout).make("room", "d", [b"a.1", b"small.71"]).sends(HEAD)
        assert sorted(
            (args[4], channels)
            for (_, args), channels in zip(sends.calls, sends.channels, strict=True)
        ) == [(7, [["small.71"]]), (100, [["a.1"]])]

    def test_full_keys_are_reported_by_their_channels(self) -> None:
        sends = FanoutPlans(_layout()).make("room", "d", MEMBERS).sends(HEAD)
        process = next(
            (call, keys.index(key))
            for call, (keys, _) in enumerate(sends.calls)
            for key in keys
            if key.endswith("{proc.x!}")
        )
        replies: list[list[int]] = [[] for _ in sends.calls]
        replies[process[0]].append(process[1] + 1)
        assert sends.full(replies) == ["proc.x!1", "proc.x!2"]

    def test_a_plan_is_kept_per_group_with_its_version(self) -> None:
        plans = FanoutPlans(_layout())
        assert plans.kept("room") is None
        plan = plans.make("room", "d1", MEMBERS)
        assert plans.kept("room") is plan
        assert plan.version == "d1"
        assert plans.kept("other") is None
        replaced = plans.make("room", "d2", [*MEMBERS, b"late"])
        assert plans.kept("room") is replaced
        assert any(["late"] in channels for channels in replaced.sends(HEAD).channels)
        assert not any(["late"] in channels for channels in plan.sends(HEAD).channels)

    def test_the_least_recently_sent_groups_go_past_the_budget(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(_fanout, "MEMBER_BUDGET", 2 * len(MEMBERS))
        plans = FanoutPlans(_layout())
        kept = {group: plans.make(group, "d", MEMBERS) for group in ("a", "b")}
        assert plans.kept("a") is kept["a"]  # "b" is now the least recent
        plans.make("c", "d", MEMBERS)
        assert plans.kept("a") is kept["a"]
        assert plans.kept("b") is None
