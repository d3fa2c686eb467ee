"""In-memory layer: send+receive cost with few and with many idle channels.

Run: ``.venv/bin/python -m benchmarks.layers``. Prints microseconds per
send+receive round trip on one channel while 10 and while 100,000 other
channels sit idle, each holding one queued message and one group membership.
The two figures should stay close: no operation scans all channels.

Times are CPU time of this process (``time.process_time``), so other work on
the machine does not skew the ratio; runs of the two cases alternate and the
medians are compared.
"""

from __future__ import annotations

import asyncio
import statistics
import time

from channels.layers import InMemoryChannelLayer

ROUNDS = 20_000
REPEATS = 7


async def _layer_with_idle_channels(idle: int) -> InMemoryChannelLayer:
    layer = InMemoryChannelLayer(capacity=100)
    for index in range(idle):
        name = f"idle.{index}"
        await layer.send(name, {"type": "idle", "n": index})
        await layer.group_add(f"group{index % 100}", name)
    return layer


async def _round_trips(layer: InMemoryChannelLayer, channel: str) -> float:
    message = {"type": "chat.message", "text": "hello", "n": 1}
    start = time.process_time()
    for _ in range(ROUNDS):
        await layer.send(channel, message)
        await layer.receive(channel)
    return (time.process_time() - start) / ROUNDS * 1e6


async def main() -> None:
    layers = {idle: await _layer_with_idle_channels(idle) for idle in (10, 100_000)}
    channels = {idle: await layer.new_channel() for idle, layer in layers.items()}
    samples: dict[int, list[float]] = {idle: [] for idle in layers}
    for _ in range(REPEATS):
        for idle, layer in layers.items():
            samples[idle].append(await _round_trips(layer, channels[idle]))
    few = statistics.median(samples[10])
    many = statistics.median(samples[100_000])
    print(f"send+receive, 10 idle channels:      {few:7.2f} us/op (CPU, median of {REPEATS})")
    print(f"send+receive, 100,000 idle channels: {many:7.2f} us/op (CPU, median of {REPEATS})")
    print(f"ratio many/few: {many / few:.2f} (target <= 1.5)")


if __name__ == "__main__":
    asyncio.run(main())
