"""Database connection hygiene for async code.

Django closes stale connections at the start and end of each HTTP request. A
consumer lives much longer than a request, so database work run from async
code closes them around each call instead: ``database_sync_to_async`` does so
in the worker thread, and ``aclose_old_connections`` does so on demand.

Closing is switched off per context with ``keep_old_connections`` (the test
tools use it, so the transaction of a Django ``TestCase`` survives), and
``watch_connections`` lets ``aclose_old_connections`` skip the thread hop when
the current context has opened no connection since its last close.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine, Generator
from contextlib import contextmanager
from contextvars import Context, ContextVar
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, overload

import django.db
from asgiref.sync import SyncToAsync
from django.db import connections
from django.db.backends.signals import connection_created

if TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor

__all__ = [
    "DatabaseSyncToAsync",
    "aclose_old_connections",
    "close_old_connections",
    "database_sync_to_async",
    "keep_old_connections",
    "watch_connections",
]

_P = ParamSpec("_P")
_R = TypeVar("_R")

_keeping: ContextVar[bool] = ContextVar("channels.db.keeping", default=False)


def close_old_connections() -> None:
    """Close this thread's unusable or expired connections, unless closing is switched off."""
    if not _keeping.get():
        django.db.close_old_connections()


@contextmanager
def keep_old_connections() -> Generator[None, None, None]:
    """Switch closing off for the current context (and the tasks and threads it starts)."""
    token = _keeping.set(True)
    try:
        yield
    finally:
        _keeping.reset(token)


def _closing_old_connections(func: Callable[_P, _R], *, thread_sensitive: bool) -> Callable[_P, _R]:
    """Wrap ``func`` to close old connections before and after it runs."""

    @functools.wraps(func)
    def call(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        close_old_connections()
        try:
            return func(*args, **kwargs)
        finally:
            close_old_connections()
            # Only the thread-sensitive thread is the one aclose_old_connections
            # would hop to, so only its state may clear the tracker.
            if thread_sensitive:
                _note_open_connections()

    return call


class DatabaseSyncToAsync(SyncToAsync[_P, _R]):
    """A SyncToAsync that closes old connections in the worker thread around each call."""

    def __init__(
        self,
        func: Callable[_P, _R],
        thread_sensitive: bool = True,
        executor: ThreadPoolExecutor | None = None,
        context: Context | None = None,
    ) -> None:
        super().__init__(
            func, thread_sensitive=thread_sensitive, executor=executor, context=context
        )
        # SyncToAsync runs ``self.func`` inside the caller's copied context,
        # where keep_old_connections is visible; its ``thread_handler`` hook
        # runs outside that context and would miss the switch.
        self.func = _closing_old_connections(func, thread_sensitive=thread_sensitive)


# ``Coroutine[Any, Any, _R]`` is how type checkers spell what an ``async def``
# returns; matching it keeps a wrapped function interchangeable with one, as
# asgiref's own ``sync_to_async`` does.
@overload
def database_sync_to_async(
    *,
    thread_sensitive: bool = True,
    executor: ThreadPoolExecutor | None = None,
    context: Context | None = None,
    # Any: a coroutine's send and yield types, which no caller uses.
) -> Callable[[Callable[_P, _R]], Callable[_P, Coroutine[Any, Any, _R]]]: ...


@overload
def database_sync_to_async(
    func: Callable[_P, _R],
    *,
    thread_sensitive: bool = True,
    executor: ThreadPoolExecutor | None = None,
    context: Context | None = None,
    # Any: a coroutine's send and yield types, which no caller uses.
) -> Callable[_P, Coroutine[Any, Any, _R]]: ...


def database_sync_to_async(
    func: Callable[_P, _R] | None = None,
    *,
    thread_sensitive: bool = True,
    executor: ThreadPoolExecutor | None = None,
    context: Context | None = None,
) -> (
    # Any: a coroutine's send and yield types, which no caller uses.
    Callable[[Callable[_P, _R]], Callable[_P, Coroutine[Any, Any, _R]]]
    | Callable[_P, Coroutine[Any, Any, _R]]
):
    """Turn a sync function or method that uses the database into an async one.

    Use it as ``database_sync_to_async(func)``, as a bare decorator, or with
    asgiref's ``sync_to_async`` options:
    ``database_sync_to_async(thread_sensitive=False)(func)``.
    """

    # Any: a coroutine's send and yield types, which no caller uses.
    def wrap(func: Callable[_P, _R]) -> Callable[_P, Coroutine[Any, Any, _R]]:
        return DatabaseSyncToAsync(
            func, thread_sensitive=thread_sensitive, executor=executor, context=context
        )

    return wrap if func is None else wrap(func)


class _Tracker:
    """Whether the watched context may hold an open connection."""

    __slots__ = ("may_hold",)

    def __init__(self) -> None:
        # Unknown until the first close: a connection opened before watching
        # began is closed then, as it would be without watching.
        self.may_hold = True


_tracker: ContextVar[_Tracker | None] = ContextVar("channels.db.tracker", default=None)


def watch_connections() -> None:
    """Track the connections opened from the current context, to save needless closes."""
    _tracker.set(_Tracker())


def _mark_connection_opened(sender: object, **kwargs: object) -> None:
    """Note that a connection was opened from the current context, if watched."""
    tracker = _tracker.get()
    if tracker is not None:
        tracker.may_hold = True


# Strongly held (weak=False) because the module owns this receiver for the
# life of the process; the uid keeps it single across module reloads.
connection_created.connect(
    _mark_connection_opened, weak=False, dispatch_uid="channels.db.watch_connections"
)


def _note_open_connections() -> None:
    """Record in the watched context whether this thread still holds a connection."""
    tracker = _tracker.get()
    if tracker is not None:
        tracker.may_hold = any(
            wrapper.connection is not None for wrapper in connections.all(initialized_only=True)
        )


def _close_in_thread() -> None:
    """Close old connections, then record whether this thread still holds one."""
    close_old_connections()
    _note_open_connections()


_close_in_sync_thread = SyncToAsync(_close_in_thread, thread_sensitive=True)


async def aclose_old_connections() -> None:
    """Close old connections in the thread where sync database work runs.

    In a context that called ``watch_connections``, this returns at once,
    with no thread hop, when no connection was opened since the last close.
    """
    tracker = _tracker.get()
    if tracker is not None and not tracker.may_hold:
        return
    await _close_in_sync_thread()
