"""Traffic that runs through a failover or a slot migration, for the Sentinel and cluster tests.

:class:`Traffic` calls a send in a loop and records each outcome, so a test
can check that sends failed only during the outage and worked again after
it, with the same layer object, and which sends were acknowledged.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Final, Protocol

from channels.layers.redis import LayerConnectionError
from channels.types import ChannelMessage

__all__ = ["WAIT", "Traffic", "sends_to"]

WAIT: Final = 10.0
"""Seconds a send may take, and a test waits for what it expects; layers reconnect within that."""


class _Sender(Protocol):
    async def send(self, channel: str, message: ChannelMessage) -> None: ...


def sends_to(layer: _Sender, channel: str) -> Callable[[int], Awaitable[None]]:
    """A send for :class:`Traffic`: message number ``n`` to ``channel`` on ``layer``."""
    return lambda number: layer.send(channel, {"type": "t", "n": number})


class Traffic:
    """Calls ``send(number)`` in a loop and records each outcome in order, with its start time.

    Only LayerConnectionError counts as a failed send; anything else ends the
    loop and is raised by :meth:`stop`.
    """

    def __init__(self, send: Callable[[int], Awaitable[None]]) -> None:
        self._send = send
        self.outcomes: list[tuple[int, str, float]] = []
        """(number, "ok" or "error", monotonic start) per send, in order."""
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def acknowledged(self) -> list[int]:
        """The numbers whose send returned, in order."""
        return [number for number, outcome, _ in self.outcomes if outcome == "ok"]

    @property
    def after_outage(self) -> list[int]:
        """The numbers whose send returned after a send had failed."""
        failed = False
        after: list[int] = []
        for number, outcome, _ in self.outcomes:
            failed = failed or outcome == "error"
            if failed and outcome == "ok":
                after.append(number)
        return after

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task

    async def _run(self) -> None:
        number = 0
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                # Bounded: a send that hangs instead of failing fails the test.
                await asyncio.wait_for(self._send(number), WAIT)
            except LayerConnectionError:
                self.outcomes.append((number, "error", started))
            else:
                self.outcomes.append((number, "ok", started))
            number += 1
            await asyncio.sleep(0.005)  # pacing only: a few hundred sends per second

    def phases(self) -> list[str]:
        """The outcomes with repeats collapsed: ``["ok", "error", "ok"]`` for one clean outage."""
        collapsed: list[str] = []
        for _, outcome, _ in self.outcomes:
            if not collapsed or collapsed[-1] != outcome:
                collapsed.append(outcome)
        return collapsed
