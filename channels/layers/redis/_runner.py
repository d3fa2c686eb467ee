"""How ``RedisChannelLayer`` runs its scripts, in the running event loop's state.

Per event loop the layer holds a :class:`LoopState`: its connections, its
senders and its receiver. A sender (``_publisher.Publisher``) is a
pipelined connection per host (on a cluster, per master node) that carries
``send``, and a receiver's own pops and put-backs: several event-loop turns
cheaper per command than a pooled redis-py one, and run by Redis in the order
written.

:class:`Runner` runs a script one of three ways: pooled on a shard
(``run``), a batch per cluster node (``on_nodes``, see ``_nodes``), or on a
shard's sending connection (``pipelined``).
"""

from __future__ import annotations

from collections.abc import Sequence

from channels.layers.redis._connections import Connections
from channels.layers.redis._errors import LayerConnectionError
from channels.layers.redis._layout import Layout
from channels.layers.redis._loops import LoopStates
from channels.layers.redis._nodes import Call, run_on_nodes
from channels.layers.redis._publisher import Publishers
from channels.layers.redis._receiving import Receiver
from channels.layers.redis._redirect import REFUSED
from channels.layers.redis._scripts import Arg, Script

__all__ = ["LoopState", "Runner"]


class LoopState:
    """What the layer holds for one event loop: its connections, senders and receiver."""

    __slots__ = ("connections", "receiver", "senders")

    def __init__(self, connections: Connections, senders: Publishers, receiver: Receiver) -> None:
        self.connections = connections
        self.senders = senders
        self.receiver = receiver

    async def aclose(self) -> None:
        """Stop the readers (they return unclaimed messages first), then close the connections."""
        try:
            await self.receiver.aclose()
        finally:
            try:
                await self.senders.aclose()
            finally:
                await self.connections.aclose()


class Runner:
    """Runs a layer's scripts in the running loop's :class:`LoopState`."""

    __slots__ = ("_layout", "_states")

    def __init__(self, layout: Layout, states: LoopStates[LoopState]) -> None:
        self._layout = layout
        self._states = states

    def state(self) -> LoopState:
        """Return the running loop's state, made on first use."""
        return self._states.get()

    async def run(
        self, shard: int, script: Script, keys: Sequence[str], args: Sequence[Arg]
    ) -> object:
        """Run ``script`` on a pooled connection to ``shard`` (or the cluster's client)."""
        connections = self.state().connections
        with self._layout.errors(shard):
            reply = await script.run(connections.client(shard), keys, args)
        connections.answered.add(shard)
        return reply

    async def on_nodes(
        self,
        script: Script,
        calls: Sequence[Call],
        packed: Sequence[bytes] | None = None,
    ) -> list[object]:
        """Run ``script`` once per call on a cluster, a batch per node (see ``_nodes``)."""
        connections = self.state().connections
        with self._layout.errors(0):
            replies = await run_on_nodes(connections.cluster(), script, calls, packed)
        connections.answered.add(0)
        return replies

    async def pipelined(
        self, shard: int, doing: str, script: Script, keys: Sequence[str], args: Sequence[Arg]
    ) -> object:
        """Run ``script`` on the shard's sending connection.

        On a cluster, on the connection of the slot's node; but through the
        cluster client, which finds the slot's owner, when that connection
        cannot be made (a failed master) or the node refused the call (a slot
        moving or moved): in both cases nothing was run.
        """
        state = self.state()
        if not state.connections.clustered:
            reply = await script.run_on(state.senders.of(shard), doing, keys, args)
        else:
            try:
                with self._layout.errors(shard):
                    sender = await state.senders.on_node_of(shard)
                    await sender.connect(doing)
            except LayerConnectionError:
                return await self.run(shard, script, keys, args)
            try:
                reply = await script.run_on(sender, doing, keys, args)
            except REFUSED:
                return await self.run(shard, script, keys, args)
        state.connections.answered.add(shard)
        return reply
