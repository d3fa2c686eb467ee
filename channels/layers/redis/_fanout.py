"""group_send on a Redis Cluster: a group's calls worked out once, reused while its members stay.

A cluster ``group_send`` reads the group's members (one script on the
group's slot), or only their version while they stay the same, then runs
``GROUP_SEND`` once per slot that holds member keys (``_nodes``: one
pipeline per node, every node at once). With the stock codec every copy is
the message packed up to its channel array (the head, sent once per call)
followed by its key's array of channel names.

Everything in those calls but the message and the time (the keys grouped by
slot, each key's capacity and packed channel array, and their RESP bytes)
follows from the member list alone. :class:`FanoutPlans` keeps it per group
as a :class:`Plan`, with the list's version (``_keys.group_version_key``):
while the version stays, Redis sends it alone and the plan is used again;
when a member joins, leaves, refreshes its membership or expires, the group
takes a new version, the list comes and the plan is worked out again.
Plans are kept for the groups sent to most recently, up to
``MEMBER_BUDGET`` members in all.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import msgpack
from redis.crc import key_slot

from channels.layers.redis._layout import Layout
from channels.layers.redis._nodes import Call
from channels.layers.redis._resp import pack_args
from channels.layers.redis._scripts import GROUP_SEND, Arg

__all__ = ["MEMBER_BUDGET", "FanoutPlans", "Plan", "SlotCalls"]

MEMBER_BUDGET: Final = 100_000
"""How many members the kept plans may hold in all (a few hundred bytes each)."""

_EVALSHA: Final = pack_args(("EVALSHA", GROUP_SEND.sha), {})


@dataclass(frozen=True)
class _SlotCall:
    """What one slot's GROUP_SEND call takes from the members, plain and in RESP."""

    keys: list[str]
    channels: list[list[str]]
    """Each key's channels, for the indexes of full keys the call returns."""
    tail: list[Arg]
    """The keys' capacity, then each key's packed array of channels."""
    packed: bytes
    """``len(keys)`` and the keys, in RESP."""
    packed_tail: bytes


class Plan:
    """The GROUP_SEND calls for one member list of a group."""

    __slots__ = ("_calls", "size", "version")

    def __init__(self, layout: Layout, version: str, members: list[bytes]) -> None:
        self.version = version
        """The version of the group that had this member list (see GROUP_MEMBERS_IF_CHANGED)."""
        self.size = len(members)
        by_key: dict[str, list[str]] = {}
        for member in members:
            channel = member.decode("utf-8")
            by_key.setdefault(layout.key(channel), []).append(channel)
        # One call per slot and capacity: the script takes one capacity for its keys.
        by_call: dict[tuple[int, int], list[str]] = {}
        for key, names in by_key.items():
            call = (key_slot(key.encode("utf-8")), layout.capacity(names[0]))
            by_call.setdefault(call, []).append(key)
        cache: dict[tuple[type, Arg], bytes] = {}
        self._calls: list[_SlotCall] = []
        for (_, capacity), keys in by_call.items():
            channels = [by_key[key] for key in keys]
            tail: list[Arg] = [capacity, *(msgpack.packb(names) for names in channels)]
            packed = pack_args([len(keys), *keys], cache)
            self._calls.append(_SlotCall(keys, channels, tail, packed, pack_args(tail, cache)))

    def sends(self, head: Sequence[Arg]) -> SlotCalls:
        """Return the calls that send to the members.

        ``head`` is the calls' first arguments: now, the expiry bound, the
        key TTL and the message packed up to its channel array.
        """
        packed_head = pack_args(head, {})
        count = 3 + len(head)
        return SlotCalls(
            calls=[(call.keys, [*head, *call.tail]) for call in self._calls],
            packed=[
                b"*%d\r\n%b%b%b%b"
                % (
                    count + len(call.keys) + len(call.tail),
                    _EVALSHA,
                    call.packed,
                    packed_head,
                    call.packed_tail,
                )
                for call in self._calls
            ],
            channels=[call.channels for call in self._calls],
        )


@dataclass(frozen=True)
class SlotCalls:
    """One group_send's GROUP_SEND calls, plain and packed, and each one's keys' channels."""

    calls: list[Call]
    packed: list[bytes]
    channels: list[list[list[str]]]

    def full(self, replies: Sequence[Sequence[int]]) -> list[str]:
        """Return the channels of the full keys the calls' ``replies`` name."""
        return [
            name
            for channels, reply in zip(self.channels, replies, strict=True)
            for index in reply
            for name in channels[index - 1]
        ]


class FanoutPlans:
    """The plans of the groups a layer sends to (see the module docstring)."""

    def __init__(self, layout: Layout) -> None:
        self._layout = layout
        self._plans: OrderedDict[str, Plan] = OrderedDict()
        self._members = 0

    def kept(self, group: str) -> Plan | None:
        """Return ``group``'s plan, if one is kept."""
        plan = self._plans.get(group)
        if plan is not None:
            self._plans.move_to_end(group)
        return plan

    def make(self, group: str, version: str, members: list[bytes]) -> Plan:
        """Work out and keep ``group``'s plan for ``members``, the list of its ``version``."""
        plan = Plan(self._layout, version, members)
        old = self._plans.pop(group, None)
        if old is not None:
            self._members -= old.size
        self._plans[group] = plan
        self._members += plan.size
        while self._members > MEMBER_BUDGET and len(self._plans) > 1:
            _, dropped = self._plans.popitem(last=False)
            self._members -= dropped.size
        return plan
