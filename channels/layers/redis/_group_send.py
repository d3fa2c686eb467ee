"""``RedisChannelLayer.group_send``: reading a group's members and writing their copies.

One of three ways, fixed when the layer is built:

* **In one script** (one server, the stock msgpack codec unencrypted and not
  overridden, no ``channel_capacity`` patterns): ``GROUP_SEND_ALL`` reads the
  group and writes every copy inside Redis (its limits are in ``_scripts``).
* **Planned** (a cluster with that codec): the members' keys, slots and
  packed channel arrays are worked out once per member list (``_fanout``),
  and the message goes once per slot call.
* **Built here** (otherwise): one round trip reads the members, every copy
  is serialised before any is written (so a bad message sends none), then
  one round trip per shard (on a cluster, one pipeline per node) writes them.

A process-specific channel's copy goes to its process's key once, naming
every member of that process. A full member is skipped and logged.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from channels.layers.redis._drops import DropLog
from channels.layers.redis._fanout import FanoutPlans
from channels.layers.redis._keys import group_version_key, ttl_seconds
from channels.layers.redis._layout import Layout
from channels.layers.redis._runner import Runner
from channels.layers.redis._scripts import (
    GROUP_MEMBERS,
    GROUP_MEMBERS_IF_CHANGED,
    GROUP_SEND,
    GROUP_SEND_ALL,
    Arg,
    pack_channels,
    reply_indexes,
    reply_strings,
    script_head,
)
from channels.layers.redis._serializers import CHANNEL_KEY
from channels.types import ReceivedMessage

__all__ = ["GroupSender", "Groups"]


@dataclass(frozen=True)
class Groups:
    """Where a layer's groups live and how long memberships last."""

    key: Callable[[str], str]
    """The Redis key of a group."""
    shard: Callable[[str], int]
    """The shard of a group's key (its slot on a cluster)."""
    expiry: float
    """Seconds a membership lasts (``group_expiry``)."""


class GroupSender:
    """group_send for one layer (see the module docstring for its three ways)."""

    def __init__(
        self,
        layout: Layout,
        runner: Runner,
        groups: Groups,
        drops: DropLog,
        *,
        plain_codec: bool,
        in_script: bool,
        capacity: int,
    ) -> None:
        self._layout = layout
        self._runner = runner
        self._groups = groups
        self._drops = drops
        self._plain_codec = plain_codec
        self._in_script = in_script
        self._capacity = capacity
        self._plans = FanoutPlans(layout) if layout.cluster and plain_codec else None

    async def send(self, group: str, payload: ReceivedMessage, now: float) -> None:
        """Send ``payload`` to every member of ``group`` (a name already checked)."""
        if self._in_script:
            await self._in_one_script(group, payload, now)
        elif self._plans is not None:
            await self._planned(group, payload, now, self._plans)
        else:
            await self._built_here(group, payload, now)

    def _head(self, payload: ReceivedMessage) -> bytes:
        """``payload`` packed with an empty channel array last, minus that array."""
        return script_head(self._layout.encode({**payload, CHANNEL_KEY: []}))

    def _full(self, group: str, channels: list[str]) -> None:
        for channel in channels:
            self._drops.dropped(channel, f"it is full, so group_send to {group!r} skipped it")

    async def _in_one_script(self, group: str, payload: ReceivedMessage, now: float) -> None:
        layout = self._layout
        full = await self._runner.run(
            0,
            GROUP_SEND_ALL,
            [self._groups.key(group)],
            [
                now - self._groups.expiry,
                layout.prefix,
                now,
                layout.expired_before(now),
                layout.ttl(),
                self._capacity,
                self._head(payload),
            ],
        )
        self._full(group, [name.decode("utf-8") for name in reply_strings(full)])

    async def _planned(
        self, group: str, payload: ReceivedMessage, now: float, plans: FanoutPlans
    ) -> None:
        # Packed before the members are read, so a bad message sends nothing.
        head = self._head(payload)
        plan = plans.kept(group)
        known = None if plan is None else plan.version
        version, members = await self._members_if_changed(group, now, known)
        if plan is None or version != plan.version:
            if not members:
                return
            plan = plans.make(group, version, members)
        layout = self._layout
        sends = plan.sends([now, layout.expired_before(now), layout.ttl(), head])
        replies = await self._runner.on_nodes(GROUP_SEND, sends.calls, sends.packed)
        self._full(group, sends.full([reply_indexes(reply) for reply in replies]))

    async def _members_if_changed(
        self, group: str, now: float, version: str | None
    ) -> tuple[str, list[bytes]]:
        """Return a cluster group's version, and its members unless ``version`` is current."""
        key = self._groups.key(group)
        keys = [key, group_version_key(key)]
        ttl = ttl_seconds(self._groups.expiry)
        args: list[Arg] = [now - self._groups.expiry, version or "", uuid.uuid4().hex, ttl]
        # Read by the same parser as the copies' replies: much faster for large groups.
        [reply] = await self._runner.on_nodes(GROUP_MEMBERS_IF_CHANGED, [(keys, args)])
        current, *members = reply_strings(reply)
        return current.decode(), members

    async def _members(self, group: str, now: float) -> list[str]:
        """Return ``group``'s members, dropping those past group expiry."""
        if self._layout.cluster:
            # The same script as the planned way's, so dropping expired members
            # gives the group a new version that senders keeping plans see.
            _, raw = await self._members_if_changed(group, now, None)
        else:
            keys, args = [self._groups.key(group)], [now - self._groups.expiry]
            raw = reply_strings(
                await self._runner.run(self._groups.shard(group), GROUP_MEMBERS, keys, args)
            )
        return [name.decode("utf-8") for name in raw]

    async def _built_here(self, group: str, payload: ReceivedMessage, now: float) -> None:
        layout = self._layout
        members = await self._members(group, now)
        if not members:
            layout.encode(payload)  # still reject what could never be sent
            return
        # One copy per Redis key: a process key carries every local member.
        by_key: dict[str, list[str]] = {}
        for channel in members:
            by_key.setdefault(layout.key(channel), []).append(channel)
        # One call per shard and capacity: the script takes one capacity for its keys.
        by_call: dict[tuple[int, int], list[str]] = {}
        for key, channels in by_key.items():
            call = (layout.shard(channels[0]), layout.capacity(channels[0]))
            by_call.setdefault(call, []).append(key)
        # Serialise every copy before writing any, so a bad message sends none.
        copy_for: Callable[[list[str]], bytes]
        if self._plain_codec:
            # Packed once; each copy appends its channels, as the script would.
            copy_for = functools.partial(pack_channels, self._head(payload))
        else:
            copy_for = functools.partial(_whole_copy, layout, payload)
        batches: list[tuple[int, list[str], list[Arg]]] = []
        for (shard, capacity), keys in by_call.items():
            # Every copy whole, after an empty head.
            args: list[Arg] = [now, layout.expired_before(now), layout.ttl(), b"", capacity]
            args += [copy_for(by_key[key]) for key in keys]
            batches.append((shard, keys, args))
        if layout.cluster:
            calls = [(keys, args) for _, keys, args in batches]
            replies = await self._runner.on_nodes(GROUP_SEND, calls)
        else:
            replies = [
                await self._runner.run(shard, GROUP_SEND, keys, args)
                for shard, keys, args in batches
            ]
        for (_, keys, _), reply in zip(batches, replies, strict=True):
            full = reply_indexes(reply)
            self._full(group, [name for index in full for name in by_key[keys[index - 1]]])


def _whole_copy(layout: Layout, payload: ReceivedMessage, channels: list[str]) -> bytes:
    """``payload`` for ``channels``, serialised by the layer's own (maybe overridden) codec."""
    return layout.encode({**payload, CHANNEL_KEY: channels})
