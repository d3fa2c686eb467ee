"""Scenarios: ProtocolTypeRouter, URLRouter, ChannelNameRouter and get_default_application."""

from __future__ import annotations

import sys
import tempfile
import uuid
from collections.abc import Awaitable, Mapping
from pathlib import Path
from typing import Any, cast

from django.test import override_settings
from django.urls import include, path, re_path, register_converter
from django.urls.exceptions import Resolver404

from channels.consumer import AsyncConsumer
from channels.middleware import BaseMiddleware
from channels.routing import (
    ChannelNameRouter,
    ProtocolTypeRouter,
    URLRouter,
    get_default_application,
)

from ._harness import Observation, raised, scenario

# The scope and events are plain dicts here: ``channels.types`` is ours only.
Scope = dict[str, Any]


async def _receive() -> dict[str, Any]:
    raise AssertionError("the routed applications never receive")


async def _send(event: Mapping[str, Any]) -> None:
    raise AssertionError("the routed applications never send")


class _App:
    """An ASGI application that returns its name and keeps the scopes it got."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.scopes: list[Scope] = []

    # Any: Django's path() wants a view returning a response; ASGI ignores it.
    async def __call__(self, scope: Scope, receive: Any, send: Any) -> Any:
        self.scopes.append(scope)
        return self.name


class _Tenant:
    """A custom path converter: a four-letter tenant code, upper-cased."""

    regex = "[a-z]{4}"

    def to_python(self, value: str) -> str:
        return value.upper()

    def to_url(self, value: str) -> str:
        return value.lower()


register_converter(_Tenant, "compat_tenant")


def _jsonable(value: object) -> Observation:
    """A url_route value as JSON: its type next to its text."""
    if isinstance(value, dict):
        mapping = cast("dict[object, object]", value)
        return {str(key): _jsonable(item) for key, item in mapping.items()}
    if isinstance(value, list | tuple):
        items = cast("list[object] | tuple[object, ...]", value)
        return [_jsonable(item) for item in items]
    return f"{type(value).__name__}:{value}"


def _routed(app: _App) -> Observation:
    """What the routed application saw: url_route and path_remaining."""
    scope = app.scopes[-1]
    return {
        "url_route": _jsonable(scope.get("url_route")),
        "path_remaining": scope.get("path_remaining"),
        "args-type": type(scope["url_route"]["args"]).__name__,
    }


async def _outcome(running: Awaitable[object]) -> Observation:
    """What awaiting ``running`` returned (a str, or the name of its type), or what it raised."""
    try:
        result = await running
    except Exception as exc:
        return raised(exc)
    return result if isinstance(result, str) else f"<{type(result).__name__}>"


def _http(path: str, **extra: Any) -> Scope:
    return {"type": "http", "path": path, **extra}


# -- ProtocolTypeRouter ------------------------------------------------------------


@scenario
async def protocol_type_router_routes_by_type() -> Observation:
    """The application for the scope's type runs with the same scope; its return value passes."""
    web, chat = _App("http"), _App("websocket")
    mapping = {"http": web, "websocket": chat}
    router = ProtocolTypeRouter(mapping)
    scope: Scope = {"type": "websocket", "path": "/"}
    returned = await router(scope, _receive, _send)
    return {
        "returned": returned,
        "same-scope": chat.scopes == [scope] and chat.scopes[0] is scope,
        "http-untouched": web.scopes == [],
        "mapping-kept": router.application_mapping is mapping,
    }


@scenario
async def protocol_type_router_unknown_type() -> Observation:
    """A scope type with no application, and a scope with no type at all."""
    router = ProtocolTypeRouter({"http": _App("http")})
    return {
        # Not "lifespan": this router answers it (scenarios_lifespan.py).
        "unknown": await _outcome(router({"type": "webtransport"}, _receive, _send)),
        "no-type": await _outcome(router({"path": "/"}, _receive, _send)),
        "empty": await _outcome(ProtocolTypeRouter({})({"type": "http"}, _receive, _send)),
    }


@scenario
async def protocol_type_router_subclass_reads_application_mapping() -> Observation:
    """A library's subclass reads and extends application_mapping; its private names are free."""

    class Listing(ProtocolTypeRouter):
        _mapping = "subclass"
        _applications = "subclass"

        def __init__(self, application_mapping: dict[str, Any]) -> None:
            super().__init__(application_mapping)
            self.protocols = sorted(self.application_mapping)
            self._application_mapping = "subclass"

        async def __call__(self, scope: Scope, receive: Any, send: Any) -> Any:
            return await super().__call__({**scope, "tag": self._mapping}, receive, send)

    chat = _App("websocket")
    mapping: dict[str, Any] = {"websocket": chat, "http": _App("http")}
    router = Listing(mapping)
    returned = await router({"type": "websocket"}, _receive, _send)
    mapping["lifespan"] = _App("lifespan")
    later = await router({"type": "lifespan"}, _receive, _send)
    return {
        "protocols": list(router.protocols),
        "returned": returned,
        "tag": chat.scopes[0]["tag"],
        "added-later": later,
    }


# -- URLRouter --------------------------------------------------------------------


@scenario
async def url_router_captures() -> Observation:
    """url_route args and kwargs, path_remaining and converters, route by route."""
    seen: dict[str, Observation] = {}
    cases: list[tuple[str, Any, str]] = [
        ("re-positional", re_path(r"^pos/(\d+)/(\w+)/$", _App("a")), "/pos/12/ab/"),
        ("re-named", re_path(r"^named/(?P<name>\w+)/$", _App("a")), "/named/hello/"),
        ("re-mixed", re_path(r"^mixed/(\d+)/(?P<k>\w+)/$", _App("a")), "/mixed/1/z/"),
        ("re-unanchored", re_path(r"bar", _App("a")), "/bar/baz/"),
        ("str", path("room/<str:room>/", _App("a")), "/room/lobby/"),
        ("default-str", path("author/<name>/", _App("a")), "/author/andrew/"),
        ("int", path("page/<int:page>/", _App("a")), "/page/042/"),
        ("slug", path("post/<slug:slug>/", _App("a")), "/post/hello-world_2/"),
        (
            "uuid",
            path("item/<uuid:id>/", _App("a")),
            "/item/12345678-1234-5678-1234-567812345678/",
        ),
        ("path", path("files/<path:rest>", _App("a")), "/files/a/b/c.txt"),
        ("custom", path("t/<compat_tenant:tenant>/", _App("a")), "/t/acme/"),
        ("extra-kwargs", path("defaults/", _App("a"), {"default": 42}), "/defaults/"),
        ("extra-wins", path("over/<str:x>/", _App("a"), {"x": "fixed"}), "/over/given/"),
        ("empty", path("", _App("a")), "/"),
        ("slashes", path("a/", _App("a")), "//a/"),
    ]
    for name, route, request_path in cases:
        app = route.callback
        assert isinstance(app, _App)
        try:
            await URLRouter([route])(_http(request_path), _receive, _send)
            seen[name] = _routed(app)
        except Exception as exc:
            seen[name] = raised(exc)
    return seen


@scenario
async def url_router_refusals() -> Observation:
    """Paths no route matches: the error the outermost router raises."""
    router = URLRouter(
        [
            path("page/<int:page>/", _App("page")),
            path("item/<uuid:id>/", _App("item")),
            path("exact/", _App("exact")),
        ]
    )
    seen: dict[str, Observation] = {}
    for request_path in ["/page/abc/", "/item/nope/", "/exact/more/", "/nothing/", ""]:
        seen[request_path] = await _outcome(router(_http(request_path), _receive, _send))
    seen["no-path"] = await _outcome(router({"type": "channel", "channel": "x"}, _receive, _send))
    seen["no-routes"] = await _outcome(URLRouter([])(_http("/x/"), _receive, _send))
    return seen


@scenario
async def url_router_first_match_and_scope_copy() -> Observation:
    """The first matching route wins; the caller's scope is left alone."""
    first, second = _App("first"), _App("second")
    router = URLRouter([path("same/<int:n>/", first), path("same/<int:n>/", second)])
    scope = _http("/same/1/")
    returned = await router(scope, _receive, _send)
    return {
        "returned": returned,
        "caller-scope-keys": sorted(scope),
        "routed-scope-is-copy": first.scopes[0] is not scope,
        "routed-keys": sorted(first.scopes[0]),
    }


@scenario
async def url_router_root_path() -> Observation:
    """The outermost router strips root_path; a path outside it is an error."""
    app = _App("chat")
    router = URLRouter([path("ws/chat/", app)])
    seen: dict[str, Observation] = {}
    for root_path, request_path in [
        ("/app", "/app/ws/chat/"),
        ("", "/ws/chat/"),
        ("/app/", "/app/ws/chat/"),
        ("/app", "/ws/chat/"),
    ]:
        seen[f"{root_path} {request_path}"] = await _outcome(
            router(_http(request_path, root_path=root_path), _receive, _send)
        )
    nested_app = _App("nested")
    nested = URLRouter([path("ws/", URLRouter([path("a/", nested_app)]))])
    seen["nested"] = await _outcome(
        nested(_http("/root/ws/a/", root_path="/root"), _receive, _send)
    )
    seen["nested-root-path-kept"] = nested_app.scopes[-1]["root_path"]
    return seen


@scenario
async def url_router_nested() -> Observation:
    """Nested routers: merged captures, path_remaining, falling through to the next route."""
    page = _App("page")
    inner = URLRouter(
        [
            re_path(r"^book/(?P<book>[\w-]+)/page/(?P<page>\d+)/$", page),
            re_path(r"^test/(\d+)/$", page),
        ]
    )
    stuff = _App("stuff")
    outer = URLRouter(
        [
            path("universe/<int:universe>/author/<str:author>/", inner),
            re_path(r"^positional/(\w+)/", inner),
            path("prefix/", URLRouter([path("no-match/", _App("no"))])),
            path("prefix/stuff/", stuff),
        ]
    )
    outermost = URLRouter([path("", outer)])
    seen: dict[str, Observation] = {}
    await outermost(_http("/universe/42/author/andrew/book/guide/page/10/"), _receive, _send)
    seen["merged-kwargs"] = _routed(page)
    await outermost(_http("/positional/foo/test/3/"), _receive, _send)
    seen["merged-args"] = _routed(page)
    seen["fall-through"] = await outermost(_http("/prefix/stuff/"), _receive, _send)
    for request_path in ["/universe/1/author/x/nope/", "/positional/foo/test/3/extra/"]:
        seen[request_path] = await _outcome(outermost(_http(request_path), _receive, _send))
    seen["inner-alone"] = await _outcome(
        inner(_http("/ignored/", path_remaining="x/"), _receive, _send)
    )
    partial = _App("partial")
    await URLRouter([path("a/<int:n>/", partial)])(
        _http("/a/1/", url_route={"kwargs": {"tenant": "acme"}}), _receive, _send
    )
    seen["partial-url-route"] = _routed(partial)
    return seen


@scenario
async def url_router_nested_inside_middleware() -> Observation:
    """A router wrapped in middleware, behind an unanchored re_path: no match passes on."""

    class Tag(BaseMiddleware):
        async def __call__(self, scope: Scope, receive: Any, send: Any) -> Any:
            return await super().__call__({**scope, "tagged": True}, receive, send)

    chat, fallback = _App("chat"), _App("fallback")
    router = URLRouter(
        [
            re_path(r"^ws/", Tag(URLRouter([path("chat/<int:n>/", chat)]))),
            path("ws/other/", fallback),
        ]
    )
    seen: dict[str, Observation] = {}
    for request_path in ["/ws/chat/1/", "/ws/other/", "/ws/none/"]:
        seen[request_path] = await _outcome(router(_http(request_path), _receive, _send))
    seen["tagged"] = chat.scopes[0]["tagged"]
    seen["routed"] = _routed(chat)
    return seen


@scenario
async def url_router_resolver404_from_an_application() -> Observation:
    """An application that raises Resolver404 counts as no match."""

    class NotFound(_App):
        async def __call__(self, scope: Scope, receive: Any, send: Any) -> Any:
            raise Resolver404({"path": "inner"})

    fallback = _App("fallback")
    with_fallback = URLRouter([path("a/", NotFound("nf")), re_path(r"^a/", fallback)])
    alone = URLRouter([path("a/", NotFound("nf"))])
    return {
        "with-fallback": await _outcome(with_fallback(_http("/a/"), _receive, _send)),
        "alone": await _outcome(alone(_http("/a/"), _receive, _send)),
    }


@scenario
def url_router_routes_are_django_patterns() -> Observation:
    """routes: the list given, URLPattern objects with .pattern and .callback."""
    chat = _App("chat")
    inner = URLRouter([path("chat/<str:room>/", chat)])
    routes = [path("ws/", inner), re_path(r"^echo/$", chat, name="echo")]
    router = URLRouter(routes)
    return {
        "same-list": router.routes is routes,
        "types": [type(route).__name__ for route in router.routes],
        "patterns": [str(route.pattern) for route in router.routes],
        "pattern-types": [type(route.pattern).__name__ for route in router.routes],
        "callbacks": [router.routes[0].callback is inner, router.routes[1].callback is chat],
        "names": [route.name for route in router.routes],
        "prefix-match": _jsonable(router.routes[0].pattern.match("ws/chat/lobby/")),
        "endpoint-match": _jsonable(router.routes[1].pattern.match("echo/more")),
        "inner-pattern": str(inner.routes[0].pattern),
    }


@scenario
def url_router_include_is_refused() -> Observation:
    """include() in a URLRouter: the error when the router is built."""
    try:
        URLRouter([path("x/", include([path("y/", _App("a"))]))])  # type: ignore[list-item]  # the refusal under test
    except Exception as exc:
        return raised(exc)
    return "built"


@scenario
async def url_router_subclass_private_names() -> Observation:
    """Subclasses defining obvious private names nest and route as before."""

    class Private(URLRouter):
        _routes = "subclass"
        _path = "subclass"
        _pattern = "subclass"

        def _match(self) -> str:
            return "subclass"

    app = _App("a")
    router = Private([path("x/<int:n>/", Private([path("a/", app)]))])
    returned = await router(_http("/x/3/a/"), _receive, _send)
    return {"returned": returned, "routed": _routed(app)}


# -- ChannelNameRouter ------------------------------------------------------------


@scenario
async def channel_name_router() -> Observation:
    """Routing by scope["channel"]; an unknown channel; a scope without one."""
    thumbs, mail = _App("thumbs"), _App("mail")
    mapping = {"thumbnails": thumbs, "mail": mail}
    router = ChannelNameRouter(mapping)
    scope: Scope = {"type": "channel", "channel": "mail"}
    return {
        "returned": await router(scope, _receive, _send),
        "same-scope": mail.scopes[0] is scope,
        "mapping-kept": router.application_mapping is mapping,
        "unknown": await _outcome(router({"type": "channel", "channel": "chat"}, _receive, _send)),
        "no-channel": await _outcome(router(_http("/"), _receive, _send)),
    }


# -- a consumer class where an application belongs ---------------------------------


class _Consumer(AsyncConsumer):
    pass


# Any: a consumer class where an application belongs is the mistake under test.
_WRONG: Any = _Consumer


# Any: each kind builds a different router.
def _build(kind: str) -> Any:
    """Build a router of ``kind`` around the consumer class itself (or around None)."""
    if kind == "protocol":
        return ProtocolTypeRouter({"websocket": _WRONG})
    if kind == "url":
        # Through Any: the stubs' path() refuses a class, the mistake under test.
        route: Any = cast(Any, path)("ws/", _WRONG)
        return URLRouter([route])
    if kind == "channel":
        return ChannelNameRouter({"c": _WRONG})
    return ProtocolTypeRouter({"http": None})  # type: ignore[dict-item]  # the refusal under test


async def _build_and_call(kind: str) -> object:
    router = _build(kind)
    scope: Scope = {"type": "websocket", "path": "/ws/", "channel": "c"}
    return await router(scope, _receive, _send)


@scenario
async def consumer_class_without_as_asgi() -> Observation:
    """A consumer class passed where its as_asgi() app belongs: the error, building and calling."""
    return {kind: await _outcome(_build_and_call(kind)) for kind in ["protocol", "url", "channel"]}


@scenario
def router_refuses_consumer_class_when_built() -> Observation:
    """When the error for a consumer class comes: building the router, or the first call."""
    seen: dict[str, Observation] = {}
    for kind in ["protocol", "url", "channel", "not-callable"]:
        try:
            _build(kind)
            seen[kind] = "built"
        except Exception as exc:
            seen[kind] = raised(exc)
    return seen


# -- get_default_application ------------------------------------------------------

#: What ASGI_APPLICATION names in the scenarios below.
application = _App("default")
not_an_application = 42


def _default_application(setting: object) -> Observation:
    try:
        with override_settings(ASGI_APPLICATION=setting):
            found = get_default_application()
    except Exception as exc:
        return raised(exc)
    return "the application" if found is application else f"<{type(found).__name__}>"


@scenario
def get_default_application_settings() -> Observation:
    """ASGI_APPLICATION right, missing and wrong."""
    here = __name__
    return {
        "named": _default_application(f"{here}.application"),
        "unset": _default_application(None),
        "no-dot": _default_application("application"),
        "missing-module": _default_application(f"{here}_nothing.application"),
        "missing-attribute": _default_application(f"{here}.nothing_here"),
    }


@scenario
def get_default_application_not_an_application() -> Observation:
    """ASGI_APPLICATION naming something that is not an ASGI application."""
    return {
        "int": _default_application(f"{__name__}.not_an_application"),
        "consumer-class": _default_application(f"{__name__}._Consumer"),
    }


@scenario
def get_default_application_broken_module() -> Observation:
    """ASGI_APPLICATION's module exists but fails to import one of its own dependencies."""
    module = f"compat_broken_asgi_{uuid.uuid4().hex}"
    with tempfile.TemporaryDirectory() as scratch:
        Path(scratch, f"{module}.py").write_text(
            "import compat_no_such_dependency\napplication = None\n"
        )
        sys.path.insert(0, scratch)
        try:
            return _default_application(f"{module}.application")
        finally:
            sys.path.remove(scratch)
