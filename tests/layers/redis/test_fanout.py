"""The calls a cluster group_send keeps per group (``_fanout``), checked without a server."""

from __future__ import annotations

import pytest
from redis.crc import key_slot

from channels.layers.redis import _fanout
from channels.layers.redis._errors import HostErrors
from channels.layers.redis._fanout import FanoutPlans
from channels.layers.redis._layout import Layout, Message
from channels.layers.redis._resp import pack_command
from channels.layers.redis._scripts import GROUP_SEND_NAMES, Arg


def _never(data: bytes) -> Message:
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
        calls, packed = FanoutPlans(_layout()).calls("room", MEMBERS, HEAD)
        assert len(calls) == len(packed)
        for (keys, args), data in zip(calls, packed, strict=True):
            assert data == pack_command(
                ("EVALSHA", GROUP_SEND_NAMES.sha, len(keys), *keys, *args), {}
            )

    def test_each_call_holds_one_slot_and_every_member_once_with_its_capacity(self) -> None:
        layout = _layout()
        calls, _ = FanoutPlans(layout).calls("room", MEMBERS, HEAD)
        seen: list[str] = []
        by_key: dict[str, list[str]] = {}
        for keys, args in calls:
            assert len({key_slot(key.encode()) for key in keys}) == 1
            assert list(args[:4]) == HEAD
            at = 4
            for key in keys:
                capacity, count = args[at], args[at + 1]
                channels = [str(name) for name in args[at + 2 : at + 2 + int(count)]]
                assert {layout.key(channel) for channel in channels} == {key}
                assert capacity == layout.capacity(channels[0])
                seen += channels
                by_key[key] = channels
                at += 2 + int(count)
            assert at == len(args)
        assert sorted(seen) == sorted(member.decode() for member in MEMBERS)
        # A process's channels share its key: one copy names them all.
        assert by_key[layout.key("proc.x!1")] == ["proc.x!1", "proc.x!2"]

    def test_kept_while_the_members_stay_and_worked_out_again_when_they_change(self) -> None:
        plans = FanoutPlans(_layout())
        first, _ = plans.calls("room", MEMBERS, HEAD)
        again, _ = plans.calls("room", list(MEMBERS), HEAD)
        assert [keys for keys, _ in again] == [keys for keys, _ in first]
        assert all(a is b for (a, _), (b, _) in zip(again, first, strict=True))
        changed, _ = plans.calls("room", [*MEMBERS, b"late"], HEAD)
        assert any("late" in args for _, args in changed)
        assert not any("late" in args for _, args in first)

    def test_the_least_recently_sent_groups_go_past_the_budget(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(_fanout, "MEMBER_BUDGET", 2 * len(MEMBERS))
        plans = FanoutPlans(_layout())
        kept = {group: plans.calls(group, MEMBERS, HEAD)[0] for group in ("a", "b")}
        plans.calls("a", MEMBERS, HEAD)  # "b" is now the least recent
        plans.calls("c", MEMBERS, HEAD)
        assert plans.calls("a", MEMBERS, HEAD)[0][0][0] is kept["a"][0][0]
        assert plans.calls("b", MEMBERS, HEAD)[0][0][0] is not kept["b"][0][0]
