"""BaseMiddleware: the base for ASGI middleware that adds to the scope.

A middleware wraps an inner application and runs for every connection. It
gets its own copy of the scope, so what it or the inner application adds to
the scope never reaches the applications outside it::

    class QueryAuthMiddleware(BaseMiddleware):
        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> Any:
            scope = dict(scope)
            scope["user"] = await user_from_token(scope["query_string"])
            return await super().__call__(scope, receive, send)

``Scope``, ``Receive`` and ``Send`` are ``channels.types``'; a middleware typed
with an app's own plain-dict aliases (``Send = Callable[[dict[str, Any]],
Awaitable[None]]``), subclassing this class or not, fits as well: see how the
ASGI callable types vary in ``channels.types``.
"""

from __future__ import annotations

from typing import Any

from channels.types import ASGIApplication, Receive, Scope, Send

__all__ = ["BaseMiddleware"]


class BaseMiddleware:
    """Wrap ``inner``: copy the scope, then run the inner application.

    One instance serves every connection, so keep per-connection state in the
    scope, not on ``self``. Subclasses override ``__call__`` and finish with
    ``return await super().__call__(scope, receive, send)``.
    """

    def __init__(self, inner: ASGIApplication) -> None:
        self.inner = inner

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> Any:
        """Run the inner application on a copy of ``scope``; return what it returns.

        The return value is typed ``Any`` because ASGI ignores it; that also
        lets a middleware be the view of a Django ``path()``.
        """
        scope = dict(scope)
        return await self.inner(scope, receive, send)
