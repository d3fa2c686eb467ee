from __future__ import annotations

import threading
import time
from collections.abc import Iterator, MutableMapping
from datetime import datetime, timedelta, timezone
from http.cookies import CookieError, Morsel, SimpleCookie
from typing import Any

import django
import pytest
from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore
from django.contrib.sessions.models import Session as SessionRow
from django.core.exceptions import SuspiciousOperation
from django.test import override_settings
from django.utils.functional import LazyObject
from django.utils.http import parse_http_date

from channels.db import database_sync_to_async
from channels.sessions import (
    CookieMiddleware,
    InstanceSessionWrapper,
    Session,
    SessionMiddleware,
    SessionMiddlewareStack,
)
from channels.testing import HttpCommunicator, WebsocketCommunicator
from channels.types import ASGIApplication, Event, Headers, Receive, ReceivedEvent, Scope, Send

# -- a session engine that records how it is saved ---------------------------
# SESSION_ENGINE names a module with a SessionStore class: this module.

calls: list[tuple[str, int]] = []
"""(method, thread id) of each top-level save; the store's own nested calls are left out."""


class SessionStore(DatabaseSessionStore):
    """The database store, recording which save API the middleware uses and where."""

    def save(self, must_create: bool = False) -> None:
        if not must_create:
            calls.append(("save", threading.get_ident()))
        super().save(must_create)

    async def asave(self, must_create: bool = False) -> None:
        if not must_create:
            calls.append(("asave", threading.get_ident()))
        await super().asave(must_create)


RECORDING_ENGINE = "tests.test_sessions"


@pytest.fixture
def recorded() -> Iterator[list[tuple[str, int]]]:
    calls.clear()
    with override_settings(SESSION_ENGINE=RECORDING_ENGINE):
        yield calls
    calls.clear()


# -- helpers ------------------------------------------------------------------


async def never_receive() -> ReceivedEvent:
    raise AssertionError("receive() is not called")


async def never_send(event: Event) -> None:
    raise AssertionError(f"send() is not called; got {event!r}")


class ScopeRecorder:
    """Records the scopes it is called with."""

    def __init__(self) -> None:
        self.scopes: list[Scope] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.scopes.append(scope)


def set_value(session: Session, key: str, value: object) -> None:
    session[key] = value


def get_value(session: Session, key: str) -> object:
    return session.get(key, None)


def flush(session: Session) -> None:
    session.flush()


def stored_data(session_key: str) -> dict[str, Any]:
    """The data stored under ``session_key`` (empty if there is no such session)."""
    return DatabaseSessionStore(session_key).load()


def stored_session() -> str:
    """Create a stored session holding ``{"seen": 1}``; return its key."""
    store = DatabaseSessionStore()
    store["seen"] = 1
    store.save()
    key = store.session_key
    if key is None:
        raise AssertionError("a saved session has a key")
    return key


def set_cookies(headers: Headers) -> dict[str, Morsel[str]]:
    """The cookies that ``Set-Cookie`` headers set, by name."""
    cookies: SimpleCookie = SimpleCookie()
    for name, value in headers:
        if name.lower() == b"set-cookie":
            cookies.load(value.decode("latin-1"))
    return dict(cookies)


class HttpSessionApp:
    """An HTTP app that stores ``value`` under ``"key"`` (when given) and answers ``status``."""

    def __init__(self, value: object = None, status: int = 200, empty: bool = False) -> None:
        self.value = value
        self.status = status
        self.empty = empty
        self.sessions: list[Session] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        session: Session = scope["session"]
        self.sessions.append(session)
        if self.value is not None:
            await database_sync_to_async(set_value)(session, "key", self.value)
        if self.empty:
            await database_sync_to_async(flush)(session)
        await send({"type": "http.response.start", "status": self.status, "headers": []})
        await send({"type": "http.response.body", "body": b""})


async def request(
    application: ASGIApplication, cookie: bytes | None = None
) -> tuple[int, dict[str, Morsel[str]]]:
    """Send one GET; return the status and the cookies the response sets."""
    headers = [(b"cookie", cookie)] if cookie is not None else []
    response = await HttpCommunicator(application, "GET", "/", headers=headers).get_response()
    return response["status"], set_cookies(response["headers"])


# -- CookieMiddleware ---------------------------------------------------------


class TestCookieParsing:
    async def parse(self, headers: Headers) -> dict[str, str]:
        inner = ScopeRecorder()
        await CookieMiddleware(inner)(
            {"type": "http", "headers": headers}, never_receive, never_send
        )
        cookies: dict[str, str] = inner.scopes[0]["cookies"]
        return cookies

    async def test_parses_the_cookie_header(self) -> None:
        assert await self.parse([(b"cookie", b"a=1; b=two")]) == {"a": "1", "b": "two"}

    async def test_joins_several_cookie_headers_later_values_winning(self) -> None:
        headers = [(b"cookie", b"a=1; b=2"), (b"x", b"y"), (b"cookie", b"b=3; c=4")]
        assert await self.parse(headers) == {"a": "1", "b": "3", "c": "4"}

    async def test_no_cookie_header_gives_no_cookies(self) -> None:
        assert await self.parse([(b"host", b"example.com")]) == {}

    async def test_unquotes_quoted_values(self) -> None:
        assert await self.parse([(b"cookie", b'a="x y"')]) == {"a": "x y"}

    async def test_leaves_the_outer_scope_alone(self) -> None:
        scope: Scope = {"type": "http", "headers": [(b"cookie", b"a=1")]}
        await CookieMiddleware(ScopeRecorder())(scope, never_receive, never_send)
        assert "cookies" not in scope

    async def test_a_scope_without_headers_raises_value_error(self) -> None:
        with pytest.raises(ValueError, match=r"needs a scope with 'headers'.*'lifespan'"):
            await CookieMiddleware(ScopeRecorder())({"type": "lifespan"}, never_receive, never_send)


class TestSetCookie:
    def test_defaults(self) -> None:
        message: dict[str, Any] = {"type": "http.response.start", "status": 200}
        CookieMiddleware.set_cookie(message, "name", "value")
        assert message["headers"] == [(b"Set-Cookie", b"name=value; Path=/; SameSite=lax")]

    def test_every_attribute(self) -> None:
        message: dict[str, Any] = {"headers": [(b"content-type", b"text/plain")]}
        CookieMiddleware.set_cookie(
            message,
            "name",
            "a value; with specials",
            max_age=60,
            expires="Wed, 01 Jan 2031 00:00:00 GMT",
            path="/app",
            domain=".example.com",
            secure=True,
            httponly=True,
            samesite="Strict",
        )
        assert message["headers"][0] == (b"content-type", b"text/plain")
        morsel = set_cookies(message["headers"])["name"]
        assert morsel.value == "a value; with specials"
        attributes = ["expires", "path", "domain", "max-age", "secure", "httponly", "samesite"]
        assert [morsel[name] for name in attributes] == [
            "Wed, 01 Jan 2031 00:00:00 GMT",
            "/app",
            ".example.com",
            "60",
            True,
            True,
            "Strict",
        ]

    @pytest.mark.parametrize(
        "expires",
        [
            pytest.param(
                datetime(2031, 1, 1, 1, 0, tzinfo=timezone(timedelta(hours=1))), id="aware"
            ),
            pytest.param(datetime(2031, 1, 1), id="naive-is-utc"),
        ],
    )
    def test_a_datetime_becomes_max_age_and_expires(self, expires: datetime) -> None:
        message: dict[str, Any] = {}
        CookieMiddleware.set_cookie(message, "name", expires=expires, max_age=5)
        morsel = set_cookies(message["headers"])["name"]
        target = datetime(2031, 1, 1, tzinfo=timezone.utc).timestamp()
        # Computed from the clock: allow for the second that may tick meanwhile.
        assert abs(int(morsel["max-age"]) - (target - time.time())) <= 2
        assert abs(parse_http_date(morsel["expires"]) - target) <= 2

    def test_a_past_datetime_gives_max_age_zero(self) -> None:
        message: dict[str, Any] = {}
        CookieMiddleware.set_cookie(message, "name", expires=datetime(2001, 1, 1))
        morsel = set_cookies(message["headers"])["name"]
        assert morsel["max-age"] == "0"
        assert abs(parse_http_date(morsel["expires"]) - time.time()) <= 2

    def test_max_age_alone_brings_expires(self) -> None:
        message: dict[str, Any] = {}
        CookieMiddleware.set_cookie(message, "name", max_age=60)
        morsel = set_cookies(message["headers"])["name"]
        assert morsel["max-age"] == "60"
        assert abs(parse_http_date(morsel["expires"]) - (time.time() + 60)) <= 2

    def test_an_expires_string_is_kept_beside_max_age(self) -> None:
        message: dict[str, Any] = {}
        CookieMiddleware.set_cookie(
            message, "name", max_age=60, expires="Wed, 01 Jan 2031 00:00:00 GMT"
        )
        morsel = set_cookies(message["headers"])["name"]
        assert (morsel["max-age"], morsel["expires"]) == ("60", "Wed, 01 Jan 2031 00:00:00 GMT")

    @pytest.mark.parametrize("samesite", ["Strict", "LAX", "none", "None"])
    def test_samesite_is_case_insensitive(self, samesite: str) -> None:
        message: dict[str, Any] = {}
        CookieMiddleware.set_cookie(message, "name", samesite=samesite)
        assert set_cookies(message["headers"])["name"]["samesite"] == samesite

    def test_samesite_none_leaves_it_out(self) -> None:
        message: dict[str, Any] = {}
        CookieMiddleware.set_cookie(message, "name", "v", samesite=None, path=None)
        assert message["headers"] == [(b"Set-Cookie", b"name=v")]

    @pytest.mark.parametrize("samesite", ["", "lax ", "always"])
    @pytest.mark.parametrize("error", [ValueError, AssertionError])
    def test_another_samesite_raises_value_error(
        self, samesite: str, error: type[Exception]
    ) -> None:
        # Also an AssertionError: upstream asserts, and code may catch that.
        with pytest.raises(error, match=rf"one of 'strict', 'lax', 'none'.*; got '{samesite}'"):
            CookieMiddleware.set_cookie({}, "name", samesite=samesite)

    def test_an_illegal_name_raises_cookie_error(self) -> None:
        with pytest.raises(CookieError, match=r"Illegal key 'a;b'"):
            CookieMiddleware.set_cookie({}, "a;b", "v")

    def test_delete_cookie(self) -> None:
        message: dict[str, Any] = {}
        CookieMiddleware.delete_cookie(message, "name", path="/app", domain="example.com")
        morsel = set_cookies(message["headers"])["name"]
        assert morsel.value == ""
        assert morsel["max-age"] == "0"
        assert morsel["expires"] == "Thu, 01-Jan-1970 00:00:00 GMT"
        assert (morsel["path"], morsel["domain"]) == ("/app", "example.com")

    def test_delete_cookie_goes_through_a_subclass_set_cookie(self) -> None:
        calls: list[str] = []

        class Recording(CookieMiddleware):
            @classmethod
            def set_cookie(
                cls, message: MutableMapping[str, Any], key: str, *args: Any, **kwargs: Any
            ) -> None:
                calls.append(key)
                super().set_cookie(message, key, *args, **kwargs)

        message: dict[str, Any] = {}
        Recording.delete_cookie(message, "name")
        assert calls == ["name"]
        assert set_cookies(message["headers"])["name"]["max-age"] == "0"


# -- SessionMiddleware --------------------------------------------------------


class TestSessionScope:
    async def test_the_session_is_lazy_and_keyed_by_the_cookie(self) -> None:
        inner = ScopeRecorder()
        scope: Scope = {"type": "http", "headers": [(b"cookie", b"sessionid=abcdefgh12345678")]}
        await SessionMiddlewareStack(inner)(scope, never_receive, never_send)
        session = inner.scopes[0]["session"]
        assert isinstance(session, LazyObject)
        assert session.session_key == "abcdefgh12345678"

    async def test_without_cookies_raises_value_error(self) -> None:
        with pytest.raises(ValueError, match=r"needs scope\['cookies'\].*got a scope with keys"):
            await SessionMiddleware(ScopeRecorder())(
                {"type": "http", "headers": []}, never_receive, never_send
            )

    def test_a_nested_wrapper_passes_the_outer_session_through(self) -> None:
        outer = InstanceSessionWrapper({"type": "http", "cookies": {}}, never_send)
        inner = InstanceSessionWrapper(outer.scope, never_send)
        assert outer.activated
        assert not inner.activated
        assert inner.scope["session"] is outer.scope["session"]

    def test_the_stack_is_cookies_around_sessions(self) -> None:
        inner = ScopeRecorder()
        stack = SessionMiddlewareStack(inner)
        assert isinstance(stack, CookieMiddleware)
        assert isinstance(stack.inner, SessionMiddleware)
        assert stack.inner.inner is inner


@pytest.mark.django_db(transaction=True)
class TestSavingOnHttp:
    async def test_a_modified_session_is_saved_and_its_cookie_set(self) -> None:
        status, cookies = await request(SessionMiddlewareStack(HttpSessionApp("v")))
        assert status == 200
        key = cookies["sessionid"].value
        assert await database_sync_to_async(stored_data)(key) == {"key": "v"}

    async def test_the_session_comes_back_with_its_cookie(self) -> None:
        key = await database_sync_to_async(stored_session)()
        app = HttpSessionApp()
        await request(SessionMiddlewareStack(app), cookie=b"sessionid=" + key.encode())
        assert await database_sync_to_async(get_value)(app.sessions[0], "seen") == 1

    async def test_an_unmodified_session_is_not_saved(self) -> None:
        _, cookies = await request(SessionMiddlewareStack(HttpSessionApp()))
        assert cookies == {}
        assert await database_sync_to_async(SessionRow.objects.count)() == 0

    @pytest.mark.parametrize("status", [500, 503])
    async def test_a_server_error_does_not_save(self, status: int) -> None:
        app = HttpSessionApp("v", status=status)
        assert await request(SessionMiddlewareStack(app)) == (status, {})
        assert await database_sync_to_async(SessionRow.objects.count)() == 0

    @override_settings(SESSION_SAVE_EVERY_REQUEST=True)
    async def test_save_every_request_saves_an_unmodified_session(self) -> None:
        key = await database_sync_to_async(stored_session)()
        _, cookies = await request(
            SessionMiddlewareStack(HttpSessionApp()), cookie=b"sessionid=" + key.encode()
        )
        assert cookies["sessionid"].value == key

    async def test_an_emptied_session_deletes_its_cookie(self) -> None:
        key = await database_sync_to_async(stored_session)()
        _, cookies = await request(
            SessionMiddlewareStack(HttpSessionApp(empty=True)), cookie=b"sessionid=" + key.encode()
        )
        assert cookies["sessionid"].value == ""
        assert cookies["sessionid"]["max-age"] == "0"
        assert await database_sync_to_async(SessionRow.objects.count)() == 0

    async def test_an_empty_session_without_a_cookie_sets_none(self) -> None:
        assert await request(SessionMiddlewareStack(HttpSessionApp(empty=True))) == (200, {})

    async def test_the_cookie_follows_the_session_settings(self) -> None:
        with override_settings(
            SESSION_COOKIE_NAME="sid",
            SESSION_COOKIE_AGE=600,
            SESSION_COOKIE_DOMAIN=".example.com",
            SESSION_COOKIE_PATH="/app",
            SESSION_COOKIE_SECURE=True,
            SESSION_COOKIE_HTTPONLY=True,
            SESSION_COOKIE_SAMESITE="Strict",
        ):
            _, cookies = await request(SessionMiddlewareStack(HttpSessionApp("v")))
        morsel = cookies["sid"]
        assert morsel["max-age"] == "600"
        assert morsel["expires"].endswith(" GMT")
        assert (morsel["domain"], morsel["path"]) == (".example.com", "/app")
        assert (morsel["secure"], morsel["httponly"], morsel["samesite"]) == (True, True, "Strict")

    async def test_default_cookie_attributes(self) -> None:
        _, cookies = await request(SessionMiddlewareStack(HttpSessionApp("v")))
        morsel = cookies["sessionid"]
        assert morsel["max-age"] == str(60 * 60 * 24 * 7 * 2)
        assert (morsel["path"], morsel["samesite"]) == ("/", "Lax")
        assert (morsel["secure"], morsel["httponly"], morsel["domain"]) == ("", True, "")

    @override_settings(SESSION_EXPIRE_AT_BROWSER_CLOSE=True, SESSION_COOKIE_SAMESITE=None)
    async def test_a_browser_session_cookie_has_no_expiry(self) -> None:
        _, cookies = await request(SessionMiddlewareStack(HttpSessionApp("v")))
        morsel = cookies["sessionid"]
        assert (morsel["max-age"], morsel["expires"], morsel["samesite"]) == ("", "", "")

    @override_settings(SESSION_SAVE_EVERY_REQUEST=True)
    async def test_save_every_request_does_not_store_an_empty_session(self) -> None:
        assert await request(SessionMiddlewareStack(HttpSessionApp())) == (200, {})
        assert await database_sync_to_async(SessionRow.objects.count)() == 0

    async def test_a_stale_cookie_is_deleted_once_the_session_is_read(self) -> None:
        async def read(scope: Scope, receive: Receive, send: Send) -> None:
            await receive()
            await database_sync_to_async(get_value)(scope["session"], "key")
            await send({"type": "http.response.start", "status": 200})
            await send({"type": "http.response.body", "body": b""})

        _, cookies = await request(SessionMiddlewareStack(read), cookie=b"sessionid=" + b"a" * 32)
        assert cookies["sessionid"]["max-age"] == "0"

    async def test_the_applications_message_is_left_as_it_was(self) -> None:
        headers: Headers = [(b"content-type", b"text/plain")]
        start: dict[str, Any] = {"type": "http.response.start", "status": 200, "headers": headers}

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            await receive()
            await database_sync_to_async(set_value)(scope["session"], "key", "v")
            await send(start)
            await send({"type": "http.response.body", "body": b""})

        response = await HttpCommunicator(SessionMiddlewareStack(app), "GET", "/").get_response()
        assert response["headers"][0] == (b"content-type", b"text/plain")
        assert "sessionid" in set_cookies(response["headers"])
        assert start["headers"] is headers
        assert headers == [(b"content-type", b"text/plain")]

    async def test_a_session_deleted_meanwhile_raises_suspicious_operation(self) -> None:
        key = await database_sync_to_async(stored_session)()

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            await receive()
            await database_sync_to_async(set_value)(scope["session"], "key", "v")
            await database_sync_to_async(SessionRow.objects.filter(session_key=key).delete)()
            await send({"type": "http.response.start", "status": 200})

        communicator = HttpCommunicator(
            SessionMiddlewareStack(app),
            "GET",
            "/",
            headers=[(b"cookie", b"sessionid=" + key.encode())],
        )
        with pytest.raises(SuspiciousOperation, match=r"session was deleted before the response"):
            await communicator.get_response()


class TestInstanceSessionWrapper:
    def test_has_upstreams_attributes(self) -> None:
        wrapper = InstanceSessionWrapper({"type": "http", "cookies": {}}, never_send)
        assert wrapper.cookie_name == "sessionid"
        assert wrapper.session_store is DatabaseSessionStore
        assert wrapper.real_send is never_send
        assert wrapper.activated
        assert "http.response.start" in wrapper.save_message_types
        assert wrapper.cookie_response_message_types == ["http.response.start"]

    async def test_resolve_session_puts_the_cookies_store_in_the_scope(self) -> None:
        wrapper = InstanceSessionWrapper(
            {"type": "http", "cookies": {"sessionid": "k" * 32}}, never_send
        )
        await wrapper.resolve_session()
        session = wrapper.scope["session"]
        assert isinstance(session, LazyObject)
        assert session.session_key == "k" * 32

    @pytest.mark.django_db(transaction=True)
    async def test_a_resolve_session_override_chooses_the_store_that_is_saved(self) -> None:
        key = await database_sync_to_async(stored_session)()

        class HeaderKeyed(InstanceSessionWrapper):
            async def resolve_session(self) -> None:
                self.scope["session"]._wrapped = self.session_store(
                    dict(self.scope["headers"])[b"x-session"].decode()
                )

        class HeaderKeyedMiddleware(SessionMiddleware):
            async def __call__(self, scope: Scope, receive: Receive, send: Send) -> Any:
                wrapper = HeaderKeyed(scope, send)
                await wrapper.resolve_session()
                return await self.inner(wrapper.scope, receive, wrapper.send)

        app = HttpSessionApp("v")
        communicator = HttpCommunicator(
            CookieMiddleware(HeaderKeyedMiddleware(app)),
            "GET",
            "/",
            headers=[(b"x-session", key.encode())],
        )
        response = await communicator.get_response()
        assert set_cookies(response["headers"])["sessionid"].value == key
        assert await database_sync_to_async(stored_data)(key) == {"seen": 1, "key": "v"}

    @pytest.mark.django_db(transaction=True)
    async def test_a_subclass_with_the_obvious_private_names_still_works(self) -> None:
        class Clashing(InstanceSessionWrapper):
            def __init__(self, scope: Scope, send: Send) -> None:
                self._store = "mine"
                self._scope = "mine"
                self._session = "mine"
                self._send = "mine"
                super().__init__(scope, send)

            def _load(self) -> str:
                return "mine"

            def _load_store(self) -> str:
                return "mine"

            def _finish_session(self) -> str:
                return "mine"

            def _set_session_cookie(self) -> str:
                return "mine"

            def _new_store(self) -> str:
                return "mine"

        class ClashingMiddleware(SessionMiddleware):
            async def __call__(self, scope: Scope, receive: Receive, send: Send) -> Any:
                wrapper = Clashing(scope, send)
                await wrapper.resolve_session()
                return await self.inner(wrapper.scope, receive, wrapper.send)

        status, cookies = await request(CookieMiddleware(ClashingMiddleware(HttpSessionApp("v"))))
        assert status == 200
        key = cookies["sessionid"].value
        assert await database_sync_to_async(stored_data)(key) == {"key": "v"}

    @pytest.mark.django_db(transaction=True)
    async def test_middleware_subclasses_with_private_names_still_work(self) -> None:
        class Cookies(CookieMiddleware):
            _cookies = "mine"
            _parse_cookies = "mine"
            _scope = "mine"

        class Sessions(SessionMiddleware):
            _wrapper = "mine"
            _session = "mine"
            _scope = "mine"

        status, cookies = await request(Cookies(Sessions(HttpSessionApp("v"))))
        assert status == 200
        assert "sessionid" in cookies


async def accept_after_setting(scope: Scope, receive: Receive, send: Send) -> None:
    """A websocket app that stores a value in the session, then accepts."""
    await receive()
    await database_sync_to_async(set_value)(scope["session"], "key", "ws")
    await send({"type": "websocket.accept"})
    while (await receive())["type"] != "websocket.disconnect":
        pass


@pytest.mark.django_db(transaction=True)
class TestSavingOnWebsocket:
    async def test_accept_saves_a_modified_session_without_a_cookie(
        self, recorded: list[tuple[str, int]]
    ) -> None:
        inner = ScopeRecorder()

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            await inner(scope, receive, send)
            await accept_after_setting(scope, receive, send)

        communicator = WebsocketCommunicator(SessionMiddlewareStack(app), "/ws/")
        assert await communicator.connect() == (True, None)
        assert communicator.response_headers == []
        await communicator.disconnect()
        key = inner.scopes[0]["session"].session_key
        assert await database_sync_to_async(stored_data)(key) == {"key": "ws"}
        assert len(recorded) == 1

    async def test_only_the_outermost_session_middleware_saves(
        self, recorded: list[tuple[str, int]]
    ) -> None:
        application = SessionMiddlewareStack(SessionMiddlewareStack(accept_after_setting))
        communicator = WebsocketCommunicator(application, "/ws/")
        assert await communicator.connect() == (True, None)
        await communicator.disconnect()
        assert [method for method, _ in recorded] == ["asave" if ASYNC_SESSIONS else "save"]


ASYNC_SESSIONS = django.VERSION >= (5, 1)


@pytest.mark.django_db(transaction=True)
class TestSaveSessionPath:
    @pytest.mark.skipif(not ASYNC_SESSIONS, reason="the async session API arrived in Django 5.1")
    async def test_django_5_1_saves_with_the_async_api_in_the_event_loop(
        self, recorded: list[tuple[str, int]]
    ) -> None:
        await request(SessionMiddlewareStack(HttpSessionApp("v")))
        assert recorded == [("asave", threading.get_ident())]

    @pytest.mark.skipif(ASYNC_SESSIONS, reason="Django 5.1+ saves with the async session API")
    async def test_older_django_saves_with_the_sync_api_in_a_thread(
        self, recorded: list[tuple[str, int]]
    ) -> None:
        await request(SessionMiddlewareStack(HttpSessionApp("v")))
        [(method, thread)] = recorded
        assert method == "save"
        assert thread != threading.get_ident()

    async def test_save_session_is_a_coroutine_method(self) -> None:
        wrapper = InstanceSessionWrapper({"type": "http", "cookies": {}}, never_send)
        await database_sync_to_async(set_value)(wrapper.scope["session"], "key", "v")
        await wrapper.save_session()
        key = wrapper.scope["session"].session_key
        assert await database_sync_to_async(stored_data)(key) == {"key": "v"}


class TestSessionProtocol:
    def test_the_database_store_is_a_session(self) -> None:
        store: Session = DatabaseSessionStore()
        assert store.session_key is None
