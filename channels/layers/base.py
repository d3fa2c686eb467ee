"""BaseChannelLayer: the abstract base that channel layers inherit from.

It implements the parts every layer shares: channel and group name rules,
per-channel capacities, and NotImplementedError for the methods a layer does
not provide.
"""

from __future__ import annotations

import fnmatch
import re
import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, ClassVar, Final

from channels._abstract import abstractmethod
from channels._asserted import AssertedTypeError
from channels.layers.protocols import FullChannelLayer
from channels.types import ChannelMessage, ReceivedMessage

__all__ = ["BaseChannelLayer", "CapacityPattern", "require_message"]

CapacityPattern = str | re.Pattern[str]
"""A ``channel_capacity`` key: a glob such as ``"http.*"`` or a compiled regex."""

_NAME_CHARS = r"[a-zA-Z0-9\-_.]"
_CHANNEL_NAME: Final = re.compile(rf"{_NAME_CHARS}+(?:!{_NAME_CHARS}*)?")
_GROUP_NAME: Final = re.compile(rf"{_NAME_CHARS}+")


def require_message(message: object) -> None:
    """Raise TypeError unless ``message`` is a mapping; every layer here checks with this.

    The error is also an AssertionError, as upstream asserts this.
    """
    if message.__class__ is not dict and not isinstance(message, Mapping):
        raise AssertedTypeError(
            "message must be a mapping (such as a dict with a 'type' key); "
            f"got {type(message).__name__}: {message!r}"
        )


# Type checkers see BaseChannelLayer as an implementation of FullChannelLayer;
# at run time its only metaclass is ``type``, so a subclass may bring its own.
if TYPE_CHECKING:
    _LayerBase = FullChannelLayer
else:
    _LayerBase = object


class BaseChannelLayer(_LayerBase):
    """The base for channel layers: name rules, capacities and default errors.

    Subclasses must implement ``send``, ``receive`` and ``new_channel`` (type
    checkers treat them as abstract) and the methods of the extensions they
    list in ``extensions``. Any other method raises NotImplementedError naming
    the method and its extension. ``BaseChannelLayer()`` itself can still be
    instantiated at run time, as upstream allows, to reach its name checks.
    """

    MAX_NAME_LENGTH: ClassVar[int] = 100
    # A plain attribute, so subclasses write ``extensions = ["groups", "flush"]``
    # as upstream; pyright wants a property where the Protocol has one, but an
    # attribute is a valid read-only implementation.
    extensions: Sequence[str] = ()  # pyright: ignore[reportIncompatibleMethodOverride]

    channel_name_regex: ClassVar[re.Pattern[str]] = _CHANNEL_NAME
    group_name_regex: ClassVar[re.Pattern[str]] = _GROUP_NAME

    def __init__(
        self,
        expiry: float = 60,
        capacity: int = 100,
        channel_capacity: Mapping[CapacityPattern, int] | None = None,
    ) -> None:
        self.expiry = expiry
        self.capacity = capacity
        self.channel_capacity = self.compile_capacities(channel_capacity or {})

    # -- capacities ----------------------------------------------------------

    def compile_capacities(
        self, channel_capacity: Mapping[CapacityPattern, int]
    ) -> list[tuple[re.Pattern[str], int]]:
        """Turn a ``channel_capacity`` mapping into (regex, capacity) pairs, in order.

        A string key is a glob (``fnmatch`` syntax); a compiled regex is used as is.
        """
        compiled: list[tuple[re.Pattern[str], int]] = []
        for pattern, capacity in channel_capacity.items():
            if isinstance(pattern, str):
                pattern = re.compile(fnmatch.translate(pattern))
            compiled.append((pattern, capacity))
        return compiled

    def get_capacity(self, channel: str) -> int:
        """Return the capacity of ``channel``: the first matching pattern's, else the default."""
        for pattern, capacity in self.channel_capacity:
            if pattern.match(channel):
                return capacity
        return self.capacity

    # -- names ---------------------------------------------------------------

    def match_type_and_length(self, name: object) -> bool:
        """Return whether ``name`` is a string shorter than MAX_NAME_LENGTH."""
        return isinstance(name, str) and len(name) < self.MAX_NAME_LENGTH

    def require_valid_channel_name(self, name: str, receive: bool = False) -> bool:
        """Return True if ``name`` is a valid channel name, else raise TypeError.

        With ``receive=True`` a process-specific name must end at its ``!``:
        receivers read the whole process's channel, not one of its parts.
        """
        if not self.match_type_and_length(name) or not self.channel_name_regex.fullmatch(name):
            raise TypeError(
                "channel name must be a string shorter than "
                f"{self.MAX_NAME_LENGTH} characters of ASCII letters, digits, "
                "hyphens, underscores or periods, optionally followed by '!' and "
                f"more of them; got {name!r}"
            )
        if receive and "!" in name and not name.endswith("!"):
            raise TypeError(
                "a process-specific channel name passed to receive() must end at "
                f"the '!' (for example {self.non_local_name(name)!r}); got {name!r}"
            )
        return True

    def require_valid_group_name(self, name: str) -> bool:
        """Return True if ``name`` is a valid group name, else raise TypeError."""
        if not self.match_type_and_length(name) or not self.group_name_regex.fullmatch(name):
            raise TypeError(
                "group name must be a string shorter than "
                f"{self.MAX_NAME_LENGTH} characters of ASCII letters, digits, "
                f"hyphens, underscores or periods; got {name!r}"
            )
        return True

    def valid_channel_names(self, names: Iterable[str], receive: bool = False) -> bool:
        """Return True if ``names`` is a non-empty list of valid channel names, else raise.

        Raises:
            TypeError: ``names`` is not a non-empty list (also an AssertionError,
                as upstream asserts it), or a name is not valid.
        """
        if not isinstance(names, list) or not names:
            raise AssertedTypeError(f"channel names must be a non-empty list; got {names!r}")
        for name in names:
            self.require_valid_channel_name(name, receive=receive)
        return True

    def valid_channel_name(self, name: str, receive: bool = False) -> bool:
        """Deprecated alias of require_valid_channel_name."""
        warnings.warn(
            "valid_channel_name() is deprecated; use require_valid_channel_name()",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.require_valid_channel_name(name, receive=receive)

    def valid_group_name(self, name: str) -> bool:
        """Deprecated alias of require_valid_group_name."""
        warnings.warn(
            "valid_group_name() is deprecated; use require_valid_group_name()",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.require_valid_group_name(name)

    def non_local_name(self, name: str) -> str:
        """Return the part of ``name`` shared by a process: up to and including ``!``."""
        bang = name.find("!")
        return name if bang == -1 else name[: bang + 1]

    # -- the interface -------------------------------------------------------

    @abstractmethod
    async def send(self, channel: str, message: ChannelMessage) -> None:
        """Send ``message`` to ``channel``."""
        raise NotImplementedError(f"{type(self).__name__} does not implement send()")

    @abstractmethod
    async def receive(self, channel: str) -> ReceivedMessage:
        """Wait for and return the next message on ``channel``."""
        raise NotImplementedError(f"{type(self).__name__} does not implement receive()")

    @abstractmethod
    async def new_channel(self, prefix: str = "specific.") -> str:
        """Return a new process-specific channel name."""
        raise NotImplementedError(f"{type(self).__name__} does not implement new_channel()")

    async def flush(self) -> None:
        """Drop every message and group."""
        raise NotImplementedError(
            f"{type(self).__name__} does not implement flush() (the flush extension)"
        )

    async def close(self) -> None:
        """Release the layer's resources; the base holds none."""

    async def group_add(self, group: str, channel: str) -> None:
        """Add ``channel`` to ``group``."""
        raise NotImplementedError(
            f"{type(self).__name__} does not implement group_add() (the groups extension)"
        )

    async def group_discard(self, group: str, channel: str) -> None:
        """Remove ``channel`` from ``group``."""
        raise NotImplementedError(
            f"{type(self).__name__} does not implement group_discard() (the groups extension)"
        )

    async def group_send(self, group: str, message: ChannelMessage) -> None:
        """Send ``message`` to every channel in ``group``."""
        raise NotImplementedError(
            f"{type(self).__name__} does not implement group_send() (the groups extension)"
        )
