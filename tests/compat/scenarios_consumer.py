"""Scenarios: AsyncConsumer and SyncConsumer dispatch, as_asgi() and get_handler_name."""

from __future__ import annotations

from typing import Any

from asgiref.sync import async_to_sync

from channels.consumer import AsyncConsumer, SyncConsumer, get_handler_name
from channels.exceptions import StopConsumer
from channels.layers import get_channel_layer

from ._harness import Observation, drive, raised, scenario

WEBSOCKET: dict[str, object] = {"type": "websocket", "path": "/", "headers": []}
CONNECT = {"type": "websocket.connect"}
DISCONNECT = {"type": "websocket.disconnect", "code": 1000}


@scenario
def handler_names() -> Observation:
    """The method name a message type maps to, and what is refused."""
    seen: dict[str, Observation] = {}
    for message_type in ["chat.message", "a.b.c", "_private", "x._y", "trailing."]:
        try:
            seen[message_type] = get_handler_name({"type": message_type})
        except Exception as exc:
            seen[message_type] = raised(exc)
    try:
        get_handler_name({"text": "no type"})
    except Exception as exc:
        seen["missing"] = raised(exc)
    return seen


class Echo(AsyncConsumer):
    async def websocket_connect(self, message: Any) -> None:
        await self.send({"type": "websocket.accept"})

    async def websocket_receive(self, message: Any) -> None:
        await self.send({"type": "websocket.send", "text": message.get("text")})

    async def websocket_disconnect(self, message: Any) -> None:
        raise StopConsumer


class SyncEcho(SyncConsumer):
    def websocket_connect(self, message: Any) -> None:
        self.send({"type": "websocket.accept"})

    def websocket_receive(self, message: Any) -> None:
        for n in range(3):
            self.send({"type": "websocket.send", "text": f"{message.get('text')} {n}"})

    def websocket_disconnect(self, message: Any) -> None:
        raise StopConsumer


@scenario
async def async_consumer_dispatches_by_type() -> Observation:
    """Events go to the method named after their type; StopConsumer ends it."""
    frame = {"type": "websocket.receive", "text": "hi"}
    return await drive(Echo.as_asgi(), dict(WEBSOCKET), [CONNECT, frame, DISCONNECT])


@scenario
async def sync_consumer_dispatches_by_type() -> Observation:
    """Sync handlers' sends go out in order."""
    frames = [{"type": "websocket.receive", "text": t} for t in ("a", "b")]
    return await drive(SyncEcho.as_asgi(), dict(WEBSOCKET), [CONNECT, *frames, DISCONNECT])


@scenario
async def unknown_message_type_fails() -> Observation:
    """An event no method handles ends the application with an error."""
    results: dict[str, Observation] = {}
    for consumer in (Echo, SyncEcho):
        results[consumer.__name__] = await drive(
            consumer.as_asgi(), dict(WEBSOCKET), [CONNECT, {"type": "chat.unknown"}]
        )
    return results


@scenario
async def private_message_type_fails() -> Observation:
    """A type naming a private method is refused, not dispatched."""
    return await drive(Echo.as_asgi(), dict(WEBSOCKET), [CONNECT, {"type": "_private"}])


@scenario
def as_asgi_carries_class_and_kwargs() -> Observation:
    """What routes and libraries read on the application as_asgi() returns."""

    class Documented(AsyncConsumer):
        """The docstring."""

    app = Documented.as_asgi()
    return {
        "consumer_class": app.consumer_class is Documented,
        "consumer_initkwargs": dict(app.consumer_initkwargs),
        "name": app.__name__,
        "qualname_ends": app.__qualname__.endswith("Documented"),
        "doc": app.__doc__,
        "module": app.__module__ == __name__,
    }


class WithSchema(AsyncConsumer):
    def __init__(self, schema: str, *args: Any, **kwargs: Any) -> None:
        self.schema = schema
        self.extra = kwargs

    async def websocket_connect(self, message: Any) -> None:
        await self.send({"type": "websocket.accept", "subprotocol": self.schema})
        await self.send({"type": "websocket.send", "text": repr(sorted(self.extra))})
        raise StopConsumer


@scenario
async def as_asgi_keywords_reach_init() -> Observation:
    """as_asgi() keywords are the consumer's __init__ arguments."""
    app = WithSchema.as_asgi(schema="graphql", debug=True)
    return await drive(app, dict(WEBSOCKET), [CONNECT])


@scenario
async def as_asgi_keywords_init_cannot_take() -> Observation:
    """A keyword that __init__ cannot take fails with TypeError (early or at connect)."""
    try:
        app = Echo.as_asgi(colour="red")
    except TypeError as exc:
        return {"at": "as_asgi", "error": raised(exc)}
    result = await drive(app, dict(WEBSOCKET), [CONNECT])
    return {"at": "connect", "error": result["ended"]}


@scenario
async def instance_is_an_application() -> Observation:
    """A consumer instance can be called as the ASGI application itself."""
    return await drive(Echo(), dict(WEBSOCKET), [CONNECT, DISCONNECT])


class Grouped(AsyncConsumer):
    async def websocket_connect(self, message: Any) -> None:
        await self.channel_layer.group_add("scenario-room", self.channel_name)
        await self.send({"type": "websocket.accept"})
        layer = get_channel_layer()
        assert layer is not None
        await layer.group_send("scenario-room", {"type": "room.message", "text": "hello"})

    async def room_message(self, event: Any) -> None:
        await self.send({"type": "websocket.send", "text": event["text"]})
        await self.channel_layer.group_discard("scenario-room", self.channel_name)
        raise StopConsumer


@scenario
async def layer_messages_reach_handlers() -> Observation:
    """A group_send reaches the member's handler; what the consumer exposes about its layer."""
    consumer = Grouped()
    result = await drive(consumer, dict(WEBSOCKET), [CONNECT])
    return {
        "result": result,
        "specific": consumer.channel_name.startswith("specific."),
        "process_specific": "!" in consumer.channel_name,
        "layer_is_default": consumer.channel_layer is get_channel_layer(),
        "has_channel_receive": callable(getattr(consumer, "channel_receive", None)),
    }


class Routing(AsyncConsumer):
    async def dispatch(self, message: Any) -> None:
        if message["type"] == "custom.kind":
            await self.send({"type": "websocket.send", "text": "routed"})
            raise StopConsumer
        await super().dispatch(message)

    async def websocket_connect(self, message: Any) -> None:
        await self.send({"type": "websocket.accept"})


@scenario
async def overridden_dispatch_routes_its_own_types() -> Observation:
    """A dispatch override sees every event first."""
    return await drive(Routing.as_asgi(), dict(WEBSOCKET), [CONNECT, {"type": "custom.kind"}])


class SyncSendsRaw(SyncConsumer):
    def websocket_connect(self, message: Any) -> None:
        self.base_send({"type": "websocket.accept"})
        raise StopConsumer


@scenario
async def sync_base_send_is_callable_from_a_handler() -> Observation:
    """A sync consumer's base_send is a plain callable in its handlers."""
    return await drive(SyncSendsRaw.as_asgi(), dict(WEBSOCKET), [CONNECT])


def _group_send_from_sync_code() -> None:
    layer = get_channel_layer()
    assert layer is not None
    async_to_sync(layer.group_send)("signals", {"type": "model.saved", "pk": 7})


class Listener(AsyncConsumer):
    async def websocket_connect(self, message: Any) -> None:
        await self.channel_layer.group_add("signals", self.channel_name)
        await self.send({"type": "websocket.accept"})

    async def model_saved(self, event: Any) -> None:
        await self.send({"type": "websocket.send", "text": f"saved {event['pk']}"})
        raise StopConsumer


@scenario
async def group_send_from_a_signal_handler() -> Observation:
    """Sync code (a model signal) sends to a group with async_to_sync."""
    from asgiref.sync import sync_to_async

    consumer = Listener()
    sent: list[Observation] = []
    inbox: Any = __import__("asyncio").Queue()
    inbox.put_nowait(CONNECT)

    async def send(event: Any) -> None:
        sent.append(dict(event))
        if event["type"] == "websocket.accept":
            await sync_to_async(_group_send_from_sync_code)()

    await consumer(dict(WEBSOCKET), inbox.get, send)
    return sent
