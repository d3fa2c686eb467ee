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
from collections.abc import Callable, Coroutine
from typing import TypeAlias, cast

__all__ = ["SCENARIOS", "Observation", "observe", "raised", "scenario"]

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
