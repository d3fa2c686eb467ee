from __future__ import annotations

import asyncio
import gc
from collections.abc import Awaitable, Callable

import pytest

from channels.exceptions import StopConsumer
from channels.utils import await_many_dispatch


class Source:
    """A receive callable backed by a queue, logging each call it starts."""

    def __init__(self, name: str, log: list[str]) -> None:
        self.name = name
        self.log = log
        self.queue: asyncio.Queue[str] = asyncio.Queue()
        self.cancelled = 0

    async def __call__(self) -> str:
        self.log.append(f"receive {self.name}")
        try:
            return await self.queue.get()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise


def dispatcher(log: list[str], stop_after: int) -> Callable[[str], Awaitable[None]]:
    """Log each message and raise StopConsumer once ``stop_after`` have arrived."""
    seen: list[str] = []

    async def dispatch(message: str) -> None:
        log.append(f"dispatch {message}")
        seen.append(message)
        if len(seen) == stop_after:
            raise StopConsumer

    return dispatch


def other_tasks() -> set[asyncio.Task[object]]:
    return asyncio.all_tasks() - {asyncio.current_task()}


class TestOrdering:
    async def test_one_source_dispatches_in_order(self) -> None:
        log: list[str] = []
        source = Source("a", log)
        for message in ["1", "2", "3"]:
            source.queue.put_nowait(message)

        with pytest.raises(StopConsumer):
            await await_many_dispatch([source], dispatcher(log, stop_after=3))

        assert [entry for entry in log if entry.startswith("dispatch")] == [
            "dispatch 1",
            "dispatch 2",
            "dispatch 3",
        ]

    async def test_results_ready_together_are_dispatched_before_waiting_again(self) -> None:
        log: list[str] = []
        first, second = Source("a", log), Source("b", log)
        first.queue.put_nowait("a1")
        second.queue.put_nowait("b1")

        with pytest.raises(StopConsumer):
            await await_many_dispatch([first, second], dispatcher(log, stop_after=2))

        # Had it waited between the two, the restarted receive of "a" would
        # have run (and logged) before "b1" was dispatched.
        assert log == ["receive a", "receive b", "dispatch a1", "dispatch b1"]

    async def test_messages_from_both_sources_arrive_in_completion_order(self) -> None:
        log: list[str] = []
        first, second = Source("a", log), Source("b", log)
        order = ["b1", "a1", "a2", "b2", "b3", "a3"]
        received: list[str] = []

        async def dispatch(message: str) -> None:
            received.append(message)
            if len(received) == len(order):
                raise StopConsumer
            feed(order[len(received)])

        def feed(message: str) -> None:
            (first if message.startswith("a") else second).queue.put_nowait(message)

        feed(order[0])
        with pytest.raises(StopConsumer):
            await await_many_dispatch([first, second], dispatch)

        assert received == order

    async def test_dispatch_runs_one_message_at_a_time(self) -> None:
        log: list[str] = []
        first, second = Source("a", log), Source("b", log)
        first.queue.put_nowait("a1")
        second.queue.put_nowait("b1")
        running = 0
        overlaps: list[int] = []

        async def dispatch(message: str) -> None:
            nonlocal running
            running += 1
            overlaps.append(running)
            # Yield to the loop so an overlapping dispatch would get to run.
            await asyncio.sleep(0)
            running -= 1
            if message == "b1":
                raise StopConsumer

        with pytest.raises(StopConsumer):
            await await_many_dispatch([first, second], dispatch)

        assert overlaps == [1, 1]

    async def test_any_awaitable_is_accepted(self) -> None:
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[int]] = []

        def receive() -> asyncio.Future[int]:
            future: asyncio.Future[int] = loop.create_future()
            future.set_result(len(futures))
            futures.append(future)
            return future

        received: list[int] = []

        async def dispatch(message: int) -> None:
            received.append(message)
            if len(received) == 2:
                raise StopConsumer

        with pytest.raises(StopConsumer):
            await await_many_dispatch([receive], dispatch)

        assert received == [0, 1]


class TestStopping:
    async def test_stop_consumer_cancels_and_awaits_other_receives(self) -> None:
        log: list[str] = []
        first, second = Source("a", log), Source("b", log)
        first.queue.put_nowait("a1")

        with pytest.raises(StopConsumer):
            await await_many_dispatch([first, second], dispatcher(log, stop_after=1))

        assert (first.cancelled, second.cancelled) == (0, 1)
        assert other_tasks() == set()

    async def test_undispatched_results_are_dropped_quietly(self) -> None:
        log: list[str] = []
        first, second = Source("a", log), Source("b", log)
        first.queue.put_nowait("a1")
        second.queue.put_nowait("b1")

        with pytest.raises(StopConsumer):
            await await_many_dispatch([first, second], dispatcher(log, stop_after=1))

        assert log == ["receive a", "receive b", "dispatch a1"]
        assert other_tasks() == set()

    async def test_cancelling_the_caller_cancels_and_awaits_receives(self) -> None:
        log: list[str] = []
        first, second = Source("a", log), Source("b", log)
        both_waiting = asyncio.Event()

        async def dispatch(message: str) -> None:
            both_waiting.set()

        first.queue.put_nowait("a1")
        runner = asyncio.create_task(await_many_dispatch([first, second], dispatch))
        await both_waiting.wait()
        runner.cancel()

        with pytest.raises(asyncio.CancelledError):
            await runner

        assert (first.cancelled, second.cancelled) == (1, 1)
        assert other_tasks() == set()

    async def test_cancelling_the_caller_during_dispatch_cancels_receives(self) -> None:
        log: list[str] = []
        first, second = Source("a", log), Source("b", log)
        in_dispatch = asyncio.Event()
        dispatch_cancelled = asyncio.Event()

        async def dispatch(message: str) -> None:
            in_dispatch.set()
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                dispatch_cancelled.set()
                raise

        first.queue.put_nowait("a1")
        runner = asyncio.create_task(await_many_dispatch([first, second], dispatch))
        await in_dispatch.wait()
        runner.cancel()

        with pytest.raises(asyncio.CancelledError):
            await runner

        assert dispatch_cancelled.is_set()
        assert (first.cancelled, second.cancelled) == (0, 1)
        assert other_tasks() == set()


class TestErrors:
    async def test_receive_error_propagates_and_cancels_other_receives(self) -> None:
        log: list[str] = []
        healthy = Source("a", log)

        async def broken() -> str:
            raise ConnectionError("receive failed")

        with pytest.raises(ConnectionError, match="receive failed"):
            await await_many_dispatch([healthy, broken], dispatcher(log, stop_after=1))

        assert healthy.cancelled == 1
        assert other_tasks() == set()

    async def test_receive_error_after_messages_propagates(self) -> None:
        log: list[str] = []
        calls = 0

        async def flaky() -> str:
            nonlocal calls
            calls += 1
            if calls == 3:
                raise ConnectionError("receive failed")
            return f"m{calls}"

        with pytest.raises(ConnectionError, match="receive failed"):
            await await_many_dispatch([flaky], dispatcher(log, stop_after=10))

        assert log == ["dispatch m1", "dispatch m2"]

    async def test_receive_raising_before_returning_an_awaitable_cleans_up(self) -> None:
        log: list[str] = []
        healthy = Source("a", log)

        def broken() -> Awaitable[str]:
            raise ConnectionError("no awaitable")

        with pytest.raises(ConnectionError, match="no awaitable"):
            await await_many_dispatch([healthy, broken], dispatcher(log, stop_after=1))

        # The healthy receive was cancelled before it ever ran.
        assert log == []
        assert other_tasks() == set()

    async def test_errors_from_two_receives_raise_the_first_quietly(self) -> None:
        log: list[str] = []
        loop = asyncio.get_running_loop()
        reports: list[dict[str, object]] = []
        loop.set_exception_handler(lambda _, context: reports.append(context))

        async def first() -> str:
            raise ConnectionError("first failed")

        async def second() -> str:
            raise TimeoutError("second failed")

        with pytest.raises(ConnectionError, match="first failed"):
            await await_many_dispatch([first, second], dispatcher(log, stop_after=1))
        # Collecting the finished receives is when asyncio reports unread errors.
        gc.collect()

        assert reports == []
        assert other_tasks() == set()

    async def test_dispatch_error_propagates(self) -> None:
        log: list[str] = []
        source = Source("a", log)
        source.queue.put_nowait("a1")

        async def dispatch(message: str) -> None:
            raise KeyError(message)

        with pytest.raises(KeyError, match="a1"):
            await await_many_dispatch([source], dispatch)

        assert source.cancelled == 0
        assert other_tasks() == set()

    async def test_empty_callables_are_refused(self) -> None:
        log: list[str] = []

        with pytest.raises(
            ValueError,
            match=r"consumer_callables is empty: await_many_dispatch needs at least one "
            r"receive callable, got \[\]",
        ):
            await await_many_dispatch([], dispatcher(log, stop_after=1))
