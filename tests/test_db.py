from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from asgiref.sync import SyncToAsync, ThreadSensitiveContext, async_to_sync, sync_to_async
from django.db import connection, connections
from django.db.backends.signals import connection_created
from typing_extensions import assert_type

from channels.db import (
    DatabaseSyncToAsync,
    aclose_old_connections,
    close_old_connections,
    database_sync_to_async,
    keep_old_connections,
    watch_connections,
)

# -- sync helpers, run in whichever thread calls them -------------------------


def open_connection() -> None:
    connection.ensure_connection()


def is_open() -> bool:
    return connection.connection is not None


def query_and_report_open_on_entry() -> bool:
    """Whether a connection was open when called; leaves one open by querying."""
    was_open = is_open()
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return was_open


# asgiref before 3.13 (the newest on Python 3.10) leaves ThreadSensitiveContext
# unannotated, which mypy refuses to call; through this alias the call checks
# on every asgiref version.
_thread_sensitive_context: Callable[[], ThreadSensitiveContext] = ThreadSensitiveContext


async def hops(call: Callable[[], Awaitable[object]]) -> bool:
    """Run ``call`` in a fresh thread-sensitive context: did it start that context's thread?"""
    async with _thread_sensitive_context() as context:
        await call()
        return context in SyncToAsync.context_to_thread_executor


@pytest.fixture
def opened() -> Iterator[list[int]]:
    """The threads in which connections get opened, one entry per connection."""
    threads: list[int] = []

    def record(sender: object, **kwargs: object) -> None:
        threads.append(threading.get_ident())

    connection_created.connect(record, weak=False, dispatch_uid="tests.test_db.opened")
    yield threads
    connection_created.disconnect(dispatch_uid="tests.test_db.opened")


@pytest.fixture
async def sync_thread() -> AsyncIterator[None]:
    """Leave no connection open in the shared thread-sensitive thread."""
    yield
    # Open connections would keep the test database from being dropped.
    await sync_to_async(connections.close_all)()


db_threads = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("sync_thread"),
]


# -- close_old_connections and keep_old_connections --------------------------


@pytest.mark.django_db(transaction=True)
class TestCloseOldConnections:
    def test_closes_an_expired_connection(self) -> None:
        open_connection()

        close_old_connections()

        assert not is_open()

    def test_keeps_connections_inside_keep_old_connections(self) -> None:
        open_connection()
        kept = connection.connection

        with keep_old_connections():
            close_old_connections()

        assert connection.connection is kept
        close_old_connections()
        assert not is_open()

    def test_nested_blocks_restore_the_outer_setting(self) -> None:
        with keep_old_connections():
            with keep_old_connections():
                pass
            open_connection()
            close_old_connections()
            assert is_open()
        close_old_connections()
        assert not is_open()

    def test_closing_resumes_after_an_error_in_the_block(self) -> None:
        open_connection()

        with pytest.raises(RuntimeError, match="boom"), keep_old_connections():
            raise RuntimeError("boom")

        close_old_connections()
        assert not is_open()


# -- database_sync_to_async ---------------------------------------------------


def add(left: int, right: int) -> int:
    return left + right


class Store:
    def __init__(self, base: int) -> None:
        self.base = base

    @database_sync_to_async
    def total(self, extra: int) -> int:
        return self.base + extra

    @database_sync_to_async
    def fail(self, message: str) -> None:
        raise LookupError(message)

    @database_sync_to_async(thread_sensitive=False)
    def thread(self) -> int:
        return threading.get_ident()


class TestDatabaseSyncToAsync:
    pytestmark = db_threads

    async def test_closes_connections_before_and_after_the_call(self, opened: list[int]) -> None:
        await sync_to_async(open_connection)()
        sync_thread = await sync_to_async(threading.get_ident)()
        opened.clear()

        open_on_entry = await database_sync_to_async(query_and_report_open_on_entry)()

        assert open_on_entry is False
        assert await sync_to_async(is_open)() is False
        # Only the query inside the call opened a connection, in the sync thread.
        assert opened == [sync_thread]

    async def test_closes_after_the_function_raises(self) -> None:
        def fail() -> None:
            open_connection()
            raise LookupError("no such row")

        with pytest.raises(LookupError, match="no such row"):
            await database_sync_to_async(fail)()

        assert await sync_to_async(is_open)() is False

    async def test_passes_arguments_and_returns_the_result(self) -> None:
        assert await database_sync_to_async(add)(2, right=3) == 5

    async def test_accepts_sync_to_async_options(self) -> None:
        pool = ThreadPoolExecutor(max_workers=1)
        try:
            in_pool = sync_to_async(thread_sensitive=False, executor=pool)
            await in_pool(open_connection)()
            wrapped = database_sync_to_async(thread_sensitive=False, executor=pool)

            open_on_entry = await wrapped(query_and_report_open_on_entry)()

            assert open_on_entry is False
            assert await in_pool(is_open)() is False
            pool_thread = await in_pool(threading.get_ident)()
            assert pool_thread != await sync_to_async(threading.get_ident)()
        finally:
            pool.shutdown()

    async def test_keeps_the_wrapped_signature(self) -> None:
        wrapped = database_sync_to_async(add)

        assert inspect.signature(wrapped) == inspect.signature(add)
        assert isinstance(wrapped, DatabaseSyncToAsync)

    async def test_refuses_async_functions(self) -> None:
        async def already_async() -> None: ...

        with pytest.raises(TypeError, match="sync_to_async can only be applied to sync functions"):
            database_sync_to_async(already_async)


class TestAsMethodDecorator:
    pytestmark = db_threads

    async def test_binds_the_instance_and_returns_the_result(self) -> None:
        assert await Store(10).total(5) == 15

    async def test_propagates_exceptions(self) -> None:
        with pytest.raises(LookupError, match="missing"):
            await Store(0).fail("missing")

    async def test_accepts_options(self) -> None:
        assert await Store(0).thread() != await sync_to_async(threading.get_ident)()


class TestKeepOldConnections:
    pytestmark = db_threads

    async def test_calls_inside_keep_connections_and_closing_resumes_after(self) -> None:
        await sync_to_async(open_connection)()

        with keep_old_connections():
            open_on_entry = await database_sync_to_async(query_and_report_open_on_entry)()
            open_after = await sync_to_async(is_open)()

        assert (open_on_entry, open_after) == (True, True)
        assert await database_sync_to_async(query_and_report_open_on_entry)() is False
        assert await sync_to_async(is_open)() is False

    async def test_a_parallel_task_outside_still_closes(self) -> None:
        inside_keeping = asyncio.Event()
        outside_done = asyncio.Event()

        async def inside() -> bool:
            with keep_old_connections():
                inside_keeping.set()
                await outside_done.wait()
                await sync_to_async(open_connection)()
                return await database_sync_to_async(query_and_report_open_on_entry)()

        async def outside() -> bool:
            await inside_keeping.wait()
            try:
                await sync_to_async(open_connection)()
                return await database_sync_to_async(query_and_report_open_on_entry)()
            finally:
                outside_done.set()

        inside_open, outside_open = await asyncio.gather(inside(), outside())

        assert (inside_open, outside_open) == (True, False)

    async def test_tasks_started_inside_keep_it_after_the_block_ends(self) -> None:
        await sync_to_async(open_connection)()

        with keep_old_connections():
            task = asyncio.create_task(database_sync_to_async(query_and_report_open_on_entry)())
        # The task has not run yet: it carries the setting it was created with.

        assert await task is True
        assert await sync_to_async(is_open)() is True


class TestInsideATestCaseTransaction:
    @pytest.mark.django_db
    def test_the_transaction_and_its_connection_survive(self) -> None:
        open_connection()
        kept = connection.connection

        async def use_database() -> bool:
            # Under async_to_sync, thread-sensitive calls run in this thread,
            # on the connection that holds the test's transaction.
            return await database_sync_to_async(query_and_report_open_on_entry)()

        with keep_old_connections():
            open_on_entry = async_to_sync(use_database)()

        assert open_on_entry is True
        assert connection.connection is kept
        assert connection.in_atomic_block


class TestAcloseOldConnections:
    pytestmark = db_threads

    async def test_closes_the_sync_threads_connection(self) -> None:
        await sync_to_async(open_connection)()

        await aclose_old_connections()

        assert await sync_to_async(is_open)() is False

    async def test_untracked_context_always_hops(self) -> None:
        assert await hops(aclose_old_connections) is True
        assert await hops(aclose_old_connections) is True

    async def test_honours_keep_old_connections(self) -> None:
        await sync_to_async(open_connection)()

        with keep_old_connections():
            await aclose_old_connections()

        assert await sync_to_async(is_open)() is True


class TestWatchConnections:
    pytestmark = db_threads

    async def test_first_close_hops_for_connections_opened_before_watching(self) -> None:
        async def consumer() -> bool:
            await sync_to_async(open_connection)()
            watch_connections()
            await aclose_old_connections()
            return await sync_to_async(is_open)()

        assert await asyncio.create_task(consumer()) is False

    async def test_no_hop_once_closed_and_nothing_opened(self) -> None:
        async def consumer() -> list[bool]:
            watch_connections()
            await aclose_old_connections()
            return [await hops(aclose_old_connections), await hops(aclose_old_connections)]

        assert await asyncio.create_task(consumer()) == [False, False]

    async def test_hops_and_closes_after_a_connection_is_opened(self) -> None:
        async def consumer() -> tuple[bool, bool]:
            watch_connections()
            await aclose_old_connections()
            await sync_to_async(open_connection)()
            await aclose_old_connections()
            return await sync_to_async(is_open)(), await hops(aclose_old_connections)

        assert await asyncio.create_task(consumer()) == (False, False)

    async def test_database_sync_to_async_leaves_nothing_to_close(self) -> None:
        async def consumer() -> bool:
            watch_connections()
            await database_sync_to_async(query_and_report_open_on_entry)()
            return await hops(aclose_old_connections)

        assert await asyncio.create_task(consumer()) is False

    async def test_a_connection_left_open_keeps_it_hopping(self) -> None:
        async def consumer() -> bool:
            watch_connections()
            await sync_to_async(open_connection)()
            with keep_old_connections():
                await aclose_old_connections()
            return await hops(aclose_old_connections)

        assert await asyncio.create_task(consumer()) is True

    async def test_connections_opened_by_other_contexts_are_not_counted(self) -> None:
        settled = asyncio.Event()
        other_opened = asyncio.Event()

        async def consumer() -> bool:
            watch_connections()
            await aclose_old_connections()
            settled.set()
            await other_opened.wait()
            return await hops(aclose_old_connections)

        async def other() -> None:
            await settled.wait()
            await sync_to_async(open_connection)()
            other_opened.set()

        hopped, _ = await asyncio.gather(consumer(), other())

        assert hopped is False

    async def test_watching_in_a_task_leaves_the_caller_untracked(self) -> None:
        async def consumer() -> None:
            watch_connections()
            await aclose_old_connections()

        await asyncio.create_task(consumer())

        assert await hops(aclose_old_connections) is True


# -- typing: checked by mypy and pyright, never run ---------------------------


async def type_checks() -> None:
    plain = database_sync_to_async(add)
    await assert_type(plain(1, 2), Coroutine[Any, Any, int])
    assert_type(await plain(1, right=2), int)
    await plain("1", 2)  # type: ignore[arg-type]
    await plain(1)  # type: ignore[call-arg]

    configured = database_sync_to_async(thread_sensitive=False)(add)
    assert_type(await configured(1, 2), int)
    await configured(1, "2")  # type: ignore[arg-type]

    store = Store(1)
    await assert_type(store.total(2), Coroutine[Any, Any, int])
    assert_type(await store.fail("x"), None)
    assert_type(await store.thread(), int)
    await store.total("2")  # type: ignore[arg-type]

    @database_sync_to_async
    def keyword_only(*, flag: bool) -> str:
        return str(flag)

    assert_type(await keyword_only(flag=True), str)
    await keyword_only(True)  # type: ignore[call-arg]

    direct = DatabaseSyncToAsync(add)
    assert_type(await direct(1, 2), int)
