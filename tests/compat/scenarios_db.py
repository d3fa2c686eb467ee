"""Scenarios: database_sync_to_async, aclose_old_connections, and layers from sync code.

Sync code that reaches a channel layer through ``async_to_sync`` is how model
signals and scripts talk to consumers; those scenarios live here, next to the
database work that triggers them.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Awaitable
from typing import Any

from asgiref.sync import async_to_sync, sync_to_async
from django.contrib.auth.models import User
from django.db import connection
from django.db.models.signals import post_save

from channels.db import DatabaseSyncToAsync, aclose_old_connections, database_sync_to_async
from channels.layers import get_channel_layer

from ._harness import Observation, raised, scenario


def _open() -> None:
    # Looked up here, in the thread that runs it: ``connection`` is per thread.
    connection.ensure_connection()


def _is_open() -> bool:
    return connection.connection is not None


def _add(a: int, b: int = 10) -> int:
    return a + b


def _fail(message: str) -> int:
    raise LookupError(message)


@scenario
async def database_sync_to_async_as_a_function() -> Observation:
    """Wrapping a function: arguments, the return value, exceptions, what the wrapper is."""
    add = database_sync_to_async(_add)
    fail = database_sync_to_async(_fail)
    try:
        await fail("no such row")
        failed: Observation = "returned"
    except Exception as exc:
        failed = raised(exc)
    return {
        "positional": await add(1, 2),
        "keyword": await add(1, b=5),
        "default": await add(1),
        "raised": failed,
        "is-DatabaseSyncToAsync": isinstance(add, DatabaseSyncToAsync),
        "name": getattr(add, "__name__", None),
        "wrapped": getattr(add, "__wrapped__", None) is _add,
        # Not inspect.iscoroutinefunction(add): asgiref marks it so on Python 3.12+
        # only, and the two sides may run on different Pythons.
        "thread-insensitive": await database_sync_to_async(_add, thread_sensitive=False)(2, 2),
    }


@scenario
async def database_sync_to_async_as_a_decorator() -> Observation:
    """As a decorator on functions and on methods: ``self`` is bound, results and errors pass."""

    class Store:
        def __init__(self) -> None:
            self.rows = {"a": 1}

        @database_sync_to_async
        def get(self, key: str) -> int:
            return self.rows[key]

        @database_sync_to_async
        def count_users(self) -> int:
            return User.objects.count()

    @database_sync_to_async
    def double(value: int) -> int:
        return value * 2

    store = Store()
    try:
        await store.get("missing")
        missing: Observation = "returned"
    except Exception as exc:
        missing = raised(exc)
    return {
        "method": await store.get("a"),
        "method-raised": missing,
        "query": await store.count_users() >= 0,
        "function": await double(21),
        "on-the-class": isinstance(Store.__dict__["get"], DatabaseSyncToAsync),
    }


@scenario
async def database_sync_to_async_is_a_function() -> Observation:
    """database_sync_to_async itself: a class upstream, a function here that also takes options."""
    seen: dict[str, Observation] = {"is-a-class": isinstance(database_sync_to_async, type)}
    try:
        decorate = database_sync_to_async(thread_sensitive=False)
        seen["options-only"] = await decorate(_add)(1, 1)
    except Exception as exc:
        seen["options-only"] = raised(exc)
    return seen


@scenario
def database_sync_to_async_refuses_async_functions() -> Observation:
    """Wrapping a coroutine function, or something that is not callable."""

    async def already_async() -> None:
        pass

    # Any: neither can be wrapped; the refusal is under test.
    targets: list[tuple[str, Any]] = [("async", already_async), ("not-callable", 42)]
    seen: dict[str, Observation] = {}
    for name, target in targets:
        try:
            database_sync_to_async(target)
            seen[name] = "wrapped"
        except Exception as exc:
            seen[name] = raised(exc)
    return seen


@scenario
async def database_sync_to_async_closes_old_connections() -> Observation:
    """With CONN_MAX_AGE 0, the thread's connection is closed before and after each call."""
    await sync_to_async(_open)()
    open_before = await sync_to_async(_is_open)()
    open_inside = await database_sync_to_async(_is_open)()
    open_after = await sync_to_async(_is_open)()

    def query_and_report() -> bool:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return _is_open()

    open_in_query = await database_sync_to_async(query_and_report)()
    open_after_query = await sync_to_async(_is_open)()
    return {
        "before": open_before,
        "inside": open_inside,
        "after": open_after,
        "in-query": open_in_query,
        "after-query": open_after_query,
    }


async def _result(awaitable: Awaitable[object]) -> object:
    return await awaitable


@scenario
async def aclose_old_connections_closes() -> Observation:
    """aclose_old_connections exists, is awaitable, returns None and closes the sync thread's."""
    await sync_to_async(_open)()
    open_before = await sync_to_async(_is_open)()
    closing = aclose_old_connections()
    awaitable = inspect.isawaitable(closing)
    returned = await _result(closing)
    open_after = await sync_to_async(_is_open)()
    return {
        "coroutine-function": inspect.iscoroutinefunction(aclose_old_connections),
        "awaitable": awaitable,
        "returned": repr(returned),
        "before": open_before,
        "after": open_after,
    }


@scenario
async def model_signal_group_send() -> Observation:
    """A post_save receiver sends to a group with async_to_sync; a consumer's channel gets it."""
    layer = get_channel_layer()
    assert layer is not None
    channel = await layer.new_channel()
    await layer.group_add("compat-users", channel)
    seen_threads: list[bool] = []

    def announce(sender: type[User], instance: User, created: bool, **kwargs: Any) -> None:
        seen_threads.append(threading.current_thread() is threading.main_thread())
        async_to_sync(layer.group_send)(
            "compat-users",
            {"type": "user.saved", "username": instance.username, "created": created},
        )

    post_save.connect(announce, sender=User, dispatch_uid="compat-model-signal")
    try:
        user = await database_sync_to_async(User.objects.create_user)("compat-signal")
        user.first_name = "Ada"
        await database_sync_to_async(user.save)()
        first = await layer.receive(channel)
        second = await layer.receive(channel)
    finally:
        post_save.disconnect(sender=User, dispatch_uid="compat-model-signal")
        await layer.group_discard("compat-users", channel)
    return {"messages": [first, second], "in-main-thread": seen_threads}


@scenario
def sync_code_uses_the_layer() -> Observation:
    """A script with no event loop: group_add, group_send and receive through async_to_sync."""
    layer = get_channel_layer()
    assert layer is not None
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)("compat-script", channel)
    async_to_sync(layer.group_send)("compat-script", {"type": "note", "n": 1})
    async_to_sync(layer.send)(channel, {"type": "note", "n": 2})
    received = [async_to_sync(layer.receive)(channel) for _ in range(2)]
    async_to_sync(layer.group_discard)("compat-script", channel)
    async_to_sync(layer.group_send)("compat-script", {"type": "note", "n": 3})
    return {"received": received, "starts": channel.startswith("specific.")}
