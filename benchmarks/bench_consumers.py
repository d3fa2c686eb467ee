"""Consumers in process, driven through ``channels.testing.WebsocketCommunicator``.

Async echo, JSON echo, sync echo (``WebsocketConsumer``, run in a thread by
asgiref) and one group broadcast to 200 connected consumers on the in-memory
layer. Times are CPU time of this process (every thread counts), as round
trips or broadcasts per CPU second.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "django_settings")

import django

django.setup()

from _common import DeliveryError, Report, measure_rate, run_suite  # noqa: E402
from consumers import AsyncEcho, BroadcastMember, JsonEcho, SyncEcho  # noqa: E402

from channels.testing import WebsocketCommunicator  # noqa: E402

__all__: list[str] = []  # a script: run as a file by benchmarks.run

MEMBERS = 200


async def _echo(app: Any, json: bool) -> float:
    communicator = WebsocketCommunicator(app, "/echo/")
    connected, _ = await communicator.connect()
    if not connected:
        raise DeliveryError(1, "the echo consumer refused the connection")
    count = 0

    async def batch() -> int:
        nonlocal count
        for _ in range(100):
            if json:
                await communicator.send_json_to({"n": count, "text": "hello"})
                got: object = (await communicator.receive_json_from())["n"]
            else:
                await communicator.send_to(text_data=str(count))
                got = await communicator.receive_from()
            if got not in (count, str(count)):
                raise DeliveryError(1, f"sent #{count}, echoed {got!r}")
            count += 1
        return 100

    try:
        return await measure_rate(batch)
    finally:
        await communicator.disconnect()


async def broadcast() -> float:
    app = BroadcastMember.as_asgi()
    communicators = [WebsocketCommunicator(app, "/broadcast/") for _ in range(MEMBERS)]
    for communicator in communicators:
        connected, _ = await communicator.connect()
        if not connected:
            raise DeliveryError(MEMBERS, "a broadcast member refused the connection")
    count = 0

    async def batch() -> int:
        nonlocal count
        await communicators[0].send_to(text_data=str(count))
        for index, communicator in enumerate(communicators):
            got = await communicator.receive_from()
            if got != str(count):
                raise DeliveryError(1, f"member {index} expected #{count}, got {got!r}")
        count += 1
        return 1

    try:
        return await measure_rate(batch)
    finally:
        await asyncio.gather(*(communicator.disconnect() for communicator in communicators))


async def run(report: Report) -> None:
    workloads: list[tuple[str, Callable[[], Awaitable[float]]]] = [
        ("consumer.async_echo", lambda: _echo(AsyncEcho.as_asgi(), json=False)),
        ("consumer.json_echo", lambda: _echo(JsonEcho.as_asgi(), json=True)),
        ("consumer.sync_echo", lambda: _echo(SyncEcho.as_asgi(), json=False)),
    ]
    for name, body in workloads:
        await report.run(name, "round trips/s", body)
    await report.run(f"consumer.broadcast_{MEMBERS}", "broadcasts/s", broadcast)


if __name__ == "__main__":
    run_suite(run)
