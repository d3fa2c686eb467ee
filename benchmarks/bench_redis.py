"""Redis layer workloads, and (``--limits``) the same shapes in raw redis-py.

Ours is ``channels.layers.redis.RedisChannelLayer``, upstream is
``channels_redis.core.RedisChannelLayer``; both with default settings and a
unique key prefix on the shared Redis at ``BENCH_REDIS_URL`` (default
``redis://127.0.0.1:6379``). Times are wall-clock (``time.perf_counter``):
the client waits on the Redis server, which CPU time of this process would
not count. Rates are operations per second (higher is better).

Fan-out times only the ``group_send`` calls; every member's messages are then
received (untimed) and checked, complete and in order.

The pub/sub rows put ``channels.layers.redis.RedisPubSubChannelLayer`` against
``channels_redis.pubsub.RedisPubSubChannelLayer``. Their fan-out times each
``group_send`` until every local member has received its copy, since a
pub/sub ``group_send`` returns before anyone has it (deliveries per second).
Overload floods a group of 10 from another process at twice what its consumers
can take and reports the percentage of deliveries made during the flood.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import msgpack  # type: ignore[import-untyped]  # no stubs; only packb/unpackb are used
from _common import DeliveryError, Report, measure_rate, message, round_trips, run_suite

__all__: list[str] = []  # a script: run as a file by benchmarks.run

URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379")
FANOUT_SIZES = (10, 100, 1_000)
CONCURRENT = 100
WALL = time.perf_counter


def _make_layer() -> Any:
    prefix = f"bench-{uuid.uuid4().hex[:12]}"
    try:
        from channels_redis.core import (  # type: ignore[import-not-found]  # upstream side only
            RedisChannelLayer,
        )
    except ImportError:
        from channels.layers.redis import RedisChannelLayer
    return RedisChannelLayer(hosts=[URL], prefix=prefix)


def _make_pubsub_layer() -> Any:
    prefix = f"bench-{uuid.uuid4().hex[:12]}"
    try:
        from channels_redis.pubsub import (  # type: ignore[import-not-found]  # upstream side only
            RedisPubSubChannelLayer,
        )
    except ImportError:
        from channels.layers.redis import RedisPubSubChannelLayer
    return RedisPubSubChannelLayer(hosts=[URL], prefix=prefix)


async def _close(layer: Any) -> None:
    # A failed cleanup (upstream's pool can still be exhausted here) must not
    # hide the workload's own result; the unique prefix keeps leftovers apart.
    try:
        await layer.flush()
        for name in ("close", "close_pools"):
            method = getattr(layer, name, None)
            if method is not None:
                await method()
                return
    except Exception as exc:
        sys.stderr.write(f"  cleanup failed: {exc!r}\n")


async def layer_round_trip(specific: bool, make: Callable[[], Any] = _make_layer) -> float:
    layer = make()
    channel = await layer.new_channel() if specific else "bench.round_trip"
    batch = round_trips(layer, channel, 20)
    try:
        return await measure_rate(batch, clock=WALL, min_time=0.4)
    finally:
        await _close(layer)


async def layer_concurrent() -> float:
    """Messages per second to CONCURRENT receivers that wait at the same time."""
    layer = _make_layer()
    names = [f"bench.concurrent{index}" for index in range(CONCURRENT)]
    total = 0.0
    rounds = 3
    try:
        for round_ in range(rounds):
            start = WALL()
            receivers = [asyncio.create_task(layer.receive(name)) for name in names]
            await asyncio.sleep(0.05)  # let every receiver start waiting before the sends
            sends = await asyncio.gather(
                *(layer.send(name, message(round_)) for name in names), return_exceptions=True
            )
            done, pending = await asyncio.wait(receivers, timeout=5)
            for task in pending:
                task.cancel()
            got = [task.result() for task in done if task.exception() is None]
            errors = [e for e in sends if isinstance(e, BaseException)]
            errors += [exc for task in done if (exc := task.exception()) is not None]
            lost = CONCURRENT - sum(1 for message in got if message["n"] == round_)
            if lost:
                first = f"; first error: {errors[0]!r}" if errors else ""
                raise DeliveryError(
                    lost, f"round {round_}: {lost} of {CONCURRENT} not received{first}"
                )
            total += WALL() - start
        return rounds * CONCURRENT / total
    finally:
        await _close(layer)


async def _fanout(
    members: int,
    names: list[str],
    group_send: Callable[[int], Awaitable[None]],
    receive: Callable[[str], Awaitable[dict[str, Any]]],
    batches: int,
) -> float:
    timed = 0.0
    for n in range(batches + 1):
        start = WALL()
        await group_send(n)
        if n:  # the first is warm-up
            timed += WALL() - start
        for name in names:
            message = await asyncio.wait_for(receive(name), 10)
            if message["n"] != n:
                raise DeliveryError(1, f"{name} expected #{n}, got {message!r}")
    return batches / timed


async def layer_fanout(
    members: int, specific: bool, make: Callable[[], Any] = _make_layer
) -> float:
    layer = make()
    if specific:
        names = [await layer.new_channel() for _ in range(members)]
    else:
        names = [f"bench.fan{index}" for index in range(members)]
    for name in names:
        await layer.group_add("room", name)

    async def group_send(n: int) -> None:
        await layer.group_send("room", message(n))

    try:
        return await _fanout(members, names, group_send, layer.receive, 10 if members < 1000 else 4)
    finally:
        await _close(layer)


# -- the pub/sub layer --------------------------------------------------------------------------


async def pubsub_round_trip() -> float:
    layer = _make_pubsub_layer()
    channel = await layer.new_channel()
    batch = round_trips(layer, channel, 20)
    try:
        return await measure_rate(batch, clock=WALL, min_time=0.4)
    finally:
        await _close(layer)


async def _delivered(
    names: list[str],
    group_send: Callable[[int], Awaitable[None]],
    receive: Callable[[str], Awaitable[dict[str, Any]]],
    batches: int,
) -> float:
    """Deliveries per second: from each ``group_send`` until every member has its copy.

    Pub/sub ``group_send`` returns once Redis has the message, before any member
    has it, so the receives are timed too.
    """
    timed = 0.0
    for n in range(batches + 1):
        start = WALL()
        # One timeout for the batch: a wait_for per receive would cost more than the receive.
        async with asyncio.timeout(10):
            await group_send(n)
            for name in names:
                message = await receive(name)
                if message["n"] != n:
                    raise DeliveryError(1, f"{name} expected #{n}, got {message!r}")
        if n:  # the first is warm-up
            timed += WALL() - start
    return batches * len(names) / timed


async def pubsub_fanout(members: int) -> float:
    layer = _make_pubsub_layer()
    names = [await layer.new_channel() for _ in range(members)]
    for name in names:
        await layer.group_add("room", name)

    async def group_send(n: int) -> None:
        await layer.group_send("room", message(n))

    try:
        return await _delivered(names, group_send, layer.receive, max(20, 20_000 // members))
    finally:
        await _close(layer)


# A publisher in a process of its own: PUBLISH ``payload`` on ``name`` at ``rate`` per
# second for ``seconds``, in batches every 10 ms, then print how many it sent.
_PUBLISHER = r"""
import sys, time
from redis import Redis
url, name, rate, seconds, payload = sys.argv[1:]
client = Redis.from_url(url)
payload = bytes.fromhex(payload)
per_tick = max(1, int(float(rate) / 100))
sent = 0
start = time.perf_counter()
while time.perf_counter() - start < float(seconds):
    pipe = client.pipeline(transaction=False)
    for _ in range(per_tick):
        pipe.publish(name, payload)
    pipe.execute()
    sent += per_tick
    time.sleep(max(0.0, start + sent / float(rate) - time.perf_counter()))
print(sent)
"""

OVERLOAD_MEMBERS = 10
OVERLOAD_RATE = 10_000  # group messages per second: 100,000 deliveries/s offered
OVERLOAD_SECONDS = 3.0
OVERLOAD_WORK = 20e-6  # seconds of CPU each consumer spends per message: 50,000/s at most


async def pubsub_overload() -> float:
    """Percent of offered deliveries made while a group gets twice what its consumers can take.

    The same raw publisher (another process) floods the group's pub/sub channel
    for both sides; each member's consumer spends OVERLOAD_WORK of CPU per
    message. Only deliveries made while the flood lasts count.
    """
    layer = _make_pubsub_layer()
    names = [await layer.new_channel() for _ in range(OVERLOAD_MEMBERS)]
    for name in names:
        await layer.group_add("room", name)
    delivered = 0
    deadline = time.perf_counter() + OVERLOAD_SECONDS

    async def consume(name: str) -> None:
        nonlocal delivered
        # A receive that finds a message queued may not yield to the event loop,
        # so each consumer watches the deadline itself.
        while time.perf_counter() < deadline:
            await layer.receive(name)
            end = time.perf_counter() + OVERLOAD_WORK
            while time.perf_counter() < end:
                pass
            delivered += end < deadline

    consumers = [asyncio.create_task(consume(name)) for name in names]
    try:
        publisher = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _PUBLISHER,
            URL,
            f"{layer.prefix}__group__room",
            str(OVERLOAD_RATE),
            str(OVERLOAD_SECONDS),
            layer.serialize(message(0)).hex(),
            stdout=asyncio.subprocess.PIPE,
        )
        stdout, _ = await publisher.communicate()
        await asyncio.wait(consumers, timeout=1)
        return 100 * delivered / (int(stdout) * OVERLOAD_MEMBERS)
    finally:
        for consumer in consumers:
            consumer.cancel()
        await asyncio.gather(*consumers, return_exceptions=True)
        await _close(layer)


# -- the limits: raw redis-py ---------------------------------------------------------------------


async def raw_round_trip() -> float:
    from redis.asyncio import Redis

    client = Redis.from_url(URL)
    key = f"bench-raw-{uuid.uuid4().hex[:12]}"
    count = 0

    async def batch() -> int:
        nonlocal count
        for _ in range(20):
            await client.lpush(key, msgpack.packb(message(count)))
            popped = await client.brpop([key], timeout=5)
            if popped is None or msgpack.unpackb(popped[1])["n"] != count:
                raise DeliveryError(1, f"raw round trip #{count} got {popped!r}")
            count += 1
        return 20

    try:
        return await measure_rate(batch, clock=WALL, min_time=0.4)
    finally:
        await client.delete(key)
        await client.aclose()


async def raw_fanout(members: int) -> float:
    """Normal channels: one list per member, LPUSHed in one pipeline."""
    from redis.asyncio import Redis

    client = Redis.from_url(URL)
    prefix = f"bench-raw-{uuid.uuid4().hex[:12]}"
    names = [f"{prefix}.{index}" for index in range(members)]

    async def group_send(n: int) -> None:
        payload = msgpack.packb(message(n))
        async with client.pipeline(transaction=False) as pipe:
            for name in names:
                _ = pipe.lpush(name, payload)
            await pipe.execute()

    async def receive(name: str) -> dict[str, Any]:
        popped = await client.rpop(name)
        if popped is None:
            raise DeliveryError(1, f"raw fan-out: {name} empty")
        return dict(msgpack.unpackb(popped))

    try:
        return await _fanout(members, names, group_send, receive, 10 if members < 1000 else 4)
    finally:
        await client.delete(*names)
        await client.aclose()


async def raw_fanout_specific(members: int) -> float:
    """Process-specific channels: every member's copy goes to the one process list.

    Each copy names its channel (as the layers do), so all go in one LPUSH.
    """
    from redis.asyncio import Redis

    client = Redis.from_url(URL)
    key = f"bench-raw-{uuid.uuid4().hex[:12]}!"
    names = [f"{key}{index}" for index in range(members)]
    inbox: dict[str, list[dict[str, Any]]] = {name: [] for name in names}

    async def group_send(n: int) -> None:
        await client.lpush(key, *(msgpack.packb({**message(n), "c": name}) for name in names))

    async def receive(name: str) -> dict[str, Any]:
        while not inbox[name]:
            popped = await client.rpop(key)
            if popped is None:
                raise DeliveryError(1, f"raw fan-out: nothing for {name}")
            message = dict(msgpack.unpackb(popped))
            inbox[message["c"]].append(message)
        return inbox[name].pop(0)

    try:
        return await _fanout(members, names, group_send, receive, 10 if members < 1000 else 4)
    finally:
        await client.delete(key)
        await client.aclose()


async def raw_publish_round_trip() -> float:
    from redis.asyncio import Redis

    client = Redis.from_url(URL)
    pubsub = client.pubsub()
    channel = f"bench-raw-{uuid.uuid4().hex[:12]}"
    await pubsub.subscribe(channel)
    await pubsub.get_message(timeout=1)  # the subscribe confirmation
    count = 0

    async def batch() -> int:
        nonlocal count
        for _ in range(20):
            await client.publish(channel, msgpack.packb(message(count)))
            got = await pubsub.get_message(ignore_subscribe_messages=True, timeout=5)
            if got is None or msgpack.unpackb(got["data"])["n"] != count:
                raise DeliveryError(1, f"raw publish #{count} got {got!r}")
            count += 1
        return 20

    try:
        return await measure_rate(batch, clock=WALL, min_time=0.4)
    finally:
        await pubsub.aclose()  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated
        await client.aclose()


# -- entry point -----------------------------------------------------------------------------


async def run_layer(report: Report) -> None:
    await report.run("redis.round_trip", "ops/s", lambda: layer_round_trip(False))
    await report.run("redis.round_trip_specific", "ops/s", lambda: layer_round_trip(True))
    await report.run(f"redis.concurrent_{CONCURRENT}", "msgs/s", layer_concurrent)
    for members in FANOUT_SIZES:
        for specific in (False, True):
            kind = "specific" if specific else "normal"
            await report.run(
                f"redis.fanout_{members}_{kind}",
                "sends/s",
                partial(layer_fanout, members, specific),
            )
    await report.run("pubsub.round_trip", "ops/s", pubsub_round_trip)
    for members in FANOUT_SIZES:
        await report.run(
            f"pubsub.fanout_{members}", "deliveries/s", partial(pubsub_fanout, members)
        )
    await report.run("pubsub.overload", "% delivered", pubsub_overload)


async def run_limits(report: Report) -> None:
    await report.run("redis.round_trip", "ops/s", raw_round_trip)
    await report.run("redis.round_trip_specific", "ops/s", raw_round_trip)
    await report.run("pubsub.round_trip", "ops/s", raw_publish_round_trip)
    for members in FANOUT_SIZES:
        await report.run(f"redis.fanout_{members}_normal", "sends/s", partial(raw_fanout, members))
        await report.run(
            f"redis.fanout_{members}_specific", "sends/s", partial(raw_fanout_specific, members)
        )


if __name__ == "__main__":
    run_suite(run_layer, run_limits)
