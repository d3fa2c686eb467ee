"""Scenarios: Worker driving a ChannelNameRouter over the in-memory layer."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from channels.consumer import AsyncConsumer, SyncConsumer
from channels.layers import InMemoryChannelLayer, get_channel_layer
from channels.routing import ChannelNameRouter
from channels.worker import Worker

from ._harness import Observation, raised, scenario


async def _stop(task: asyncio.Task[Any]) -> None:
    """Stop a running ``Worker.handle()``: it serves until cancelled."""
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


@scenario
async def worker_runs_consumers_per_channel() -> Observation:
    """Each channel's messages reach one consumer instance, in order, with a channel scope."""
    done: asyncio.Queue[Observation] = asyncio.Queue()

    class Thumbnails(AsyncConsumer):
        instances = 0

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            Thumbnails.instances += 1

        async def thumbnail_make(self, message: dict[str, Any]) -> None:
            done.put_nowait(["thumbnails", message["id"], sorted(self.scope)])

    class Mail(SyncConsumer):
        def mail_send(self, message: dict[str, Any]) -> None:
            done.put_nowait(["mail", message["to"], dict(self.scope)])

    layer = InMemoryChannelLayer()
    router = ChannelNameRouter({"thumbnails": Thumbnails.as_asgi(), "mail": Mail.as_asgi()})
    for number in range(3):
        await layer.send("thumbnails", {"type": "thumbnail.make", "id": number})
    await layer.send("mail", {"type": "mail.send", "to": "ada"})
    worker = Worker(router, ["thumbnails", "mail"], layer)
    running = asyncio.create_task(worker.handle())
    results = [await done.get() for _ in range(4)]
    await layer.send("thumbnails", {"type": "thumbnail.make", "id": 3})
    results.append(await done.get())
    await _stop(running)
    return {
        "thumbnails": [result for result in results if result[0] == "thumbnails"],  # type: ignore[index]  # each is a list
        "mail": [result for result in results if result[0] == "mail"],  # type: ignore[index]  # each is a list
        "instances": Thumbnails.instances,
        "attributes": [worker.application is router, list(worker.channels)],
    }


@scenario
async def worker_consumer_uses_the_layer() -> Observation:
    """A worker's consumer replies through its own channel layer: the configured default."""
    default = get_channel_layer()
    assert default is not None
    seen: dict[str, Observation] = {}

    class Echo(AsyncConsumer):
        async def echo_request(self, message: dict[str, Any]) -> None:
            assert self.channel_layer is not None
            seen["consumer-layer-is-default"] = self.channel_layer is default
            seen["has-channel-name"] = bool(getattr(self, "channel_name", None))
            await self.channel_layer.send(message["reply_to"], {"type": "echo.reply", "n": 1})

    layer = InMemoryChannelLayer()
    reply_to = await default.new_channel()
    running = asyncio.create_task(
        Worker(ChannelNameRouter({"echo": Echo.as_asgi()}), ["echo"], layer).handle()
    )
    await layer.send("echo", {"type": "echo.request", "reply_to": reply_to})
    seen["reply"] = await default.receive(reply_to)
    await _stop(running)
    return seen


@scenario
async def worker_message_without_type() -> Observation:
    """A message with no ``type`` on the only channel ends handle() with an error."""
    layer = InMemoryChannelLayer()
    await layer.send("jobs", {"text": "no type"})

    async def noop(scope: Any, receive: Any, send: Any) -> None:
        pass

    try:
        await asyncio.wait_for(Worker(noop, ["jobs"], layer).handle(), timeout=5)
    except Exception as exc:
        return raised(exc)
    return "returned"


@scenario
async def worker_application_cannot_send() -> Observation:
    """An application run by a worker calls send(): what it gets."""
    outcome: asyncio.Queue[Observation] = asyncio.Queue()

    async def replying(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        try:
            await send({"type": "websocket.send", "text": "hi"})
            outcome.put_nowait("sent")
        except Exception as exc:
            outcome.put_nowait(raised(exc))

    layer = InMemoryChannelLayer()
    await layer.send("jobs", {"type": "job"})
    running = asyncio.create_task(Worker(replying, ["jobs"], layer).handle())
    result = await outcome.get()
    await _stop(running)
    return result


@scenario
def worker_construction() -> Observation:
    """Building a Worker: upstream's keywords, and no layer."""

    async def noop(scope: Any, receive: Any, send: Any) -> None:
        pass

    layer = InMemoryChannelLayer()
    seen: dict[str, Observation] = {}
    worker = Worker(application=noop, channels=["a", "b"], channel_layer=layer, max_applications=3)
    seen["keywords"] = [
        worker.application is noop,
        list(worker.channels),
        worker.channel_layer is layer,
        worker.max_applications,
    ]
    try:
        Worker(noop, ["a"], None)
        seen["no-layer"] = "built"
    except Exception as exc:
        seen["no-layer"] = raised(exc)
    return seen


@scenario
async def worker_subclass_application_send() -> Observation:
    """A Worker subclass overrides application_send to take what its applications send."""
    sent: asyncio.Queue[Observation] = asyncio.Queue()

    class Forwarding(Worker):
        async def application_send(self, scope: Any, message: Any) -> None:
            sent.put_nowait({"scope": dict(scope), "message": dict(message)})

    async def replying(scope: Any, receive: Any, send: Any) -> None:
        message = await receive()
        await send({"type": "job.done", "id": message["id"]})

    layer = InMemoryChannelLayer()
    await layer.send("jobs", {"type": "job", "id": 7})
    running = asyncio.create_task(Forwarding(replying, ["jobs"], layer).handle())
    result = await sent.get()
    await _stop(running)
    return result
