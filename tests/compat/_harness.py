"""The differential harness: one scenario, run on upstream Channels and on this package.

A scenario is a function (sync or async) that uses only the public Channels
API and returns what a user would observe, as JSON-able data: values, the
events an application sent, the attributes apps read. An exception escaping
it is recorded as the exception's class names (its MRO), so a test can accept
a subclass of upstream's type.

``_run.py`` imports every scenario module in a fresh interpreter, once with
this package (the venv under test) and once in ``.venv-upstream``, and prints
the observations as JSON; ``test_compat.py`` compares them pair by pair.
Scenario modules import nothing from ``tests`` except this module, so they
run unchanged where ``channels`` is upstream's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping
from typing import TypeAlias, cast

__all__ = ["SCENARIOS", "Observation", "drive", "jsonable", "observe", "raised", "scenario"]

# object, not a recursive JSON type: list and dict are invariant, so a
# scenario's list[str] would not be a list of a JSON union. json.dumps checks.
Observation: TypeAlias = object
"""What a scenario reports: JSON-able data (None, bools, numbers, str, lists, dicts)."""

ScenarioFunction: TypeAlias = Callable[[], "Observation | Coroutine[object, object, Observation]"]

#: Scenario name -> function, in definition order.
SCENARIOS: dict[str, ScenarioFunction] = {}


def scenario(function: ScenarioFunction) -> ScenarioFunction:
    """Register ``function`` as a scenario named ``<module>.<function>``."""
    module = function.__module__.rpartition(".")[2].removeprefix("scenarios_")
    SCENARIOS[f"{module}.{function.__name__}"] = function
    return function


def raised(exc: BaseException) -> Observation:
    """Describe an exception as a user observes it: its class and the classes it derives from."""
    return {"raised": [cls.__name__ for cls in type(exc).__mro__ if cls is not object]}


def observe(function: ScenarioFunction) -> Observation:
    """Run one scenario and return its observation, or the exception it raised."""
    try:
        result = function()
        if isinstance(result, Coroutine):
            coroutine = cast(Coroutine[object, object, Observation], result)
            return asyncio.run(asyncio.wait_for(coroutine, timeout=20))
        return result
    except Exception as exc:  # the exception is the observation
        return raised(exc)


def jsonable(value: object) -> Observation:
    """Return ``value`` as JSON data that keeps what a user could tell apart.

    Bytes become ``{"bytes": text}`` and tuples ``{"tuple": [...]}``, so an
    observation shows whether headers came back as tuples or lists.
    """
    if isinstance(value, bytes):
        return {"bytes": value.decode("latin-1")}
    if isinstance(value, tuple):
        return {"tuple": [jsonable(item) for item in cast("tuple[object, ...]", value)]}
    if isinstance(value, list):
        return [jsonable(item) for item in cast("list[object]", value)]
    if isinstance(value, Mapping):
        items = cast("Mapping[object, object]", value).items()
        return {str(key): jsonable(item) for key, item in items}
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return {"object": type(value).__name__}


async def drive(
    application: Callable[..., Awaitable[object]],
    scope: dict[str, object],
    events: Iterable[Mapping[str, object]],
    timeout: float = 5,
) -> dict[str, Observation]:
    """Run ``application`` as a server would, feeding it ``events``; report what it sent.

    The application gets the events one per ``receive()``; once they are used
    up ``receive()`` waits forever. The run ends when the application returns
    or raises, or after ``timeout`` seconds (reported as ``"still running"``).
    """
    inbox: asyncio.Queue[Mapping[str, object]] = asyncio.Queue()
    for event in events:
        inbox.put_nowait(dict(event))
    sent: list[Observation] = []

    async def send(event: Mapping[str, object]) -> None:
        sent.append(jsonable(event))

    task = asyncio.ensure_future(application(scope, inbox.get, send))
    done, _ = await asyncio.wait({task}, timeout=timeout)
    if not done:
        task.cancel()
        await asyncio.wait({task})
        ended: Observation = "still running"
    elif task.exception() is not None:
        ended = raised(cast(BaseException, task.exception()))
    else:
        ended = "returned"
    return {"sent": sent, "ended": ended}
