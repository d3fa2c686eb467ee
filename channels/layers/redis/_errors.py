"""Connection failures, for both Redis layers: one error type and one way to raise it.

redis-py reports a lost or refused connection as its ``ConnectionError`` or
``TimeoutError`` (or, from a raw socket, an ``OSError``). The layers turn each
of them into :class:`LayerConnectionError`, which names the host (never its
password) and what the layer was doing, through :class:`HostErrors`::

    errors = HostErrors(describe_host(host))
    with errors:                        # "cannot reach Redis at h:6379: <reason>"
        await client.ping()
    with errors.doing("subscribe to 'chat'"):
        await conn.send_command("SUBSCRIBE", "chat")   # "...: could not subscribe to 'chat': ..."
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Final, cast

import redis.exceptions

__all__ = ["CONNECTION_ERRORS", "HostErrors", "LayerConnectionError"]

CONNECTION_ERRORS: Final = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    OSError,
    # What redis-py's cluster client raises, its retries spent, while no master
    # answers for a slot: CLUSTERDOWN, MASTERDOWN or redirections without end
    # (ClusterError); an unreachable cluster or an uncovered slot
    # (RedisClusterException); TRYAGAIN.
    redis.exceptions.ClusterError,
    redis.exceptions.RedisClusterException,
    redis.exceptions.TryAgainError,
)
"""What a lost or refused connection raises: redis-py's errors, or the socket's; on a
cluster, also what says that no master answers for a slot."""

# redis-py leaves its exceptions' __init__ unannotated; it sets attributes that
# redis-py reads back (its repr, among others), so it must run.
_redis_error_init = cast(Callable[..., None], redis.exceptions.ConnectionError.__init__)  # pyright: ignore[reportUnknownMemberType] -- see above


class LayerConnectionError(redis.exceptions.ConnectionError, ConnectionError):
    """The layer could not talk to a Redis host; ``host`` names it (no password).

    Both a redis-py ``ConnectionError`` and the built-in one, so either
    ``except`` clause catches it. ``reason`` is the error underneath.
    """

    def __init__(self, host: str, reason: BaseException) -> None:
        self.host = host
        self.reason = reason
        _redis_error_init(self, f"cannot reach Redis at {host}: {reason}")


class HostErrors:
    """A context that turns connection failures into LayerConnectionError naming one host.

    ``doing`` (optional) says what failed, as "could not <doing>". A
    LayerConnectionError raised inside passes through unchanged.
    """

    __slots__ = ("doing", "host")

    def __init__(self, host: str, doing: str | None = None) -> None:
        self.host = host
        self.doing = doing

    def about(self, doing: str) -> HostErrors:
        """Return the same context for ``host``, saying "could not <doing>" on failure."""
        return HostErrors(self.host, doing)

    def error(self, reason: object) -> LayerConnectionError:
        """Build the error for ``reason`` (an exception, or words saying what went wrong)."""
        if self.doing is not None:
            reason = ConnectionError(f"could not {self.doing}: {reason}")
        elif not isinstance(reason, BaseException):
            reason = ConnectionError(str(reason))
        return LayerConnectionError(self.host, reason)

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if isinstance(error, CONNECTION_ERRORS) and not isinstance(error, LayerConnectionError):
            raise self.error(error) from error
