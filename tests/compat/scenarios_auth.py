"""Scenarios: AuthMiddleware's scope["user"], login(), logout(), get_user() and their signals.

Users and sessions are made in the scenario's own database rows; keys and
hashes are reported by what they equal, never by value.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Generator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from django.contrib.auth import (
    BACKEND_SESSION_KEY,
    HASH_SESSION_KEY,
    SESSION_KEY,
    user_logged_in,
    user_logged_out,
)
from django.contrib.auth.models import AnonymousUser, User
from django.contrib.sessions.backends.db import SessionStore
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
from channels.testing import WebsocketCommunicator

if TYPE_CHECKING:
    # Read by the type checkers only: upstream has no channels.types.
    from channels.types import Event, Receive, ReceivedEvent, Scope, Send

from ._harness import Observation, raised, scenario

Message = dict[str, Any]

MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"
OTHER_BACKEND = "django.contrib.auth.backends.AllowAllUsersModelBackend"

_names = itertools.count()


def _new_user(prefix: str) -> User:
    """A user with a name no other scenario uses."""
    return User.objects.create_user(f"{prefix}-{next(_names)}", password="the password")


def _logged_in_data(user: User, backend: str = MODEL_BACKEND) -> dict[str, Any]:
    """What Django's login() stores for ``user``."""
    return {
        SESSION_KEY: str(user.pk),
        BACKEND_SESSION_KEY: backend,
        HASH_SESSION_KEY: user.get_session_auth_hash(),
    }


def _stored_session(data: dict[str, Any]) -> str:
    store = SessionStore()
    store.update(data)
    store.save()
    return store.session_key or ""


def _stored(key: str | None) -> dict[str, Any]:
    return SessionStore(key).load() if key else {}


def _items(session: Any) -> dict[str, Any]:
    return dict(session.items())


def _described_session(session: Any, user: User | None) -> dict[str, Observation]:
    """A session's data, with the auth entries reported by what they equal."""
    data = dict(session.items())
    described: dict[str, Observation] = {}
    for name, value in data.items():
        if name == SESSION_KEY:
            described[name] = (
                "<user pk>" if user is not None and value == str(user.pk) else repr(value)
            )
        elif name == HASH_SESSION_KEY:
            current = user is not None and value == user.get_session_auth_hash()
            described[name] = "<current hash>" if current else repr(value)
        else:
            described[name] = value
    return described


def _described_user(user: object) -> Observation:
    if user is None:
        return None
    return {
        "type": type(user).__name__,
        "class": user.__class__.__name__,
        "is_authenticated": bool(getattr(user, "is_authenticated", None)),
        "username": getattr(user, "username", None) or None,
    }


class _Signals:
    """Records user_logged_in and user_logged_out while connected."""

    def __init__(self) -> None:
        self.received: list[Observation] = []

    def logged_in(self, sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
        self.received.append(
            ["in", sender.__name__, request, getattr(user, "username", repr(user))]
        )

    def logged_out(self, sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
        name = None if user is None else getattr(user, "username", type(user).__name__)
        self.received.append(["out", sender.__name__, request, name])


@contextmanager
def _signals() -> Generator[_Signals, None, None]:
    recorder = _Signals()
    user_logged_in.connect(recorder.logged_in, dispatch_uid="compat.auth.in")
    user_logged_out.connect(recorder.logged_out, dispatch_uid="compat.auth.out")
    try:
        yield recorder
    finally:
        user_logged_in.disconnect(dispatch_uid="compat.auth.in")
        user_logged_out.disconnect(dispatch_uid="compat.auth.out")


async def _never_receive() -> ReceivedEvent:
    raise AssertionError("receive() is not called")


async def _never_send(message: Event) -> None:
    raise AssertionError(f"send() is not called; got {message!r}")


# -- AuthMiddleware -------------------------------------------------------------


async def _connect(key: str | None, preset_user: object = None) -> dict[str, Observation]:
    """Open a websocket through AuthMiddlewareStack with session ``key``; describe its user."""
    users: list[object] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        users.append(scope["user"])
        await receive()
        await send({"type": "websocket.accept"})
        await receive()

    headers = [(b"cookie", f"sessionid={key}".encode())] if key else []
    communicator = WebsocketCommunicator(AuthMiddlewareStack(app), "/ws/", headers)
    if preset_user is not None:
        communicator.scope["user"] = preset_user
    connected = await communicator.connect()
    await communicator.disconnect()
    return {
        "connected": connected[0],
        "user": _described_user(users[0]),
        "same-object-as-preset": users[0] is preset_user,
        "stored-after": sorted(await database_sync_to_async(_stored)(key)),
    }


def _password_changed(user: User) -> str:
    key = _stored_session(_logged_in_data(user))
    user.set_password("a new password")
    user.save()
    return key


def _deleted(user: User) -> str:
    key = _stored_session(_logged_in_data(user))
    User.objects.filter(pk=user.pk).delete()
    return key


def _without_hash(user: User) -> str:
    data = _logged_in_data(user)
    del data[HASH_SESSION_KEY]
    return _stored_session(data)


@scenario
async def middleware_user_in_scope() -> Observation:
    """scope["user"] for each state a session can be in."""
    user = await database_sync_to_async(_new_user)("middleware")
    make: dict[str, Callable[[], str]] = {
        "logged-in": lambda: _stored_session(_logged_in_data(user)),
        "anonymous-session": lambda: _stored_session({"seen": 1}),
        "wrong-hash": lambda: _stored_session(_logged_in_data(user) | {HASH_SESSION_KEY: "0" * 64}),
        "no-hash": lambda: _without_hash(user),
        "unknown-backend": lambda: _stored_session(_logged_in_data(user, "compat.nowhere.Backend")),
        "other-listed-backend": lambda: _stored_session(_logged_in_data(user, OTHER_BACKEND)),
        "password-changed": lambda: _password_changed(user),
    }
    seen: dict[str, Observation] = {"no-cookie": await _connect(None)}
    for name, maker in make.items():
        seen[name] = await _connect(await database_sync_to_async(maker)())
    other = await database_sync_to_async(_new_user)("deleted")
    seen["deleted-user"] = await _connect(await database_sync_to_async(_deleted)(other))
    return seen


@scenario
async def middleware_user_already_in_scope() -> Observation:
    """A user put in the scope before AuthMiddleware runs."""
    user = await database_sync_to_async(_new_user)("preset")
    return await _connect(None, preset_user=user)


@scenario
async def middleware_without_session() -> Observation:
    """AuthMiddleware with no SessionMiddleware around it."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        pass

    try:
        await AuthMiddleware(app)({"type": "websocket", "headers": []}, _never_receive, _never_send)
    except Exception as exc:
        return raised(exc)
    return "no error"


@scenario
def middleware_stack_shape() -> Observation:
    """The layers of AuthMiddlewareStack, as apps walk them."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        pass

    stack = AuthMiddlewareStack(app)
    # vars(): each layer keeps what it wraps in its ``inner`` attribute.
    sessions: object = vars(stack)["inner"]
    auth: object = vars(sessions)["inner"]
    return [
        type(stack).__name__,
        type(sessions).__name__,
        type(auth).__name__,
        vars(auth)["inner"] is app,
    ]


@scenario
def user_lazy_object_unresolved() -> Observation:
    """Reading a UserLazyObject before AuthMiddleware resolved it."""
    try:
        return bool(UserLazyObject().is_authenticated)
    except Exception as exc:
        return raised(exc)


# -- login --------------------------------------------------------------------


async def _login(
    session_data: dict[str, Any] | None,
    user: User | None,
    scope_user: object = None,
    **kwargs: Any,
) -> dict[str, Observation]:
    """Log ``user`` in to a session holding ``session_data`` (None: a new session)."""
    key = (
        None
        if session_data is None
        else await database_sync_to_async(_stored_session)(session_data)
    )
    session = SessionStore(key)
    scope: Scope = {"session": session}
    if scope_user is not None:
        scope["user"] = scope_user
    described_user = (
        user if user is not None else scope_user if isinstance(scope_user, User) else None
    )
    with _signals() as signals:
        try:
            await login(scope, user, **kwargs)
        except Exception as exc:
            return {"raised": raised(exc), "signals": signals.received}
    return {
        "key-kept": session.session_key == key,
        "has-key": session.session_key is not None,
        "data": await database_sync_to_async(_described_session)(session, described_user),
        "scope-user-is-user": scope.get("user") is described_user,
        "signals": signals.received,
    }


@scenario
async def login_results() -> Observation:
    """What login() leaves in the session and the scope, and the signal it sends."""
    user = await database_sync_to_async(_new_user)("login")
    other = await database_sync_to_async(_new_user)("other")
    other_data = await database_sync_to_async(_logged_in_data)(other)
    return {
        "new-session": await _login(None, user),
        "anonymous-session-with-data": await _login({"cart": [1]}, user),
        "another-users-session": await _login(other_data | {"cart": [2]}, user),
        "user-from-scope": await _login(None, None, scope_user=user),
        "explicit-backend": await _login(None, user, backend=OTHER_BACKEND),
    }


@scenario
async def login_same_user_again() -> Observation:
    """Logging in the user the session already belongs to."""
    user = await database_sync_to_async(_new_user)("again")
    data = await database_sync_to_async(_logged_in_data)(user)
    return await _login(data | {"cart": [3]}, user)


@scenario
async def login_refused() -> Observation:
    """login() without a user, without a session, or with several backends and none chosen."""
    user = await database_sync_to_async(_new_user)("refused")
    with override_settings(AUTHENTICATION_BACKENDS=[MODEL_BACKEND, OTHER_BACKEND]):
        several = await _login(None, user)
        several_with_backend = await _login(None, user, backend=OTHER_BACKEND)
    try:
        await login({"user": user}, user)
        no_session: Observation = "no error"
    except Exception as exc:
        no_session = raised(exc)
    return {
        "no-user": await _login(None, None),
        "several-backends": several,
        "several-backends-chosen": several_with_backend,
        "no-session": no_session,
    }


@scenario
async def login_anonymous_user_in_scope() -> Observation:
    """login() with no user given and an AnonymousUser in the scope."""
    return await _login(None, None, scope_user=AnonymousUser())


# -- logout -------------------------------------------------------------------


class _TokenUser:
    """A user object of a token middleware: authenticated, not a Django user."""

    is_authenticated = True
    username = "token-user"


async def _logout(
    user: object, *, with_user_key: bool = True, logged_in_as: User | None = None
) -> dict[str, Observation]:
    data = (
        {"seen": 1}
        if logged_in_as is None
        else await database_sync_to_async(_logged_in_data)(logged_in_as)
    )
    key = await database_sync_to_async(_stored_session)(data)
    session = SessionStore(key)
    scope: Scope = {"session": session}
    if with_user_key:
        scope["user"] = user
    with _signals() as signals:
        try:
            await logout(scope)
        except Exception as exc:
            return {"raised": raised(exc), "signals": signals.received}
    return {
        "signals": signals.received,
        "has-user-key": "user" in scope,
        "user-after": _described_user(scope.get("user")),
        "session-key-after": session.session_key,
        "data-after": await database_sync_to_async(_items)(session),
        "stored-after": await database_sync_to_async(_stored)(key),
    }


@scenario
async def logout_results() -> Observation:
    """The signal logout() sends (or not), the scope's user and the session afterwards."""
    user = await database_sync_to_async(_new_user)("logout")
    return {
        "logged-in": await _logout(user, logged_in_as=user),
        "anonymous-user": await _logout(AnonymousUser()),
        "no-user-key": await _logout(None, with_user_key=False),
        "user-key-none": await _logout(None),
        "token-user": await _logout(_TokenUser()),
    }


@scenario
async def logout_through_the_middleware() -> Observation:
    """logout() inside AuthMiddlewareStack, for a logged-in and an anonymous connection."""
    user = await database_sync_to_async(_new_user)("mw-logout")
    key = await database_sync_to_async(_stored_session)(
        await database_sync_to_async(_logged_in_data)(user)
    )
    return {
        "logged-in": await _logout_connection(key),
        "anonymous": await _logout_connection(None),
    }


async def _logout_connection(cookie: str | None) -> Observation:
    """Open a websocket that logs out while connecting; describe what followed."""
    users: list[object] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await logout(scope)
        users.append(scope["user"])
        await send({"type": "websocket.accept"})
        await receive()

    headers = [(b"cookie", f"sessionid={cookie}".encode())] if cookie else []
    with _signals() as signals:
        communicator = WebsocketCommunicator(AuthMiddlewareStack(app), "/ws/", headers)
        connected = await communicator.connect()
        await communicator.disconnect()
    return {
        "connected": connected[0],
        "signals": signals.received,
        "user-after": _described_user(users[0]),
        "stored-after": await database_sync_to_async(_stored)(cookie),
    }


@scenario
async def logout_without_session() -> Observation:
    """logout() on a scope without a session."""
    try:
        await logout({"user": AnonymousUser()})
    except Exception as exc:
        return raised(exc)
    return "no error"


# -- get_user -------------------------------------------------------------------


@scenario
async def get_user_results() -> Observation:
    """get_user() for a logged-in, an anonymous and a stale session, and without one."""
    user = await database_sync_to_async(_new_user)("get-user")
    seen: dict[str, Observation] = {}
    sessions = {
        "logged-in": await database_sync_to_async(_logged_in_data)(user),
        "anonymous": {"seen": 1},
        "wrong-hash": await database_sync_to_async(_logged_in_data)(user) | {HASH_SESSION_KEY: "x"},
    }
    for name, data in sessions.items():
        key = await database_sync_to_async(_stored_session)(data)
        session = SessionStore(key)
        found = await get_user({"session": session})
        seen[name] = {
            "user": _described_user(found),
            "flushed": session.session_key is None,
            "stored-after": sorted(await database_sync_to_async(_stored)(key)),
        }
    try:
        await get_user({"user": user})
    except Exception as exc:
        seen["no-session"] = raised(exc)
    return seen


@scenario
async def get_user_with_secret_key_fallbacks() -> Observation:
    """A session hashed under a key now in SECRET_KEY_FALLBACKS."""
    user = await database_sync_to_async(_new_user)("fallback")
    with override_settings(SECRET_KEY="compat-old-secret"):
        key = await database_sync_to_async(_stored_session)(
            await database_sync_to_async(_logged_in_data)(user)
        )
    with override_settings(
        SECRET_KEY="compat-new-secret", SECRET_KEY_FALLBACKS=["compat-old-secret"]
    ):
        session = SessionStore(key)
        found = await get_user({"session": session})
        data = await database_sync_to_async(_described_session)(session, user)
    return {"user": _described_user(found), "key-kept": session.session_key == key, "data": data}
