from __future__ import annotations

import asyncio
import contextlib
import contextvars
import threading
from collections.abc import AsyncIterator

import pytest
from asgiref.sync import sync_to_async
from django.db import connection, connections
from django.db.backends.signals import connection_created
from django.test import override_settings
from typing_extensions import TypedDict

from channels.consumer import AsyncConsumer, ConsumerApplication, SyncConsumer, get_handler_name
from channels.exceptions import InvalidChannelLayerError, StopConsumer
from channels.layers import InMemoryChannelLayer, get_channel_layer
from channels.testing import ApplicationCommunicator
from channels.types import ASGIApplication, Event, ReceivedEvent, ReceivedMessage, Scope

SCOPE: Scope = {"type": "websocket", "path": "/"}
CONNECT: Event = {"type": "websocket.connect"}


class ChatEvent(TypedDict):
    type: str
    text: str


class EchoConsumer(AsyncConsumer):
    """Accepts, echoes client text and layer chat messages, and stops on disconnect."""

    async def websocket_connect(self, message: ReceivedMessage) -> None:
        await self.send({"type": "websocket.accept"})

    async def websocket_receive(self, message: ReceivedMessage) -> None:
        await self.send({"type": "websocket.send", "text": message["text"]})

    async def chat_message(self, event: ChatEvent) -> None:
        await self.send({"type": "websocket.send", "text": event["text"]})

    async def websocket_disconnect(self, message: ReceivedMessage) -> None:
        raise StopConsumer


async def connected(consumer: AsyncConsumer) -> ApplicationCommunicator:
    """Run ``consumer`` and return its communicator once it has accepted."""
    communicator = ApplicationCommunicator(consumer, dict(SCOPE))
    await communicator.send_input(CONNECT)
    assert await communicator.receive_output() == {"type": "websocket.accept"}
    return communicator


class TestGetHandlerName:
    @pytest.mark.parametrize(
        ("message_type", "name"),
        [
            pytest.param("websocket.connect", "websocket_connect", id="one-dot"),
            pytest.param("chat.room.message", "chat_room_message", id="two-dots"),
            pytest.param("ping", "ping", id="no-dot"),
            pytest.param("chat_message", "chat_message", id="underscore-inside"),
        ],
    )
    def test_dots_become_underscores(self, message_type: str, name: str) -> None:
        assert get_handler_name({"type": message_type}) == name

    @pytest.mark.parametrize(
        ("message", "error"),
        [
            pytest.param(
                {"text": "hi"}, r"message has no 'type' key.*got .*\['text'\]", id="no-type"
            ),
            pytest.param({"type": 3}, r"message type must be a string.*got 3", id="not-a-string"),
            pytest.param({"type": "_secret"}, r"must not start.*got '_secret'", id="underscore"),
            pytest.param({"type": ".secret"}, r"must not start.*got '.secret'", id="dot"),
        ],
    )
    def test_rejects_unusable_types(self, message: dict[str, object], error: str) -> None:
        with pytest.raises(ValueError, match=error):
            get_handler_name(message)


class TestDispatch:
    async def test_client_events_go_to_the_method_named_after_their_type(self) -> None:
        communicator = await connected(EchoConsumer())
        await communicator.send_input({"type": "websocket.receive", "text": "hello"})
        assert await communicator.receive_output() == {"type": "websocket.send", "text": "hello"}
        await communicator.send_input({"type": "websocket.disconnect", "code": 1000})
        await communicator.wait()

    async def test_layer_messages_to_its_channel_are_dispatched_too(self) -> None:
        consumer = EchoConsumer()
        communicator = await connected(consumer)
        event: ChatEvent = {"type": "chat.message", "text": "from the layer"}
        await consumer.channel_layer.send(consumer.channel_name, event)
        assert await communicator.receive_output() == {
            "type": "websocket.send",
            "text": "from the layer",
        }
        communicator.stop()

    @pytest.mark.parametrize(
        ("message", "error"),
        [
            pytest.param(
                {"type": "chat.unknown"},
                r"EchoConsumer has no handler for message type 'chat.unknown': "
                r"define a method named 'chat_unknown'",
                id="no-method",
            ),
            pytest.param(
                {"type": "channel_layer_alias"},
                r"EchoConsumer has no handler for message type 'channel_layer_alias'",
                id="attribute-not-a-method",
            ),
            pytest.param(
                {"text": "hi"},
                r"EchoConsumer cannot dispatch a message: message has no 'type' key",
                id="no-type",
            ),
            pytest.param(
                {"type": "_private"},
                r"EchoConsumer cannot dispatch a message: .*got '_private'",
                id="leading-underscore",
            ),
        ],
    )
    async def test_unhandled_messages_fail_naming_type_and_consumer(
        self, message: Event, error: str
    ) -> None:
        communicator = await connected(EchoConsumer())
        await communicator.send_input(message)
        with pytest.raises(ValueError, match=error):
            await communicator.wait()

    async def test_dispatch_can_be_overridden_to_route_messages(self) -> None:
        class Routing(EchoConsumer):
            async def dispatch(self, message: ReceivedMessage) -> None:
                if message["type"] == "room.event":
                    message = {"type": "chat.message", "text": f"routed {message['text']}"}
                await super().dispatch(message)

        consumer = Routing()
        communicator = await connected(consumer)
        await consumer.channel_layer.send(
            consumer.channel_name, {"type": "room.event", "text": "hi"}
        )
        assert await communicator.receive_output() == {
            "type": "websocket.send",
            "text": "routed hi",
        }
        communicator.stop()

    async def test_stop_consumer_ends_it_cleanly(self) -> None:
        communicator = await connected(EchoConsumer())
        await communicator.send_input({"type": "websocket.disconnect", "code": 1000})
        await communicator.wait()
        assert communicator.future.done()
        assert communicator.future.exception() is None

    async def test_other_exceptions_propagate(self) -> None:
        class Failing(EchoConsumer):
            async def websocket_receive(self, message: ReceivedMessage) -> None:
                raise RuntimeError("handler broke")

        communicator = await connected(Failing())
        await communicator.send_input({"type": "websocket.receive", "text": "x"})
        with pytest.raises(RuntimeError, match="handler broke"):
            await communicator.wait()

    async def test_the_scope_is_the_one_the_server_passed(self) -> None:
        consumer = EchoConsumer()
        scope: Scope = {"type": "websocket", "path": "/", "url_route": {"args": (), "kwargs": {}}}
        communicator = ApplicationCommunicator(consumer, scope)
        await communicator.send_input(CONNECT)
        await communicator.receive_output()
        assert consumer.scope is scope
        assert consumer.scope["url_route"]["kwargs"] == {}
        communicator.stop()


class Recorder(EchoConsumer):
    """An EchoConsumer that records itself in the ``seen`` list its __init__ takes."""

    def __init__(self, seen: list[AsyncConsumer]) -> None:
        self.seen = seen

    async def websocket_connect(self, message: ReceivedMessage) -> None:
        self.seen.append(self)
        await super().websocket_connect(message)


class TestAsAsgi:
    async def test_builds_one_consumer_per_connection_with_the_initkwargs(self) -> None:
        seen: list[AsyncConsumer] = []
        app = Recorder.as_asgi(seen=seen)
        for _ in range(2):
            communicator = ApplicationCommunicator(app, dict(SCOPE))
            await communicator.send_input(CONNECT)
            await communicator.receive_output()
            communicator.stop()
        assert len(seen) == 2
        assert seen[0] is not seen[1]
        assert all(type(consumer) is Recorder for consumer in seen)

    def test_carries_the_class_and_initkwargs(self) -> None:
        seen: list[AsyncConsumer] = []
        app = Recorder.as_asgi(seen=seen)
        assert isinstance(app, ConsumerApplication)
        assert app.consumer_class is Recorder
        assert app.consumer_initkwargs == {"seen": seen}

    def test_takes_the_class_name_and_docstring(self) -> None:
        app = Recorder.as_asgi()
        assert app.__name__ == "Recorder"
        assert app.__qualname__ == "Recorder"
        assert app.__module__ == __name__
        assert app.__doc__ == Recorder.__doc__
        assert repr(app) == f"<ConsumerApplication for {__name__}.Recorder>"

    def test_refuses_a_keyword_that_init_cannot_take(self) -> None:
        with pytest.raises(
            TypeError,
            match=r"Recorder.as_asgi\(\) passes its keywords to Recorder.__init__, which takes "
            r"the keywords \['seen'\]; got unknown \['room', 'colour'\]",
        ):
            Recorder.as_asgi(room="lobby", seen=[], colour="red")

    def test_refuses_any_keyword_when_init_takes_none(self) -> None:
        with pytest.raises(TypeError, match=r"which takes no keywords; got unknown \['seen'\]"):
            EchoConsumer.as_asgi(seen=[])

    async def test_hands_keywords_to_an_init_with_positional_and_variadic_parameters(
        self,
    ) -> None:
        class Schema(AsyncConsumer):
            """Like strawberry's consumers: a required parameter, then *args and **kwargs."""

            def __init__(self, schema: str, *args: object, **kwargs: object) -> None:
                self.schema = schema
                self.extra = kwargs

            async def websocket_connect(self, message: ReceivedMessage) -> None:
                await self.send({"type": "websocket.accept", "subprotocol": self.schema})
                await self.send({"type": "websocket.send", "text": repr(self.extra)})

        communicator = ApplicationCommunicator(
            Schema.as_asgi(schema="graphql", debug=True), dict(SCOPE)
        )
        await communicator.send_input(CONNECT)
        assert await communicator.receive_output() == {
            "type": "websocket.accept",
            "subprotocol": "graphql",
        }
        assert await communicator.receive_output() == {
            "type": "websocket.send",
            "text": "{'debug': True}",
        }
        communicator.stop()

    async def test_hands_keywords_to_an_init_with_only_variadic_keywords(self) -> None:
        class Options(AsyncConsumer):
            def __init__(self, **options: object) -> None:
                self.options = options

        app = Options.as_asgi(anything=1, at_all="yes")
        assert app.consumer_initkwargs == {"anything": 1, "at_all": "yes"}
        assert app.consumer_class(**app.consumer_initkwargs).options == {
            "anything": 1,
            "at_all": "yes",
        }

    async def test_a_consumer_instance_is_an_asgi_application(self) -> None:
        app: ASGIApplication = EchoConsumer()
        communicator = ApplicationCommunicator(app, dict(SCOPE))
        await communicator.send_input(CONNECT)
        assert await communicator.receive_output() == {"type": "websocket.accept"}
        communicator.stop()


class TestChannelLayer:
    async def test_uses_the_default_alias_and_gets_a_channel(self) -> None:
        consumer = EchoConsumer()
        communicator = await connected(consumer)
        assert consumer.channel_layer is get_channel_layer()
        assert consumer.channel_name.startswith("specific.")
        communicator.stop()

    @override_settings(CHANNEL_LAYERS={})
    async def test_works_without_a_layer_until_it_is_read(self) -> None:
        consumer = EchoConsumer()
        communicator = await connected(consumer)
        await communicator.send_input({"type": "websocket.receive", "text": "still works"})
        assert await communicator.receive_output() == {
            "type": "websocket.send",
            "text": "still works",
        }
        assert not hasattr(consumer, "channel_name")
        with pytest.raises(
            InvalidChannelLayerError,
            match=r"EchoConsumer uses the channel layer 'default', but CHANNEL_LAYERS has no "
            r"such alias: configure it in settings, for example CHANNEL_LAYERS = "
            r"\{'default': \{'BACKEND': 'channels.layers.InMemoryChannelLayer'\}\}",
        ):
            consumer.channel_layer  # noqa: B018 - reading is the point
        communicator.stop()

    async def test_an_assigned_layer_is_used(self) -> None:
        layer = InMemoryChannelLayer()
        consumer = EchoConsumer()
        consumer.channel_layer = layer
        communicator = await connected(consumer)
        assert consumer.channel_layer is layer
        await layer.send(consumer.channel_name, {"type": "chat.message", "text": "assigned"})
        assert await communicator.receive_output() == {"type": "websocket.send", "text": "assigned"}
        communicator.stop()


class SyncEcho(SyncConsumer):
    """Echoes client text from a worker thread, saying which thread it ran in."""

    def websocket_connect(self, message: ReceivedMessage) -> None:
        self.send({"type": "websocket.accept"})

    def websocket_receive(self, message: ReceivedMessage) -> None:
        self.send({"type": "websocket.send", "text": message["text"], "thread": _thread()})

    def chat_message(self, event: ChatEvent) -> None:
        self.send({"type": "websocket.send", "text": event["text"]})

    def websocket_disconnect(self, message: ReceivedMessage) -> None:
        raise StopConsumer


class SyncBurst(SyncConsumer):
    """Sends as many frames as the client's text says, numbered, from one handler."""

    def websocket_connect(self, message: ReceivedMessage) -> None:
        self.send({"type": "websocket.accept"})

    def websocket_receive(self, message: ReceivedMessage) -> None:
        for n in range(int(message["text"])):
            self.send({"type": "websocket.send", "text": str(n)})


def _thread() -> int:
    return threading.get_ident()


class TestSyncConsumer:
    async def test_handlers_run_in_a_thread_and_send_through_the_loop(self) -> None:
        communicator = await connected(SyncEcho())
        await communicator.send_input({"type": "websocket.receive", "text": "hi"})
        event = await communicator.receive_output()
        assert event["text"] == "hi"
        assert event["thread"] != threading.get_ident()
        await communicator.send_input({"type": "websocket.disconnect", "code": 1000})
        await communicator.wait()
        assert communicator.future.exception() is None

    async def test_layer_messages_reach_sync_handlers(self) -> None:
        consumer = SyncEcho()
        communicator = await connected(consumer)
        await consumer.channel_layer.send(
            consumer.channel_name, {"type": "chat.message", "text": "x"}
        )
        assert await communicator.receive_output() == {"type": "websocket.send", "text": "x"}
        communicator.stop()

    async def test_many_sends_from_one_handler_arrive_in_order(self) -> None:
        # More than MAX_UNSENT: the handler waits for room instead of piling up.
        count = 3 * SyncBurst.MAX_UNSENT
        communicator = await connected(SyncBurst())
        await communicator.send_input({"type": "websocket.receive", "text": str(count)})
        texts = [(await communicator.receive_output())["text"] for _ in range(count)]
        assert texts == [str(n) for n in range(count)]
        communicator.stop()

    async def test_a_failed_send_raises_from_the_dispatch(self) -> None:
        inbox: asyncio.Queue[ReceivedEvent] = asyncio.Queue()
        inbox.put_nowait({"type": "websocket.connect"})
        inbox.put_nowait({"type": "websocket.receive", "text": "hi"})

        async def send(event: Event) -> None:
            if event["type"] == "websocket.send":
                raise OSError("the client went away")

        with pytest.raises(OSError, match="the client went away"):
            await SyncEcho.as_asgi()(dict(SCOPE), inbox.get, send)

    async def test_send_from_async_code_is_refused(self) -> None:
        consumer = SyncEcho()
        communicator = await connected(consumer)
        with pytest.raises(
            RuntimeError, match=r"a sync consumer's send\(\) must be called from a handler's thread"
        ):
            consumer.send({"type": "websocket.send", "text": "from the loop"})
        communicator.stop()

    async def test_unhandled_messages_fail_naming_type_and_consumer(self) -> None:
        communicator = await connected(SyncEcho())
        await communicator.send_input({"type": "chat.unknown"})
        with pytest.raises(
            ValueError, match=r"SyncEcho has no handler for message type 'chat.unknown'"
        ):
            await communicator.wait()


# -- database connections ---------------------------------------------------
#
# These run the consumer the way a server does: in its own task and a fresh
# context, without the test tools' keep_old_connections.


class _Server:
    """Run an ASGI application as a server would, recording when it waits for input."""

    def __init__(self, application: ASGIApplication) -> None:
        self.inbox: asyncio.Queue[ReceivedEvent] = asyncio.Queue()
        self.outbox: asyncio.Queue[Event] = asyncio.Queue()
        self.waiting = asyncio.Event()
        # A fresh context, as asgiref's communicator gives: nothing leaks in from the test.
        self.task = contextvars.Context().run(asyncio.create_task, self._run(application))

    async def _run(self, application: ASGIApplication) -> None:
        await application(dict(SCOPE), self._receive, self.outbox.put)

    async def _receive(self) -> ReceivedEvent:
        self.waiting.set()
        return await self.inbox.get()

    async def send(self, event: ReceivedEvent) -> Event:
        """Give the application ``event`` and return the next event it sends."""
        await self.inbox.put(event)
        return await asyncio.wait_for(self.outbox.get(), timeout=5)

    async def cancel(self) -> None:
        """Cancel the application and wait for it to end."""
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task

    async def finish(self) -> None:
        """Disconnect and wait for the application to end."""
        await self.inbox.put({"type": "websocket.disconnect", "code": 1000})
        await asyncio.wait_for(self.task, timeout=5)


def _query() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _holds_connection() -> bool:
    return connection.connection is not None


# The thread that sync_to_async (thread-sensitive) and aclose_old_connections use.
query = sync_to_async(_query)
holds_connection = sync_to_async(_holds_connection)


@pytest.fixture
async def opened() -> AsyncIterator[list[object]]:
    """Record each database connection opened; close the worker thread's connections after."""
    await sync_to_async(connections.close_all)()
    created: list[object] = []

    def record(sender: object, **kwargs: object) -> None:
        created.append(kwargs["connection"])

    connection_created.connect(record)
    try:
        yield created
    finally:
        connection_created.disconnect(record)
        await sync_to_async(connections.close_all)()


class Querying(AsyncConsumer):
    """Runs a query for every event; reports whether the connection survived a send."""

    async def websocket_connect(self, message: ReceivedMessage) -> None:
        await query()
        await self.send({"type": "websocket.accept"})

    async def websocket_receive(self, message: ReceivedMessage) -> None:
        await query()
        await self.send({"type": "websocket.send", "text": "queried"})
        await self.send(
            {"type": "websocket.send", "text": "open" if await holds_connection() else "closed"}
        )

    async def websocket_disconnect(self, message: ReceivedMessage) -> None:
        await query()
        raise StopConsumer


class RoutingQuerying(Querying):
    async def dispatch(self, message: ReceivedMessage) -> None:
        await super().dispatch(message)


class SyncQuerying(SyncConsumer):
    def websocket_connect(self, message: ReceivedMessage) -> None:
        _query()
        self.send({"type": "websocket.accept"})

    def websocket_receive(self, message: ReceivedMessage) -> None:
        _query()
        self.send({"type": "websocket.send", "text": "queried"})

    def websocket_disconnect(self, message: ReceivedMessage) -> None:
        raise StopConsumer


@pytest.mark.django_db(transaction=True)
class TestDatabaseConnections:
    async def test_closes_old_connections_before_handling_a_connection(
        self, opened: list[object]
    ) -> None:
        await query()
        assert await holds_connection()
        server = _Server(Querying.as_asgi())
        try:
            await server.waiting.wait()
            assert not await holds_connection()
        finally:
            await server.cancel()

    @pytest.mark.parametrize(
        "consumer",
        [
            pytest.param(Querying, id="dispatch"),
            pytest.param(RoutingQuerying, id="overridden-dispatch"),
            pytest.param(SyncQuerying, id="sync"),
        ],
    )
    async def test_closes_old_connections_before_each_message(
        self, opened: list[object], consumer: type[AsyncConsumer]
    ) -> None:
        server = _Server(consumer.as_asgi())
        assert await server.send({"type": "websocket.connect"}) == {"type": "websocket.accept"}
        for _ in range(2):
            assert await server.send({"type": "websocket.receive", "text": "x"}) == {
                "type": "websocket.send",
                "text": "queried",
            }
            if consumer is not SyncQuerying:
                await server.outbox.get()
        # One connection per handled event: each was closed before the next.
        assert len(opened) == 3
        await server.finish()

    async def test_never_closes_around_a_send(self, opened: list[object]) -> None:
        server = _Server(Querying.as_asgi())
        await server.send({"type": "websocket.connect"})
        await server.send({"type": "websocket.receive", "text": "x"})
        assert await asyncio.wait_for(server.outbox.get(), timeout=5) == {
            "type": "websocket.send",
            "text": "open",
        }
        await server.finish()

    async def test_closes_old_connections_after_disconnect(self, opened: list[object]) -> None:
        server = _Server(Querying.as_asgi())
        await server.send({"type": "websocket.connect"})
        await server.finish()
        assert len(opened) == 2  # connect, then disconnect
        assert not await holds_connection()


class TestNoThreadHopWithoutConnections:
    async def test_messages_need_no_thread_when_no_connection_was_opened(self) -> None:
        server = _Server(EchoConsumer.as_asgi())
        await server.waiting.wait()
        # Occupy the thread that closing connections would need: a consumer
        # that hopped to it would stall until the gate opens.
        gate = threading.Event()
        blocker = asyncio.ensure_future(sync_to_async(gate.wait)())
        try:
            assert await server.send({"type": "websocket.connect"}) == {"type": "websocket.accept"}
            assert await server.send({"type": "websocket.receive", "text": "quick"}) == {
                "type": "websocket.send",
                "text": "quick",
            }
        finally:
            gate.set()
            await blocker
        await server.finish()
