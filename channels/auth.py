"""Django authentication for ASGI connections: the user in the scope, login and logout.

``AuthMiddleware`` puts the session's user in ``scope["user"]`` (an
``AnonymousUser`` when nobody is logged in); it needs ``scope["session"]``, so
it runs inside ``SessionMiddleware``. ``AuthMiddlewareStack`` wraps an
application in cookies, sessions and authentication at once.

The user is checked as Django's own ``get_user`` checks it: the session stores
a hash derived from the password, and when it no longer matches (the password
changed) the session is flushed, so a password change also logs out open
websockets. Hashes made with a key in ``SECRET_KEY_FALLBACKS`` are still
accepted, and the session then moves to a new key with a current hash.

On Django 5.1 and later the async session and auth APIs are used; before 5.1
the sync ones run in the database thread through ``database_sync_to_async``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import django
from django.conf import settings
from django.contrib.auth import (
    BACKEND_SESSION_KEY,
    HASH_SESSION_KEY,
    SESSION_KEY,
    get_user_model,
    load_backend,
    user_logged_in,
    user_logged_out,
)
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser
from django.utils.crypto import constant_time_compare
from django.utils.functional import LazyObject, empty

from channels.db import database_sync_to_async
from channels.middleware import BaseMiddleware
from channels.sessions import CookieMiddleware, Session, SessionMiddleware
from channels.types import AnyScope, ASGIApplication, Receive, Scope, Send

__all__ = [
    "AuthMiddleware",
    "AuthMiddlewareStack",
    "UserLazyObject",
    "get_user",
    "login",
    "logout",
]

_ASYNC_AUTH = django.VERSION >= (5, 1)

_User = AbstractBaseUser | AnonymousUser


def _session_of(scope: AnyScope, caller: str) -> Session:
    """Return ``scope["session"]``, or raise ValueError naming the missing middleware."""
    if "session" not in scope:
        raise ValueError(
            f"{caller} needs scope['session']: wrap the application in SessionMiddleware "
            "(or AuthMiddlewareStack); got a scope with keys "
            f"{sorted(scope)!r}"
        )
    session: Session = scope["session"]
    return session


def _user_id(stored: object) -> object:
    """Turn the user id stored in the session (a string) back into a primary key value."""
    return get_user_model()._meta.pk.to_python(stored)


def _check_hash(user: AbstractBaseUser, stored_hash: object) -> Literal["ok", "fallback", "bad"]:
    """Compare the session's auth hash with the user's, in constant time.

    ``"fallback"`` means it was made with a key in ``SECRET_KEY_FALLBACKS``.
    """
    if not isinstance(stored_hash, str) or not stored_hash:
        return "bad"
    if constant_time_compare(stored_hash, user.get_session_auth_hash()):
        return "ok"
    if any(
        constant_time_compare(stored_hash, fallback)
        for fallback in user.get_session_auth_fallback_hash()
    ):
        return "fallback"
    return "bad"


async def get_user(scope: AnyScope) -> _User:
    """Return the user logged in to the scope's session, or an AnonymousUser.

    A session whose auth hash no longer matches the user is flushed.
    """
    session = _session_of(scope, "get_user()")
    if _ASYNC_AUTH:
        return await _aget_user(session)
    return await database_sync_to_async(_get_user_sync)(session)


async def _aget_user(session: Session) -> _User:
    """``get_user`` with the async session API (Django 5.1+)."""
    stored_id = await session.aget(SESSION_KEY, None)
    backend_path = await session.aget(BACKEND_SESSION_KEY, None)
    if stored_id is None or backend_path not in settings.AUTHENTICATION_BACKENDS:
        return AnonymousUser()
    user = await load_backend(backend_path).aget_user(_user_id(stored_id))
    if user is None:
        return AnonymousUser()
    verdict = _check_hash(user, await session.aget(HASH_SESSION_KEY, None))
    if verdict == "fallback":
        await session.acycle_key()
        await session.aset(HASH_SESSION_KEY, user.get_session_auth_hash())
    elif verdict == "bad":
        await session.aflush()
        return AnonymousUser()
    return user


def _get_user_sync(session: Session) -> _User:
    """``get_user`` with the sync session API, run in the database thread."""
    if SESSION_KEY not in session or BACKEND_SESSION_KEY not in session:
        return AnonymousUser()
    backend_path = session[BACKEND_SESSION_KEY]
    if backend_path not in settings.AUTHENTICATION_BACKENDS:
        return AnonymousUser()
    user = load_backend(backend_path).get_user(_user_id(session[SESSION_KEY]))
    if user is None:
        return AnonymousUser()
    stored_hash = session.get(HASH_SESSION_KEY, None)
    verdict = _check_hash(user, stored_hash)
    if verdict == "fallback":
        session.cycle_key()
        session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    elif verdict == "bad":
        session.flush()
        return AnonymousUser()
    return user


def _user_to_log_in(scope: AnyScope, user: AbstractBaseUser | None) -> AbstractBaseUser:
    """Return ``user``, or the authenticated user in ``scope["user"]``; raise ValueError."""
    candidate: object = scope.get("user") if user is None else user
    if not isinstance(candidate, AbstractBaseUser):
        raise ValueError(
            "login() needs a user: pass one, or put an authenticated user in scope['user']; "
            f"got {candidate!r}"
        )
    return candidate


def _backend_of(user: AbstractBaseUser, backend: str | None) -> str:
    """Return the dotted path of the backend that authenticated ``user``; raise otherwise."""
    chosen: object = backend if backend is not None else getattr(user, "backend", None)
    if chosen is None:
        backends: list[str] = list(settings.AUTHENTICATION_BACKENDS)
        if len(backends) != 1:
            raise ValueError(
                "login() cannot tell which authentication backend to record: pass backend= "
                "or set user.backend (authenticate() does), which is needed when "
                f"AUTHENTICATION_BACKENDS does not hold exactly one; it holds {backends!r}"
            )
        chosen = backends[0]
    if not isinstance(chosen, str):
        raise TypeError(
            f"the authentication backend must be a dotted import path (a str); got {chosen!r}"
        )
    return chosen


def _stored_id(user: AbstractBaseUser) -> str:
    """Return the primary key of ``user`` as the session stores it: a string."""
    return user._meta.pk.value_to_string(user)


def _is_other_user(session_id: object, session_hash: object, user: AbstractBaseUser) -> bool:
    """Whether the session belongs to a user other than ``user`` (or to an older password)."""
    return _user_id(session_id) != user.pk or not (
        isinstance(session_hash, str)
        and constant_time_compare(session_hash, user.get_session_auth_hash())
    )


async def login(
    scope: AnyScope, user: AbstractBaseUser | None = None, backend: str | None = None
) -> None:
    """Log ``user`` (default: ``scope["user"]``) in to the scope's session.

    The session moves to a new key, so a key planted before login is useless
    (session fixation); a session of another user is emptied first. The user
    id, backend and auth hash are stored, ``scope["user"]`` is set and
    ``user_logged_in`` is sent. The session is saved by SessionMiddleware
    when the response starts or the websocket is accepted; after that, save
    it yourself: ``await scope["session"].asave()`` on Django 5.1+, else
    ``await database_sync_to_async(scope["session"].save)()``.
    """
    session = _session_of(scope, "login()")
    who = _user_to_log_in(scope, user)
    backend_path = _backend_of(who, backend)
    if _ASYNC_AUTH:
        await _alogin(session, who, backend_path)
        scope["user"] = who
        await user_logged_in.asend(sender=who.__class__, request=None, user=who)
    else:
        await database_sync_to_async(_login_sync)(session, who, backend_path)
        scope["user"] = who


async def _alogin(session: Session, user: AbstractBaseUser, backend_path: str) -> None:
    """Rotate the session and record ``user`` in it, with the async API (Django 5.1+)."""
    stored_id = await session.aget(SESSION_KEY, None)
    stored_hash = await session.aget(HASH_SESSION_KEY, None)
    if stored_id is not None and _is_other_user(stored_id, stored_hash, user):
        await session.aflush()
    else:
        await session.acycle_key()
    await session.aset(SESSION_KEY, _stored_id(user))
    await session.aset(BACKEND_SESSION_KEY, backend_path)
    await session.aset(HASH_SESSION_KEY, user.get_session_auth_hash())


def _login_sync(session: Session, user: AbstractBaseUser, backend_path: str) -> None:
    """Rotate the session, record ``user`` and send ``user_logged_in``, in the database thread."""
    stored_hash = session.get(HASH_SESSION_KEY, None)
    if SESSION_KEY in session and _is_other_user(session[SESSION_KEY], stored_hash, user):
        session.flush()
    else:
        session.cycle_key()
    session[SESSION_KEY] = _stored_id(user)
    session[BACKEND_SESSION_KEY] = backend_path
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    user_logged_in.send(sender=user.__class__, request=None, user=user)


async def logout(scope: AnyScope) -> None:
    """Log the scope's user out and flush the session.

    ``user_logged_out`` is sent first, and only when a user was logged in:
    ``scope["user"]`` is there and its ``is_authenticated`` is not false.
    Then ``scope["user"]`` becomes an AnonymousUser; a scope without one gets
    none.
    """
    session = _session_of(scope, "logout()")
    user = _logged_in_user(scope)
    if _ASYNC_AUTH:
        if user is not None:
            await user_logged_out.asend(sender=user.__class__, request=None, user=user)
        await session.aflush()
    else:
        await database_sync_to_async(_logout_sync)(session, user)
    if "user" in scope:
        scope["user"] = AnonymousUser()


def _logged_in_user(scope: AnyScope) -> object | None:
    """The user in ``scope`` if one is logged in, else None.

    As in Django's ``logout()``, an object without ``is_authenticated`` counts
    as logged in: token middleware may put its own user objects in the scope.
    """
    user: object = scope.get("user")
    if user is None or not getattr(user, "is_authenticated", True):
        return None
    return user


def _logout_sync(session: Session, user: object | None) -> None:
    """Send ``user_logged_out`` (when a user was logged in) and flush, in the database thread."""
    if user is not None:
        user_logged_out.send(sender=user.__class__, request=None, user=user)
    session.flush()


# LazyObject is generic only in django-stubs; at run time it takes no parameters.
if TYPE_CHECKING:
    _LazyUser = LazyObject[_User]
else:
    _LazyUser = LazyObject


class UserLazyObject(_LazyUser):
    """The user in the scope until AuthMiddleware resolves it; reading it earlier raises."""

    def _setup(self) -> None:
        raise ValueError(
            "scope['user'] was read before AuthMiddleware resolved it; read it inside the "
            "application that AuthMiddleware wraps"
        )


class AuthMiddleware(BaseMiddleware):
    """Put the session's user in ``scope["user"]``; run it inside SessionMiddleware."""

    def populate_scope(self, scope: Scope) -> None:
        """Check for the session and add an unresolved ``scope["user"]`` if none is there."""
        _session_of(scope, "AuthMiddleware")
        if "user" not in scope:
            scope["user"] = UserLazyObject()

    async def resolve_scope(self, scope: Scope) -> None:
        """Resolve an unresolved ``scope["user"]`` to the session's user."""
        user = scope["user"]
        if isinstance(user, UserLazyObject) and user._wrapped is empty:
            user._wrapped = await get_user(scope)

    # Any: what the inner application returns, which ASGI ignores (see channels.middleware).
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> Any:
        """Run the inner application with ``scope["user"]`` resolved."""
        scope = dict(scope)
        self.populate_scope(scope)
        await self.resolve_scope(scope)
        return await super().__call__(scope, receive, send)


def AuthMiddlewareStack(inner: ASGIApplication) -> CookieMiddleware:
    """Wrap ``inner`` in ``CookieMiddleware(SessionMiddleware(AuthMiddleware(inner)))``."""
    return CookieMiddleware(SessionMiddleware(AuthMiddleware(inner)))
