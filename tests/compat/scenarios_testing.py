"""Scenarios: the test communicators, as an app's test suite uses them."""

from __future__ import annotations

import asyncio
from typing import Any

from channels.testing import ApplicationCommunicator, HttpCommunicator, WebsocketCommunicator

from ._harness import Observation, jsonable, raised, scenario


def _answers(*events: dict[str, object]) -> Any:
    """An app that sends ``events`` after its first event, then waits for the next one."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        for event in events:
            await send(event)
        await receive()

    return app


_SCOPE_KEYS = ["type", "path", "query_string", "headers", "subprotocols", "spec_version"]


@scenario
def websocket_scope() -> Observation:
    """The scope a WebsocketCommunicator builds (the keys upstream sets)."""
    communicator = WebsocketCommunicator(
        _answers(),
        "/chat/caf%C3%A9/?room=1&x=%20",
        headers=[[b"origin", b"http://example.com"], (b"cookie", b"a=1")],
        subprotocols=["chat", "v2"],
        spec_version="2.3",
    )
    return {key: jsonable(communicator.scope.get(key)) for key in _SCOPE_KEYS}


@scenario
def http_scope() -> Observation:
    """The scope an HttpCommunicator builds (the keys upstream sets)."""
    communicator = HttpCommunicator(
        _answers(), "post", "/a%20b/?q=1", body=b"x", headers=[[b"content-type", b"text/plain"]]
    )
    keys = ["type", "http_version", "method", "path", "query_string", "headers"]
    return {key: jsonable(communicator.scope.get(key)) for key in keys}


@scenario
async def websocket_accept_and_frames() -> Observation:
    """connect(), receive_from(), receive_json_from(), receive_nothing() and disconnect()."""
    app = _answers(
        {"type": "websocket.accept", "subprotocol": "chat", "headers": [[b"x-a", b"1"]]},
        {"type": "websocket.send", "text": "hello"},
        {"type": "websocket.send", "bytes": b"\x00"},
        {"type": "websocket.send", "text": '{"n": [1, 2]}'},
    )
    communicator = WebsocketCommunicator(app, "/")
    connected = await communicator.connect()
    observed: dict[str, Observation] = {
        "connect": jsonable(connected),
        "response_headers": jsonable(communicator.response_headers),
        "text": await communicator.receive_from(),
        "bytes": jsonable(await communicator.receive_from()),
        "json": await communicator.receive_json_from(),
        "nothing": await communicator.receive_nothing(),
    }
    await communicator.disconnect()
    observed["done"] = communicator.future.done()
    return observed


@scenario
async def websocket_refused() -> Observation:
    """connect() when the application closes instead of accepting."""
    results: dict[str, Observation] = {}
    for code in (None, 4003):
        close: dict[str, object] = {"type": "websocket.close"}
        if code is not None:
            close["code"] = code
        communicator = WebsocketCommunicator(_answers(close), "/")
        results[str(code)] = jsonable(await communicator.connect())
        communicator.stop()
    return results


@scenario
async def websocket_wrong_frames() -> Observation:
    """What receive_from() and receive_json_from() raise for the wrong events."""
    results: dict[str, Observation] = {}
    cases: dict[str, tuple[dict[str, object], str]] = {
        "close instead of send": ({"type": "websocket.close"}, "receive_from"),
        "binary for json": ({"type": "websocket.send", "bytes": b"{}"}, "receive_json_from"),
        "not json": ({"type": "websocket.send", "text": "{nope"}, "receive_json_from"),
    }
    for name, (event, method) in cases.items():
        communicator = WebsocketCommunicator(_answers({"type": "websocket.accept"}, event), "/")
        await communicator.connect()
        try:
            await getattr(communicator, method)()
            results[name] = "no error"
        except Exception as exc:
            results[name] = raised(exc)
        communicator.stop()
    return results


@scenario
async def send_to_arguments() -> Observation:
    """send_to() with both or neither of text_data and bytes_data."""
    results: dict[str, Observation] = {}
    cases: dict[str, dict[str, Any]] = {
        "neither": {},
        "both": {"text_data": "a", "bytes_data": b"a"},
    }
    for name, kwargs in cases.items():
        communicator = WebsocketCommunicator(_answers({"type": "websocket.accept"}), "/")
        await communicator.connect()
        try:
            await communicator.send_to(**kwargs)
            results[name] = "sent"
        except Exception as exc:
            results[name] = raised(exc)
        communicator.stop()
    return results


@scenario
async def timeouts() -> Observation:
    """The exception a timeout raises, while the app runs and after it exited."""

    async def silent(scope: Any, receive: Any, send: Any) -> None:
        await asyncio.Event().wait()

    async def finishes(scope: Any, receive: Any, send: Any) -> None:
        return None

    results: dict[str, Observation] = {}
    for name, app in {"silent": silent, "finished": finishes}.items():
        communicator = ApplicationCommunicator(app, {"type": "test"})
        try:
            await communicator.receive_output(timeout=0.05)
        except BaseException as exc:
            results[name] = {
                "error": raised(exc),
                "is asyncio.TimeoutError": isinstance(exc, asyncio.TimeoutError),
            }
        results[f"{name} cancelled"] = communicator.future.cancelled()
    return results


@scenario
async def application_errors_are_raised() -> Observation:
    """An application's exception reaches the test from the next call."""

    async def fails(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        raise KeyError("broke")

    communicator = ApplicationCommunicator(fails, {"type": "test"})
    await communicator.send_input({"type": "go"})
    try:
        await communicator.receive_output()
    except BaseException as exc:
        return raised(exc)
    return "no error"


@scenario
async def http_response() -> Observation:
    """get_response(): status, headers as sent, extra start keys, joined body."""
    app = _answers(
        {
            "type": "http.response.start",
            "status": 201,
            "headers": [[b"content-type", b"text/plain"]],
            "trailers": False,
        },
        {"type": "http.response.body", "body": b"a", "more_body": True},
        {"type": "http.response.body", "body": b"b"},
    )
    response = await HttpCommunicator(app, "GET", "/").get_response()
    return jsonable(dict(response))


@scenario
async def http_response_without_headers() -> Observation:
    """The headers of a response whose start event has none."""
    app = _answers(
        {"type": "http.response.start", "status": 204},
        {"type": "http.response.body", "body": b""},
    )
    response = await HttpCommunicator(app, "GET", "/").get_response()
    return jsonable(dict(response))
