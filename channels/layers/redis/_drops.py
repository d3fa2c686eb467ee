"""Logging of dropped messages, for both Redis layers: once per channel per interval, with a count.

A member that is full or dead makes every ``group_send`` drop a message for
it, and a receiver that falls behind overflows its local queue on every new
message: one log line per drop floods the logs exactly when they matter.
:class:`DropLog` logs a channel's first drop at once, counts the ones that
follow within ``interval`` seconds, and reports that count with the channel's
first drop after the interval::

    dropped 1 message(s) for 'chat.1': it is full (further drops for it are
        counted, and logged at most every 10 s)
    dropped 4711 message(s) for 'chat.1' in the last 10.0 s: it is full
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Final

__all__ = ["DROP_LOG_INTERVAL", "DropLog"]

DROP_LOG_INTERVAL: Final = 10.0
"""Seconds between two log lines about drops on one channel."""

_MAX_TRACKED: Final = 10_000
"""Channels remembered at once; past it, those quiet for an interval are forgotten."""


class DropLog:
    """Logs dropped messages per channel at most once per ``interval``, with how many.

    Args:
        logger: where the lines go, at WARNING.
        interval: seconds between two lines about one channel.
        clock: a monotonic clock in seconds (tests inject one).
    """

    __slots__ = ("_clock", "_interval", "_logger", "_seen")

    def __init__(
        self,
        logger: logging.Logger,
        interval: float = DROP_LOG_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger = logger
        self._interval = interval
        self._clock = clock
        # channel -> (when its last line was logged, drops since then)
        self._seen: dict[str, tuple[float, int]] = {}

    def dropped(self, channel: str, reason: str, count: int = 1) -> None:
        """Record ``count`` messages dropped for ``channel`` because of ``reason``."""
        now = self._clock()
        logged_at, pending = self._seen.get(channel, (None, 0))
        pending += count
        if logged_at is not None and now - logged_at < self._interval:
            self._seen[channel] = (logged_at, pending)
            return
        if len(self._seen) >= _MAX_TRACKED:
            self._forget_quiet(now)
        self._seen[channel] = (now, 0)
        if logged_at is None:
            self._logger.warning(
                "dropped %d message(s) for %r: %s (further drops for it are counted, "
                "and logged at most every %g s)",
                pending,
                channel,
                reason,
                self._interval,
            )
        else:
            self._logger.warning(
                "dropped %d message(s) for %r in the last %.1f s: %s",
                pending,
                channel,
                now - logged_at,
                reason,
            )

    def _forget_quiet(self, now: float) -> None:
        # A channel quiet for an interval has nothing pending worth more than a
        # line of its own: its next drop starts afresh.
        for channel, (logged_at, _) in list(self._seen.items()):
            if now - logged_at >= self._interval:
                del self._seen[channel]
