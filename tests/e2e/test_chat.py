"""The chat demo served by daphne, uvicorn and hypercorn, talked to by real clients."""

from __future__ import annotations

import html
import uuid
from urllib.parse import quote

import pytest
from websockets.exceptions import InvalidStatus

from tests.e2e._client import fetch, join, post_lobby
from tests.e2e._servers import ChatServer

pytestmark = pytest.mark.slow


def fresh_room() -> str:
    return f"room-{uuid.uuid4().hex[:12]}"


class TestConversation:
    async def test_two_clients_see_each_others_messages_in_order(
        self, chat_server: ChatServer
    ) -> None:
        room = fresh_room()
        async with join(chat_server, room, "Ada") as ada, join(chat_server, room, "Grace") as grace:
            await ada.wait_for_count(2)
            await grace.wait_for_count(2)
            for n in range(5):
                await ada.say(f"ada {n}")
            ada_lines = [("Ada", f"ada {n}") for n in range(5)]
            assert await grace.messages(5) == ada_lines
            assert await ada.messages(5) == ada_lines
            for n in range(5):
                await grace.say(f"grace {n}")
            grace_lines = [("Grace", f"grace {n}") for n in range(5)]
            assert await ada.messages(5) == grace_lines
            assert await grace.messages(5) == grace_lines

    async def test_text_arrives_as_sent(self, chat_server: ChatServer) -> None:
        room = fresh_room()
        text = '<script>alert("hi")</script> & ünïcødé 🎉'
        async with join(chat_server, room, "Ada") as ada:
            await ada.say(text)
            assert await ada.messages(1) == [("Ada", text)]

    async def test_a_client_without_a_session_is_anonymous(self, chat_server: ChatServer) -> None:
        async with join(chat_server, fresh_room()) as client:
            assert await client.wait_for_count(1) == ["anonymous"]
            await client.say("hello")
            assert await client.messages(1) == [("anonymous", "hello")]

    @pytest.mark.parametrize(
        ("frame", "error"),
        [
            pytest.param("not json", "send JSON like", id="not-json"),
            pytest.param('["hi"]', "non-empty string 'message'", id="not-an-object"),
            pytest.param('{"message": "   "}', "non-empty string 'message'", id="blank"),
            pytest.param('{"message": 42}', "non-empty string 'message'", id="not-a-string"),
            pytest.param(
                '{"message": "' + "x" * 2001 + '"}',
                "at most 2000 characters; got 2001",
                id="too-long",
            ),
            pytest.param(b"\x00", "got a binary frame", id="binary"),
        ],
    )
    async def test_a_bad_frame_gets_an_error_and_the_socket_stays_open(
        self, chat_server: ChatServer, frame: str | bytes, error: str
    ) -> None:
        async with join(chat_server, fresh_room(), "Ada") as ada:
            await ada.connection.send(frame)
            answer = await ada.next_of("error")
            assert error in answer["error"]
            await ada.say("still here")
            assert await ada.messages(1) == [("Ada", "still here")]


class TestPresence:
    async def test_counts_and_names_follow_joins(self, chat_server: ChatServer) -> None:
        room = fresh_room()
        async with join(chat_server, room, "Grace") as grace:
            assert await grace.wait_for_count(1) == ["Grace"]
            async with join(chat_server, room, "Ada") as ada:
                assert await ada.wait_for_count(2) == ["Ada", "Grace"]
                assert await grace.wait_for_count(2) == ["Ada", "Grace"]
            assert await grace.wait_for_count(1) == ["Grace"]

    async def test_a_dropped_client_leaves_the_count(self, chat_server: ChatServer) -> None:
        room = fresh_room()
        async with join(chat_server, room, "Ada") as ada, join(chat_server, room, "Grace") as grace:
            await ada.wait_for_count(2)
            # A line still on its way to Grace when she drops: the server's
            # send to her may fail, and she must leave the room all the same.
            await grace.say("bye")
            assert await ada.messages(1) == [("Grace", "bye")]
            grace.drop()
            assert await ada.wait_for_count(1) == ["Ada"]


class TestOrigin:
    @pytest.mark.parametrize(
        "origin",
        [
            pytest.param("http://evil.example", id="other-host"),
            pytest.param("http://127.0.0.1.evil.example", id="suffixed-host"),
            pytest.param("null", id="opaque"),
        ],
    )
    async def test_a_wrong_origin_is_refused(self, chat_server: ChatServer, origin: str) -> None:
        with pytest.raises(InvalidStatus) as refused:
            async with join(chat_server, fresh_room(), origin=origin):
                pass
        assert refused.value.response.status_code == 403

    async def test_the_servers_own_origin_is_allowed(self, chat_server: ChatServer) -> None:
        async with join(chat_server, fresh_room(), origin=f"http://localhost:{chat_server.port}"):
            pass


class TestLobby:
    def test_the_lobby_leads_to_the_room_page(self, chat_server: ChatServer) -> None:
        room = fresh_room()
        page = post_lobby(chat_server, "Ada <3", room)
        assert page.url == chat_server.room_url(room)
        # Django's autoescaping keeps the name text in the HTML.
        assert '<strong id="me">Ada &lt;3</strong>' in page.text

    @pytest.mark.parametrize(
        ("name", "room", "error"),
        [
            pytest.param(
                "Ada", "no spaces", "Use letters, digits, hyphens and underscores.", id="room"
            ),
            pytest.param("   ", "lobby", "This field is required.", id="blank-name"),
            pytest.param("x" * 33, "lobby", "at most 32 characters", id="long-name"),
        ],
    )
    def test_a_bad_form_stays_in_the_lobby(
        self, chat_server: ChatServer, name: str, room: str, error: str
    ) -> None:
        page = post_lobby(chat_server, name, room)
        assert page.url == f"{chat_server.http_url}/"
        assert error in html.unescape(page.text)

    def test_a_room_without_a_name_sends_the_visitor_to_the_lobby(
        self, chat_server: ChatServer
    ) -> None:
        room = fresh_room()
        page = fetch(chat_server.room_url(room))
        assert page.url == f"{chat_server.http_url}/?room={quote(room)}"
        assert f'value="{room}"' in page.text
