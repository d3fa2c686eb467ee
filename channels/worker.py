"""Worker: run an application on the messages of named channel-layer channels.

``manage.py runworker`` runs one. Each channel gets one long-lived application
instance with the scope ``{"type": "channel", "channel": name}``; the messages
that arrive on the channel are what that instance's ``receive()`` returns, in
order. ``ChannelNameRouter`` picks an application per channel name.

On SIGINT or SIGTERM the worker stops taking messages from the layer, lets
each instance finish the messages it has already been handed, cancels the
instances, closes the layer and returns.

``run()`` (what ``runworker`` calls) serves the application's ASGI lifespan
around that, as a server would: its startup runs before the worker listens,
its shutdown after the worker stopped, and each instance's scope gets a copy
of the lifespan state as ``scope["state"]``.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable, Iterable, Sequence
from types import FrameType

from channels.layers.protocols import ChannelLayer, ClosableChannelLayer
from channels.lifespan import LifespanState, run_lifespan
from channels.types import ASGIApplication, Event, ReceivedEvent, Scope

__all__ = ["Worker"]

logger = logging.getLogger("channels.worker")

_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class _Instance:
    """One channel's application instance, its inbox, and whether it waits for more."""

    __slots__ = ("channel", "idle", "inbox", "scope", "sent", "task")

    def __init__(
        self,
        application: ASGIApplication,
        channel: str,
        sent: Callable[[Scope, Event], Awaitable[None]],
        state: LifespanState | None,
    ) -> None:
        self.channel = channel
        self.scope: Scope = {"type": "channel", "channel": channel}
        if state is not None:
            # A copy of the dict, not of its values, as ASGI servers copy it.
            self.scope["state"] = dict(state)
        self.sent = sent
        self.inbox: asyncio.Queue[ReceivedEvent] = asyncio.Queue()
        # Set while the application waits in receive() with nothing queued:
        # then it has finished every message it was handed.
        self.idle = asyncio.Event()
        self.task = asyncio.create_task(self._run(application))

    async def _run(self, application: ASGIApplication) -> None:
        await application(self.scope, self.receive, self.send)

    def deliver(self, message: ReceivedEvent) -> None:
        """Queue ``message`` for the application."""
        self.inbox.put_nowait(message)
        self.idle.clear()

    async def receive(self) -> ReceivedEvent:
        """Return the next message: the application's ``receive`` callable."""
        if self.inbox.empty():
            self.idle.set()
        return await self.inbox.get()

    async def send(self, event: Event) -> None:
        """Hand the event to the worker: the application's ``send`` callable."""
        await self.sent(self.scope, event)


class Worker:
    """Consume ``channels`` from ``channel_layer`` through ``application``.

    ``channel_layer`` may be None only so that ``get_channel_layer()`` can be
    passed straight in: None raises ValueError. ``max_applications`` is kept
    for code written against upstream's Worker, which stops its least recently
    used instance past that many; this one runs exactly one instance per
    channel it listens on and never stops one to make room.

    Subclasses (``runworker``'s ``worker_class``) may override ``handle``,
    ``listener`` and ``application_send``, as with upstream's; the rest of the
    state is private (name-mangled).
    """

    def __init__(
        self,
        application: ASGIApplication,
        channels: Iterable[str],
        channel_layer: ChannelLayer | None,
        max_applications: int = 1000,
    ) -> None:
        if channel_layer is None:
            raise ValueError(
                "Worker needs a channel layer: got None, which get_channel_layer() "
                "returns when CHANNEL_LAYERS does not name the alias"
            )
        if isinstance(channels, str):
            raise TypeError(
                f"channels must be a list of channel names, not a str; got {channels!r}"
            )
        names = list(channels)
        if not names:
            raise ValueError("Worker needs at least one channel to listen on; got none")
        self.application = application
        self.channels: Sequence[str] = names
        self.channel_layer = channel_layer
        self.max_applications = max_applications
        self.__instances: dict[str, _Instance] = {}
        self.__state: LifespanState | None = None

    async def application_send(self, scope: Scope, message: Event) -> None:
        """Take an event an application sent; by default refuse it with NotImplementedError.

        Worker messages have no client to answer, so there is nowhere to send
        to; a subclass may override this to do something with the events.
        """
        raise NotImplementedError(
            "an application run by a worker cannot send events: worker messages "
            "have no client to answer; send to a channel layer instead, or override "
            f"Worker.application_send; got {dict(message)!r} on channel "
            f"{scope.get('channel')!r}"
        )

    def run(self, on_ready: Callable[[], object] | None = None) -> None:
        """Serve until SIGINT or SIGTERM, then stop cleanly; call ``on_ready`` once serving.

        The application's lifespan startup runs first and its shutdown last
        (see ``channels.lifespan.run_lifespan``). Call it from the main
        thread: it installs signal handlers, and restores the previous ones
        when it returns.

        Raises:
            LifespanFailed: the application's lifespan startup (the worker
                never listens) or shutdown failed.
        """
        asyncio.run(self.__serve_until_signalled(on_ready))

    async def __serve_until_signalled(self, on_ready: Callable[[], object] | None) -> None:
        loop = asyncio.get_running_loop()
        shutdown = asyncio.Event()

        def stop(signum: int, frame: FrameType | None) -> None:
            loop.call_soon_threadsafe(shutdown.set)

        # signal.signal rather than loop.add_signal_handler: it works on every
        # platform, and the handler only hands the request to the loop.
        previous = {signum: signal.signal(signum, stop) for signum in _STOP_SIGNALS}
        try:
            async with run_lifespan(self.application) as state:
                self.__state = state
                if on_ready is not None:
                    on_ready()
                await self.handle(shutdown)
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    async def handle(self, shutdown: asyncio.Event | None = None) -> None:
        """Consume the channels until ``shutdown`` is set (or forever), then stop cleanly.

        Stopping finishes the messages already handed to the application,
        cancels its instances and closes the layer. An error receiving from
        the layer, or a message without a ``type``, stops the worker at once
        and is raised here.
        """
        stop = shutdown if shutdown is not None else asyncio.Event()
        listeners = [
            asyncio.create_task(self.listener(channel), name=f"worker listener {channel}")
            for channel in self.channels
        ]
        stopping = asyncio.create_task(stop.wait())
        try:
            try:
                await asyncio.wait([stopping, *listeners], return_when=asyncio.FIRST_COMPLETED)
            finally:
                await _cancel_and_wait([stopping, *listeners])
            # Read every listener's outcome, so none is logged as never retrieved.
            errors = [task.exception() for task in listeners if not task.cancelled()]
            for error in errors:
                if error is not None:
                    raise error
            for instance in list(self.__instances.values()):
                await instance.idle.wait()
        finally:
            await self.__stop_instances()
            if isinstance(self.channel_layer, ClosableChannelLayer):
                await self.channel_layer.close()

    async def listener(self, channel: str) -> None:
        """Hand every message on ``channel`` to its application instance, forever."""
        while True:
            message = await self.channel_layer.receive(channel)
            if not message.get("type"):
                raise ValueError(
                    f"worker received a message without a 'type' on channel {channel!r}: "
                    f"worker messages need a 'type' naming their handler; got {message!r}"
                )
            instance = self.__instances.get(channel)
            if instance is None or instance.task.done():
                instance = self.__start(channel)
            instance.deliver(message)

    def __start(self, channel: str) -> _Instance:
        instance = _Instance(self.application, channel, self.application_send, self.__state)
        self.__instances[channel] = instance
        instance.task.add_done_callback(lambda _: self.__finished(instance))
        return instance

    def __finished(self, instance: _Instance) -> None:
        """Forget an instance that ended; log its exception and any messages it left."""
        instance.idle.set()
        if self.__instances.get(instance.channel) is instance:
            del self.__instances[instance.channel]
        if instance.task.cancelled():
            return
        error = instance.task.exception()
        if error is not None:
            logger.error("the application for channel %r failed", instance.channel, exc_info=error)
        if not instance.inbox.empty():
            logger.warning(
                "application for channel %r ended with %d unhandled message(s), which are dropped",
                instance.channel,
                instance.inbox.qsize(),
            )

    async def __stop_instances(self) -> None:
        instances = list(self.__instances.values())
        await _cancel_and_wait([instance.task for instance in instances])


async def _cancel_and_wait(tasks: Sequence[asyncio.Task[object]]) -> None:
    """Cancel ``tasks`` and wait until all have ended, whatever the outcome."""
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.wait(tasks)
