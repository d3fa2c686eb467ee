from __future__ import annotations

import asyncio
import urllib.request

import pytest
from django.contrib.auth.models import User
from websockets.asyncio.client import connect

from channels.testing import ChannelsLiveServerTestCase


async def _echo(url: str, text: str) -> str | bytes:
    async with connect(url, open_timeout=10) as websocket:
        await websocket.send(text)
        return await asyncio.wait_for(websocket.recv(), timeout=10)


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as response:
        body: bytes = response.read()
        return body


@pytest.mark.slow
class TestLiveServer(ChannelsLiveServerTestCase):
    def test_websocket_round_trip(self) -> None:
        reply = asyncio.run(_echo(f"{self.live_server_ws_url}/ws/echo/", "hi"))
        assert reply == "echo: hi"

    def test_serves_static_files(self) -> None:
        assert _get(f"{self.live_server_url}/static/hello.txt") == b"hello static\n"

    def test_server_sees_the_test_database(self) -> None:
        User.objects.create_user("live")
        assert _get(f"{self.live_server_url}/users/count/") == b"1"

    def test_addresses(self) -> None:
        assert self.live_server_url.startswith("http://localhost:")
        assert self.live_server_ws_url == self.live_server_url.replace("http://", "ws://")
