from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

from channels.consumer import AsyncConsumer
from channels.layers import ChannelLayer, InMemoryChannelLayer
from channels.management.commands import runworker
from channels.routing import ChannelNameRouter
from channels.types import ASGIApplication, Event, Receive, ReceivedMessage, Scope, Send
from channels.worker import Worker

_ROOT = Path(__file__).resolve().parent.parent


class ObservedLayer(InMemoryChannelLayer):
    """An in-memory layer that reports what the worker takes, and when it stops."""

    def __init__(self) -> None:
        super().__init__()
        self.taken: asyncio.Queue[ReceivedMessage] = asyncio.Queue()
        self.receive_cancelled = asyncio.Event()
        self.closed = False

    async def receive(self, channel: str) -> ReceivedMessage:
        try:
            message = await super().receive(channel)
        except asyncio.CancelledError:
            self.receive_cancelled.set()
            raise
        self.taken.put_nowait(message)
        return message

    async def close(self) -> None:
        self.closed = True
        await super().close()


class Handler:
    """An app that reports each message it finishes; "hold" ones wait for ``release``."""

    def __init__(self) -> None:
        self.scopes: list[Scope] = []
        self.started: asyncio.Queue[str] = asyncio.Queue()
        self.handled: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
        self.release = asyncio.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.scopes.append(scope)
        while True:
            message = await receive()
            self.started.put_nowait(message["type"])
            if message.get("hold"):
                await self.release.wait()
            if message["type"] == "fail":
                raise ValueError("the handler failed")
            if message["type"] == "reply":
                await send({"type": "websocket.send", "text": "hi"})
            self.handled.put_nowait((scope["channel"], message["type"]))


class LogQueue(logging.Handler):
    """A logging handler that queues records, so a test can wait for one."""

    def __init__(self) -> None:
        super().__init__()
        self.records: asyncio.Queue[logging.LogRecord] = asyncio.Queue()

    def emit(self, record: logging.LogRecord) -> None:
        self.records.put_nowait(record)


@pytest.fixture
def worker_log() -> Iterator[LogQueue]:
    handler = LogQueue()
    logger = logging.getLogger("channels.worker")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


async def drain(queue: asyncio.Queue[Any], count: int) -> list[Any]:
    return [await queue.get() for _ in range(count)]


class TestConstruction:
    def test_a_missing_layer_is_refused(self) -> None:
        with pytest.raises(
            ValueError,
            match=r"^Worker needs a channel layer: got None, which get_channel_layer\(\) "
            "returns when CHANNEL_LAYERS does not name the alias$",
        ):
            Worker(Handler(), ["a"], None)

    def test_a_single_string_is_refused(self) -> None:
        with pytest.raises(
            TypeError,
            match=r"^channels must be a list of channel names, not a str; got 'tasks'$",
        ):
            Worker(Handler(), "tasks", InMemoryChannelLayer())

    def test_no_channels_are_refused(self) -> None:
        with pytest.raises(
            ValueError, match=r"^Worker needs at least one channel to listen on; got none$"
        ):
            Worker(Handler(), [], InMemoryChannelLayer())

    def test_takes_upstreams_keywords(self) -> None:
        layer, app = InMemoryChannelLayer(), Handler()
        worker = Worker(
            application=app, channels=("a", "b"), channel_layer=layer, max_applications=5
        )
        assert (worker.application, worker.channel_layer) == (app, layer)
        assert list(worker.channels) == ["a", "b"]
        assert worker.max_applications == 5
        assert Worker(app, ["a"], layer).max_applications == 1000


class TestConsuming:
    async def test_each_channel_gets_one_instance_with_a_channel_scope(self) -> None:
        layer, app, shutdown = ObservedLayer(), Handler(), asyncio.Event()
        for channel, kind in [("alpha", "a1"), ("beta", "b1"), ("alpha", "a2")]:
            await layer.send(channel, {"type": kind})
        worker = Worker(app, ["alpha", "beta"], layer)
        running = asyncio.create_task(worker.handle(shutdown))
        handled = await drain(app.handled, 3)
        shutdown.set()
        await running
        assert [item for item in handled if item[0] == "alpha"] == [
            ("alpha", "a1"),
            ("alpha", "a2"),
        ]
        assert ("beta", "b1") in handled
        assert sorted(app.scopes, key=lambda scope: scope["channel"]) == [
            {"type": "channel", "channel": "alpha"},
            {"type": "channel", "channel": "beta"},
        ]

    async def test_channel_name_router_and_consumers_handle_the_messages(self) -> None:
        done: asyncio.Queue[str] = asyncio.Queue()

        class Tasks(AsyncConsumer):
            async def thumbnail_make(self, message: dict[str, Any]) -> None:
                done.put_nowait(f"{self.scope['channel']}: {message['id']}")

        layer, shutdown = InMemoryChannelLayer(), asyncio.Event()
        router = ChannelNameRouter({"thumbnails": Tasks.as_asgi()})
        await layer.send("thumbnails", {"type": "thumbnail.make", "id": 7})
        running = asyncio.create_task(Worker(router, ["thumbnails"], layer).handle(shutdown))
        assert await done.get() == "thumbnails: 7"
        shutdown.set()
        await running

    async def test_a_message_without_a_type_stops_the_worker(self) -> None:
        layer = ObservedLayer()
        await layer.send("alpha", {"text": "no type"})
        with pytest.raises(
            ValueError,
            match=r"^worker received a message without a 'type' on channel 'alpha': worker "
            r"messages need a 'type' naming their handler; got \{'text': 'no type'\}$",
        ):
            await Worker(Handler(), ["alpha"], layer).handle()
        assert layer.closed

    async def test_a_layer_error_stops_the_worker_and_its_instances(self) -> None:
        layer, app = ObservedLayer(), Handler()
        await layer.send("alpha", {"type": "a1", "hold": True})
        running = asyncio.create_task(Worker(app, ["alpha", "bad name"], layer).handle())
        with pytest.raises(TypeError, match=r"^channel name must be a string"):
            await running
        assert layer.closed
        assert app.handled.empty()

    async def test_a_failing_instance_is_logged_and_replaced(self, worker_log: LogQueue) -> None:
        layer, app, shutdown = ObservedLayer(), Handler(), asyncio.Event()
        await layer.send("alpha", {"type": "fail"})
        running = asyncio.create_task(Worker(app, ["alpha"], layer).handle(shutdown))
        record = await worker_log.records.get()
        assert record.levelno == logging.ERROR
        assert record.getMessage() == "the application for channel 'alpha' failed"
        assert record.exc_info is not None
        assert isinstance(record.exc_info[1], ValueError)
        await layer.send("alpha", {"type": "ok"})
        assert await app.handled.get() == ("alpha", "ok")
        shutdown.set()
        await running
        assert len(app.scopes) == 2

    async def test_messages_left_by_a_failed_instance_are_reported(
        self, worker_log: LogQueue
    ) -> None:
        layer, app, shutdown = ObservedLayer(), Handler(), asyncio.Event()
        await layer.send("alpha", {"type": "fail", "hold": True})
        await layer.send("alpha", {"type": "never"})
        running = asyncio.create_task(Worker(app, ["alpha"], layer).handle(shutdown))
        await drain(layer.taken, 2)
        app.release.set()
        error, warning = await drain(worker_log.records, 2)
        assert error.levelno == logging.ERROR
        assert warning.levelno == logging.WARNING
        assert warning.getMessage() == (
            "application for channel 'alpha' ended with 1 unhandled message(s), which are dropped"
        )
        shutdown.set()
        await running

    async def test_an_application_cannot_send_events(self, worker_log: LogQueue) -> None:
        layer, shutdown = ObservedLayer(), asyncio.Event()
        await layer.send("alpha", {"type": "reply"})
        running = asyncio.create_task(Worker(Handler(), ["alpha"], layer).handle(shutdown))
        record = await worker_log.records.get()
        shutdown.set()
        await running
        assert record.exc_info is not None
        error = record.exc_info[1]
        assert isinstance(error, NotImplementedError)
        assert str(error) == (
            "an application run by a worker cannot send events: worker messages have no "
            "client to answer; send to a channel layer instead, or override "
            "Worker.application_send; got {'type': 'websocket.send', 'text': 'hi'} on "
            "channel 'alpha'"
        )


class TestStopping:
    async def test_messages_handed_over_are_finished_before_stopping(self) -> None:
        layer, app, shutdown = ObservedLayer(), Handler(), asyncio.Event()
        await layer.send("alpha", {"type": "m1", "hold": True})
        await layer.send("alpha", {"type": "m2"})
        await layer.send("alpha", {"type": "m3"})
        running = asyncio.create_task(Worker(app, ["alpha"], layer).handle(shutdown))
        assert await app.started.get() == "m1"
        await drain(layer.taken, 3)
        shutdown.set()
        await layer.receive_cancelled.wait()
        assert not running.done()
        app.release.set()
        await running
        assert await drain(app.handled, 3) == [("alpha", "m1"), ("alpha", "m2"), ("alpha", "m3")]
        assert layer.closed

    async def test_cancelling_stops_the_instances_and_closes_the_layer(self) -> None:
        layer, app = ObservedLayer(), Handler()
        await layer.send("alpha", {"type": "m1", "hold": True})
        running = asyncio.create_task(Worker(app, ["alpha"], layer).handle())
        assert await app.started.get() == "m1"
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running
        assert layer.closed
        assert app.handled.empty()


class TestSubclasses:
    async def test_a_subclass_defining_obvious_private_names_still_works(self) -> None:
        class Private(Worker):
            _instances = "subclass"
            _tasks = "subclass"
            _listeners = "subclass"
            _shutdown = "subclass"

            def _start(self) -> str:
                return "subclass"

            def _finished(self) -> str:
                return "subclass"

            def _stop_instances(self) -> str:
                return "subclass"

        layer, app, shutdown = ObservedLayer(), Handler(), asyncio.Event()
        await layer.send("alpha", {"type": "a1"})
        running = asyncio.create_task(Private(app, ["alpha"], layer).handle(shutdown))
        assert await app.handled.get() == ("alpha", "a1")
        shutdown.set()
        await running
        assert layer.closed

    async def test_a_subclass_may_take_what_applications_send(self) -> None:
        sent: asyncio.Queue[tuple[Scope, Event]] = asyncio.Queue()

        class Forwarding(Worker):
            async def application_send(self, scope: Scope, message: Event) -> None:
                sent.put_nowait((scope, message))

        layer, app, shutdown = ObservedLayer(), Handler(), asyncio.Event()
        await layer.send("alpha", {"type": "reply"})
        running = asyncio.create_task(Forwarding(app, ["alpha"], layer).handle(shutdown))
        assert await sent.get() == (
            {"type": "channel", "channel": "alpha"},
            {"type": "websocket.send", "text": "hi"},
        )
        assert await app.handled.get() == ("alpha", "reply")
        shutdown.set()
        await running

    async def test_a_subclass_may_override_listener(self) -> None:
        seen: list[str] = []

        class Tracing(Worker):
            async def listener(self, channel: str) -> None:
                seen.append(channel)
                await super().listener(channel)

        layer, app, shutdown = ObservedLayer(), Handler(), asyncio.Event()
        await layer.send("alpha", {"type": "a1"})
        running = asyncio.create_task(Tracing(app, ["alpha"], layer).handle(shutdown))
        assert await app.handled.get() == ("alpha", "a1")
        shutdown.set()
        await running
        assert seen == ["alpha"]


class TestRun:
    @pytest.mark.parametrize(
        "signum",
        [pytest.param(signal.SIGINT, id="SIGINT"), pytest.param(signal.SIGTERM, id="SIGTERM")],
    )
    def test_a_signal_stops_the_worker_and_handlers_are_restored(
        self, signum: signal.Signals
    ) -> None:
        before = signal.getsignal(signum)
        layer = ObservedLayer()
        Worker(Handler(), ["alpha"], layer).run(on_ready=lambda: signal.raise_signal(signum))
        assert layer.closed
        assert signal.getsignal(signum) is before


class TestRunworkerCommand:
    def test_an_unknown_layer_alias_is_named(self) -> None:
        with pytest.raises(
            CommandError,
            match=r"^CHANNEL_LAYERS has no layer 'other': pass --layer with a configured "
            r"alias \(configured: 'default'\); got --layer 'other'$",
        ):
            call_command("runworker", "tasks", layer="other")

    @override_settings(CHANNEL_LAYERS={"default": {"BACKEND": "no.such.Layer"}})
    def test_a_broken_layer_configuration_is_reported(self) -> None:
        with pytest.raises(
            CommandError, match=r"^cannot import BACKEND 'no.such.Layer' for CHANNEL_LAYERS"
        ):
            call_command("runworker", "tasks")

    def test_a_missing_application_is_reported(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delattr(settings, "ASGI_APPLICATION")
        with pytest.raises(CommandError, match=r"^ASGI_APPLICATION is not set"):
            call_command("runworker", "tasks")

    def test_builds_its_worker_class_by_keyword(self) -> None:
        built: list[list[str]] = []

        class KeywordsOnly(Worker):
            def __init__(
                self,
                *,
                application: ASGIApplication,
                channels: list[str],
                channel_layer: ChannelLayer | None,
            ) -> None:
                super().__init__(application, channels, channel_layer)
                built.append(channels)

            def run(self, on_ready: Callable[[], object] | None = None) -> None:
                pass

        class Command(runworker.Command):
            worker_class: type[Worker] = KeywordsOnly

        call_command(Command(), "tasks", "more", verbosity=0)
        assert built == [["tasks", "more"]]

    async def test_sigterm_stops_a_running_worker_with_exit_code_0(self) -> None:
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.worker_settings"}
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "django",
            "runworker",
            "tasks",
            "other-tasks",
            cwd=_ROOT,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        assert process.stdout is not None
        try:
            ready = await asyncio.wait_for(process.stdout.readline(), timeout=60)
            assert ready == (
                b"Worker listening on tasks, other-tasks (channel layer 'default'); "
                b"stop it with SIGINT (CONTROL-C) or SIGTERM.\n"
            )
            process.send_signal(signal.SIGTERM)
            stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
        assert (process.returncode, stdout, stderr) == (0, b"Worker stopped.\n", b"")
