"""ASGI lifespan: the application's own code at server startup and shutdown.

uvicorn and hypercorn call the application once with a scope of type
``"lifespan"``: they send ``lifespan.startup`` before taking the first
connection and ``lifespan.shutdown`` after the last one closed, and wait for
the answer to each. ``ProtocolTypeRouter`` answers with ``Lifespan`` unless
its mapping has a ``"lifespan"`` application of its own.

A *hook* is the code to run around the server's life: a callable taking no
arguments that returns an async context manager, typically a function
decorated with ``contextlib.asynccontextmanager``. Startup enters the hooks in
the order given, shutdown exits them in reverse. What a hook yields (a mapping
of names to objects, or None) joins the lifespan state, which the server
copies into ``scope["state"]`` of every later connection. After the hooks,
shutdown closes every channel layer this process opened.

``run_lifespan`` is the server's side of the same conversation. ``Worker.run``
(and so ``runworker``) runs it around its work, so the hooks run in workers
too and worker consumers see the state.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import traceback
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Literal, TypeAlias, cast

from channels.layers import channel_layers
from channels.types import ASGIApplication, Event, Receive, ReceivedEvent, Scope, Send

__all__ = ["Lifespan", "LifespanFailed", "LifespanHook", "LifespanState", "run_lifespan"]

logger = logging.getLogger("channels.lifespan")

# Any: the ASGI lifespan state holds whatever the application's hooks put in.
LifespanState: TypeAlias = dict[str, Any]
"""The lifespan state: names to whatever the hooks made (pools, clients), hence ``Any``.

The ASGI lifespan-state extension leaves the values arbitrary; servers copy
the dict (not its values) into each connection's ``scope["state"]``.
"""

# Any: the ASGI lifespan state holds whatever the application's hooks put in.
LifespanHook: TypeAlias = Callable[[], AbstractAsyncContextManager[Mapping[str, Any] | None]]
"""Code run around the server's life: a no-argument callable returning an async context manager.

Its body up to ``yield`` runs at startup, the rest at shutdown. It yields a
mapping to add to the lifespan state, or None to add nothing.
"""

_Phase: TypeAlias = Literal["startup", "shutdown"]


class LifespanFailed(RuntimeError):
    """The application answered ``lifespan.startup.failed`` or ``lifespan.shutdown.failed``.

    ``phase`` says which; ``message`` is the reason the application gave
    (empty when it gave none).
    """

    def __init__(self, phase: Literal["startup", "shutdown"], message: str) -> None:
        reason = message or "the application gave no reason"
        super().__init__(f"application {phase} failed: {reason}")
        self.phase: Literal["startup", "shutdown"] = phase
        self.message = message


class Lifespan:
    """An ASGI application that answers the lifespan protocol by running ``hooks``.

    At ``lifespan.startup`` it enters each hook in order and adds what it
    yields to ``scope["state"]``. When a hook raises (or yields something that
    is not a mapping, or a name already in the state), it exits the hooks
    already entered, closes the channel layers and answers
    ``lifespan.startup.failed`` with the error, so the server refuses to start
    and says why. At ``lifespan.shutdown`` it exits every hook in reverse
    order, even when some raise, then closes every channel layer this process
    opened, and answers ``lifespan.shutdown.failed`` naming each step that
    raised, or ``lifespan.shutdown.complete``. Nothing is logged: the server
    shows the answer.
    """

    def __init__(self, hooks: Sequence[LifespanHook] = ()) -> None:
        _check_hooks(hooks)
        self.hooks: tuple[LifespanHook, ...] = tuple(hooks)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the hooks at startup and undo them at shutdown, answering the server."""
        if scope.get("type") != "lifespan":
            raise ValueError(
                f"Lifespan serves the scope of type 'lifespan' only; got {scope.get('type')!r}"
            )
        await _expect(receive, "lifespan.startup")
        entered: list[tuple[str, AbstractAsyncContextManager[object]]] = []
        problem = await self.__start(scope.get("state"), entered)
        if problem is not None:
            message = "\n\n".join([problem, *await _stop(entered)])
            await send({"type": "lifespan.startup.failed", "message": message})
            return
        await send({"type": "lifespan.startup.complete"})
        await _expect(receive, "lifespan.shutdown")
        problems = await _stop(entered)
        if problems:
            await send({"type": "lifespan.shutdown.failed", "message": "\n\n".join(problems)})
        else:
            await send({"type": "lifespan.shutdown.complete"})

    async def __start(
        self,
        state: LifespanState | None,
        entered: list[tuple[str, AbstractAsyncContextManager[object]]],
    ) -> str | None:
        """Enter the hooks in order, recording each in ``entered``; return why one failed."""
        for hook in self.hooks:
            name = _name(hook)
            try:
                manager = hook()
                # Typed, but a hook may return anything at run time.
                if not (hasattr(manager, "__aenter__") and hasattr(manager, "__aexit__")):
                    return (
                        f"lifespan hook {name} must return an async context manager "
                        f"(decorate it with @contextlib.asynccontextmanager); got {manager!r}"
                    )
                value = await manager.__aenter__()
            except Exception as exc:  # the hook's error is the answer to the server
                return _describe(f"lifespan startup hook {name}", exc)
            entered.append((name, manager))
            problem = _add_state(name, value, state)
            if problem is not None:
                return problem
        return None


@asynccontextmanager
async def run_lifespan(
    application: ASGIApplication,
) -> AsyncGenerator[LifespanState | None, None]:
    """Run ``application``'s lifespan around the block, as an ASGI server does.

    Yields the lifespan state to copy into each scope, or None when the
    application does not speak the protocol: it raised or returned before
    answering ``lifespan.startup``, or asked for another event first (as an
    application that ignores the scope type does). Then the block runs
    without startup or shutdown, as servers do.

    Raises:
        LifespanFailed: the application answered ``lifespan.startup.failed``
            (the block does not run) or ``lifespan.shutdown.failed``. When the
            block itself raised, a failed shutdown is logged and the block's
            error is raised.
    """
    conversation = _Conversation(application)
    try:
        started = await conversation.ask("startup")
        if not started:
            yield None
            return
        try:
            yield conversation.state
        except GeneratorExit:
            raise
        except BaseException:
            try:
                await conversation.ask("shutdown")
            except LifespanFailed:
                logger.exception("the application's lifespan shutdown failed after an error")
            raise
        await conversation.ask("shutdown")
    finally:
        await conversation.stop()


class _Conversation:
    """The server's side of one lifespan: the application's task and its answers.

    One question is open at a time, startup and then shutdown. ``ask`` opens
    it and waits on ``__answer``, which exactly one of these resolves: the
    application's ``send`` (with its answer), its ``receive`` called again
    after it took the question (None: it ignores the protocol), or the task
    ending (None).
    """

    def __init__(self, application: ASGIApplication) -> None:
        self.state: LifespanState = {}
        self.__questions: asyncio.Queue[ReceivedEvent] = asyncio.Queue()
        self.__phase: _Phase = "startup"
        self.__answer: asyncio.Future[Event | None] | None = None
        self.__taken = False
        self.__started = False
        scope: Scope = {
            "type": "lifespan",
            "asgi": {"version": "3.0", "spec_version": "2.0"},
            "state": self.state,
        }
        self.__task = asyncio.create_task(self.__run(application, scope))
        self.__task.add_done_callback(self.__ended)

    async def __run(self, application: ASGIApplication, scope: Scope) -> None:
        await application(scope, self.__receive, self.__send)

    async def ask(self, phase: _Phase) -> bool:
        """Send ``lifespan.<phase>``; return whether the application answered it.

        False means the application does not (or no longer) speaks the
        protocol. A ``.failed`` answer raises LifespanFailed.
        """
        answer: asyncio.Future[Event | None] = asyncio.get_running_loop().create_future()
        self.__phase, self.__answer, self.__taken = phase, answer, False
        if self.__task.done():
            answer.set_result(None)
        else:
            self.__questions.put_nowait({"type": f"lifespan.{phase}"})
        event = await answer
        if event is None:
            return False
        if event["type"] == f"lifespan.{phase}.failed":
            raise LifespanFailed(phase, str(event.get("message", "")))
        self.__started = True
        return True

    async def stop(self) -> None:
        """Cancel the application if it is still running, and wait until it has ended."""
        self.__task.cancel()
        await asyncio.wait([self.__task])

    async def __receive(self) -> ReceivedEvent:
        if self.__taken:
            # Another event asked for before answering: it ignores lifespan.
            self.__no_answer()
        question = await self.__questions.get()
        self.__taken = True
        return question

    async def __send(self, event: Event) -> None:
        allowed = (f"lifespan.{self.__phase}.complete", f"lifespan.{self.__phase}.failed")
        if self.__answer is None or self.__answer.done() or event.get("type") not in allowed:
            raise ValueError(
                f"a lifespan application may now send only {' or '.join(allowed)}, once, "
                f"in answer to lifespan.{self.__phase}; got {dict(event)!r}"
            )
        self.__answer.set_result(event)

    def __no_answer(self) -> None:
        """Settle the open question, if any, with None: the application will not answer it."""
        if self.__answer is not None and not self.__answer.done():
            self.__answer.set_result(None)

    def __ended(self, task: asyncio.Task[None]) -> None:
        self.__no_answer()
        if task.cancelled() or task.exception() is None:
            return
        if not self.__started:
            logger.info(
                "the application does not speak the ASGI lifespan protocol (it raised %r); "
                "going on without startup and shutdown",
                task.exception(),
            )
        else:
            logger.error("the application's lifespan raised", exc_info=task.exception())


def _check_hooks(hooks: object) -> None:
    """Refuse what cannot be a sequence of hooks, naming the culprit."""
    if callable(hooks) or not isinstance(hooks, Sequence) or isinstance(hooks, str):
        raise TypeError(
            "lifespan hooks must be a list of hooks (for one hook: [hook]), each a callable "
            f"returning an async context manager; got {hooks!r}"
        )
    for index, item in enumerate(cast("Sequence[object]", hooks)):
        if not callable(item):
            raise TypeError(
                f"lifespan hook {index} must be a callable returning an async context "
                f"manager; got {item!r}"
            )
        if inspect.isasyncgenfunction(item):
            raise TypeError(
                f"lifespan hook {_name(item)} is a bare async generator function: decorate it "
                "with @contextlib.asynccontextmanager"
            )
        if inspect.iscoroutinefunction(item):
            raise TypeError(
                f"lifespan hook {_name(item)} is a coroutine function; a hook returns an async "
                "context manager: write an @contextlib.asynccontextmanager function with the "
                "startup code before its `yield` and the shutdown code after it"
            )


def _add_state(name: str, value: object, state: LifespanState | None) -> str | None:
    """Merge what hook ``name`` yielded into ``state``; return why it cannot be."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        return f"lifespan hook {name} must yield a mapping of state or None; got {value!r}"
    items = cast("Mapping[object, object]", value)
    added: LifespanState = {}
    for key, item in items.items():
        if not isinstance(key, str):
            return f"lifespan hook {name} must yield state with str keys; got the key {key!r}"
        if state is not None and key in state:
            return (
                f"lifespan hook {name} yielded state {key!r}, which is already set: each "
                "name in the lifespan state may be set once"
            )
        added[key] = item
    if added and state is None:
        return (
            f"lifespan hook {name} yielded state {sorted(added)}, but the server gives no "
            "lifespan state (its lifespan scope has no 'state' key): serve the application "
            "with a server that supports it, such as uvicorn or hypercorn"
        )
    if state is not None:
        state.update(added)
    return None


async def _stop(entered: list[tuple[str, AbstractAsyncContextManager[object]]]) -> list[str]:
    """Exit the hooks in reverse, then close the channel layers; describe each failure."""
    problems: list[str] = []
    for name, context in reversed(entered):
        try:
            await context.__aexit__(None, None, None)
        except Exception as exc:  # the other hooks still get to shut down
            problems.append(_describe(f"lifespan shutdown hook {name}", exc))
    try:
        await channel_layers.close_all()
    except Exception as exc:  # reported to the server with the rest
        problems.append(_describe("closing the channel layers", exc))
    return problems


async def _expect(receive: Receive, expected: str) -> None:
    event = await receive()
    if event.get("type") != expected:
        raise ValueError(f"Lifespan expected a {expected} event from the server; got {event!r}")


def _describe(what: str, exc: Exception) -> str:
    """One line saying what raised what, then the traceback."""
    trace = "".join(traceback.format_exception(exc)).rstrip()
    return f"{what} raised {type(exc).__name__}: {exc}\n{trace}"


def _name(hook: object) -> str:
    qualname: object = getattr(hook, "__qualname__", None)
    return qualname if isinstance(qualname, str) else repr(hook)
