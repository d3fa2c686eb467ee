from __future__ import annotations

import asyncio
import contextvars
import json
import re
from collections.abc import Sequence
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from asgiref.testing import ApplicationCommunicator as AsgirefCommunicator
from django.db import connection

from channels.db import database_sync_to_async
from channels.testing import ApplicationCommunicator, HttpCommunicator, WebsocketCommunicator
from channels.types import ASGIApplication, Event, Receive, Scope, Send


async def echo(scope: Scope, receive: Receive, send: Send) -> None:
    """Send back every event received, until an event of type "stop"."""
    while True:
        event = await receive()
        if event["type"] == "stop":
            return
        await send(event)


async def silent(scope: Scope, receive: Receive, send: Send) -> None:
    """Never send anything and never exit on its own."""
    await asyncio.Event().wait()


async def finishes(scope: Scope, receive: Receive, send: Send) -> None:
    """Exit at once without sending anything."""


async def fails(scope: Scope, receive: Receive, send: Send) -> None:
    """Fail once it receives its first event."""
    await receive()
    raise ValueError("the application broke")


def answers(*events: Event) -> ASGIApplication:
    """An app that sends ``events`` after its first event, then ends on the next one."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        for event in events:
            await send(event)
        await receive()

    return app


def websocket_app(*after_accept: Event) -> ASGIApplication:
    """An app that accepts a websocket, sends ``after_accept``, then ends on disconnect."""
    return answers({"type": "websocket.accept"}, *after_accept)


class Recorder:
    """An app that records the scope and every event it receives, until disconnect."""

    def __init__(self) -> None:
        self.scope: Scope = {}
        self.events: list[dict[str, Any]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.scope = scope
        while True:
            event = await receive()
            self.events.append(event)
            if event["type"] == "websocket.connect":
                await send({"type": "websocket.accept"})
            elif event["type"] == "websocket.disconnect":
                return
            else:
                await send({"type": "websocket.send", "text": "ok"})


class TestApplicationCommunicator:
    async def test_events_go_in_and_come_out(self) -> None:
        communicator = ApplicationCommunicator(echo, {"type": "test"})
        await communicator.send_input({"type": "hello", "n": 1})
        assert await communicator.receive_output() == {"type": "hello", "n": 1}
        await communicator.send_input({"type": "stop"})
        await communicator.wait()

    async def test_it_is_an_asgiref_communicator_with_its_attributes(self) -> None:
        communicator = ApplicationCommunicator(echo, {"type": "test"})
        assert isinstance(communicator, AsgirefCommunicator)
        await communicator.input_queue.put({"type": "hello"})
        assert isinstance(communicator.future, asyncio.Task)
        assert await communicator.output_queue.get() == {"type": "hello"}
        communicator.stop()

    async def test_the_test_context_does_not_leak_into_the_application(self) -> None:
        marker: contextvars.ContextVar[str] = contextvars.ContextVar("marker", default="unset")
        seen: list[str] = []

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            seen.append(marker.get())

        marker.set("set by the test")
        communicator = ApplicationCommunicator(app, {"type": "test"})
        await communicator.wait()
        assert seen == ["unset"]

    async def test_a_later_event_waits_for_the_application(self) -> None:
        communicator = ApplicationCommunicator(echo, {"type": "test"})
        receiving = asyncio.ensure_future(communicator.receive_output(timeout=None))
        await communicator.send_input({"type": "late"})
        assert await receiving == {"type": "late"}
        communicator.stop()

    async def test_an_event_sent_before_exiting_is_still_received(self) -> None:
        communicator = ApplicationCommunicator(answers({"type": "last"}), {"type": "test"})
        await communicator.send_input({"type": "go"})
        await communicator.send_input({"type": "end"})
        await communicator.wait()
        assert await communicator.receive_output() == {"type": "last"}

    async def test_a_timeout_says_what_was_expected_and_cancels_the_application(self) -> None:
        communicator = ApplicationCommunicator(silent, {"type": "test"})
        with pytest.raises(
            asyncio.TimeoutError,
            match=r"^expected an event from the application within 0\.01 s, got nothing "
            r"\(the application was cancelled\)$",
        ):
            await communicator.receive_output(timeout=0.01)
        assert communicator.future.cancelled()

    async def test_an_application_that_exits_fails_without_waiting(self) -> None:
        communicator = ApplicationCommunicator(finishes, {"type": "test"})
        with pytest.raises(
            asyncio.TimeoutError,
            match=r"^expected an event from the application, but the application exited "
            "without one$",
        ):
            await communicator.receive_output(timeout=None)

    async def test_the_application_exception_is_raised_while_waiting(self) -> None:
        communicator = ApplicationCommunicator(fails, {"type": "test"})
        await communicator.send_input({"type": "go"})
        with pytest.raises(ValueError, match=r"^the application broke$"):
            await communicator.receive_output(timeout=None)

    async def test_send_input_raises_the_exception_of_a_failed_application(self) -> None:
        communicator = ApplicationCommunicator(fails, {"type": "test"})
        await communicator.send_input({"type": "go"})
        with pytest.raises(ValueError, match=r"^the application broke$"):
            await communicator.wait()
        with pytest.raises(ValueError, match=r"^the application broke$"):
            await communicator.send_input({"type": "again"})

    async def test_receive_nothing_leaves_a_sent_event_queued(self) -> None:
        communicator = ApplicationCommunicator(answers({"type": "a"}, {"type": "b"}), {"type": "t"})
        assert await communicator.receive_nothing(timeout=0.01) is True
        await communicator.send_input({"type": "go"})
        assert await communicator.receive_output() == {"type": "a"}
        assert await communicator.receive_nothing() is False
        assert await communicator.receive_output() == {"type": "b"}
        communicator.stop()

    async def test_wait_times_out_with_a_message_and_cancels(self) -> None:
        communicator = ApplicationCommunicator(silent, {"type": "test"})
        with pytest.raises(
            asyncio.TimeoutError,
            match=r"^expected the application to exit within 0\.01 s, but it was still "
            r"running \(it was cancelled\)$",
        ):
            await communicator.wait(timeout=0.01)
        assert communicator.future.cancelled()

    async def test_stop_before_the_start_does_nothing(self) -> None:
        communicator = ApplicationCommunicator(silent, {"type": "test"})
        communicator.stop()
        assert communicator._future is None  # pyright: ignore[reportPrivateUsage] - the lazy start

    async def test_stop_cancels_a_running_application(self) -> None:
        communicator = ApplicationCommunicator(silent, {"type": "test"})
        assert await communicator.receive_nothing(timeout=0)
        communicator.stop()
        await communicator.wait()
        assert communicator.future.cancelled()

    async def test_stop_raises_the_exception_of_a_failed_application(self) -> None:
        communicator = ApplicationCommunicator(fails, {"type": "test"})
        await communicator.send_input({"type": "go"})
        await asyncio.wait({communicator.future})
        communicator.stop(exceptions=False)
        with pytest.raises(ValueError, match=r"^the application broke$"):
            communicator.stop()

    def test_a_consumer_class_is_refused(self) -> None:
        class Consumer:
            pass

        with pytest.raises(
            TypeError,
            match=r"^application must be an ASGI application, such as MyConsumer\.as_asgi\(\); "
            r"got the class .*Consumer$",
        ):
            ApplicationCommunicator(Consumer, {"type": "test"})  # type: ignore[arg-type]  # the mistake under test


def _open_connection() -> None:
    connection.ensure_connection()


def _connection_is_open() -> bool:
    return connection.connection is not None


def _close_connection() -> None:
    connection.close()


async def _open_then_check(scope: Scope, receive: Receive, send: Send) -> None:
    """Open a connection through database_sync_to_async, which closes old ones after."""
    await database_sync_to_async(_open_connection)()
    await send({"type": "result", "open": await sync_to_async(_connection_is_open)()})


@pytest.mark.django_db(transaction=True)
class TestDatabaseConnections:
    async def test_an_application_outside_the_communicator_closes_its_connection(self) -> None:
        sent: list[Event] = []

        async def collect(event: Event) -> None:
            sent.append(event)

        async def nothing() -> dict[str, Any]:
            raise AssertionError("receive() is not called")

        await _open_then_check({"type": "test"}, nothing, collect)
        assert sent == [{"type": "result", "open": False}]

    async def test_an_application_under_test_keeps_its_connection(self) -> None:
        communicator = ApplicationCommunicator(_open_then_check, {"type": "test"})
        try:
            assert await communicator.receive_output() == {"type": "result", "open": True}
        finally:
            await sync_to_async(_close_connection)()


class TestWebsocketScope:
    async def test_the_scope_is_built_from_the_arguments(self) -> None:
        communicator = WebsocketCommunicator(
            echo,
            "/chat/caf%C3%A9/?room=1&x=%20",
            headers=[(b"origin", b"http://localhost")],
            subprotocols=["chat", "json"],
            spec_version="2.3",
        )
        assert communicator.scope == {
            "type": "websocket",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "spec_version": "2.3",
            "path": "/chat/café/",
            "raw_path": b"/chat/caf%C3%A9/",
            "query_string": b"room=1&x=%20",
            "headers": [(b"origin", b"http://localhost")],
            "subprotocols": ["chat", "json"],
        }

    async def test_defaults_give_empty_headers_and_subprotocols(self) -> None:
        communicator = WebsocketCommunicator(echo, "/")
        assert communicator.scope["headers"] == []
        assert communicator.scope["subprotocols"] == []
        assert communicator.scope["asgi"] == {"version": "3.0"}
        assert "spec_version" not in communicator.scope

    async def test_headers_keep_the_containers_they_were_given(self) -> None:
        headers = [[b"cookie", b"a=1"]]
        communicator = WebsocketCommunicator(echo, "/", headers)
        assert communicator.scope["headers"] is headers
        assert communicator.scope["headers"] == [[b"cookie", b"a=1"]]

    async def test_keys_added_to_the_scope_reach_the_application(self) -> None:
        recorder = Recorder()
        communicator = WebsocketCommunicator(recorder, "/")
        communicator.scope["user"] = "alice"
        assert await communicator.connect() == (True, None)
        assert recorder.scope["user"] == "alice"
        await communicator.disconnect()

    @pytest.mark.parametrize(
        ("path", "match"),
        [
            pytest.param(b"/chat/", r"got bytes b'/chat/'$", id="bytes"),
            pytest.param(None, r"got NoneType None$", id="none"),
        ],
    )
    def test_a_path_that_is_not_a_str_is_refused(self, path: object, match: str) -> None:
        with pytest.raises(
            TypeError, match=r"^path must be a str such as '/chat/\?room=1'; " + match
        ):
            WebsocketCommunicator(echo, path)  # type: ignore[arg-type]  # the mistake under test

    @pytest.mark.parametrize(
        "header",
        [
            pytest.param(("origin", "http://localhost"), id="str-pair"),
            pytest.param((b"origin",), id="one-item"),
            pytest.param(b"origin", id="bytes"),
        ],
    )
    def test_headers_must_be_byte_pairs(self, header: object) -> None:
        headers: Any = [header]
        with pytest.raises(
            TypeError,
            match=r"^headers must be \(name, value\) pairs of bytes, such as "
            r"\(b'origin', b'http://localhost'\); got " + re.escape(repr(header)) + "$",
        ):
            WebsocketCommunicator(echo, "/", headers)


class TestWebsocketConnect:
    async def test_an_accept_gives_true_the_subprotocol_and_headers(self) -> None:
        app = answers(
            {"type": "websocket.accept", "subprotocol": "chat", "headers": [(b"x-a", b"1")]}
        )
        communicator = WebsocketCommunicator(app, "/", subprotocols=["chat"])
        assert await communicator.connect() == (True, "chat")
        assert communicator.response_headers == [(b"x-a", b"1")]
        await communicator.disconnect()

    async def test_an_accept_without_headers_gives_empty_headers(self) -> None:
        communicator = WebsocketCommunicator(websocket_app(), "/")
        assert await communicator.connect() == (True, None)
        assert communicator.response_headers == []
        await communicator.disconnect()

    @pytest.mark.parametrize(
        ("close", "code"),
        [
            pytest.param({"type": "websocket.close", "code": 4001}, 4001, id="with-code"),
            pytest.param({"type": "websocket.close"}, 1000, id="default-code"),
        ],
    )
    async def test_a_close_gives_false_and_the_code(self, close: Event, code: int) -> None:
        communicator = WebsocketCommunicator(answers(close), "/")
        assert await communicator.connect() == (False, code)
        assert communicator.response_headers is None

    async def test_a_denial_response_gives_false_and_the_status(self) -> None:
        app = answers(
            {
                "type": "websocket.http.response.start",
                "status": 403,
                "headers": [(b"content-type", b"text/plain")],
            },
            {"type": "websocket.http.response.body", "body": b"go away"},
        )
        communicator = WebsocketCommunicator(app, "/")
        assert await communicator.connect() == (False, 403)
        assert communicator.response_headers == [(b"content-type", b"text/plain")]
        assert await communicator.receive_output() == {
            "type": "websocket.http.response.body",
            "body": b"go away",
        }

    async def test_another_event_says_what_was_expected(self) -> None:
        communicator = WebsocketCommunicator(answers({"type": "websocket.send", "text": "hi"}), "/")
        with pytest.raises(
            AssertionError,
            match=r"^expected websocket.accept or websocket.close, got websocket.send "
            r"\(text 'hi'\)$",
        ):
            await communicator.connect()

    async def test_no_answer_times_out_saying_what_was_expected(self) -> None:
        communicator = WebsocketCommunicator(silent, "/")
        with pytest.raises(
            asyncio.TimeoutError,
            match=r"^expected websocket.accept or websocket.close within 0\.01 s, got nothing",
        ):
            await communicator.connect(timeout=0.01)


class TestWebsocketSend:
    @pytest.mark.parametrize(
        ("kwargs", "event"),
        [
            pytest.param(
                {"text_data": "hi"}, {"type": "websocket.receive", "text": "hi"}, id="text"
            ),
            pytest.param(
                {"text_data": ""}, {"type": "websocket.receive", "text": ""}, id="empty-text"
            ),
            pytest.param(
                {"bytes_data": b"\x00"},
                {"type": "websocket.receive", "bytes": b"\x00"},
                id="bytes",
            ),
        ],
    )
    async def test_send_to_sends_one_frame(self, kwargs: dict[str, Any], event: Event) -> None:
        recorder = Recorder()
        communicator = WebsocketCommunicator(recorder, "/")
        await communicator.connect()
        await communicator.send_to(**kwargs)
        assert await communicator.receive_from() == "ok"
        await communicator.disconnect(code=4000)
        assert recorder.events == [
            {"type": "websocket.connect"},
            event,
            {"type": "websocket.disconnect", "code": 4000},
        ]

    @pytest.mark.parametrize(
        ("kwargs", "match"),
        [
            pytest.param(
                {},
                r"^send_to\(\) takes exactly one of text_data \(a str\) and bytes_data "
                r"\(bytes\); got text_data=None, bytes_data=None$",
                id="neither",
            ),
            pytest.param(
                {"text_data": "a", "bytes_data": b"b"},
                r"got text_data='a', bytes_data=b'b'$",
                id="both",
            ),
            pytest.param({"text_data": b"a"}, r"^text_data must be a str; got b'a'$", id="text"),
            pytest.param({"bytes_data": "a"}, r"^bytes_data must be bytes; got 'a'$", id="bytes"),
        ],
    )
    async def test_send_to_refuses_bad_arguments(self, kwargs: dict[str, Any], match: str) -> None:
        communicator = WebsocketCommunicator(echo, "/")
        with pytest.raises(TypeError, match=match):
            await communicator.send_to(**kwargs)
        communicator.stop()

    async def test_json_goes_out_as_text_and_comes_back_decoded(self) -> None:
        communicator = WebsocketCommunicator(echo, "/")
        await communicator.send_json_to({"a": [1, 2]})
        assert await communicator.receive_output() == {
            "type": "websocket.receive",
            "text": '{"a": [1, 2]}',
        }
        communicator.stop()


class TestWebsocketReceive:
    @pytest.mark.parametrize(
        ("event", "payload"),
        [
            pytest.param({"type": "websocket.send", "text": "hi"}, "hi", id="text"),
            pytest.param({"type": "websocket.send", "bytes": b"hi"}, b"hi", id="bytes"),
            pytest.param(
                {"type": "websocket.send", "text": None, "bytes": b"hi"}, b"hi", id="text-none"
            ),
            pytest.param(
                {"type": "websocket.send", "text": "", "bytes": None}, "", id="bytes-none"
            ),
        ],
    )
    async def test_receive_from_returns_the_payload(self, event: Event, payload: object) -> None:
        communicator = WebsocketCommunicator(websocket_app(event), "/")
        await communicator.connect()
        assert await communicator.receive_from() == payload
        await communicator.disconnect()

    @pytest.mark.parametrize(
        ("event", "match"),
        [
            pytest.param(
                {"type": "websocket.close", "code": 4001},
                r"^expected a websocket.send message, got websocket.close \(code 4001\)$",
                id="close",
            ),
            pytest.param(
                {"type": "websocket.send", "bytes": b"x"},
                r"^expected a text frame holding JSON, got a binary frame b'x'$",
                id="binary",
            ),
        ],
    )
    async def test_receive_json_from_says_what_arrived(self, event: Event, match: str) -> None:
        communicator = WebsocketCommunicator(websocket_app(event), "/")
        await communicator.connect()
        with pytest.raises(AssertionError, match=match):
            await communicator.receive_json_from()
        communicator.stop()

    async def test_receive_json_from_raises_the_decode_error_of_a_frame_that_is_not_json(
        self,
    ) -> None:
        app = websocket_app({"type": "websocket.send", "text": "{nope"})
        communicator = WebsocketCommunicator(app, "/")
        await communicator.connect()
        with pytest.raises(json.JSONDecodeError, match="Expecting property name"):
            await communicator.receive_json_from()
        communicator.stop()

    async def test_receive_json_from_decodes_a_text_frame(self) -> None:
        app = websocket_app({"type": "websocket.send", "text": '{"n": 1}'})
        communicator = WebsocketCommunicator(app, "/")
        await communicator.connect()
        assert await communicator.receive_json_from() == {"n": 1}
        await communicator.disconnect()

    @pytest.mark.parametrize(
        ("event", "match"),
        [
            pytest.param(
                {"type": "websocket.close", "code": 4001},
                r"^expected a websocket.send message, got websocket.close \(code 4001\)$",
                id="close",
            ),
            pytest.param(
                {"type": "websocket.accept"},
                r"^expected a websocket.send message, got websocket.accept "
                r"\(subprotocol None\)$",
                id="accept",
            ),
            pytest.param(
                {"type": "custom", "x": 1},
                r"^expected a websocket.send message, got \{'type': 'custom', 'x': 1\}$",
                id="other",
            ),
            pytest.param(
                {"type": "websocket.send"},
                r"^expected a websocket.send message with exactly one of 'text' and 'bytes', "
                r"got \{'type': 'websocket.send'\}$",
                id="neither",
            ),
            pytest.param(
                {"type": "websocket.send", "text": "a", "bytes": b"b"},
                r"with exactly one of 'text' and 'bytes', got "
                r"\{'type': 'websocket.send', 'text': 'a', 'bytes': b'b'\}$",
                id="both",
            ),
            pytest.param(
                {"type": "websocket.send", "text": 5},
                r"^expected the 'text' of a websocket.send to be a str, got 5$",
                id="text-type",
            ),
            pytest.param(
                {"type": "websocket.send", "bytes": "x"},
                r"^expected the 'bytes' of a websocket.send to be bytes, got 'x'$",
                id="bytes-type",
            ),
        ],
    )
    async def test_receive_from_says_what_arrived(self, event: Event, match: str) -> None:
        communicator = WebsocketCommunicator(websocket_app(event), "/")
        await communicator.connect()
        with pytest.raises(AssertionError, match=match):
            await communicator.receive_from()
        communicator.stop()

    async def test_receive_from_times_out_saying_what_was_expected(self) -> None:
        communicator = WebsocketCommunicator(websocket_app(), "/")
        await communicator.connect()
        with pytest.raises(
            asyncio.TimeoutError,
            match=r"^expected a websocket.send message within 0\.01 s, got nothing",
        ):
            await communicator.receive_from(timeout=0.01)

    async def test_receive_nothing_is_true_when_nothing_was_sent(self) -> None:
        communicator = WebsocketCommunicator(websocket_app(), "/")
        await communicator.connect()
        assert await communicator.receive_nothing(timeout=0.01) is True
        await communicator.disconnect()


class TestWebsocketDisconnect:
    async def test_disconnect_waits_for_the_application_to_exit(self) -> None:
        communicator = WebsocketCommunicator(websocket_app(), "/")
        await communicator.connect()
        await communicator.disconnect(timeout=None)
        assert communicator.future.done()

    async def test_disconnect_raises_the_application_exception(self) -> None:
        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            await receive()
            await send({"type": "websocket.accept"})
            await receive()
            raise ValueError("the application broke")

        communicator = WebsocketCommunicator(app, "/")
        await communicator.connect()
        with pytest.raises(ValueError, match=r"^the application broke$"):
            await communicator.disconnect()

    async def test_an_application_that_keeps_running_times_out(self) -> None:
        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            await receive()
            await send({"type": "websocket.accept"})
            await asyncio.Event().wait()

        communicator = WebsocketCommunicator(app, "/")
        await communicator.connect()
        with pytest.raises(
            asyncio.TimeoutError,
            match=r"^expected the application to exit within "
            r"0\.01 s, but it was still running \(it was cancelled\)$",
        ):
            await communicator.disconnect(timeout=0.01)


async def echo_body(scope: Scope, receive: Receive, send: Send) -> None:
    """Answer an HTTP request with status 200 and the request's body."""
    request = await receive()
    await send({"type": "http.response.start", "status": 200})
    await send({"type": "http.response.body", "body": request["body"]})


def http_app(*events: Event) -> ASGIApplication:
    """An HTTP app that sends ``events`` once the request arrives."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        for event in events:
            await send(event)

    return app


class TestHttpCommunicator:
    async def test_the_scope_is_built_from_the_arguments(self) -> None:
        communicator = HttpCommunicator(
            echo, "post", "/a%20b/?q=1", body=b"x", headers=[(b"host", b"example.com")]
        )
        assert communicator.scope == {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "path": "/a b/",
            "raw_path": b"/a%20b/",
            "query_string": b"q=1",
            "headers": [(b"host", b"example.com")],
        }

    async def test_the_response_is_assembled_from_its_chunks(self) -> None:
        app = http_app(
            {"type": "http.response.start", "status": 201, "headers": [(b"a", b"1")]},
            {"type": "http.response.body", "body": b"one, ", "more_body": True},
            {"type": "http.response.body", "more_body": True},
            {"type": "http.response.body", "body": b"two"},
        )
        communicator = HttpCommunicator(app, "GET", "/")
        assert await communicator.get_response() == {
            "status": 201,
            "headers": [(b"a", b"1")],
            "body": b"one, two",
        }

    async def test_the_request_body_reaches_the_application(self) -> None:
        communicator = HttpCommunicator(echo_body, "PUT", "/", body=b"payload")
        response = await communicator.get_response(timeout=None)
        assert response["body"] == b"payload"

    async def test_a_response_without_headers_gives_empty_headers(self) -> None:
        app = http_app(
            {"type": "http.response.start", "status": 204},
            {"type": "http.response.body"},
        )
        communicator = HttpCommunicator(app, "GET", "/")
        assert await communicator.get_response() == {"status": 204, "headers": [], "body": b""}

    @pytest.mark.parametrize(
        ("events", "match"),
        [
            pytest.param(
                ({"type": "http.response.body", "body": b"x"},),
                r"^expected an http.response.start message, got "
                r"\{'type': 'http.response.body', 'body': b'x'\}$",
                id="body-first",
            ),
            pytest.param(
                (
                    {"type": "http.response.start", "status": 200},
                    {"type": "http.response.start", "status": 500},
                ),
                r"^expected an http.response.body message, got http.response.start "
                r"\(status 500\)$",
                id="second-start",
            ),
        ],
    )
    async def test_an_unexpected_event_says_what_arrived(
        self, events: Sequence[Event], match: str
    ) -> None:
        communicator = HttpCommunicator(http_app(*events), "GET", "/")
        with pytest.raises(AssertionError, match=match):
            await communicator.get_response()

    async def test_no_response_times_out_saying_what_was_expected(self) -> None:
        communicator = HttpCommunicator(silent, "GET", "/")
        with pytest.raises(
            asyncio.TimeoutError,
            match=r"^expected an http.response.start message within 0\.01 s, got nothing",
        ):
            await communicator.get_response(timeout=0.01)

    def test_a_body_that_is_not_bytes_is_refused(self) -> None:
        with pytest.raises(TypeError, match=r"^body must be bytes; got str 'text'$"):
            HttpCommunicator(echo, "POST", "/", body="text")  # type: ignore[arg-type]  # the mistake under test


class TestWhatTheApplicationSentIsKept:
    async def test_accept_headers_keep_their_containers(self) -> None:
        headers = [[b"x-a", b"1"], (b"x-b", b"2")]
        communicator = WebsocketCommunicator(
            answers({"type": "websocket.accept", "headers": headers}), "/"
        )
        assert await communicator.connect() == (True, None)
        assert communicator.response_headers == [[b"x-a", b"1"], (b"x-b", b"2")]
        communicator.stop()

    async def test_http_response_headers_and_extra_keys_are_as_sent(self) -> None:
        app = http_app(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [[b"content-type", b"text/plain"]],
                "trailers": False,
            },
            {"type": "http.response.body", "body": b"hi"},
        )
        response = await HttpCommunicator(app, "GET", "/").get_response()
        assert dict(response) == {
            "status": 200,
            "headers": [[b"content-type", b"text/plain"]],
            "trailers": False,
            "body": b"hi",
        }

    @pytest.mark.parametrize(
        "headers",
        [
            pytest.param([(b"x-a", "1")], id="str-value"),
            pytest.param([(b"x-a",)], id="single"),
            pytest.param([b"x-a: 1"], id="bytes"),
        ],
    )
    async def test_malformed_headers_from_the_application_fail_the_expectation(
        self, headers: object
    ) -> None:
        communicator = WebsocketCommunicator(
            answers({"type": "websocket.accept", "headers": headers}), "/"
        )
        with pytest.raises(
            AssertionError,
            match=r"^expected the application's headers to be \(name, value\) pairs of bytes",
        ):
            await communicator.connect()
        communicator.stop()


class TestTimeouts:
    async def test_a_timeout_is_asyncio_timeout_error(self) -> None:
        communicator = ApplicationCommunicator(silent, {"type": "test"})
        with pytest.raises(asyncio.TimeoutError):
            await communicator.receive_output(timeout=0.01)

    async def test_an_exited_application_raises_asyncio_timeout_error(self) -> None:
        communicator = ApplicationCommunicator(finishes, {"type": "test"})
        with pytest.raises(asyncio.TimeoutError, match="exited without one"):
            await communicator.receive_output()


class TestSubclasses:
    """Communicator subclasses as libraries write them."""

    async def test_a_subclass_reads_future_and_output_queue(self) -> None:
        class Peeking(WebsocketCommunicator):
            async def queued_types(self) -> list[str]:
                await asyncio.wait({self.future}, timeout=0.01)
                return [event["type"] for event in list(self.output_queue._queue)]  # type: ignore[attr-defined]  # asyncio.Queue's deque, read as libraries do

        communicator = Peeking(websocket_app({"type": "websocket.send", "text": "a"}), "/")
        assert await communicator.connect() == (True, None)
        assert await communicator.queued_types() == ["websocket.send"]
        assert not communicator.future.done()
        assert await communicator.receive_from() == "a"
        await communicator.disconnect()
        assert communicator.future.done()

    async def test_an_overridden_receive_output_is_what_the_helpers_read(self) -> None:
        class SkipsPings(WebsocketCommunicator):
            async def receive_output(self, timeout: float | None = 1) -> dict[str, Any]:
                event = await super().receive_output(timeout)
                while event.get("text") == "ping":
                    event = await super().receive_output(timeout)
                return event

        app = websocket_app(
            {"type": "websocket.send", "text": "ping"}, {"type": "websocket.send", "text": "data"}
        )
        communicator = SkipsPings(app, "/")
        assert await communicator.connect() == (True, None)
        assert await communicator.receive_from() == "data"
        await communicator.disconnect()

    async def test_private_names_in_a_subclass_do_not_collide(self) -> None:
        class Private(WebsocketCommunicator):
            _send = _run = _start = _cancel = _next_output = "a subclass's own"
            _raise_if_finished = _wait_for_exit = "a subclass's own"

        communicator = Private(websocket_app({"type": "websocket.send", "text": "a"}), "/")
        assert await communicator.connect() == (True, None)
        assert await communicator.receive_from() == "a"
        await communicator.disconnect()
