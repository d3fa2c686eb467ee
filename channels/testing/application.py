"""ApplicationCommunicator: run one ASGI application instance in a test.

The application runs as a task; the test feeds it events with ``send_input``
and reads what it sends with ``receive_output``. The task starts in a fresh
context (like asgiref's, so the test's context variables do not leak in) with
database connection closing switched off, so the application never closes the
connections that a Django test case holds open.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import time

from asgiref.testing import ApplicationCommunicator as _AsgirefCommunicator

from channels.db import keep_old_connections
from channels.types import ASGIApplication, Event, ReceivedEvent, Scope

__all__ = ["ApplicationCommunicator", "receive_expected"]


class ApplicationCommunicator(_AsgirefCommunicator):
    """Run an ASGI application for ``scope`` as a task and exchange events with it.

    A subclass of asgiref's communicator (``future``, ``input_queue`` and
    ``output_queue`` are there), with typed methods and failures that say
    what was expected.
    """

    # Class-level defaults: asgiref's __del__ calls stop(), even on an
    # instance whose __init__ raised before setting anything.
    _future: asyncio.Task[None] | None = None
    _input_queue: asyncio.Queue[ReceivedEvent] | None = None
    _output_queue: asyncio.Queue[ReceivedEvent] | None = None

    def __init__(self, application: ASGIApplication, scope: Scope) -> None:
        if isinstance(application, type):
            raise TypeError(
                "application must be an ASGI application, such as MyConsumer.as_asgi(); "
                f"got the class {application.__qualname__}"
            )
        # asgiref's __init__ is untyped; setting its attributes here keeps
        # every call typed.
        self.application = application
        self.scope = scope

    @property
    def input_queue(self) -> asyncio.Queue[ReceivedEvent]:
        """The events waiting for the application's ``receive()``."""
        if self._input_queue is None:
            self._input_queue = asyncio.Queue()
        return self._input_queue

    @property
    def output_queue(self) -> asyncio.Queue[ReceivedEvent]:
        """The events the application sent that the test has not read yet."""
        if self._output_queue is None:
            self._output_queue = asyncio.Queue()
        return self._output_queue

    @property
    def future(self) -> asyncio.Task[None]:
        """The task running the application; started on first use."""
        if self._future is None:
            self._future = contextvars.Context().run(self.__start)
        return self._future

    def __start(self) -> asyncio.Task[None]:
        # The task copies the context as it is now, flag included; leaving the
        # block afterwards resets the flag only in this throwaway context.
        with keep_old_connections():
            return asyncio.create_task(self.__run())

    async def __run(self) -> None:
        await self.application(self.scope, self.input_queue.get, self.__send)

    async def __send(self, event: Event) -> None:
        # A copy, so the application reusing its dict cannot change what the
        # test reads later.
        await self.output_queue.put(dict(event))

    async def send_input(self, message: Event) -> None:
        """Give the application ``message`` as the result of its next ``receive()``."""
        _raise_if_failed(self)
        await self.input_queue.put(dict(message))

    async def receive_output(self, timeout: float | None = 1) -> ReceivedEvent:
        """Return the next event the application sends.

        Raises asyncio.TimeoutError (the built-in TimeoutError on Python
        3.11+) when none arrives within ``timeout`` seconds (the
        application is cancelled then) or when the application exits without
        sending one; ``timeout=None`` waits without limit. An exception raised
        by the application is re-raised here.
        """
        _raise_if_failed(self)
        if self.output_queue.empty():
            # Wait for an event or for the application's end, whichever comes
            # first, so that a failing application fails the test at once.
            getter = asyncio.ensure_future(self.output_queue.get())
            try:
                await asyncio.wait(
                    {getter, self.future}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
                )
            finally:
                if not getter.done():
                    # Queue.get leaves the item queued when cancelled: nothing is lost.
                    getter.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await getter
            if not getter.cancelled():
                return getter.result()
        if not self.output_queue.empty():
            return self.output_queue.get_nowait()
        if not self.future.done():
            await _cancel(self)
        _raise_if_failed(self)
        raise asyncio.TimeoutError(_nothing_arrived(self, "an event from the application", timeout))

    async def receive_nothing(self, timeout: float = 0.1, interval: float = 0.01) -> bool:
        """Return True if the application sends nothing for ``timeout`` seconds.

        The output queue is checked every ``interval`` seconds; a sent event
        stays queued for ``receive_output``.
        """
        _raise_if_failed(self)
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if not self.output_queue.empty():
                return False
            await asyncio.sleep(interval)
        return self.output_queue.empty()

    async def wait(self, timeout: float | None = 1) -> None:
        """Wait for the application to exit and re-raise its exception, if any.

        Raises asyncio.TimeoutError, after cancelling it, if it is still
        running after ``timeout`` seconds; ``timeout=None`` waits without limit.
        """
        await asyncio.wait({self.future}, timeout=timeout)
        if not self.future.done():
            await _cancel(self)
            raise asyncio.TimeoutError(
                f"expected the application to exit within {timeout} s, but it was still "
                "running (it was cancelled)"
            )
        if not self.future.cancelled():
            self.future.result()

    def stop(self, exceptions: bool = True) -> None:
        """Cancel the application if it runs; else re-raise its exception if ``exceptions``."""
        if self._future is None:
            return
        if not self._future.done():
            self._future.cancel()
        elif exceptions:
            self._future.result()


# Module functions rather than methods, so that names in a subclass of the
# communicators cannot collide with them.


def _raise_if_failed(communicator: ApplicationCommunicator) -> None:
    """Re-raise the application's exception if it has already failed."""
    if communicator.future.done() and not communicator.future.cancelled():
        communicator.future.result()


async def _cancel(communicator: ApplicationCommunicator) -> None:
    """Cancel the application and wait for it to end."""
    communicator.future.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await communicator.future


def _nothing_arrived(
    communicator: ApplicationCommunicator, expected: str, timeout: float | None
) -> str:
    if communicator.future.cancelled():
        return (
            f"expected {expected} within {timeout} s, got nothing (the application was cancelled)"
        )
    return f"expected {expected}, but the application exited without one"


async def receive_expected(
    communicator: ApplicationCommunicator, expected: str, timeout: float | None
) -> ReceivedEvent:
    """Return ``communicator.receive_output(timeout)``; a timeout names what was ``expected``.

    The communicators' helpers go through ``receive_output``, as upstream's do,
    so a subclass that overrides it changes what they see.
    """
    try:
        return await communicator.receive_output(timeout)
    except asyncio.TimeoutError:
        raise asyncio.TimeoutError(_nothing_arrived(communicator, expected, timeout)) from None
