"""Scenarios: await_many_dispatch, the loop behind every async consumer."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from channels.utils import await_many_dispatch

from ._harness import Observation, raised, scenario


class _Stop(Exception):
    """Raised by a dispatcher to end the loop."""


def _queue_of(*items: str) -> asyncio.Queue[str]:
    queue: asyncio.Queue[str] = asyncio.Queue()
    for item in items:
        queue.put_nowait(item)
    return queue


@scenario
async def await_many_dispatch_order_and_stop() -> Observation:
    """Results from two sources, in order; an exception from dispatch ends the loop."""
    first, second = _queue_of("a1", "a2"), _queue_of("b1", "b2")
    dispatched: list[str] = []

    async def dispatch(item: str) -> None:
        dispatched.append(item)
        if len(dispatched) == 4:
            raise _Stop("enough")

    try:
        await await_many_dispatch([first.get, second.get], dispatch)
        outcome: Observation = "returned"
    except Exception as exc:
        outcome = raised(exc)
    return {
        "outcome": outcome,
        "first-source": [item for item in dispatched if item.startswith("a")],
        "second-source": [item for item in dispatched if item.startswith("b")],
        "count": len(dispatched),
        "left": [first.qsize(), second.qsize()],
    }


@scenario
async def await_many_dispatch_receive_error() -> Observation:
    """A source that raises ends the loop with its exception; the other source is cancelled."""
    cancelled = asyncio.Event()
    dispatched: list[str] = []

    async def broken() -> str:
        raise LookupError("the source failed")

    async def forever() -> str:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "never"

    async def dispatch(item: str) -> None:
        dispatched.append(item)

    try:
        await await_many_dispatch([forever, broken], dispatch)
        outcome: Observation = "returned"
    except Exception as exc:
        outcome = raised(exc)
    return {"outcome": outcome, "dispatched": dispatched, "other-cancelled": cancelled.is_set()}


@scenario
async def await_many_dispatch_cancelled() -> Observation:
    """Cancelling the loop cancels the pending receives and raises CancelledError."""
    waiting = asyncio.Event()
    cancelled = asyncio.Event()

    async def forever() -> str:
        waiting.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "never"

    async def dispatch(item: str) -> None:
        pass

    task = asyncio.create_task(await_many_dispatch([forever], dispatch))
    await waiting.wait()
    task.cancel()
    try:
        await task
        outcome = "returned"
    except asyncio.CancelledError:
        outcome = "cancelled"
    return {"outcome": outcome, "receive-cancelled": cancelled.is_set()}


@scenario
async def await_many_dispatch_no_sources() -> Observation:
    """No receive callables at all."""
    sources: list[Callable[[], Awaitable[str]]] = []

    async def dispatch(item: str) -> None:
        pass

    try:
        await await_many_dispatch(sources, dispatch)
    except Exception as exc:
        return raised(exc)
    return "returned"
