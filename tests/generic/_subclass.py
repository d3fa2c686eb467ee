"""Consumer subclasses with class attributes set, where a test varies them.

``as_asgi()`` keywords go to ``__init__``, which the generic consumers accept
and ignore as upstream does; a test that varies a class attribute subclasses.
"""

from __future__ import annotations

from typing import TypeVar, cast

_C = TypeVar("_C", bound=type)


def with_attributes(consumer: _C, **attributes: object) -> _C:
    """Return a subclass of ``consumer`` (same name) with ``attributes`` as class attributes."""
    return cast(_C, type(consumer.__name__, (consumer,), attributes))
