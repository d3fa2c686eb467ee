from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import django
import pytest
from django.contrib.auth import (
    BACKEND_SESSION_KEY,
    HASH_SESSION_KEY,
    SESSION_KEY,
    user_logged_in,
    user_logged_out,
)
from django.contrib.auth import get_user as django_get_user
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import AnonymousUser, User
from django.contrib.sessions.backends.db import SessionStore
from django.http import HttpRequest
from django.test import override_settings

from channels.auth import (
    AuthMiddleware,
    AuthMiddlewareStack,
    UserLazyObject,
    get_user,
    login,
    logout,
)
from channels.db import database_sync_to_async
from channels.sessions import CookieMiddleware, SessionMiddleware
from channels.testing import WebsocketCommunicator
from channels.types import Event, Receive, ReceivedEvent, Scope, Send

MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"
RECORDING_BACKEND = "tests.test_auth.RecordingBackend"
ASYNC_AUTH = django.VERSION >= (5, 1)
OLD_SECRET = "the-old-secret-key-for-rotation-tests"
NEW_SECRET = "the-new-secret-key-for-rotation-tests"

backend_calls: list[tuple[str, int]] = []
"""(method, thread id) of each RecordingBackend lookup."""


def as_user(found: object) -> User | None:
    # The stubs' user type is User for mypy's Django plugin, AbstractBaseUser for pyright.
    return found if isinstance(found, User) else None


class RecordingBackend(ModelBackend):
    """The model backend, recording which user lookup is used and where."""

    def get_user(self, user_id: Any) -> User | None:
        backend_calls.append(("get_user", threading.get_ident()))
        return as_user(super().get_user(user_id))

    async def aget_user(self, user_id: Any) -> User | None:
        backend_calls.append(("aget_user", threading.get_ident()))
        return as_user(await super().aget_user(user_id))


# -- helpers (sync ones run through database_sync_to_async) ------------------


async def never_receive() -> ReceivedEvent:
    raise AssertionError("receive() is not called")


async def never_send(event: Event) -> None:
    raise AssertionError(f"send() is not called; got {event!r}")


@pytest.fixture(autouse=True)
def fast_password_hashing() -> Iterator[None]:
    # Django's default hasher spends about half a second on each password.
    with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]):
        yield


@pytest.fixture
def user(transactional_db: None) -> User:
    return User.objects.create_user("alice", password="first password")


@pytest.fixture
def other_user(transactional_db: None) -> User:
    return User.objects.create_user("bob", password="bob's password")


def session_with(data: dict[str, object]) -> str:
    """Store a session holding ``data``; return its key."""
    store = SessionStore()
    store.update(data)
    store.save()
    key = store.session_key
    if key is None:
        raise AssertionError("a saved session has a key")
    return key


def logged_in_data(user: User, backend: str = MODEL_BACKEND) -> dict[str, object]:
    """What Django's login() stores for ``user`` under the current SECRET_KEY."""
    return {
        SESSION_KEY: str(user.pk),
        BACKEND_SESSION_KEY: backend,
        HASH_SESSION_KEY: user.get_session_auth_hash(),
    }


def logged_in_session(user: User, backend: str = MODEL_BACKEND) -> str:
    return session_with(logged_in_data(user, backend))


def stored(key: str | None) -> dict[str, Any]:
    """The data stored under ``key``; empty when no such session exists."""
    return SessionStore(key).load()


def get_value(session: SessionStore, key: str) -> object:
    return session.get(key, None)


def items(session: SessionStore) -> dict[str, Any]:
    return dict(session.items())


def change_password(user: User) -> None:
    user.set_password("second password")
    user.save()


class Signals:
    def __init__(self) -> None:
        self.received: list[tuple[str, object, object]] = []

    def logged_in(self, sender: object, request: object, user: object, **kwargs: object) -> None:
        self.received.append(("in", sender, user))

    def logged_out(self, sender: object, request: object, user: object, **kwargs: object) -> None:
        self.received.append(("out", sender, user))


@pytest.fixture
def signals() -> Iterator[Signals]:
    recorder = Signals()
    user_logged_in.connect(recorder.logged_in, dispatch_uid="tests.test_auth.in")
    user_logged_out.connect(recorder.logged_out, dispatch_uid="tests.test_auth.out")
    yield recorder
    user_logged_in.disconnect(dispatch_uid="tests.test_auth.in")
    user_logged_out.disconnect(dispatch_uid="tests.test_auth.out")


# -- get_user -----------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    """A session as some earlier request left it, and the settings when it comes back."""

    make: Callable[[User], str]
    later: dict[str, Any]
    authenticated: bool
    flushed: bool = False
    cycled: bool = False


def made_with_old_secret(user: User) -> str:
    with override_settings(SECRET_KEY=OLD_SECRET):
        return logged_in_session(user)


def with_hash_from_old_secret(user: User) -> str:
    """A readable session whose auth hash was made under the old secret key."""
    with override_settings(SECRET_KEY=OLD_SECRET):
        old_hash = user.get_session_auth_hash()
    return session_with(logged_in_data(user) | {HASH_SESSION_KEY: old_hash})


def password_changed_after(user: User) -> str:
    key = logged_in_session(user)
    change_password(user)
    return key


def without_hash(user: User) -> str:
    data = logged_in_data(user)
    del data[HASH_SESSION_KEY]
    return session_with(data)


def with_wrong_hash(user: User) -> str:
    return session_with(logged_in_data(user) | {HASH_SESSION_KEY: "0" * 64})


def with_unknown_backend(user: User) -> str:
    return logged_in_session(user, backend="tests.nowhere.Backend")


def for_deleted_user(user: User) -> str:
    key = logged_in_session(user)
    User.objects.filter(pk=user.pk).delete()
    return key


def anonymous(user: User) -> str:
    return session_with({"seen": 1})


SCENARIOS = [
    pytest.param(Scenario(logged_in_session, {}, authenticated=True), id="valid"),
    pytest.param(Scenario(anonymous, {}, authenticated=False), id="anonymous"),
    pytest.param(
        Scenario(password_changed_after, {}, authenticated=False, flushed=True),
        id="password-changed",
    ),
    pytest.param(Scenario(with_wrong_hash, {}, authenticated=False, flushed=True), id="wrong-hash"),
    pytest.param(Scenario(without_hash, {}, authenticated=False, flushed=True), id="no-hash"),
    pytest.param(Scenario(with_unknown_backend, {}, authenticated=False), id="unknown-backend"),
    pytest.param(Scenario(for_deleted_user, {}, authenticated=False), id="deleted-user"),
    pytest.param(
        Scenario(
            made_with_old_secret,
            {"SECRET_KEY": NEW_SECRET, "SECRET_KEY_FALLBACKS": [OLD_SECRET]},
            authenticated=True,
            cycled=True,
        ),
        id="rotated-secret-with-fallback",
    ),
    pytest.param(
        Scenario(
            made_with_old_secret,
            {"SECRET_KEY": NEW_SECRET, "SECRET_KEY_FALLBACKS": []},
            authenticated=False,
        ),
        id="rotated-secret-without-fallback-data-unreadable",
    ),
    pytest.param(
        Scenario(
            with_hash_from_old_secret,
            {"SECRET_KEY_FALLBACKS": [OLD_SECRET]},
            authenticated=True,
            cycled=True,
        ),
        id="old-hash-with-fallback",
    ),
    pytest.param(
        Scenario(
            with_hash_from_old_secret,
            {"SECRET_KEY_FALLBACKS": []},
            authenticated=False,
            flushed=True,
        ),
        id="old-hash-without-fallback",
    ),
]


def djangos_verdict(key: str) -> tuple[bool, str | None]:
    """What Django's own get_user makes of session ``key``: (authenticated, key after)."""
    request = HttpRequest()
    request.session = SessionStore(key)
    authenticated = django_get_user(request).is_authenticated
    return authenticated, request.session.session_key


@pytest.mark.django_db(transaction=True)
class TestGetUser:
    @pytest.mark.parametrize("scenario", SCENARIOS)
    async def test_behaves_as_djangos_own_get_user(self, user: User, scenario: Scenario) -> None:
        ours = SessionStore(await database_sync_to_async(scenario.make)(user))
        theirs = await database_sync_to_async(scenario.make)(
            await database_sync_to_async(User.objects.create_user)("carol", password="x")
        )
        old_key = ours.session_key
        with override_settings(**scenario.later):
            found = await get_user({"session": ours})
            django_authenticated, django_key = await database_sync_to_async(djangos_verdict)(theirs)
        assert found.is_authenticated is scenario.authenticated is django_authenticated
        assert (ours.session_key is None) is scenario.flushed is (django_key is None)
        cycled = ours.session_key not in (None, old_key)
        assert cycled is scenario.cycled is (django_key not in (None, theirs))
        if scenario.authenticated:
            assert found.pk == user.pk
        if scenario.flushed:
            assert await database_sync_to_async(stored)(old_key) == {}

    async def test_a_fallback_hash_is_replaced_by_a_current_one(self, user: User) -> None:
        session = SessionStore(await database_sync_to_async(made_with_old_secret)(user))
        with override_settings(SECRET_KEY=NEW_SECRET, SECRET_KEY_FALLBACKS=[OLD_SECRET]):
            await get_user({"session": session})
            current_hash = user.get_session_auth_hash()
        assert await database_sync_to_async(get_value)(session, HASH_SESSION_KEY) == current_hash

    async def test_without_a_session_raises_value_error(self) -> None:
        with pytest.raises(ValueError, match=r"get_user\(\) needs scope\['session'\].*\['type'\]"):
            await get_user({"type": "websocket"})

    @pytest.mark.skipif(not ASYNC_AUTH, reason="the async auth API arrived in Django 5.1")
    @override_settings(AUTHENTICATION_BACKENDS=[RECORDING_BACKEND])
    async def test_django_5_1_looks_the_user_up_with_the_async_api(self, user: User) -> None:
        key = await database_sync_to_async(logged_in_session)(user, RECORDING_BACKEND)
        backend_calls.clear()
        await get_user({"session": SessionStore(key)})
        assert backend_calls[0] == ("aget_user", threading.get_ident())

    @pytest.mark.skipif(ASYNC_AUTH, reason="Django 5.1+ uses the async auth API")
    @override_settings(AUTHENTICATION_BACKENDS=[RECORDING_BACKEND])
    async def test_older_django_looks_the_user_up_in_a_thread(self, user: User) -> None:
        key = await database_sync_to_async(logged_in_session)(user, RECORDING_BACKEND)
        backend_calls.clear()
        await get_user({"session": SessionStore(key)})
        [(method, thread)] = backend_calls
        assert method == "get_user"
        assert thread != threading.get_ident()


# -- login and logout -----------------------------------------------------------


@pytest.mark.django_db(transaction=True)
class TestLogin:
    async def test_rotates_the_key_and_records_the_user(self, user: User, signals: Signals) -> None:
        key = await database_sync_to_async(session_with)({"seen": 1})
        scope: Scope = {"session": SessionStore(key), "user": AnonymousUser()}
        await login(scope, user)
        session = scope["session"]
        assert session.session_key not in (None, key)
        assert await database_sync_to_async(stored)(key) == {}
        data = await database_sync_to_async(items)(session)
        assert data == {"seen": 1} | await database_sync_to_async(logged_in_data)(user)
        assert scope["user"] is user
        assert signals.received == [("in", User, user)]

    async def test_a_fresh_session_gets_a_key(self, user: User) -> None:
        scope: Scope = {"session": SessionStore()}
        await login(scope, user)
        assert scope["session"].session_key is not None

    async def test_the_same_user_again_keeps_the_data_under_a_new_key(self, user: User) -> None:
        data = await database_sync_to_async(logged_in_data)(user)
        key = await database_sync_to_async(session_with)(data | {"cart": [1]})
        scope: Scope = {"session": SessionStore(key)}
        await login(scope, user)
        assert scope["session"].session_key != key
        assert await database_sync_to_async(get_value)(scope["session"], "cart") == [1]

    async def test_another_users_session_is_emptied_first(
        self, user: User, other_user: User
    ) -> None:
        data = await database_sync_to_async(logged_in_data)(other_user)
        key = await database_sync_to_async(session_with)(data | {"cart": [1]})
        scope: Scope = {"session": SessionStore(key)}
        await login(scope, user)
        assert scope["session"].session_key != key
        assert await database_sync_to_async(get_value)(scope["session"], "cart") is None
        assert await database_sync_to_async(get_value)(scope["session"], SESSION_KEY) == str(
            user.pk
        )

    async def test_without_a_user_uses_the_scope_user(self, user: User) -> None:
        scope: Scope = {"session": SessionStore(), "user": user}
        await login(scope)
        assert await database_sync_to_async(get_value)(scope["session"], SESSION_KEY) == str(
            user.pk
        )

    @pytest.mark.parametrize(
        "scope_user",
        [pytest.param({}, id="no-user"), pytest.param({"user": AnonymousUser()}, id="anonymous")],
    )
    async def test_without_any_user_raises_value_error(self, scope_user: Scope) -> None:
        with pytest.raises(ValueError, match=r"login\(\) needs a user: pass one.*; got "):
            await login({"session": SessionStore(), **scope_user})

    async def test_without_a_session_raises_value_error(self, user: User) -> None:
        with pytest.raises(ValueError, match=r"login\(\) needs scope\['session'\]"):
            await login({"user": user}, user)

    @pytest.mark.parametrize(
        ("given", "attribute", "recorded"),
        [
            pytest.param(None, None, MODEL_BACKEND, id="the-only-backend"),
            pytest.param(RECORDING_BACKEND, None, RECORDING_BACKEND, id="argument"),
            pytest.param(None, RECORDING_BACKEND, RECORDING_BACKEND, id="user-attribute"),
            pytest.param(MODEL_BACKEND, RECORDING_BACKEND, MODEL_BACKEND, id="argument-wins"),
        ],
    )
    async def test_records_the_backend(
        self, user: User, given: str | None, attribute: str | None, recorded: str
    ) -> None:
        if attribute is not None:
            user.backend = attribute
        scope: Scope = {"session": SessionStore()}
        await login(scope, user, backend=given)
        assert await database_sync_to_async(get_value)(scope["session"], BACKEND_SESSION_KEY) == (
            recorded
        )

    @override_settings(AUTHENTICATION_BACKENDS=[MODEL_BACKEND, RECORDING_BACKEND])
    async def test_an_unknown_backend_among_several_raises_value_error(self, user: User) -> None:
        with pytest.raises(ValueError, match=r"cannot tell which authentication backend.*holds \["):
            await login({"session": SessionStore()}, user)

    async def test_a_backend_that_is_not_a_string_raises_type_error(self, user: User) -> None:
        user.backend = ModelBackend  # type: ignore[assignment]  # a wrong backend under test
        with pytest.raises(TypeError, match=r"must be a dotted import path \(a str\); got <class"):
            await login({"session": SessionStore()}, user)


@pytest.mark.django_db(transaction=True)
class TestLogout:
    async def test_flushes_the_session_and_forgets_the_user(
        self, user: User, signals: Signals
    ) -> None:
        key = await database_sync_to_async(logged_in_session)(user)
        scope: Scope = {"session": SessionStore(key), "user": user}
        await logout(scope)
        assert scope["session"].session_key is None
        assert await database_sync_to_async(stored)(key) == {}
        assert isinstance(scope["user"], AnonymousUser)
        assert signals.received == [("out", User, user)]

    async def test_an_anonymous_user_sends_no_signal(self, signals: Signals) -> None:
        key = await database_sync_to_async(session_with)({"seen": 1})
        scope: Scope = {"session": SessionStore(key), "user": AnonymousUser()}
        await logout(scope)
        assert signals.received == []
        assert isinstance(scope["user"], AnonymousUser)
        assert await database_sync_to_async(stored)(key) == {}

    async def test_a_scope_without_a_user_gets_none(self, signals: Signals) -> None:
        key = await database_sync_to_async(session_with)({"seen": 1})
        scope: Scope = {"session": SessionStore(key)}
        await logout(scope)
        assert signals.received == []
        assert "user" not in scope
        assert scope["session"].session_key is None
        assert await database_sync_to_async(stored)(key) == {}

    async def test_a_user_of_none_sends_no_signal(self, signals: Signals) -> None:
        scope: Scope = {"session": SessionStore(), "user": None}
        await logout(scope)
        assert signals.received == []
        assert isinstance(scope["user"], AnonymousUser)

    async def test_an_authenticated_user_of_another_kind_is_reported(
        self, signals: Signals
    ) -> None:
        class TokenUser:
            is_authenticated = True

        token_user = TokenUser()
        scope: Scope = {"session": SessionStore(), "user": token_user}
        await logout(scope)
        assert signals.received == [("out", TokenUser, token_user)]
        assert isinstance(scope["user"], AnonymousUser)

    async def test_the_middlewares_lazy_user_is_reported_and_replaced(
        self, user: User, signals: Signals
    ) -> None:
        key = await database_sync_to_async(logged_in_session)(user)
        seen: list[Any] = []

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            await receive()
            await logout(scope)
            seen.append(scope["user"])
            await send({"type": "websocket.accept"})
            await receive()

        headers = [(b"cookie", b"sessionid=" + key.encode())]
        communicator = WebsocketCommunicator(AuthMiddlewareStack(app), "/ws/", headers)
        assert await communicator.connect() == (True, None)
        await communicator.disconnect()
        # The middleware's lazy user, which compares equal to the user it wraps.
        assert signals.received == [("out", User, user)]
        assert type(seen[0]) is AnonymousUser
        assert await database_sync_to_async(stored)(key) == {}

    async def test_without_a_session_raises_value_error(self) -> None:
        with pytest.raises(ValueError, match=r"logout\(\) needs scope\['session'\]"):
            await logout({"user": AnonymousUser()})


# -- the middleware -------------------------------------------------------------


class UserRecorder:
    """A websocket app that records ``scope["user"]`` and accepts."""

    def __init__(self) -> None:
        self.users: list[Any] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.users.append(scope["user"])
        await receive()
        await send({"type": "websocket.accept"})
        while (await receive())["type"] != "websocket.disconnect":
            pass


async def connect_as(key: str | None) -> Any:
    """Open a websocket through AuthMiddlewareStack with session ``key``; return its user."""
    recorder = UserRecorder()
    headers = [(b"cookie", b"sessionid=" + key.encode())] if key else []
    communicator = WebsocketCommunicator(AuthMiddlewareStack(recorder), "/ws/", headers)
    assert await communicator.connect() == (True, None)
    await communicator.disconnect()
    return recorder.users[0]


class TestSubclassPrivateNames:
    @pytest.mark.django_db(transaction=True)
    async def test_an_auth_middleware_subclass_with_private_names_still_works(
        self, user: User
    ) -> None:
        class Clashing(AuthMiddleware):
            _user = "mine"
            _session = "mine"
            _scope = "mine"
            _get_user = "mine"
            _resolve = "mine"

        recorder = UserRecorder()
        key = await database_sync_to_async(logged_in_session)(user)
        headers = [(b"cookie", b"sessionid=" + key.encode())]
        application = CookieMiddleware(SessionMiddleware(Clashing(recorder)))
        communicator = WebsocketCommunicator(application, "/ws/", headers)
        assert await communicator.connect() == (True, None)
        await communicator.disconnect()
        assert recorder.users[0].pk == user.pk


@pytest.mark.django_db(transaction=True)
class TestAuthMiddleware:
    async def test_the_sessions_user_is_in_the_scope(self, user: User) -> None:
        found = await connect_as(await database_sync_to_async(logged_in_session)(user))
        assert isinstance(found, UserLazyObject)
        assert found.is_authenticated
        assert found.pk == user.pk

    async def test_no_session_gives_an_anonymous_user(self) -> None:
        assert not (await connect_as(None)).is_authenticated

    async def test_a_password_change_logs_out_open_sessions(self, user: User) -> None:
        key = await database_sync_to_async(logged_in_session)(user)
        await database_sync_to_async(change_password)(user)
        assert not (await connect_as(key)).is_authenticated
        assert await database_sync_to_async(stored)(key) == {}

    async def test_a_user_already_in_the_scope_is_kept(self, user: User) -> None:
        recorder = UserRecorder()
        communicator = WebsocketCommunicator(AuthMiddlewareStack(recorder), "/ws/")
        communicator.scope["user"] = user
        assert await communicator.connect() == (True, None)
        await communicator.disconnect()
        assert recorder.users == [user]

    async def test_login_during_connect_is_saved_on_accept(self, user: User) -> None:
        sessions: list[Any] = []

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            await receive()
            await login(scope, user)
            sessions.append(scope["session"])
            await send({"type": "websocket.accept"})
            await receive()

        communicator = WebsocketCommunicator(AuthMiddlewareStack(app), "/ws/")
        assert await communicator.connect() == (True, None)
        await communicator.disconnect()
        data = await database_sync_to_async(stored)(sessions[0].session_key)
        assert data[SESSION_KEY] == str(user.pk)

    async def test_without_a_session_raises_value_error(self) -> None:
        with pytest.raises(ValueError, match=r"AuthMiddleware needs scope\['session'\]"):
            await AuthMiddleware(UserRecorder())({"type": "websocket"}, never_receive, never_send)

    def test_the_stack_is_cookies_sessions_then_auth(self) -> None:
        recorder = UserRecorder()
        stack = AuthMiddlewareStack(recorder)
        assert isinstance(stack.inner, SessionMiddleware)
        assert isinstance(stack.inner.inner, AuthMiddleware)
        assert stack.inner.inner.inner is recorder


class TestUserLazyObject:
    def test_reading_it_before_it_is_resolved_raises_value_error(self) -> None:
        with pytest.raises(ValueError, match=r"scope\['user'\] was read before AuthMiddleware"):
            _ = UserLazyObject().is_authenticated
