from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from django.test import override_settings
from django.urls import path

from channels.exceptions import StopConsumer
from channels.generic.http import AsyncHttpConsumer
from channels.layers import get_channel_layer
from channels.layers.protocols import FullChannelLayer
from channels.routing import URLRouter
from channels.testing import HttpCommunicator
from channels.types import ReceivedMessage
from tests.generic._subclass import with_attributes

_EVENTS_ALIAS = "events"


@pytest.fixture
def events_layer() -> Iterator[FullChannelLayer]:
    """A fresh InMemoryChannelLayer under the alias "events"."""
    setting = {_EVENTS_ALIAS: {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    with override_settings(CHANNEL_LAYERS=setting):
        layer = get_channel_layer(_EVENTS_ALIAS)
        assert layer is not None
        yield layer


class Echo(AsyncHttpConsumer):
    """Answers with the request body."""

    async def handle(self, body: bytes) -> None:
        await self.send_response(200, body, headers={b"Content-Type": b"text/plain"})


class TestRequestBody:
    async def test_handle_gets_the_body_of_a_single_chunk(self) -> None:
        communicator = HttpCommunicator(Echo.as_asgi(), "POST", "/", body=b"hello")
        response = await communicator.get_response()
        assert response == {
            "status": 200,
            "headers": [(b"Content-Type", b"text/plain")],
            "body": b"hello",
        }

    async def test_handle_gets_the_chunks_joined_once_the_last_arrives(self) -> None:
        communicator = HttpCommunicator(Echo.as_asgi(), "POST", "/")
        await communicator.send_input({"type": "http.request", "body": b"one ", "more_body": True})
        await communicator.send_input({"type": "http.request", "more_body": True})
        await communicator.send_input({"type": "http.request", "body": b"two", "more_body": True})
        await communicator.send_input({"type": "http.request", "body": b" three"})
        start = await communicator.receive_output()
        body = await communicator.receive_output()
        assert start["status"] == 200
        assert body["body"] == b"one two three"

    async def test_each_connection_gets_its_own_consumer(self) -> None:
        application = Echo.as_asgi()
        first = await HttpCommunicator(application, "POST", "/", body=b"first").get_response()
        second = await HttpCommunicator(application, "POST", "/", body=b"second").get_response()
        assert (first["body"], second["body"]) == (b"first", b"second")

    async def test_a_consumer_without_handle_says_to_implement_it(self) -> None:
        class NoHandle(AsyncHttpConsumer):
            pass

        communicator = HttpCommunicator(NoHandle.as_asgi(), "GET", "/")
        with pytest.raises(NotImplementedError, match=r"NoHandle must implement handle\(body\)"):
            await communicator.get_response()


class SendsHeaders(AsyncHttpConsumer):
    """Sends the headers it is built with."""

    headers: object = None

    async def handle(self, body: bytes) -> None:
        await self.send_response(204, b"", headers=self.headers)  # type: ignore[arg-type]  # bad values on purpose


class TestResponseHeaders:
    @pytest.mark.parametrize(
        ("headers", "expected"),
        [
            pytest.param(None, [], id="none"),
            pytest.param(
                {b"X-A": b"1", b"X-B": b"2"}, [(b"X-A", b"1"), (b"X-B", b"2")], id="dict-bytes"
            ),
            pytest.param({"X-A": "caf\xe9"}, [(b"X-A", b"caf\xe9")], id="dict-str-latin-1"),
            pytest.param(
                {"X-A": b"1", b"X-B": "2"}, [(b"X-A", b"1"), (b"X-B", b"2")], id="dict-mixed"
            ),
            pytest.param(
                [(b"X-A", b"1"), ("X-A", "2")], [(b"X-A", b"1"), (b"X-A", b"2")], id="pairs"
            ),
            pytest.param([["X-A", "1"]], [(b"X-A", b"1")], id="list-pairs"),
            pytest.param((("Set-Cookie", "a=1"),), [(b"Set-Cookie", b"a=1")], id="tuple-of-pairs"),
        ],
    )
    async def test_headers_in_every_accepted_form(
        self, headers: object, expected: list[tuple[bytes, bytes]]
    ) -> None:
        communicator = HttpCommunicator(
            with_attributes(SendsHeaders, headers=headers).as_asgi(), "GET", "/"
        )
        response = await communicator.get_response()
        assert response["status"] == 204
        assert response["headers"] == expected

    @pytest.mark.parametrize(
        ("headers", "error", "match"),
        [
            pytest.param(
                {"X-A": 1},
                TypeError,
                r"a header value must be str or bytes; got int 1",
                id="int-value",
            ),
            pytest.param(
                [(None, b"1")],
                TypeError,
                r"a header name must be str or bytes; got NoneType None",
                id="none-name",
            ),
            pytest.param(
                {"X-\u20ac": "1"},
                ValueError,
                r"header name given as str must be ascii text.*'X-\u20ac'",
                id="non-ascii-name",
            ),
            pytest.param(
                {"X-A": "\u20ac"},
                ValueError,
                r"header value given as str must be latin-1 text.*'\u20ac'",
                id="non-latin-1-value",
            ),
            pytest.param(
                [(b"X-A", b"1", b"2")],
                TypeError,
                r"each header must be a \(name, value\) pair.*got \(b'X-A', b'1', b'2'\)",
                id="triple",
            ),
            pytest.param(
                [b"X-A"],
                TypeError,
                r"each header must be a \(name, value\) pair.*got b'X-A'",
                id="bare-name",
            ),
            pytest.param(
                5,
                TypeError,
                r"headers must be a dict or a list of \(name, value\) pairs.*got 5",
                id="int",
            ),
            pytest.param("X-A: 1", TypeError, r"headers must be a dict.*got 'X-A: 1'", id="str"),
        ],
    )
    async def test_bad_headers_are_refused(
        self, headers: object, error: type[Exception], match: str
    ) -> None:
        communicator = HttpCommunicator(
            with_attributes(SendsHeaders, headers=headers).as_asgi(), "GET", "/"
        )
        with pytest.raises(error, match=match):
            await communicator.get_response()


class TestResponseBody:
    async def test_send_headers_defaults_to_200_and_no_headers(self) -> None:
        class Plain(AsyncHttpConsumer):
            async def handle(self, body: bytes) -> None:
                await self.send_headers()
                await self.send_body(b"ok")

        response = await HttpCommunicator(Plain.as_asgi(), "GET", "/").get_response()
        assert response == {"status": 200, "headers": [], "body": b"ok"}

    async def test_a_streamed_body_arrives_in_chunks_in_order(self) -> None:
        class Stream(AsyncHttpConsumer):
            async def handle(self, body: bytes) -> None:
                await self.send_headers(status=201, headers=[("Content-Type", "text/plain")])
                await self.send_body(b"a", more_body=True)
                await self.send_body(b"b", more_body=True)
                await self.send_body(b"c")

        communicator = HttpCommunicator(Stream.as_asgi(), "GET", "/")
        await communicator.send_input({"type": "http.request"})
        events = [await communicator.receive_output() for _ in range(4)]
        assert events == [
            {
                "type": "http.response.start",
                "status": 201,
                "headers": [(b"Content-Type", b"text/plain")],
            },
            {"type": "http.response.body", "body": b"a", "more_body": True},
            {"type": "http.response.body", "body": b"b", "more_body": True},
            {"type": "http.response.body", "body": b"c", "more_body": False},
        ]
        await communicator.wait()

    async def test_a_body_that_is_not_bytes_is_refused(self) -> None:
        class Text(AsyncHttpConsumer):
            async def handle(self, body: bytes) -> None:
                await self.send_headers()
                await self.send_body("text")  # type: ignore[arg-type]  # the error under test

        communicator = HttpCommunicator(Text.as_asgi(), "GET", "/")
        with pytest.raises(TypeError, match=r"response body must be bytes; got str 'text'"):
            await communicator.get_response()


class TestLifecycle:
    async def test_the_consumer_ends_after_a_complete_response(self) -> None:
        disconnects: list[str] = []

        class Done(Echo):
            async def disconnect(self) -> None:
                disconnects.append("done")

        communicator = HttpCommunicator(Done.as_asgi(), "GET", "/")
        await communicator.get_response()
        await communicator.wait()
        assert disconnects == ["done"]

    async def test_a_response_sent_as_raw_events_also_ends_the_consumer(self) -> None:
        class Raw(AsyncHttpConsumer):
            async def handle(self, body: bytes) -> None:
                await self.send({"type": "http.response.start", "status": 200})
                await self.send({"type": "http.response.body", "body": b"x", "more_body": True})
                await self.send({"type": "http.response.body"})

        communicator = HttpCommunicator(Raw.as_asgi(), "GET", "/")
        assert (await communicator.get_response())["body"] == b"x"
        await communicator.wait()

    async def test_client_disconnect_stops_the_consumer_cleanly(
        self, events_layer: FullChannelLayer
    ) -> None:
        disconnects: list[str] = []

        class Waits(AsyncHttpConsumer):
            channel_layer_alias = _EVENTS_ALIAS

            async def handle(self, body: bytes) -> None:
                await self.channel_layer.group_add("waiting", self.channel_name)

            async def ready(self, message: ReceivedMessage) -> None:
                await self.send_response(200, b"late")

            async def disconnect(self) -> None:
                disconnects.append("bye")

        communicator = HttpCommunicator(Waits.as_asgi(), "GET", "/")
        await communicator.send_input({"type": "http.request"})
        await communicator.send_input({"type": "http.disconnect"})
        await communicator.wait()
        assert disconnects == ["bye"]
        assert communicator.output_queue.empty()

    async def test_an_error_in_handle_propagates_after_disconnect(self) -> None:
        disconnects: list[str] = []

        class Fails(AsyncHttpConsumer):
            async def handle(self, body: bytes) -> None:
                raise RuntimeError("handle failed")

            async def disconnect(self) -> None:
                disconnects.append("cleaned")

        communicator = HttpCommunicator(Fails.as_asgi(), "GET", "/")
        with pytest.raises(RuntimeError, match="handle failed"):
            await communicator.get_response()
        assert disconnects == ["cleaned"]

    async def test_a_handler_may_stop_the_consumer(self) -> None:
        class Stops(AsyncHttpConsumer):
            async def handle(self, body: bytes) -> None:
                raise StopConsumer

        communicator = HttpCommunicator(Stops.as_asgi(), "GET", "/")
        await communicator.send_input({"type": "http.request"})
        await communicator.wait()
        assert communicator.output_queue.empty()


class TestChannelLayerMessages:
    async def test_long_poll_answers_from_a_layer_message(
        self, events_layer: FullChannelLayer
    ) -> None:
        disconnects: list[str] = []
        joined = asyncio.Event()

        class LongPoll(AsyncHttpConsumer):
            channel_layer_alias = _EVENTS_ALIAS

            async def handle(self, body: bytes) -> None:
                await self.channel_layer.group_add("polls", self.channel_name)
                joined.set()

            async def poll_answer(self, message: ReceivedMessage) -> None:
                await self.send_response(200, message["text"].encode())

            async def disconnect(self) -> None:
                disconnects.append("done")

        communicator = HttpCommunicator(LongPoll.as_asgi(), "GET", "/poll/")
        await communicator.send_input({"type": "http.request"})
        await asyncio.wait_for(joined.wait(), timeout=1)
        await events_layer.group_send("polls", {"type": "poll.answer", "text": "news!"})
        response = await communicator.get_response()
        assert response == {"status": 200, "headers": [], "body": b"news!"}
        await communicator.wait()
        assert disconnects == ["done"]

    async def test_server_sent_events_stream_layer_messages(
        self, events_layer: FullChannelLayer
    ) -> None:
        left: list[str] = []

        class NewsEvents(AsyncHttpConsumer):
            channel_layer_alias = _EVENTS_ALIAS

            async def handle(self, body: bytes) -> None:
                await self.channel_layer.group_add("news", self.channel_name)
                await self.send_headers(headers={"Content-Type": "text/event-stream"})
                await self.send_body(b"", more_body=True)

            async def news_story(self, message: ReceivedMessage) -> None:
                await self.send_body(f"data: {message['text']}\n\n".encode(), more_body=True)

            async def disconnect(self) -> None:
                await self.channel_layer.group_discard("news", self.channel_name)
                left.append(self.channel_name)

        communicator = HttpCommunicator(NewsEvents.as_asgi(), "GET", "/news/")
        await communicator.send_input({"type": "http.request"})
        start = await communicator.receive_output()
        assert start == {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"Content-Type", b"text/event-stream")],
        }
        opening = await communicator.receive_output()
        assert opening == {"type": "http.response.body", "body": b"", "more_body": True}
        # handle() has returned: the stream goes on from layer messages.
        for text in ("one", "two"):
            await events_layer.group_send("news", {"type": "news.story", "text": text})
            chunk = await communicator.receive_output()
            assert chunk == {
                "type": "http.response.body",
                "body": f"data: {text}\n\n".encode(),
                "more_body": True,
            }
        await communicator.send_input({"type": "http.disconnect"})
        await communicator.wait()
        assert len(left) == 1
        assert left[0].startswith("specific.")


class TestRouted:
    async def test_a_routed_consumer_reads_its_url_route(self) -> None:
        class Item(AsyncHttpConsumer):
            async def handle(self, body: bytes) -> None:
                item_id: int = self.scope["url_route"]["kwargs"]["id"]
                await self.send_response(200, str(item_id * 2).encode())

        router = URLRouter([path("api/", URLRouter([path("item/<int:id>/", Item.as_asgi())]))])
        response = await HttpCommunicator(router, "GET", "/api/item/21/").get_response()
        assert response["body"] == b"42"
