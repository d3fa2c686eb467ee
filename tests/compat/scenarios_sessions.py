"""Scenarios: CookieMiddleware, set_cookie/delete_cookie, SessionMiddleware and its cookie.

Session keys are random and cookie dates follow the clock, so observations
name them by shape: ``<key>`` for a session key, ``<in N days>`` for a date
computed from now, ``<about N hours>`` for a Max-Age computed from a datetime.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session as SessionRow
from django.test import override_settings
from django.utils.functional import LazyObject
from django.utils.http import parse_http_date

from channels.db import database_sync_to_async
from channels.sessions import (
    CookieMiddleware,
    InstanceSessionWrapper,
    SessionMiddleware,
    SessionMiddlewareStack,
)
from channels.testing import HttpCommunicator, WebsocketCommunicator

if TYPE_CHECKING:
    # Read by the type checkers only: upstream has no channels.types.
    from channels.types import Event, Receive, ReceivedEvent, Scope, Send

from ._harness import Observation, raised, scenario

Message = dict[str, Any]

_HTTP_DATE = re.compile(r"[A-Z][a-z]{2}, \d\d[ -][A-Z][a-z]{2}[ -]\d{4} \d\d:\d\d:\d\d GMT")
_SESSION_KEY = re.compile(r"(?<==)[a-z0-9]{32}(?=;|$)")
_MAX_AGE = re.compile(r"Max-Age=(\d+)")


def _date(match: re.Match[str]) -> str:
    """A date computed from now, as days from now; a fixed date as it is."""
    text = match.group(0)
    seconds = parse_http_date(text.replace("-", " ")) - datetime.now(timezone.utc).timestamp()
    if abs(seconds) > 400 * 86400:
        return text
    return f"<in {round(seconds / 86400)} days>"


def _max_age(match: re.Match[str]) -> str:
    seconds = int(match.group(1))
    return match.group(0) if seconds < 3600 else f"Max-Age=<about {round(seconds / 3600)} hours>"


def _normalised(value: str) -> str:
    return _MAX_AGE.sub(_max_age, _SESSION_KEY.sub("<key>", _HTTP_DATE.sub(_date, value)))


def _headers(headers: Any) -> Observation:
    """Header pairs as ``[name, value]`` strings, dates and session keys normalised."""
    return [
        [bytes(name).decode("latin-1"), _normalised(bytes(value).decode("latin-1"))]
        for name, value in headers
    ]


async def _never_receive() -> ReceivedEvent:
    raise AssertionError("receive() is not called")


async def _never_send(message: Event) -> None:
    raise AssertionError(f"send() is not called; got {message!r}")


# -- CookieMiddleware -----------------------------------------------------------


async def _cookies_seen(scope: Scope) -> Observation:
    seen: list[Observation] = []

    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(dict(scope["cookies"]))

    try:
        await CookieMiddleware(inner)(scope, _never_receive, _never_send)
    except Exception as exc:
        return raised(exc)
    return seen[0]


@scenario
async def cookie_parsing() -> Observation:
    """scope["cookies"] for one Cookie header of various shapes, or none."""
    cases: dict[str, list[tuple[bytes, bytes]]] = {
        "plain": [(b"cookie", b"a=1; b=two")],
        "quoted": [(b"cookie", b'a="x y"; b="q\\"uote"')],
        "no-equals": [(b"cookie", b"novalue; a=1")],
        "empty": [(b"cookie", b"")],
        "spacing": [(b"cookie", b"a=1;;  b = 2 ;c=")],
        "repeated-name": [(b"cookie", b"a=1; a=2")],
        "latin-1": [(b"cookie", "n=caf\u00e9".encode("latin-1"))],
        "other-headers": [(b"host", b"example.com"), (b"cookie", b"s=1")],
        "none": [],
    }
    seen = {
        name: await _cookies_seen({"type": "http", "headers": headers})
        for name, headers in cases.items()
    }
    seen["no-headers-key"] = await _cookies_seen({"type": "http"})
    seen["websocket"] = await _cookies_seen({"type": "websocket", "headers": [(b"cookie", b"w=1")]})
    return seen


@scenario
async def cookie_parsing_several_headers() -> Observation:
    """Two Cookie headers, as HTTP/2 may send them."""
    headers = [(b"cookie", b"a=1; b=2"), (b"cookie", b"b=3; c=4")]
    return await _cookies_seen({"type": "http", "headers": headers})


@scenario
def cookie_middleware_shape() -> Observation:
    """The attribute that stacks and apps read, and how set_cookie is bound."""
    inner = SessionMiddleware(_never_send_app)
    stack = SessionMiddlewareStack(_never_send_app)
    return {
        "inner": CookieMiddleware(inner).inner is inner,
        "stack": type(stack).__name__,
        "stack.inner": type(stack.inner).__name__,
        "stack.inner.inner": vars(stack.inner)["inner"] is _never_send_app,
        "session.inner": inner.inner is _never_send_app,
    }


async def _never_send_app(scope: Scope, receive: Receive, send: Send) -> None:
    raise AssertionError("not called")


# -- set_cookie and delete_cookie -----------------------------------------------


def _set_cookie(message: Message | None = None, **kwargs: Any) -> Observation:
    message = {"type": "http.response.start", "status": 200} if message is None else message
    try:
        CookieMiddleware.set_cookie(message, "name", **kwargs)
    except Exception as exc:
        return raised(exc)
    return _headers(message["headers"])


@scenario
def set_cookie_output() -> Observation:
    """The Set-Cookie header set_cookie adds, for each combination of its arguments."""
    fixed = "Wed, 01 Jan 2031 00:00:00 GMT"
    return {
        "defaults": _set_cookie(),
        "value": _set_cookie(value="value"),
        "specials": _set_cookie(value="a b;c"),
        "every-attribute": _set_cookie(
            value="v",
            max_age=60,
            expires=fixed,
            path="/app",
            domain=".example.com",
            secure=True,
            httponly=True,
            samesite="Strict",
        ),
        "max-age-only": _set_cookie(value="v", max_age=60),
        "max-age-zero": _set_cookie(value="v", max_age=0),
        "expires-string": _set_cookie(value="v", expires=fixed),
        "expires-empty-string": _set_cookie(value="v", expires=""),
        "expires-naive-datetime": _set_cookie(
            value="v", expires=datetime.now(timezone.utc).replace(tzinfo=None) + timedelta(days=1)
        ),
        "expires-past-naive-datetime": _set_cookie(value="v", expires=datetime(2001, 1, 1)),
        "expires-datetime-and-max-age": _set_cookie(
            value="v",
            max_age=5,
            expires=datetime.now(timezone.utc).replace(tzinfo=None) + timedelta(days=2),
        ),
        "no-path-no-samesite": _set_cookie(value="v", path=None, samesite=None),
        "secure-none": _set_cookie(value="v", secure=None, httponly=None),
        "samesite-None": _set_cookie(value="v", samesite="None"),
        "samesite-LAX": _set_cookie(value="v", samesite="LAX"),
        "samesite-invalid": _set_cookie(value="v", samesite="always"),
        "illegal-name": _set_cookie_named("a;b"),
        "existing-headers": _set_cookie(
            {"type": "http.response.start", "headers": [(b"content-type", b"text/plain")]},
            value="v",
        ),
        "twice": _set_twice(),
    }


def _set_cookie_named(key: str) -> Observation:
    try:
        CookieMiddleware.set_cookie({}, key, "v")
    except Exception as exc:
        return raised(exc)
    return "no error"


def _set_twice() -> Observation:
    message: Message = {}
    CookieMiddleware.set_cookie(message, "a", "1")
    CookieMiddleware.set_cookie(message, "b", "2")
    return _headers(message["headers"])


@scenario
def set_cookie_aware_datetime() -> Observation:
    """An aware datetime as expires (upstream fails on Django 5, which dropped timezone.utc)."""
    return _set_cookie(value="v", expires=datetime.now(timezone.utc) + timedelta(days=1))


@scenario
def delete_cookie_output() -> Observation:
    """The Set-Cookie header delete_cookie adds."""
    plain: Message = {}
    CookieMiddleware.delete_cookie(plain, "name")
    placed: Message = {}
    CookieMiddleware.delete_cookie(placed, "name", path="/app", domain="example.com")
    return {"plain": _headers(plain["headers"]), "placed": _headers(placed["headers"])}


# -- SessionMiddleware over HTTP ------------------------------------------------


def _stored(key: str | None) -> dict[str, Any]:
    return SessionStore(key).load() if key else {}


def _new_stored_session(data: dict[str, Any]) -> str:
    store = SessionStore()
    store.update(data)
    store.save()
    return store.session_key or ""


def _row_count() -> int:
    return SessionRow.objects.count()


SessionAction = Callable[[Any], None]


async def _request(
    action: SessionAction | None,
    *,
    cookie: str | None = None,
    status: int = 200,
    cookie_name: str = "sessionid",
) -> Observation:
    """One GET through SessionMiddlewareStack, whose app runs ``action`` on the session."""
    sessions: list[Any] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        sessions.append(scope["session"])
        if action is not None:
            await database_sync_to_async(action)(scope["session"])
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    headers = [(b"cookie", f"{cookie_name}={cookie}".encode())] if cookie is not None else []
    rows_before = await database_sync_to_async(_row_count)()
    try:
        response = await HttpCommunicator(
            SessionMiddlewareStack(app), "GET", "/", headers=headers
        ).get_response()
    except Exception as exc:
        return raised(exc)
    key = sessions[0].session_key if sessions else None
    return {
        "status": response["status"],
        "headers": _headers(response["headers"]),
        "stored": await database_sync_to_async(_stored)(key),
        "key-kept": key == cookie if cookie is not None else key is not None,
        "new-rows": await database_sync_to_async(_row_count)() - rows_before,
    }


def _store(session: Any) -> None:
    session["k"] = "v"


def _read(session: Any) -> None:
    session.get("seen")


def _flush(session: Any) -> None:
    session.flush()


@scenario
async def session_saved_on_http_response() -> Observation:
    """What is stored, and the cookie sent back, for the everyday cases."""
    return {
        "modified": await _request(_store),
        "untouched": await _request(None),
        "read-only": await _request(_read),
        "modified-existing": await _request(
            _store, cookie=await database_sync_to_async(_new_stored_session)({"seen": 1})
        ),
        "read-existing": await _request(
            _read, cookie=await database_sync_to_async(_new_stored_session)({"seen": 1})
        ),
        "status-500": await _request(_store, status=500),
        "status-404": await _request(_store, status=404),
        "status-302": await _request(_store, status=302),
    }


@scenario
async def session_not_saved_on_other_server_errors() -> Observation:
    """A 503 response after the session was modified."""
    return await _request(_store, status=503)


@scenario
async def session_emptied() -> Observation:
    """Sessions with no data: flushed by the app, stale, or new under SESSION_SAVE_EVERY_REQUEST."""
    return {
        "flushed": await _request(
            _flush, cookie=await database_sync_to_async(_new_stored_session)({"seen": 1})
        ),
        "stale-cookie-read": await _request(_read, cookie="a" * 32),
        "new-and-untouched-saved-every-request": await _new_untouched_saved_every_request(),
    }


async def _new_untouched_saved_every_request() -> Observation:
    with override_settings(SESSION_SAVE_EVERY_REQUEST=True):
        return await _request(None)


@scenario
async def session_stale_cookie_untouched() -> Observation:
    """A cookie naming no stored session, when the app does not touch the session."""
    return await _request(None, cookie="b" * 32)


@scenario
async def session_cookie_settings() -> Observation:
    """The session cookie follows Django's SESSION_* settings."""
    with override_settings(
        SESSION_COOKIE_NAME="sid",
        SESSION_COOKIE_AGE=600,
        SESSION_COOKIE_DOMAIN=".example.com",
        SESSION_COOKIE_PATH="/app",
        SESSION_COOKIE_SECURE=True,
        SESSION_COOKIE_HTTPONLY=False,
        SESSION_COOKIE_SAMESITE="Strict",
    ):
        custom = await _request(_store, cookie_name="sid")
    with override_settings(SESSION_EXPIRE_AT_BROWSER_CLOSE=True, SESSION_COOKIE_SAMESITE=None):
        browser = await _request(_store)
    with override_settings(SESSION_SAVE_EVERY_REQUEST=True):
        every = await _request(
            _read, cookie=await database_sync_to_async(_new_stored_session)({"seen": 2})
        )
    return {"custom": custom, "browser-session": browser, "save-every-request": every}


@scenario
async def session_scope() -> Observation:
    """What scope["session"] is, and which stored session it names."""
    key = await database_sync_to_async(_new_stored_session)({"seen": 3})
    seen: list[Any] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope)

    scope = {"type": "http", "headers": [(b"cookie", f"sessionid={key}".encode())]}
    await SessionMiddlewareStack(app)(scope, _never_receive, _never_send)
    session = seen[0]["session"]
    return {
        "lazy": isinstance(session, LazyObject),
        "key-from-cookie": session.session_key == key,
        "data": await database_sync_to_async(lambda: dict(session.items()))(),
        "outer-scope-untouched": sorted(scope),
        "inner-scope-keys": sorted(seen[0]),
        "without-cookies": await _without_cookies(),
    }


async def _without_cookies() -> Observation:
    try:
        await SessionMiddleware(_never_send_app)(
            {"type": "http", "headers": []}, _never_receive, _never_send
        )
    except Exception as exc:
        return raised(exc)
    return "no error"


@scenario
async def session_nested_middleware() -> Observation:
    """SessionMiddleware inside SessionMiddleware: one session, saved once."""
    sessions: list[Any] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        sessions.append(scope["session"])
        await database_sync_to_async(_store)(scope["session"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    rows_before = await database_sync_to_async(_row_count)()
    application = SessionMiddlewareStack(SessionMiddleware(app))
    response = await HttpCommunicator(application, "GET", "/").get_response()
    return {
        "headers": _headers(response["headers"]),
        "new-rows": await database_sync_to_async(_row_count)() - rows_before,
        "stored": await database_sync_to_async(_stored)(sessions[0].session_key),
    }


@scenario
async def session_header_containers() -> Observation:
    """The header list the app sends keeps its items; the cookie is appended."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await database_sync_to_async(_store)(scope["session"])
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [[b"x-a", b"1"], (b"x-b", b"2")],
            }
        )
        await send({"type": "http.response.body", "body": b""})

    response = await HttpCommunicator(SessionMiddlewareStack(app), "GET", "/").get_response()
    return {
        "headers": _headers(response["headers"]),
        "types": [
            type(response["headers"]).__name__,
            *(type(pair).__name__ for pair in response["headers"]),
        ],
    }


# -- SessionMiddleware on websockets ---------------------------------------------


@scenario
async def session_on_websocket_accept() -> Observation:
    """A session modified before accepting a websocket: saved or not, and the accept message."""
    sessions: list[Any] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        sessions.append(scope["session"])
        await database_sync_to_async(_store)(scope["session"])
        await send({"type": "websocket.accept"})
        await receive()

    communicator = WebsocketCommunicator(SessionMiddlewareStack(app), "/ws/")
    connected = await communicator.connect()
    await communicator.disconnect()
    return {
        "connected": list(connected),
        "stored": await database_sync_to_async(_stored)(sessions[0].session_key),
    }


@scenario
async def session_on_websocket_untouched() -> Observation:
    """A websocket that does not touch the session: nothing stored, the accept passes."""
    rows_before = await database_sync_to_async(_row_count)()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept", "headers": [(b"x-a", b"1")]})
        await receive()

    communicator = WebsocketCommunicator(SessionMiddlewareStack(app), "/ws/")
    connected = await communicator.connect()
    headers = (
        _headers(communicator.response_headers)
        if hasattr(communicator, "response_headers")
        else None
    )
    await communicator.disconnect()
    return {
        "connected": list(connected),
        "new-rows": await database_sync_to_async(_row_count)() - rows_before,
        "has-response-headers": headers is not None,
    }


# -- InstanceSessionWrapper -----------------------------------------------------


@scenario
async def session_wrapper_attributes() -> Observation:
    """The attributes of InstanceSessionWrapper that apps and subclasses read."""

    async def send(message: Event) -> None:
        pass

    outer = InstanceSessionWrapper({"type": "http", "cookies": {"sessionid": "c" * 32}}, send)
    await outer.resolve_session()
    inner = InstanceSessionWrapper(outer.scope, send)
    return {
        "cookie_name": outer.cookie_name,
        "session_store": outer.session_store is SessionStore,
        "activated": [outer.activated, inner.activated],
        "real_send": outer.real_send is send,
        "scope-keys": sorted(outer.scope),
        "session-key": outer.scope["session"].session_key == "c" * 32,
        "shared-session": inner.scope["session"] is outer.scope["session"],
        "cookie_response_message_types": list(InstanceSessionWrapper.cookie_response_message_types),
        "save-on-http": "http.response.start" in InstanceSessionWrapper.save_message_types,
        "type-of-types": type(InstanceSessionWrapper.save_message_types).__name__,
        "without-cookies": _wrapper_without_cookies(),
    }


def _wrapper_without_cookies() -> Observation:
    try:
        InstanceSessionWrapper({"type": "http"}, _never_send)
    except Exception as exc:
        return raised(exc)
    return "no error"


@scenario
def session_wrapper_save_types() -> Observation:
    """The message types on which the session is saved."""
    return list(InstanceSessionWrapper.save_message_types)


class _HeaderKeyWrapper(InstanceSessionWrapper):
    """Reads the session key from an ``x-session`` header, as apps with their own keys do."""

    async def resolve_session(self) -> None:
        headers = dict(self.scope["headers"])
        key = headers.get(b"x-session", b"").decode() or None
        self.scope["session"]._wrapped = await database_sync_to_async(self.session_store)(key)


class _HeaderKeyMiddleware(SessionMiddleware):
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> Any:
        wrapper = _HeaderKeyWrapper(scope, send)
        await wrapper.resolve_session()
        return await self.inner(wrapper.scope, receive, wrapper.send)


@scenario
async def session_wrapper_resolve_session_override() -> Observation:
    """A subclass that overrides resolve_session(): its store is the one used and saved."""
    key = await database_sync_to_async(_new_stored_session)({"seen": 4})
    seen: list[Any] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        seen.append(scope["session"])
        seen.append(await database_sync_to_async(lambda: scope["session"].get("seen"))())
        await database_sync_to_async(_store)(scope["session"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    application = CookieMiddleware(_HeaderKeyMiddleware(app))
    response = await HttpCommunicator(
        application, "GET", "/", headers=[(b"x-session", key.encode())]
    ).get_response()
    return {
        "seen": seen[1],
        "headers": _headers(response["headers"]),
        "key-kept": seen[0].session_key == key,
        "stored": await database_sync_to_async(_stored)(key),
    }


@scenario
async def session_deleted_before_save() -> Observation:
    """The stored session vanishes while the app modifies it: SuspiciousOperation."""
    key = await database_sync_to_async(_new_stored_session)({"seen": 5})

    def modify_then_delete(session: Any) -> None:
        session["k"] = "v"
        SessionRow.objects.filter(session_key=key).delete()

    return await _request(modify_then_delete, cookie=key)
