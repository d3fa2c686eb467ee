"""Cookies and Django sessions for ASGI connections.

``CookieMiddleware`` parses the request's cookies into ``scope["cookies"]``.
``SessionMiddleware`` (which needs the cookies) puts a lazily created Django
session in ``scope["session"]`` and saves it as Django's SessionMiddleware
does, when the response starts (HTTP) or the websocket is accepted.
``SessionMiddlewareStack`` is the two together.

On Django 5.1 and later the session is saved with Django's async session API,
without a hop to a worker thread; before 5.1 the sync API runs in the database
thread through ``database_sync_to_async``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, MutableMapping
from datetime import datetime, timedelta, timezone
from http.cookies import SimpleCookie
from importlib import import_module
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import django
from django.conf import settings
from django.contrib.sessions.backends.base import SessionBase, UpdateError
from django.core.exceptions import SuspiciousOperation
from django.http.cookie import parse_cookie
from django.utils.functional import SimpleLazyObject
from django.utils.http import http_date

from channels._asserted import AssertedValueError
from channels.db import database_sync_to_async
from channels.middleware import BaseMiddleware
from channels.types import ASGIApplication, Event, Receive, Scope, Send

__all__ = [
    "CookieMiddleware",
    "InstanceSessionWrapper",
    "Session",
    "SessionMiddleware",
    "SessionMiddlewareStack",
]

_ASYNC_SESSIONS = django.VERSION >= (5, 1)

_SAMESITE_VALUES = ("strict", "lax", "none")


class Session(Protocol):
    """What session middleware and ``channels.auth`` use of a session store.

    Django's ``SessionBase`` (and so every ``SESSION_ENGINE`` store) implements it.
    """

    @property
    def modified(self) -> bool:
        """Whether the session data changed since it was loaded."""
        ...

    @property
    def session_key(self) -> str | None:
        """The key that the session cookie carries, or None before the first save."""
        ...

    # Session values are whatever the application stores (JSON-serialisable by
    # default): Any, as SessionBase itself types them.
    def __getitem__(self, key: str, /) -> Any:
        """Return the value stored under ``key``; raise KeyError when absent."""
        ...

    def __setitem__(self, key: str, value: Any, /) -> None:
        """Store ``value`` under ``key``."""
        ...

    def __contains__(self, key: object, /) -> bool:
        """Whether a value is stored under ``key``."""
        ...

    def get(self, key: str, default: Any, /) -> Any:
        """Return the value stored under ``key``, or ``default``."""
        ...

    async def aget(self, key: str, default: Any, /) -> Any:
        """Return the value stored under ``key``, or ``default``, loading asynchronously."""
        ...

    async def aset(self, key: str, value: Any, /) -> None:
        """Store ``value`` under ``key``, loading asynchronously."""
        ...

    def is_empty(self) -> bool:
        """Whether the session has neither a key nor data."""
        ...

    def get_expiry_age(self) -> int:
        """Seconds until the session expires."""
        ...

    def get_expire_at_browser_close(self) -> bool:
        """Whether the session cookie should expire when the browser closes."""
        ...

    def save(self, must_create: bool = False) -> None:
        """Save the session data, creating the session key if needed."""
        ...

    async def asave(self, must_create: bool = False) -> None:
        """Save the session data without blocking (Django 5.1+)."""
        ...

    def cycle_key(self) -> None:
        """Move the data to a new session key, deleting the old one."""
        ...

    async def acycle_key(self) -> None:
        """Move the data to a new session key without blocking (Django 5.1+)."""
        ...

    def flush(self) -> None:
        """Delete the data and the stored session, and drop the key."""
        ...

    async def aflush(self) -> None:
        """Delete the data and the stored session without blocking (Django 5.1+)."""
        ...


if TYPE_CHECKING:
    # A static check that Django's base class implements the Protocol.
    _session_base_is_a_session: type[Session] = SessionBase


class CookieMiddleware(BaseMiddleware):
    """Parse the request's ``Cookie`` headers into ``scope["cookies"]`` (name to value)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> Any:
        """Run the inner application with ``scope["cookies"]`` filled in."""
        if "headers" not in scope:
            raise ValueError(
                "CookieMiddleware needs a scope with 'headers' (an HTTP or websocket "
                f"connection); got a scope of type {scope.get('type')!r} without them"
            )
        return await super().__call__(dict(scope, cookies=_parse_cookies(scope)), receive, send)

    # ASGI messages hold values of any type: Any in MutableMapping[str, Any].
    @classmethod
    def set_cookie(
        cls,
        message: MutableMapping[str, Any],
        key: str,
        value: str = "",
        max_age: int | None = None,
        expires: datetime | str | None = None,
        path: str | None = "/",
        domain: str | None = None,
        secure: bool | None = False,
        httponly: bool | None = False,
        samesite: str | None = "lax",
    ) -> None:
        """Add a ``Set-Cookie`` header to the response ``message`` (its ``headers`` list).

        ``expires`` is a ready HTTP date string, or a datetime (naive ones are
        taken as UTC) that becomes ``Max-Age`` seconds from now, as in
        Django's ``HttpResponse.set_cookie``. Given ``max_age`` without
        ``expires``, the cookie gets both. ``samesite`` is ``"strict"``,
        ``"lax"`` or ``"none"`` in any case, or None to leave it out.

        Raises:
            ValueError: for another ``samesite`` (also an AssertionError, as upstream's).
            http.cookies.CookieError: for a name that cannot be a cookie's.
        """
        if samesite is not None and samesite.lower() not in _SAMESITE_VALUES:
            raise AssertedValueError(
                f"samesite must be one of 'strict', 'lax', 'none' (any case) or None; "
                f"got {samesite!r}"
            )
        cookie = SimpleCookie()
        cookie[key] = value
        morsel = cookie[key]
        if isinstance(expires, datetime):
            max_age = _seconds_until(expires)
            expires = None
        if max_age is not None:
            morsel["max-age"] = str(max_age)
            # Old browsers read only expires, so it comes along.
            if not expires:
                expires = http_date(time.time() + max_age)
        if expires:
            morsel["expires"] = expires
        if path is not None:
            morsel["path"] = path
        if domain is not None:
            morsel["domain"] = domain
        if secure:
            morsel["secure"] = True
        if httponly:
            morsel["httponly"] = True
        if samesite is not None:
            morsel["samesite"] = samesite
        # Upstream writes the name as b"Set-Cookie", and tests built on it look for that.
        message.setdefault("headers", []).append(
            (b"Set-Cookie", morsel.OutputString().encode("latin-1"))
        )

    @classmethod
    def delete_cookie(
        cls,
        # Any: an ASGI event's values depend on its type.
        message: MutableMapping[str, Any],
        key: str,
        path: str | None = "/",
        domain: str | None = None,
    ) -> None:
        """Add a ``Set-Cookie`` header to ``message`` that makes the browser drop cookie ``key``."""
        # The date is written as upstream writes it, so the header bytes are the same.
        cls.set_cookie(
            message,
            key,
            max_age=0,
            expires="Thu, 01-Jan-1970 00:00:00 GMT",
            path=path,
            domain=domain,
        )


def _seconds_until(moment: datetime) -> int:
    """Whole seconds from now until ``moment`` (naive: UTC), rounded up; 0 if it is past."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    # The extra second makes up for the fraction lost in truncating, as Django does.
    delta = moment - datetime.now(timezone.utc) + timedelta(seconds=1)
    return max(0, delta.days * 86400 + delta.seconds)


def _parse_cookies(scope: Scope) -> dict[str, str]:
    """Return the cookies of every ``Cookie`` header in ``scope``, later values winning."""
    # HTTP/2 may split cookies over several headers; they join with "; ", as Django does.
    values = [value.decode("latin-1") for name, value in scope["headers"] if name == b"cookie"]
    return parse_cookie("; ".join(values))


class SessionMiddleware(BaseMiddleware):
    """Put a lazily loaded Django session in ``scope["session"]``; save it on response.

    It needs ``scope["cookies"]``, so run it inside ``CookieMiddleware`` (or
    use ``SessionMiddlewareStack``). Under another SessionMiddleware it passes
    the outer one's session through and leaves the saving to it.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> Any:
        """Run the inner application with the session in its scope and a saving ``send``."""
        wrapper = InstanceSessionWrapper(scope, send)
        await wrapper.resolve_session()
        return await super().__call__(wrapper.scope, receive, wrapper.send)


class InstanceSessionWrapper:
    """The session of one connection: puts it in the scope and saves it as the response goes out.

    Only the outermost wrapper of a connection is ``activated``; a nested one
    finds ``scope["session"]`` already there and passes everything through.
    ``scope["session"]`` is a lazy object; ``resolve_session()`` (which
    SessionMiddleware awaits, and subclasses may override) puts the store in
    it, and whatever store it then holds is the one saved.
    """

    #: Message types on which a modified session is saved.
    save_message_types: ClassVar[list[str]] = ["http.response.start", "websocket.accept"]
    #: Message types that can carry the session cookie back to the client.
    cookie_response_message_types: ClassVar[list[str]] = ["http.response.start"]

    def __init__(self, scope: Scope, send: Send) -> None:
        self.cookie_name: str = settings.SESSION_COOKIE_NAME
        #: The ``SessionStore`` class of ``settings.SESSION_ENGINE``.
        self.session_store: Callable[[str | None], Session] = import_module(
            settings.SESSION_ENGINE
        ).SessionStore
        self.scope: Scope = dict(scope)
        self.real_send = send
        self.activated = "session" not in self.scope
        if self.activated:
            if "cookies" not in self.scope:
                raise ValueError(
                    "SessionMiddleware needs scope['cookies']: wrap it in CookieMiddleware "
                    "or use SessionMiddlewareStack; got a scope with keys "
                    f"{sorted(self.scope)!r}"
                )
            # Until resolve_session() runs (a wrapper used without SessionMiddleware),
            # the store is made when the session is first used.
            self.scope["session"] = SimpleLazyObject(self.__store_for_cookie)

    def __store_for_cookie(self) -> Session:
        """A store for the session that the request's cookie names (a new one without it)."""
        return self.session_store(self.scope["cookies"].get(self.cookie_name))

    async def resolve_session(self) -> None:
        """Put the store for the request's session cookie in ``scope["session"]``."""
        if self.activated:
            self.scope["session"]._wrapped = self.__store_for_cookie()

    async def send(self, message: Event) -> None:
        """Save the session if this message calls for it, then pass the message on."""
        if self.activated and message["type"] in self.save_message_types:
            message = await self.__finish_session(message)
        await self.real_send(message)

    async def __finish_session(self, message: Event) -> Event:
        """Save the session as Django's middleware does; return ``message`` with its cookie.

        The application's message and header list are left as they were: a
        cookie goes on copies.
        """
        session: Session = self.scope["session"]
        carries_cookies = message["type"] in self.cookie_response_message_types
        if session.is_empty():
            # An emptied session is dropped, not saved, and its cookie removed.
            if carries_cookies and self.cookie_name in self.scope["cookies"]:
                message = _with_headers_copied(message)
                CookieMiddleware.delete_cookie(
                    message,
                    self.cookie_name,
                    path=settings.SESSION_COOKIE_PATH,
                    domain=settings.SESSION_COOKIE_DOMAIN,
                )
            return message
        # Server errors leave the stored session as it was, as in Django.
        if message.get("status", 200) >= 500:
            return message
        if not (session.modified or settings.SESSION_SAVE_EVERY_REQUEST):
            return message
        await self.save_session()
        if carries_cookies:
            message = _with_headers_copied(message)
            _set_session_cookie(message, self.cookie_name, session)
        return message

    async def save_session(self) -> None:
        """Save ``scope["session"]``; raise SuspiciousOperation if it was deleted meanwhile."""
        session: Session = self.scope["session"]
        try:
            if _ASYNC_SESSIONS:
                await session.asave()
            else:
                await database_sync_to_async(session.save)()
        except UpdateError as exc:
            raise SuspiciousOperation(
                "the session was deleted before the response started, so it cannot be saved: "
                "another connection may have logged out or flushed it"
            ) from exc


# Any: an ASGI event's values depend on its type.
def _with_headers_copied(message: Event) -> dict[str, Any]:
    """A copy of ``message`` whose ``headers`` is a new list of the same pairs."""
    return dict(message, headers=list(message.get("headers", ())))


# Any: an ASGI event's values depend on its type.
def _set_session_cookie(message: MutableMapping[str, Any], name: str, session: Session) -> None:
    """Add the session cookie, with Django's session cookie settings, to ``message``."""
    # The session data is loaded once saved, so these read no storage.
    max_age: int | None = None
    expires: str | None = None
    if not session.get_expire_at_browser_close():
        max_age = session.get_expiry_age()
        expires = http_date(time.time() + max_age)
    CookieMiddleware.set_cookie(
        message,
        name,
        session.session_key or "",
        max_age=max_age,
        expires=expires,
        domain=settings.SESSION_COOKIE_DOMAIN,
        path=settings.SESSION_COOKIE_PATH,
        secure=settings.SESSION_COOKIE_SECURE,
        httponly=settings.SESSION_COOKIE_HTTPONLY,
        samesite=settings.SESSION_COOKIE_SAMESITE or None,
    )


def SessionMiddlewareStack(inner: ASGIApplication) -> CookieMiddleware:
    """Wrap ``inner`` in ``CookieMiddleware(SessionMiddleware(inner))``."""
    return CookieMiddleware(SessionMiddleware(inner))
