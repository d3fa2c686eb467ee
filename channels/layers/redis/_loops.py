"""Per-event-loop state for both Redis layers, released when its loop shuts down.

Connections (and the tasks that read them) belong to one event loop: a layer
used from several loops, as ``async_to_sync`` does with a loop per call, keeps
one state per loop. :class:`LoopStates` creates a loop's state on first use and
releases it:

* on ``await states.close()`` (the layer's ``close()``), for the running loop;
* when the loop shuts down through ``asyncio.run`` or ``asyncio.Runner`` (and
  so ``async_to_sync``): they cancel every task before closing the loop, and a
  *keeper* task, waiting for nothing, releases the state when it is cancelled,
  while the loop still runs. No loop method is replaced, so any loop class
  (uvloop included) works;
* for a loop that was closed some other way, by forgetting it on the next use
  from any loop (its sockets cannot be closed from another loop).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Generic, Protocol, TypeVar

__all__ = ["LoopState", "LoopStates"]


class LoopState(Protocol):
    """What a layer keeps for one event loop: something that can release itself."""

    async def aclose(self) -> None:
        """Stop this loop's tasks and close its connections."""
        ...


_S = TypeVar("_S", bound=LoopState)


class LoopStates(Generic[_S]):
    """One state per event loop, made by ``factory`` on first use and released with the loop."""

    __slots__ = ("_factory", "_keepers", "_states")

    def __init__(self, factory: Callable[[], _S]) -> None:
        self._factory = factory
        self._states: dict[asyncio.AbstractEventLoop, _S] = {}
        self._keepers: dict[asyncio.AbstractEventLoop, asyncio.Task[None]] = {}

    def get(self) -> _S:
        """Return the running loop's state, creating it (and its keeper) if needed."""
        loop = asyncio.get_running_loop()
        state = self._states.get(loop)
        if state is None:
            self._forget_closed()
            state = self._states[loop] = self._factory()
            self._keepers[loop] = loop.create_task(self._keep(loop, state))
        return state

    def __iter__(self) -> Iterator[_S]:
        """Iterate over the states of loops that are still open."""
        return iter([state for loop, state in self._states.items() if not loop.is_closed()])

    async def close(self) -> None:
        """Release the running loop's state now; the next ``get()`` starts a new one."""
        loop = asyncio.get_running_loop()
        self._forget_closed()
        state = self._states.pop(loop, None)
        keeper = self._keepers.pop(loop, None)
        if keeper is not None:
            keeper.cancel()  # with its state no longer current, it releases nothing
        if state is not None:
            # The release runs to its end even if this caller is cancelled.
            closing = asyncio.ensure_future(state.aclose())
            await asyncio.wait({closing})
            closing.result()

    async def _keep(self, loop: asyncio.AbstractEventLoop, state: _S) -> None:
        try:
            await asyncio.get_running_loop().create_future()
        finally:
            if self._states.get(loop) is state:
                del self._states[loop]
                del self._keepers[loop]
                await state.aclose()

    def _forget_closed(self) -> None:
        # A closed loop never runs its keeper again: its state is simply dropped.
        for loop in [loop for loop in self._states if loop.is_closed()]:
            del self._states[loop]
            del self._keepers[loop]
