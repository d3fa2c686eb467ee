"""A marker for methods that are abstract to type checkers only.

Upstream Channels lets people instantiate its base classes directly (to reach
their helpers), so the bases cannot be ABCs at run time. Type checkers still
see ``abc.abstractmethod`` and reject a subclass that forgets a method; at run
time the method's own body raises NotImplementedError.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

__all__ = ["abstractmethod"]

_F = TypeVar("_F")

if TYPE_CHECKING:
    from abc import abstractmethod
else:

    def abstractmethod(method: _F) -> _F:
        """Return ``method`` unchanged: abstract for type checkers only."""
        return method
