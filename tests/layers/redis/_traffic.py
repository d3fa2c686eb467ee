"""Traffic that runs through a failover, for the Sentinel and cluster tests.

:class:`Traffic` sends to one channel in a loop and records each send's
outcome, so a test can check that sends failed only during the outage and
worked again after it, with the same layer object.
"""

from __future__ import annotations

import asyncio
from typing import Final, Protocol

from channels.layers.redis import LayerConnectionError
from channels.types import ChannelMessage

__all__ = ["WAIT", "Traffic"]

WAIT: Final = 10.0
"""Seconds a send may take, and a test waits for what it expects; layers reconnect within that."""


class _Sender(Protocol):
    async def send(self, channel: str, message: ChannelMessage) -> None: ...


class Traffic:
    """Sends to one channel in a loop and records each outcome, in order: ok or error."""

    def __init__(self, layer: _Sender, channel: str) -> None:
        self.layer = layer
        self.channel = channel
        self.outcomes: list[str] = []
        self.after_outage: list[int] = []
        """Numbers of the messages whose send returned after a send had failed."""
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task

    async def _run(self) -> None:
        number = 0
        while not self._stop.is_set():
            try:
                # Bounded: a send that hangs instead of failing fails the test.
                await asyncio.wait_for(
                    self.layer.send(self.channel, {"type": "t", "n": number}), WAIT
                )
            except LayerConnectionError:
                self.outcomes.append("error")
            else:
                if "error" in self.outcomes:
                    self.after_outage.append(number)
                self.outcomes.append("ok")
            number += 1
            await asyncio.sleep(0.01)  # pacing only: a few hundred sends per failover

    def phases(self) -> list[str]:
        """The outcomes with repeats collapsed: ``["ok", "error", "ok"]`` for one clean outage."""
        collapsed: list[str] = []
        for outcome in self.outcomes:
            if not collapsed or collapsed[-1] != outcome:
                collapsed.append(outcome)
        return collapsed
