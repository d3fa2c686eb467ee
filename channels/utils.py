"""Helpers for consumers: run several receive loops into one dispatcher."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

__all__ = ["await_many_dispatch"]

_T = TypeVar("_T")


async def await_many_dispatch(
    consumer_callables: Sequence[Callable[[], Awaitable[_T]]],
    dispatch: Callable[[_T], Awaitable[object]],
) -> None:
    """Feed results of the receive callables to ``dispatch``, one at a time, until it raises.

    Each callable has one call pending at a time; when it completes, its
    result is dispatched and the callable is called again. Results are
    dispatched in the order the calls completed. When ``dispatch`` or a
    receive call raises, or this coroutine is cancelled, the outstanding calls
    are cancelled and waited for before the exception propagates.

    Raises:
        ValueError: ``consumer_callables`` is empty.
    """
    if not consumer_callables:
        raise ValueError(
            "consumer_callables is empty: await_many_dispatch needs at least one "
            f"receive callable, got {consumer_callables!r}"
        )
    # Done-callbacks push the index of each finished call here, so finding the
    # next result costs O(1) instead of scanning (or asyncio.wait-ing on)
    # every pending call once per message.
    ready: deque[int] = deque()
    wakeup = asyncio.Event()

    def start(index: int) -> asyncio.Future[_T]:
        future = asyncio.ensure_future(consumer_callables[index]())

        def finished(_: asyncio.Future[_T]) -> None:
            ready.append(index)
            wakeup.set()

        future.add_done_callback(finished)
        return future

    pending: list[asyncio.Future[_T]] = []
    try:
        for index in range(len(consumer_callables)):
            pending.append(start(index))
        while True:
            while not ready:
                wakeup.clear()
                await wakeup.wait()
            index = ready.popleft()
            await dispatch(pending[index].result())
            # Called again only after dispatch so a receive never runs (and is
            # never cancelled mid-way) while its previous result is handled.
            pending[index] = start(index)
    finally:
        await _cancel_and_wait(pending)


async def _cancel_and_wait(futures: list[asyncio.Future[_T]]) -> None:
    """Cancel the unfinished futures, wait for all of them, and mark their outcomes seen."""
    if not futures:
        return
    for future in futures:
        if not future.done():
            future.cancel()
    await asyncio.wait(futures)
    for future in futures:
        # The first error already propagates; reading the others keeps asyncio
        # from logging "exception was never retrieved" for them.
        if not future.cancelled():
            future.exception()
