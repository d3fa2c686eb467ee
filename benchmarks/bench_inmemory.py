"""In-memory channel layer workloads, and (``--limits``) the same shapes on bare asyncio.

Run by ``benchmarks.run`` with each side's interpreter. Times are CPU time of
this process (``time.process_time``): the workloads are single-process, and
CPU time is not skewed by other work on a shared machine. Rates are operations
per CPU second (higher is better); memory is bytes (lower is better).
"""

from __future__ import annotations

import asyncio
import copy
import tracemalloc
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from _common import DeliveryError, Report, Tracker, measure_rate, message, round_trips, run_suite

__all__: list[str] = []  # a script: run as a file by benchmarks.run

FANOUT_SIZES = (10, 100, 1_000)
IDLE_SIZES = (10, 100_000)
MEMORY_COUNT = 10_000


def _make_layer(**options: Any) -> Any:
    from channels.layers import InMemoryChannelLayer

    return InMemoryChannelLayer(**options)


class _Receivers:
    """Long-lived receiver tasks, one per channel, feeding a Tracker."""

    def __init__(
        self,
        receive: Callable[[str], Awaitable[dict[str, Any]]],
        names: list[str],
        tracker: Tracker,
    ) -> None:
        self.tasks = [asyncio.create_task(self._loop(receive, name, tracker)) for name in names]

    @staticmethod
    async def _loop(
        receive: Callable[[str], Awaitable[dict[str, Any]]], name: str, tracker: Tracker
    ) -> None:
        while True:
            message = await receive(name)
            tracker.got((name, message.get("p")), message["n"])

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


# -- the layer -------------------------------------------------------------------------------


async def layer_round_trip() -> float:
    layer = _make_layer()
    channel = await layer.new_channel()
    batch = round_trips(layer, channel, 200)
    return await measure_rate(batch)


async def layer_producers(producers: int = 100, channels: int = 100) -> float:
    """Messages per second: ``producers`` tasks each send one message to every channel."""
    layer = _make_layer(capacity=producers * 2)
    names = [f"bench.chan{index}" for index in range(channels)]
    tracker = Tracker()
    receivers = _Receivers(layer.receive, names, tracker)
    rounds = 0

    async def produce(p: int, n: int) -> None:
        for name in names:
            await layer.send(name, {"type": "m", "p": p, "n": n})

    async def batch() -> int:
        nonlocal rounds
        tracker.expect(producers * channels)
        await asyncio.gather(*(produce(p, rounds) for p in range(producers)))
        rounds += 1
        await tracker.wait()
        return producers * channels

    try:
        return await measure_rate(batch)
    finally:
        await receivers.stop()


async def layer_fanout(members: int) -> float:
    """group_send calls per second, each received by every member (waiting receivers)."""
    layer = _make_layer()
    names = [await layer.new_channel() for _ in range(members)]
    for name in names:
        await layer.group_add("room", name)
    tracker = Tracker()
    receivers = _Receivers(layer.receive, names, tracker)
    sent = 0
    per_batch = 1

    async def batch() -> int:
        nonlocal sent
        tracker.expect(per_batch * members)
        for _ in range(per_batch):
            await layer.group_send("room", message(sent))
            sent += 1
        await tracker.wait()
        return per_batch

    try:
        return await measure_rate(batch)
    finally:
        await receivers.stop()


async def layer_churn(channels: int = 1_000, groups: int = 10) -> float:
    """group_add + group_discard pairs per second."""
    layer = _make_layer()
    names = [f"bench.churn{index}" for index in range(channels)]

    async def batch() -> int:
        for index, name in enumerate(names):
            await layer.group_add(f"group{index % groups}", name)
        for index, name in enumerate(names):
            await layer.group_discard(f"group{index % groups}", name)
        return channels

    return await measure_rate(batch)


async def _idle_layer(idle: int) -> Any:
    layer = _make_layer()
    for index in range(idle):
        name = f"idle.{index}"
        await layer.send(name, {"type": "idle", "n": index})
        await layer.group_add(f"group{index % 100}", name)
    return layer


async def layer_idle_round_trip(idle: int) -> float:
    """send+receive round trips per second with ``idle`` other channels holding messages."""
    layer = await _idle_layer(idle)
    channel = await layer.new_channel()
    count = 0

    async def batch() -> int:
        nonlocal count
        await layer.send(channel, message(count))
        received = await layer.receive(channel)
        if received["n"] != count:
            raise DeliveryError(1, f"sent #{count}, received {received!r}")
        count += 1
        return 1

    rate = await measure_rate(batch)
    # The idle messages are all still there: a receive must not have eaten them.
    for index in (0, idle - 1):
        got = await layer.receive(f"idle.{index}")
        if got["n"] != index:
            raise DeliveryError(1, f"idle channel {index} held {got!r}")
    return rate


def _traced(setup: Callable[[], Awaitable[object]]) -> Callable[[], Awaitable[float]]:
    async def body() -> float:
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            keep = await setup()
            after = tracemalloc.get_traced_memory()[0]
        finally:
            tracemalloc.stop()
        del keep
        return (after - before) / MEMORY_COUNT

    return body


async def _layer_idle_channels() -> object:
    layer = _make_layer()
    await layer.send("warm.up", message(0))
    await layer.receive("warm.up")
    for index in range(MEMORY_COUNT):
        await layer.send(f"idle.{index}", message(index))
    return layer


async def _layer_memberships() -> object:
    layer = _make_layer()
    for index in range(MEMORY_COUNT):
        await layer.group_add(f"group{index % 100}", f"member.{index}")
    return layer


# -- the limits: bare asyncio ----------------------------------------------------------------


async def queue_round_trip() -> float:
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    count = 0

    async def batch() -> int:
        nonlocal count
        for _ in range(200):
            queue.put_nowait(message(count))
            received = await queue.get()
            if received["n"] != count:
                raise DeliveryError(1, "queue reordered")
            count += 1
        return 200

    return await measure_rate(batch)


def _queues(names: list[str]) -> dict[str, asyncio.Queue[dict[str, Any]]]:
    return {name: asyncio.Queue() for name in names}


async def queue_producers(producers: int = 100, channels: int = 100) -> float:
    names = [f"q{index}" for index in range(channels)]
    queues = _queues(names)
    tracker = Tracker()

    async def receive(name: str) -> dict[str, Any]:
        return await queues[name].get()

    receivers = _Receivers(receive, names, tracker)
    rounds = 0

    async def produce(p: int, n: int) -> None:
        for name in names:
            queues[name].put_nowait({"type": "m", "p": p, "n": n})

    async def batch() -> int:
        nonlocal rounds
        tracker.expect(producers * channels)
        await asyncio.gather(*(produce(p, rounds) for p in range(producers)))
        rounds += 1
        await tracker.wait()
        return producers * channels

    try:
        return await measure_rate(batch)
    finally:
        await receivers.stop()


async def queue_fanout(members: int) -> float:
    names = [f"q{index}" for index in range(members)]
    queues = _queues(names)
    group = set(names)
    tracker = Tracker()

    async def receive(name: str) -> dict[str, Any]:
        return await queues[name].get()

    receivers = _Receivers(receive, names, tracker)
    sent = 0
    per_batch = 1

    async def batch() -> int:
        nonlocal sent
        tracker.expect(per_batch * members)
        for _ in range(per_batch):
            payload = message(sent)
            for name in group:
                queues[name].put_nowait(payload)
            sent += 1
        await tracker.wait()
        return per_batch

    try:
        return await measure_rate(batch)
    finally:
        await receivers.stop()


async def set_churn(channels: int = 1_000, groups: int = 10) -> float:
    names = [f"c{index}" for index in range(channels)]
    table: dict[str, set[str]] = {}

    async def batch() -> int:
        for index, name in enumerate(names):
            table.setdefault(f"group{index % groups}", set()).add(name)
        for index, name in enumerate(names):
            table[f"group{index % groups}"].discard(name)
        return channels

    return await measure_rate(batch)


async def deepcopy_rate() -> float:
    payload = message(1)

    async def batch() -> int:
        for _ in range(1_000):
            copy.deepcopy(payload)
        return 1_000

    return await measure_rate(batch)


async def _queue_idle_channels() -> object:
    queues: dict[str, asyncio.Queue[dict[str, Any]]] = {}
    for index in range(MEMORY_COUNT):
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=100)
        queue.put_nowait(message(index))
        queues[f"idle.{index}"] = queue
    return queues


async def _set_memberships() -> object:
    groups: dict[str, set[str]] = {}
    for index in range(MEMORY_COUNT):
        groups.setdefault(f"group{index % 100}", set()).add(f"member.{index}")
    return groups


# -- entry point -----------------------------------------------------------------------------


async def run_layer(report: Report) -> None:
    await report.run("mem.round_trip", "ops/s", layer_round_trip)
    await report.run("mem.producers_100x100", "msgs/s", layer_producers)
    for members in FANOUT_SIZES:
        await report.run(f"mem.fanout_{members}", "sends/s", partial(layer_fanout, members))
    await report.run("mem.group_churn", "pairs/s", layer_churn)
    for idle in IDLE_SIZES:
        await report.run(f"mem.idle_{idle}", "ops/s", partial(layer_idle_round_trip, idle))
    await report.run(
        "mem.bytes_per_idle_channel", "B", _traced(_layer_idle_channels), higher_is_better=False
    )
    await report.run(
        "mem.bytes_per_membership", "B", _traced(_layer_memberships), higher_is_better=False
    )


async def run_limits(report: Report) -> None:
    await report.run("mem.round_trip", "ops/s", queue_round_trip)
    await report.run("mem.producers_100x100", "msgs/s", queue_producers)
    for members in FANOUT_SIZES:
        await report.run(f"mem.fanout_{members}", "sends/s", partial(queue_fanout, members))
    await report.run("mem.group_churn", "pairs/s", set_churn)
    await report.run(
        "mem.bytes_per_idle_channel", "B", _traced(_queue_idle_channels), higher_is_better=False
    )
    await report.run(
        "mem.bytes_per_membership", "B", _traced(_set_memberships), higher_is_better=False
    )
    await report.run("mem.deepcopy", "copies/s", deepcopy_rate)


if __name__ == "__main__":
    run_suite(run_layer, run_limits)
