"""hypothesis's state machine runners, typed on every Python the suite runs on.

The newest hypothesis for Python 3.10 leaves ``run_state_machine_as_test``
and ``RuleBasedStateMachine.TestCase`` unannotated, which strict type
checking refuses; reading them by name here gives them one type on all.
"""

from __future__ import annotations

import unittest
from collections.abc import Callable
from typing import cast

from hypothesis import stateful

__all__ = ["run_state_machine_as_test", "state_machine_test_case"]

_RUN = "run_state_machine_as_test"
_TEST_CASE = "TestCase"

run_state_machine_as_test = cast(Callable[..., None], getattr(stateful, _RUN))


def state_machine_test_case(
    machine: type[stateful.RuleBasedStateMachine],
) -> type[unittest.TestCase]:
    """Return the unittest TestCase that runs ``machine``."""
    return cast(type[unittest.TestCase], getattr(machine, _TEST_CASE))
