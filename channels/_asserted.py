"""Errors for arguments that upstream Channels checks with ``assert``.

Upstream reports some misuse (a message that is not a dict, a bad ``samesite``,
``send_to()`` without data) with ``assert``, so code and tests written for it
catch AssertionError. Here the same conditions raise these classes: the
natural TypeError or ValueError, and an AssertionError too, so both kinds of
``except`` keep working (and ``python -O`` does not skip the check).
"""

from __future__ import annotations

__all__ = ["AssertedTypeError", "AssertedValueError"]


class AssertedTypeError(TypeError, AssertionError):
    """An argument of the wrong type, where upstream asserts."""


class AssertedValueError(ValueError, AssertionError):
    """An argument with a wrong value, where upstream asserts."""
