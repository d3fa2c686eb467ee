"""Routers: ASGI applications that pick another application for each connection.

``ProtocolTypeRouter`` picks by the scope's ``type`` (``http``, ``websocket``),
``URLRouter`` by its path with Django's ``path()`` and ``re_path()`` patterns,
and ``ChannelNameRouter`` by the worker channel a message arrived on. Each is
itself an ASGI application, so they nest; the outermost one is what
``ASGI_APPLICATION`` names.

Every router's ``__call__`` returns whatever the chosen application returns.
ASGI ignores that value, so it is typed ``Any``; this also lets a router (or a
consumer's ``as_asgi()`` app) be the view of a Django ``path()``, whose stubs
expect a view to return an HttpResponse.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Final, cast

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.urls import URLPattern, URLResolver
from django.urls.exceptions import Resolver404
from django.urls.resolvers import RegexPattern, RoutePattern

from channels._importing import SettingsImportError, import_settings_module
from channels.lifespan import Lifespan, LifespanHook
from channels.types import ASGIApplication, Receive, Scope, Send, URLRoute

__all__ = [
    "ChannelNameRouter",
    "ProtocolTypeRouter",
    "URLRouter",
    "get_default_application",
]

_EXAMPLE_SETTING = "myproject.asgi.application"
_DOTTED_PATH: Final = re.compile(r"\w+(?:\.\w+)+")


def get_default_application() -> ASGIApplication:
    """Import and return the application that ``settings.ASGI_APPLICATION`` names.

    Raises:
        ImproperlyConfigured: the setting is missing, is not a dotted path, or
            names a module or attribute that does not exist or is not an app.
    """
    dotted: object = getattr(settings, "ASGI_APPLICATION", None)
    if dotted is None:
        raise ImproperlyConfigured(
            "ASGI_APPLICATION is not set: set it to the dotted path of your ASGI "
            f"application, such as {_EXAMPLE_SETTING!r}"
        )
    if not isinstance(dotted, str) or _DOTTED_PATH.fullmatch(dotted) is None:
        raise ImproperlyConfigured(
            "ASGI_APPLICATION must be the dotted path of an ASGI application, "
            f"such as {_EXAMPLE_SETTING!r}; got {dotted!r}"
        )
    module_path, _, name = dotted.rpartition(".")
    try:
        module = import_settings_module(module_path)
    except SettingsImportError as exc:
        raise ImproperlyConfigured(
            f"cannot import ASGI_APPLICATION {dotted!r}: {exc.reason}"
        ) from exc.__cause__
    try:
        application: object = getattr(module, name)
    except AttributeError:
        raise ImproperlyConfigured(
            f"ASGI_APPLICATION module {module_path!r} has no attribute {name!r}: "
            f"define it there or fix ASGI_APPLICATION (now {dotted!r})"
        ) from None
    problem = _application_problem(application)
    if problem is not None:
        raise ImproperlyConfigured(f"ASGI_APPLICATION {dotted!r} {problem}")
    # Only callability can be checked at run time; the signature is trusted.
    return cast("ASGIApplication", application)


class ProtocolTypeRouter:
    """Route each connection to the application for its scope ``type``.

    ``application_mapping`` maps a type (``"http"``, ``"websocket"``, a
    worker's ``"channel"``, or ``"lifespan"``) to the application that serves it.

    Without a ``"lifespan"`` application the router answers the server's
    lifespan scope itself (see ``channels.lifespan.Lifespan``): it runs the
    ``lifespan`` hooks, in order at startup and in reverse at shutdown, and
    then closes every channel layer this process opened.
    """

    def __init__(
        self,
        application_mapping: Mapping[str, ASGIApplication],
        *,
        lifespan: Sequence[LifespanHook] = (),
    ) -> None:
        for protocol, application in application_mapping.items():
            _check_application(application, f"ProtocolTypeRouter application for {protocol!r}")
        if "lifespan" in application_mapping and lifespan:
            raise TypeError(
                "ProtocolTypeRouter takes lifespan hooks or a 'lifespan' application, not "
                "both: move the hooks into that application, or drop its entry"
            )
        self.application_mapping = application_mapping
        self.__lifespan = Lifespan(lifespan)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> Any:
        """Run the application for ``scope["type"]``; raise ValueError when there is none."""
        protocol = scope["type"]
        application = self.application_mapping.get(protocol)
        if application is None and protocol == "lifespan":
            application = self.__lifespan
        if application is None:
            raise ValueError(
                f"ProtocolTypeRouter has no application for scope type {protocol!r}; "
                f"it routes {_known(self.application_mapping)}"
            )
        return await application(scope, receive, send)


class URLRouter:
    """Route each connection by its path, with Django ``path()``/``re_path()`` routes.

    The matched route's captures land in ``scope["url_route"]`` as ``{"args":
    ..., "kwargs": ...}`` (path converters applied, the route's extra kwargs
    included), and the rest of the path in ``scope["path_remaining"]``.

    A route may lead to another URLRouter: ``path("ws/", URLRouter([...]))``
    matches the prefix ``ws/`` and lets the inner router route the rest. The
    captures of both routers are merged. When the inner router has no match
    (even from inside a middleware wrapping it), the outer one goes on with
    its next route: a routed application that raises Django's ``Resolver404``
    counts as no match.

    The outermost router routes ``scope["path"]`` without ``scope["root_path"]``.
    ``routes`` is the list given (Django ``URLPattern`` objects); a route that
    leads to a nested router has its pattern rebuilt to match a prefix.
    """

    #: Marks an application that routes on ``path_remaining`` itself: a route
    #: leading to it matches a prefix, not a whole path. Wrappers around a
    #: URLRouter may set it too (the attribute name is upstream's).
    _path_routing: bool = True

    def __init__(self, routes: Sequence[URLPattern]) -> None:
        self.routes: list[URLPattern] = routes if isinstance(routes, list) else list(routes)
        for route in self.routes:
            _check_route(route)
            if getattr(route.callback, "_path_routing", False) is True:
                route.pattern = _prefix_pattern(route)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> Any:
        """Run the application of the first route that matches the path."""
        nested = "path_remaining" in scope
        path = _path_to_route(scope).lstrip("/")
        # An outer router (or middleware) may have set some of url_route.
        outer: Mapping[str, Any] = scope.get("url_route", {})
        outer_args: tuple[Any, ...] = tuple(outer.get("args", ()))
        outer_kwargs: Mapping[str, Any] = outer.get("kwargs", {})
        for route in self.routes:
            match = route.pattern.match(path)
            if match is None:
                continue
            remaining, args, kwargs = match
            url_route: URLRoute = {
                "args": (*outer_args, *args),
                "kwargs": {**outer_kwargs, **kwargs, **route.default_args},
            }
            inner_scope = {**scope, "path_remaining": remaining, "url_route": url_route}
            application: ASGIApplication = route.callback
            try:
                return await application(inner_scope, receive, send)
            except Resolver404:
                # A router further in has no route for the rest of the path.
                continue
        if nested:
            # Tells the router this one is nested in to try its next route.
            raise Resolver404({"path": path, "tried": [str(r.pattern) for r in self.routes]})
        tried = ", ".join(repr(str(route.pattern)) for route in self.routes)
        known = f"its routes are {tried}" if tried else "it has no routes"
        raise ValueError(f"URLRouter found no route matching path {path!r}; {known}")


class ChannelNameRouter:
    """Route worker messages to an application by ``scope["channel"]``.

    ``runworker`` gives each message on a worker channel to the application
    with a scope of type ``"channel"``; this picks the application for it.
    """

    def __init__(self, application_mapping: Mapping[str, ASGIApplication]) -> None:
        for channel, application in application_mapping.items():
            _check_application(application, f"ChannelNameRouter application for {channel!r}")
        self.application_mapping = application_mapping

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> Any:
        """Run the application for ``scope["channel"]``; raise ValueError when there is none."""
        if "channel" not in scope:
            raise ValueError(
                "ChannelNameRouter routes worker messages by scope['channel'] (scope "
                f"type 'channel'); got a scope of type {scope.get('type')!r} with no "
                "'channel' key"
            )
        channel = scope["channel"]
        application = self.application_mapping.get(channel)
        if application is None:
            raise ValueError(
                f"ChannelNameRouter has no application for channel {channel!r}; "
                f"it routes {_known(self.application_mapping)}"
            )
        return await application(scope, receive, send)


def _known(mapping: Mapping[str, object]) -> str:
    return ", ".join(repr(key) for key in mapping) or "nothing"


def _application_problem(application: object) -> str | None:
    """Say why ``application`` cannot be an ASGI application, or return None."""
    if isinstance(application, type) and hasattr(application, "as_asgi"):
        name = application.__qualname__
        return (
            f"is the consumer class {name}, not an ASGI application: pass {name}.as_asgi() instead"
        )
    if not callable(application):
        return (
            "must be an ASGI application (an async callable taking scope, "
            f"receive and send); got {application!r}"
        )
    return None


def _check_application(application: object, where: str) -> None:
    problem = _application_problem(application)
    if problem is not None:
        raise TypeError(f"{where} {problem}")


def _check_route(route: object) -> None:
    if isinstance(route, URLResolver):
        raise ImproperlyConfigured(
            "URLRouter cannot route through include(): nest a URLRouter instead, "
            f"as in path('prefix/', URLRouter([...])); got {route!r}"
        )
    if not isinstance(route, URLPattern):
        raise TypeError(
            f"URLRouter routes must be made with django.urls.path() or re_path(); got {route!r}"
        )
    _check_application(route.callback, f"URLRouter route {str(route.pattern)!r}")


def _prefix_pattern(route: URLPattern) -> RoutePattern | RegexPattern:
    """Rebuild the route's pattern to match a prefix of the path, not all of it."""
    pattern = route.pattern
    # str() is the route or regex the pattern was built from. A lazily
    # translated route is fixed in the language active now.
    if isinstance(pattern, RoutePattern):
        return type(pattern)(str(pattern), name=pattern.name, is_endpoint=False)
    if isinstance(pattern, RegexPattern):
        return type(pattern)(str(pattern), name=pattern.name, is_endpoint=False)
    raise ValueError(
        "a route leading to a nested router must be made with path() or re_path(); "
        f"got a {type(pattern).__name__} pattern in {route!r}"
    )


def _path_to_route(scope: Scope) -> str:
    """Return the part of the path this router routes on."""
    if "path_remaining" in scope:
        remaining: str = scope["path_remaining"]
        return remaining
    if "path" not in scope:
        raise ValueError(
            "URLRouter needs a 'path' key in the scope to route on; got a scope "
            f"with keys {sorted(scope)!r}"
        )
    path: str = scope["path"]
    root_path: str = scope.get("root_path", "")
    if not path.startswith(root_path):
        raise ValueError(
            f"URLRouter cannot route path {path!r}: it does not start with the root "
            f"path {root_path!r}"
        )
    return path[len(root_path) :]
