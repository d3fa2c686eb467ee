"""The ASGI lifespan: ProtocolTypeRouter's hooks, the server side, the worker and runworker."""

from __future__ import annotations

import asyncio
import logging
import signal
import uuid
from collections.abc import AsyncGenerator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import redis
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

from channels.consumer import AsyncConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import InMemoryChannelLayer, channel_layers, get_channel_layer
from channels.lifespan import Lifespan, LifespanFailed, LifespanHook, LifespanState, run_lifespan
from channels.routing import ChannelNameRouter, ProtocolTypeRouter
from channels.testing import ApplicationCommunicator
from channels.types import ASGIApplication, Receive, ReceivedEvent, Scope, Send
from channels.worker import Worker

REDIS_URL = "redis://127.0.0.1:6379"


def lifespan_scope(state: LifespanState | None) -> Scope:
    """The scope uvicorn and hypercorn give: ``state`` absent when ``None``."""
    scope: Scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}}
    if state is not None:
        scope["state"] = state
    return scope


async def answer(communicator: ApplicationCommunicator, phase: str) -> ReceivedEvent:
    """Send ``lifespan.<phase>`` and return the application's answer."""
    await communicator.send_input({"type": f"lifespan.{phase}"})
    return await communicator.receive_output()


async def startup(
    application: ASGIApplication, state: LifespanState | None = None
) -> tuple[ApplicationCommunicator, ReceivedEvent]:
    communicator = ApplicationCommunicator(application, lifespan_scope(state))
    return communicator, await answer(communicator, "startup")


class Journal:
    """Hooks that write what they do, in order, to one list."""

    def __init__(self) -> None:
        self.entries: list[str] = []

    def hook(
        self,
        name: str,
        state: dict[str, Any] | None = None,
        *,
        fail_at: str | None = None,
    ) -> LifespanHook:
        @asynccontextmanager
        async def hook() -> AsyncGenerator[dict[str, Any] | None, None]:
            self.entries.append(f"start {name}")
            if fail_at == "startup":
                raise RuntimeError(f"{name} cannot start")
            yield state
            self.entries.append(f"stop {name}")
            if fail_at == "shutdown":
                raise OSError(f"{name} cannot stop")

        hook.__qualname__ = name
        return hook


class RecordingLayer(InMemoryChannelLayer):
    """An in-memory layer that counts its closes."""

    def __init__(self, **config: Any) -> None:  # Any: CONFIG keywords, passed through
        super().__init__(**config)
        self.closes = 0

    async def close(self) -> None:
        self.closes += 1
        await super().close()


class HoldsNothing:
    """A BACKEND test double without ``close()``: there is nothing to release."""

    def __init__(self, **config: object) -> None:
        self.config = config


class BrokenCloseLayer(InMemoryChannelLayer):
    """An in-memory layer whose close fails."""

    async def close(self) -> None:
        raise OSError("the layer's connection is already gone")


RECORDING = "tests.test_lifespan.RecordingLayer"
BROKEN = "tests.test_lifespan.BrokenCloseLayer"


@pytest.fixture
def recorded_layer() -> Iterator[RecordingLayer]:
    """The default layer, a RecordingLayer, already built (as a first connection would)."""
    with override_settings(CHANNEL_LAYERS={"default": {"BACKEND": RECORDING}}):
        layer = get_channel_layer()
        assert isinstance(layer, RecordingLayer)
        yield layer


class StateEcho(AsyncWebsocketConsumer):
    """Accepts, then sends what it finds under ``scope["state"]["greeting"]``."""

    async def connect(self) -> None:
        await self.accept()
        greeting: str = self.scope["state"]["greeting"]
        await self.send(text_data=greeting)


class TestWithoutHooks:
    async def test_startup_and_shutdown_complete_and_nothing_is_logged(
        self, caplog: pytest.LogCaptureFixture, recorded_layer: RecordingLayer
    ) -> None:
        caplog.set_level(logging.DEBUG)
        router = ProtocolTypeRouter({"websocket": StateEcho.as_asgi()})
        communicator, started = await startup(router, {})
        assert started == {"type": "lifespan.startup.complete"}
        assert await answer(communicator, "shutdown") == {"type": "lifespan.shutdown.complete"}
        await communicator.wait()
        assert recorded_layer.closes == 1
        assert caplog.records == []

    async def test_a_server_without_lifespan_state_is_fine(self) -> None:
        communicator, started = await startup(ProtocolTypeRouter({}), None)
        assert started == {"type": "lifespan.startup.complete"}
        assert await answer(communicator, "shutdown") == {"type": "lifespan.shutdown.complete"}

    async def test_every_layer_the_process_opened_is_closed(self) -> None:
        layers = {alias: {"BACKEND": RECORDING} for alias in ("default", "tasks", "unused")}
        with override_settings(CHANNEL_LAYERS=layers):
            opened = [get_channel_layer("default"), get_channel_layer("tasks")]
            communicator, _ = await startup(ProtocolTypeRouter({}), {})
            assert await answer(communicator, "shutdown") == {"type": "lifespan.shutdown.complete"}
            assert [layer.closes for layer in opened if isinstance(layer, RecordingLayer)] == [1, 1]
            assert list(channel_layers.backends) == ["default", "tasks"]

    async def test_redis_connections_are_released(self) -> None:
        name = f"tc-lifespan-{uuid.uuid4().hex[:12]}"
        config = {"hosts": [{"address": REDIS_URL, "client_name": name}], "prefix": name}
        backend = "channels.layers.redis.RedisChannelLayer"
        with override_settings(CHANNEL_LAYERS={"default": {"BACKEND": backend, "CONFIG": config}}):
            communicator, _ = await startup(ProtocolTypeRouter({}), {})
            layer = get_channel_layer()
            assert layer is not None
            channel = await layer.new_channel()
            await layer.send(channel, {"type": "hello"})
            assert await layer.receive(channel) == {"type": "hello"}
            assert connections_named(name) > 0
            assert await answer(communicator, "shutdown") == {"type": "lifespan.shutdown.complete"}
            assert connections_named(name) == 0

    async def test_a_layer_without_close_is_passed_over(self) -> None:
        layers = {
            "default": {"BACKEND": RECORDING},
            "double": {"BACKEND": "tests.test_lifespan.HoldsNothing"},
        }
        with override_settings(CHANNEL_LAYERS=layers):
            recording = get_channel_layer("default")
            assert isinstance(get_channel_layer("double"), HoldsNothing)
            communicator, _ = await startup(ProtocolTypeRouter({}), {})
            assert await answer(communicator, "shutdown") == {"type": "lifespan.shutdown.complete"}
            assert isinstance(recording, RecordingLayer)
            assert recording.closes == 1

    async def test_a_failing_close_is_reported_after_closing_the_others(self) -> None:
        layers = {"broken": {"BACKEND": BROKEN}, "default": {"BACKEND": RECORDING}}
        with override_settings(CHANNEL_LAYERS=layers):
            get_channel_layer("broken")
            recording = get_channel_layer()
            communicator, _ = await startup(ProtocolTypeRouter({}), {})
            failed = await answer(communicator, "shutdown")
            assert isinstance(recording, RecordingLayer)
            assert recording.closes == 1
        assert failed["type"] == "lifespan.shutdown.failed"
        assert failed["message"].startswith(
            "closing the channel layers raised OSError: the layer's connection is already gone\n"
        )


def connections_named(name: str) -> int:
    client = redis.Redis(host="127.0.0.1", port=6379)
    try:
        clients = client.client_list()  # pyright: ignore[reportUnknownMemberType] -- **kwargs untyped
        return sum(1 for entry in clients if entry.get("name") == name)
    finally:
        client.close()


class TestLifespanApplication:
    async def test_a_lifespan_entry_is_routed_to(self) -> None:
        seen: list[Scope] = []

        async def own_lifespan(scope: Scope, receive: Receive, send: Send) -> None:
            seen.append(scope)
            await receive()
            await send({"type": "lifespan.startup.complete"})

        communicator, started = await startup(ProtocolTypeRouter({"lifespan": own_lifespan}), {})
        assert started == {"type": "lifespan.startup.complete"}
        assert seen == [lifespan_scope({})]
        await communicator.wait()

    def test_hooks_and_a_lifespan_entry_are_refused_together(self) -> None:
        with pytest.raises(TypeError, match=r"^ProtocolTypeRouter takes lifespan hooks or a"):
            ProtocolTypeRouter({"lifespan": Lifespan()}, lifespan=[Journal().hook("a")])

    async def test_lifespan_is_an_application_of_its_own(self) -> None:
        journal = Journal()
        app = Lifespan([journal.hook("a", {"x": 1})])
        state: LifespanState = {}
        communicator, started = await startup(app, state)
        assert (started, state) == ({"type": "lifespan.startup.complete"}, {"x": 1})
        assert await answer(communicator, "shutdown") == {"type": "lifespan.shutdown.complete"}
        assert journal.entries == ["start a", "stop a"]

    async def test_another_scope_type_is_refused(self) -> None:
        with pytest.raises(
            ValueError, match=r"^Lifespan serves the scope of type 'lifespan' only; got 'http'$"
        ):
            await Lifespan()({"type": "http"}, _never_receive, _never_send)

    async def test_an_event_out_of_order_is_refused(self) -> None:
        communicator = ApplicationCommunicator(Lifespan(), lifespan_scope({}))
        await communicator.send_input({"type": "lifespan.shutdown"})
        with pytest.raises(
            ValueError,
            match=r"^Lifespan expected a lifespan.startup event from the server; got "
            r"\{'type': 'lifespan.shutdown'\}$",
        ):
            await communicator.wait()


async def _never_receive() -> ReceivedEvent:
    raise AssertionError("not received")


async def _never_send(event: object) -> None:
    raise AssertionError("not sent")


def _not_a_context_manager() -> int:
    return 3


class TestHooks:
    async def test_hooks_start_in_order_and_stop_in_reverse(self) -> None:
        journal = Journal()
        hooks = [journal.hook(name) for name in ("pool", "client", "cache")]
        communicator, started = await startup(ProtocolTypeRouter({}, lifespan=hooks), {})
        assert started == {"type": "lifespan.startup.complete"}
        assert journal.entries == ["start pool", "start client", "start cache"]
        assert await answer(communicator, "shutdown") == {"type": "lifespan.shutdown.complete"}
        assert journal.entries[3:] == ["stop cache", "stop client", "stop pool"]
        await communicator.wait()

    async def test_what_hooks_yield_reaches_the_state_and_every_connection(self) -> None:
        journal = Journal()
        hooks = [
            journal.hook("greeter", {"greeting": "hello"}),
            journal.hook("quiet", None),
            journal.hook("counter", {"count": 2}),
        ]
        router = ProtocolTypeRouter({"websocket": StateEcho.as_asgi()}, lifespan=hooks)
        state: LifespanState = {}
        lifespan, _ = await startup(router, state)
        assert state == {"greeting": "hello", "count": 2}
        for _ in range(2):
            # What the server does for each connection: a copy of the state.
            scope: Scope = {"type": "websocket", "path": "/", "headers": [], "state": dict(state)}
            connection = ApplicationCommunicator(router, scope)
            await connection.send_input({"type": "websocket.connect"})
            assert (await connection.receive_output())["type"] == "websocket.accept"
            sent = await connection.receive_output()
            assert sent == {"type": "websocket.send", "text": "hello"}
            await connection.send_input({"type": "websocket.disconnect", "code": 1000})
            await connection.wait()
        await answer(lifespan, "shutdown")

    async def test_a_failing_startup_hook_fails_startup_with_its_error(
        self, recorded_layer: RecordingLayer
    ) -> None:
        journal = Journal()
        hooks = [
            journal.hook("pool"),
            journal.hook("client", fail_at="startup"),
            journal.hook("cache"),
        ]
        communicator, failed = await startup(ProtocolTypeRouter({}, lifespan=hooks), {})
        assert failed["type"] == "lifespan.startup.failed"
        first, _, trace = failed["message"].partition("\n")
        assert first == "lifespan startup hook client raised RuntimeError: client cannot start"
        assert trace.startswith("Traceback (most recent call last):")
        assert trace.endswith("RuntimeError: client cannot start")
        # The hooks already started are stopped; the later ones never start.
        assert journal.entries == ["start pool", "start client", "stop pool"]
        assert recorded_layer.closes == 1
        await communicator.wait()

    async def test_a_failing_shutdown_hook_fails_shutdown_after_the_others_stopped(
        self, recorded_layer: RecordingLayer
    ) -> None:
        journal = Journal()
        hooks = [
            journal.hook("pool", fail_at="shutdown"),
            journal.hook("client"),
            journal.hook("cache", fail_at="shutdown"),
        ]
        communicator, _ = await startup(ProtocolTypeRouter({}, lifespan=hooks), {})
        failed = await answer(communicator, "shutdown")
        assert journal.entries[3:] == ["stop cache", "stop client", "stop pool"]
        assert recorded_layer.closes == 1
        assert failed["type"] == "lifespan.shutdown.failed"
        first_lines = [part.partition("\n")[0] for part in failed["message"].split("\n\n")]
        assert first_lines == [
            "lifespan shutdown hook cache raised OSError: cache cannot stop",
            "lifespan shutdown hook pool raised OSError: pool cannot stop",
        ]
        await communicator.wait()

    @pytest.mark.parametrize(
        ("hooks", "state", "message"),
        [
            pytest.param(
                [_not_a_context_manager],
                {},
                "lifespan hook _not_a_context_manager must return an async context manager "
                "(decorate it with @contextlib.asynccontextmanager); got 3",
                id="not-a-context-manager",
            ),
            pytest.param(
                [Journal().hook("listing", ["a"])],  # type: ignore[arg-type]  # deliberately wrong
                {},
                "lifespan hook listing must yield a mapping of state or None; got ['a']",
                id="not-a-mapping",
            ),
            pytest.param(
                [Journal().hook("numbers", {1: "one"})],  # type: ignore[dict-item]  # deliberately wrong
                {},
                "lifespan hook numbers must yield state with str keys; got the key 1",
                id="not-str-keys",
            ),
            pytest.param(
                [Journal().hook("first", {"db": 1}), Journal().hook("second", {"db": 2})],
                {},
                "lifespan hook second yielded state 'db', which is already set: each name in "
                "the lifespan state may be set once",
                id="same-name-twice",
            ),
            pytest.param(
                [Journal().hook("pool", {"db": 1})],
                {"db": "from the server"},
                "lifespan hook pool yielded state 'db', which is already set: each name in "
                "the lifespan state may be set once",
                id="name-the-state-has",
            ),
            pytest.param(
                [Journal().hook("pool", {"db": 1})],
                None,
                "lifespan hook pool yielded state ['db'], but the server gives no lifespan "
                "state (its lifespan scope has no 'state' key): serve the application with a "
                "server that supports it, such as uvicorn or hypercorn",
                id="server-without-state",
            ),
        ],
    )
    async def test_what_a_hook_gives_back_is_checked(
        self, hooks: list[LifespanHook], state: LifespanState | None, message: str
    ) -> None:
        communicator, failed = await startup(ProtocolTypeRouter({}, lifespan=hooks), state)
        assert failed == {"type": "lifespan.startup.failed", "message": message}
        await communicator.wait()

    async def test_a_hook_that_yielded_wrong_state_is_still_stopped(self) -> None:
        journal = Journal()
        hooks = [journal.hook("listing", ["a"])]  # type: ignore[arg-type]  # deliberately wrong
        communicator, failed = await startup(ProtocolTypeRouter({}, lifespan=hooks), {})
        assert failed["type"] == "lifespan.startup.failed"
        assert journal.entries == ["start listing", "stop listing"]
        await communicator.wait()


async def _coroutine_hook() -> None:
    pass


async def _generator_hook() -> AsyncGenerator[None, None]:
    yield


class TestHookArguments:
    @pytest.mark.parametrize(
        ("hooks", "match"),
        [
            pytest.param(
                Journal().hook("alone"),
                r"^lifespan hooks must be a list of hooks \(for one hook: \[hook\]\), each a "
                r"callable returning an async context manager; got <function",
                id="one-hook-not-in-a-list",
            ),
            pytest.param(
                "hook",
                r"^lifespan hooks must be a list of hooks .*; got 'hook'$",
                id="a-string",
            ),
            pytest.param(
                [Journal().hook("fine"), None],
                r"^lifespan hook 1 must be a callable returning an async context manager; "
                r"got None$",
                id="not-callable",
            ),
            pytest.param(
                [_generator_hook],
                r"^lifespan hook _generator_hook is a bare async generator function: decorate "
                r"it with @contextlib.asynccontextmanager$",
                id="undecorated-generator",
            ),
            pytest.param(
                [_coroutine_hook],
                r"^lifespan hook _coroutine_hook is a coroutine function; a hook returns an "
                r"async context manager: write an @contextlib.asynccontextmanager function",
                id="coroutine-function",
            ),
        ],
    )
    def test_bad_hooks_are_refused_when_the_router_is_built(self, hooks: Any, match: str) -> None:
        # Any: each case passes something the signature forbids.
        with pytest.raises(TypeError, match=match):
            ProtocolTypeRouter({}, lifespan=hooks)

    async def test_a_class_with_async_enter_and_exit_is_a_hook(self) -> None:
        class Pool:
            async def __aenter__(self) -> dict[str, Pool]:
                return {"pool": self}

            async def __aexit__(self, *exc_info: object) -> None:
                pass

        hooks: list[LifespanHook] = [Pool]
        state: LifespanState = {}
        communicator, started = await startup(ProtocolTypeRouter({}, lifespan=hooks), state)
        assert started == {"type": "lifespan.startup.complete"}
        assert isinstance(state["pool"], Pool)
        assert await answer(communicator, "shutdown") == {"type": "lifespan.shutdown.complete"}


class Conversation:
    """Lifespan applications that behave in ways a server must cope with."""

    def __init__(self) -> None:
        self.cancelled = asyncio.Event()
        self.scopes: list[Scope] = []

    async def raises_at_once(self, scope: Scope, receive: Receive, send: Send) -> None:
        raise ValueError("no lifespan here")

    async def ignores_the_type(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            while True:
                await receive()
        except asyncio.CancelledError:
            self.cancelled.set()
            raise

    async def answers_wrongly(self, scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "lifespan.shutdown.complete"})

    async def fails(self, scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "lifespan.startup.failed", "message": "no database"})

    async def fails_silently(self, scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "lifespan.startup.failed"})


class TestRunLifespan:
    async def test_yields_the_state_the_application_filled_in(self) -> None:
        journal = Journal()
        router = ProtocolTypeRouter({}, lifespan=[journal.hook("a", {"token": "t"})])
        async with run_lifespan(router) as state:
            assert state == {"token": "t"}
            assert journal.entries == ["start a"]
        assert journal.entries == ["start a", "stop a"]

    @pytest.mark.parametrize(
        "behaviour",
        [
            pytest.param("raises_at_once", id="raises"),
            pytest.param("ignores_the_type", id="asks-for-more"),
            pytest.param("answers_wrongly", id="wrong-answer"),
        ],
    )
    async def test_an_application_without_lifespan_runs_without_it(
        self, behaviour: str, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.INFO, logger="channels.lifespan")
        application: ASGIApplication = getattr(Conversation(), behaviour)
        async with run_lifespan(application) as state:
            assert state is None
        assert all(record.levelno < logging.WARNING for record in caplog.records)

    async def test_an_application_ignoring_the_type_is_cancelled(self) -> None:
        conversation = Conversation()
        async with run_lifespan(conversation.ignores_the_type):
            pass
        assert conversation.cancelled.is_set()

    @pytest.mark.parametrize(
        ("behaviour", "text"),
        [
            pytest.param("fails", "application startup failed: no database", id="reason"),
            pytest.param(
                "fails_silently",
                "application startup failed: the application gave no reason",
                id="no-reason",
            ),
        ],
    )
    async def test_a_failed_startup_raises_and_skips_the_block(
        self, behaviour: str, text: str
    ) -> None:
        ran = False
        with pytest.raises(LifespanFailed) as raised:
            async with run_lifespan(getattr(Conversation(), behaviour)):
                ran = True
        assert (str(raised.value), raised.value.phase, ran) == (text, "startup", False)

    async def test_a_failed_shutdown_raises_after_the_block(self) -> None:
        journal = Journal()
        router = ProtocolTypeRouter({}, lifespan=[journal.hook("a", fail_at="shutdown")])
        with pytest.raises(LifespanFailed) as raised:
            async with run_lifespan(router):
                pass
        assert raised.value.phase == "shutdown"
        assert raised.value.message.startswith("lifespan shutdown hook a raised OSError")

    async def test_the_blocks_error_wins_over_a_failed_shutdown(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        journal = Journal()
        router = ProtocolTypeRouter({}, lifespan=[journal.hook("a", fail_at="shutdown")])
        with pytest.raises(KeyError, match="the block's own"):
            async with run_lifespan(router):
                raise KeyError("the block's own")
        assert journal.entries == ["start a", "stop a"]
        [record] = [r for r in caplog.records if r.name == "channels.lifespan"]
        assert record.levelno == logging.ERROR
        assert record.getMessage() == "the application's lifespan shutdown failed after an error"


class Job(AsyncConsumer):
    """A worker consumer that reports the state it sees, then stops the worker."""

    seen: list[object]

    async def job(self, event: dict[str, Any]) -> None:
        self.seen.append(self.scope["state"]["greeting"])
        signal.raise_signal(signal.SIGTERM)


class TestWorker:
    def worker(
        self, hooks: list[LifespanHook], seen: list[object]
    ) -> tuple[Worker, InMemoryChannelLayer]:
        consumer = Job.as_asgi()
        Job.seen = seen
        router = ProtocolTypeRouter(
            {"channel": ChannelNameRouter({"jobs": consumer})}, lifespan=hooks
        )
        layer = InMemoryChannelLayer()
        return Worker(router, ["jobs"], layer), layer

    def test_run_starts_the_hooks_first_and_stops_them_last(self) -> None:
        journal = Journal()
        seen: list[object] = []
        worker, layer = self.worker([journal.hook("greeter", {"greeting": "hi"})], seen)
        sends: list[asyncio.Task[None]] = []

        def ready() -> None:
            journal.entries.append("listening")
            sends.append(asyncio.ensure_future(layer.send("jobs", {"type": "job"})))

        worker.run(on_ready=ready)
        assert journal.entries == ["start greeter", "listening", "stop greeter"]
        assert seen == ["hi"]

    def test_a_failing_startup_hook_stops_the_worker_before_it_listens(self) -> None:
        journal = Journal()
        worker, _ = self.worker([journal.hook("greeter", fail_at="startup")], [])
        with pytest.raises(LifespanFailed, match=r"^application startup failed: lifespan startup "):
            worker.run(on_ready=lambda: journal.entries.append("listening"))
        assert journal.entries == ["start greeter"]

    def test_a_failing_shutdown_hook_fails_run_after_the_worker_stopped(self) -> None:
        journal = Journal()
        seen: list[object] = []
        hooks = [journal.hook("greeter", {"greeting": "hi"}, fail_at="shutdown")]
        worker, layer = self.worker(hooks, seen)
        sends: list[asyncio.Task[None]] = []

        def ready() -> None:
            sends.append(asyncio.ensure_future(layer.send("jobs", {"type": "job"})))

        with pytest.raises(LifespanFailed, match=r"^application shutdown failed: "):
            worker.run(on_ready=ready)
        assert seen == ["hi"]
        assert journal.entries == ["start greeter", "stop greeter"]


async def _connect() -> None:
    raise ConnectionRefusedError("the database is not there")


@asynccontextmanager
async def failing_hook() -> AsyncGenerator[None, None]:
    await _connect()
    yield


#: ASGI_APPLICATION for the runworker test: its startup fails.
failing_application = ProtocolTypeRouter(
    {"channel": ChannelNameRouter({"jobs": Job.as_asgi()})}, lifespan=[failing_hook]
)


class TestRunworker:
    @override_settings(ASGI_APPLICATION="tests.test_lifespan.failing_application")
    def test_a_failed_startup_is_a_command_error_saying_why(self) -> None:
        with pytest.raises(CommandError) as raised:
            call_command("runworker", "jobs", verbosity=0)
        assert str(raised.value).startswith(
            "application startup failed: lifespan startup hook failing_hook raised "
            "ConnectionRefusedError: the database is not there\n"
        )
