from __future__ import annotations

import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.asgi import get_asgi_application
from django.core.exceptions import ImproperlyConfigured
from django.core.handlers.asgi import ASGIHandler
from django.test import override_settings
from django.urls import URLPattern, include, path, re_path, register_converter
from django.urls.exceptions import Resolver404
from django.urls.resolvers import LocalePrefixPattern

from channels.consumer import AsyncConsumer
from channels.middleware import BaseMiddleware
from channels.routing import (
    ChannelNameRouter,
    ProtocolTypeRouter,
    URLRouter,
    get_default_application,
)
from channels.types import Event, Receive, ReceivedEvent, Scope, Send


async def receive() -> ReceivedEvent:
    raise AssertionError("the routed test applications never receive")


async def send(event: Event) -> None:
    raise AssertionError("the routed test applications never send")


class App:
    """An ASGI application that records each call and returns its name."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.calls: list[tuple[Scope, Receive, Send]] = []

    # Any: Django's path() wants a view returning a response; ASGI ignores it.
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> Any:
        self.calls.append((scope, receive, send))
        return self.name

    @property
    def scope(self) -> Scope:
        """The scope of the last call."""
        return self.calls[-1][0]


class ChatConsumer(AsyncConsumer):
    pass


class FourDigitYear:
    regex = "[0-9]{4}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value: int) -> str:
        return f"{value:04d}"


class EvenNumber:
    regex = "[0-9]+"

    def to_python(self, value: str) -> int:
        if int(value) % 2:
            raise ValueError(f"{value} is odd")
        return int(value)

    def to_url(self, value: int) -> str:
        return str(value)


register_converter(FourDigitYear, "tr_yyyy")
register_converter(EvenNumber, "tr_even")

# For get_default_application().
application = App("default")
NOT_AN_APPLICATION = 42
consumer_class = ChatConsumer


def http(path: str, **extra: Any) -> Scope:
    return {"type": "http", "path": path, **extra}


class TestProtocolTypeRouter:
    async def test_routes_by_scope_type(self) -> None:
        web, chat = App("http"), App("websocket")
        router = ProtocolTypeRouter({"http": web, "websocket": chat})
        scope: Scope = {"type": "websocket", "path": "/"}
        assert await router(scope, receive, send) == "websocket"
        assert chat.calls == [(scope, receive, send)]
        assert web.calls == []
        assert await router({"type": "http"}, receive, send) == "http"

    def test_keeps_the_mapping_it_was_given(self) -> None:
        mapping = {"http": App("http")}
        assert ProtocolTypeRouter(mapping).application_mapping is mapping

    @pytest.mark.parametrize(
        ("mapping", "match"),
        [
            pytest.param(
                {"http": App("h"), "websocket": App("w")},
                r"^ProtocolTypeRouter has no application for scope type 'webtransport'; "
                r"it routes 'http', 'websocket'$",
                id="two-known",
            ),
            pytest.param({}, r"; it routes nothing$", id="empty"),
        ],
    )
    async def test_unknown_scope_type_is_an_error_naming_the_known_ones(
        self, mapping: dict[str, App], match: str
    ) -> None:
        router = ProtocolTypeRouter(mapping)
        with pytest.raises(ValueError, match=match):
            await router({"type": "webtransport"}, receive, send)

    async def test_a_scope_without_type_is_a_key_error(self) -> None:
        with pytest.raises(KeyError, match="type"):
            await ProtocolTypeRouter({"http": App("h")})({"path": "/"}, receive, send)

    def test_accepts_django_and_consumer_applications(self) -> None:
        django_app = get_asgi_application()
        router = ProtocolTypeRouter(
            {
                "http": django_app,
                "websocket": URLRouter([path("ws/chat/<str:room>/", ChatConsumer.as_asgi())]),
            }
        )
        assert isinstance(router.application_mapping["http"], ASGIHandler)

    @pytest.mark.parametrize(
        ("value", "error", "match"),
        [
            pytest.param(
                ChatConsumer,
                TypeError,
                r"ProtocolTypeRouter application for 'websocket' is the consumer class "
                r"ChatConsumer, not an ASGI application: pass ChatConsumer\.as_asgi\(\) instead",
                id="consumer-class",
            ),
            pytest.param(
                "chat.consumers.ChatConsumer",
                TypeError,
                r"ProtocolTypeRouter application for 'websocket' must be an ASGI application "
                r".*; got 'chat\.consumers\.ChatConsumer'",
                id="str",
            ),
            pytest.param(7, TypeError, r"must be an ASGI application .*; got 7", id="int"),
        ],
    )
    def test_a_value_that_is_not_an_application_is_refused_when_built(
        self, value: Any, error: type[Exception], match: str
    ) -> None:
        with pytest.raises(error, match=match):
            ProtocolTypeRouter({"http": App("h"), "websocket": value})

    async def test_subclasses_can_extend_it(self) -> None:
        class Tagging(ProtocolTypeRouter):
            async def __call__(self, scope: Scope, receive: Receive, send: Send) -> Any:
                return await super().__call__({**scope, "tag": 1}, receive, send)

        app = App("http")
        assert await Tagging({"http": app})({"type": "http"}, receive, send) == "http"
        assert app.scope["tag"] == 1


class TestURLRouterMatching:
    async def test_routes_by_path_and_passes_receive_and_send(self) -> None:
        root, foo = App("root"), App("foo")
        router = URLRouter([path("", root), path("foo/", foo)])
        assert await router(http("/"), receive, send) == "root"
        assert await router(http("/foo/"), receive, send) == "foo"
        assert foo.calls[0][1:] == (receive, send)

    def test_keeps_the_routes(self) -> None:
        app = App("a")
        routes = [path("a/", app), re_path(r"^b/$", app)]
        router = URLRouter(routes)
        assert router.routes is routes
        assert all(isinstance(route, URLPattern) for route in router.routes)
        assert router.routes[0].callback is app
        assert str(router.routes[1].pattern) == "^b/$"

    def test_routes_given_as_a_tuple_become_a_list(self) -> None:
        app = App("a")
        router = URLRouter((path("a/", app),))
        assert isinstance(router.routes, list)
        assert router.routes[0].callback is app

    async def test_the_first_matching_route_wins(self) -> None:
        first, second = App("first"), App("second")
        router = URLRouter([path("same/", first), path("same/", second)])
        assert await router(http("/same/"), receive, send) == "first"

    async def test_path_must_match_entirely(self) -> None:
        router = URLRouter([path("foo/", App("foo"))])
        with pytest.raises(ValueError, match=r"^URLRouter found no route matching path 'foo/bar/'"):
            await router(http("/foo/bar/"), receive, send)

    async def test_re_path_without_anchors_matches_anywhere(self) -> None:
        app = App("bar")
        router = URLRouter([re_path(r"bar", app)])
        assert await router(http("/bar/baz/"), receive, send) == "bar"
        assert app.scope["path_remaining"] == "/baz/"

    @pytest.mark.parametrize(
        ("route", "request_path", "url_route"),
        [
            pytest.param(
                re_path(r"^posarg/(\d+)/$", App("a")),
                "/posarg/123/",
                {"args": ("123",), "kwargs": {}},
                id="re-positional",
            ),
            pytest.param(
                re_path(r"^named/(?P<name>\w+)/$", App("a")),
                "/named/hello/",
                {"args": (), "kwargs": {"name": "hello"}},
                id="re-named",
            ),
            pytest.param(
                path("room/<str:room>/", App("a")),
                "/room/lobby/",
                {"args": (), "kwargs": {"room": "lobby"}},
                id="str",
            ),
            pytest.param(
                path("author/<name>/", App("a")),
                "/author/andrew/",
                {"args": (), "kwargs": {"name": "andrew"}},
                id="default-str",
            ),
            pytest.param(
                path("page/<int:page>/", App("a")),
                "/page/42/",
                {"args": (), "kwargs": {"page": 42}},
                id="int",
            ),
            pytest.param(
                path("post/<slug:slug>/", App("a")),
                "/post/hello-world_2/",
                {"args": (), "kwargs": {"slug": "hello-world_2"}},
                id="slug",
            ),
            pytest.param(
                path("item/<uuid:id>/", App("a")),
                "/item/12345678-1234-5678-1234-567812345678/",
                {"args": (), "kwargs": {"id": uuid.UUID("12345678-1234-5678-1234-567812345678")}},
                id="uuid",
            ),
            pytest.param(
                path("files/<path:rest>", App("a")),
                "/files/a/b/c.txt",
                {"args": (), "kwargs": {"rest": "a/b/c.txt"}},
                id="path",
            ),
            pytest.param(
                path("year/<tr_yyyy:year>/", App("a")),
                "/year/2024/",
                {"args": (), "kwargs": {"year": 2024}},
                id="custom-converter",
            ),
            pytest.param(
                path("defaults/", App("a"), kwargs={"default": 42}),
                "/defaults/",
                {"args": (), "kwargs": {"default": 42}},
                id="route-kwargs",
            ),
            pytest.param(
                path("over/<str:x>/", App("a"), kwargs={"x": "fixed"}),
                "/over/given/",
                {"args": (), "kwargs": {"x": "fixed"}},
                id="route-kwargs-win",
            ),
        ],
    )
    async def test_captures_land_in_url_route(
        self, route: URLPattern, request_path: str, url_route: dict[str, Any]
    ) -> None:
        router = URLRouter([route])
        await router(http(request_path), receive, send)
        app = route.callback
        assert isinstance(app, App)
        assert app.scope["url_route"] == url_route
        assert app.scope["path_remaining"] == ""

    @pytest.mark.parametrize(
        "request_path",
        [
            pytest.param("/page/abc/", id="int-refuses-letters"),
            pytest.param("/item/not-a-uuid/", id="uuid-refuses-text"),
            pytest.param("/year/24/", id="custom-regex-refuses"),
        ],
    )
    async def test_converters_refuse_what_they_do_not_match(self, request_path: str) -> None:
        router = URLRouter(
            [
                path("page/<int:page>/", App("page")),
                path("item/<uuid:id>/", App("item")),
                path("year/<tr_yyyy:year>/", App("year")),
            ]
        )
        with pytest.raises(ValueError, match="found no route matching path"):
            await router(http(request_path), receive, send)

    async def test_a_converter_raising_value_error_passes_to_the_next_route(self) -> None:
        even, other = App("even"), App("other")
        router = URLRouter([path("n/<tr_even:n>/", even), path("n/<int:n>/", other)])
        assert await router(http("/n/4/"), receive, send) == "even"
        assert await router(http("/n/3/"), receive, send) == "other"
        assert other.scope["url_route"]["kwargs"] == {"n": 3}

    async def test_the_callers_scope_is_left_alone(self) -> None:
        app = App("a")
        scope = http("/room/lobby/")
        await URLRouter([path("room/<room>/", app)])(scope, receive, send)
        assert scope == http("/room/lobby/")
        assert app.scope is not scope
        assert app.scope["type"] == "http"

    async def test_all_leading_slashes_are_ignored(self) -> None:
        app = App("a")
        assert await URLRouter([path("a/", app)])(http("//a/"), receive, send) == "a"


class TestURLRouterErrors:
    @pytest.mark.parametrize(
        ("routes", "request_path", "match"),
        [
            pytest.param(
                [path("chat/<str:room>/", App("a")), re_path(r"^echo/$", App("b"))],
                "/nonexistent/",
                r"^URLRouter found no route matching path 'nonexistent/'; its routes are "
                r"'chat/<str:room>/', '\^echo/\$'$",
                id="routes-listed",
            ),
            pytest.param(
                [],
                "/x/",
                r"^URLRouter found no route matching path 'x/'; it has no routes$",
                id="empty",
            ),
        ],
    )
    async def test_no_match_is_a_value_error(
        self, routes: list[URLPattern], request_path: str, match: str
    ) -> None:
        with pytest.raises(ValueError, match=match):
            await URLRouter(routes)(http(request_path), receive, send)

    async def test_a_scope_without_path_is_a_value_error(self) -> None:
        router = URLRouter([path("", App("a"))])
        with pytest.raises(
            ValueError,
            match=r"URLRouter needs a 'path' key in the scope .*keys \['channel', 'type'\]",
        ):
            await router({"type": "channel", "channel": "x"}, receive, send)

    async def test_resolver404_from_an_application_passes_to_the_next_route(self) -> None:
        class NotFound(App):
            async def __call__(self, scope: Scope, receive: Receive, send: Send) -> Any:
                raise Resolver404({"path": "inner"})

        fallback = App("fallback")
        router = URLRouter([path("a/", NotFound("nf")), re_path(r"^a/", fallback)])
        assert await router(http("/a/"), receive, send) == "fallback"
        with pytest.raises(ValueError, match=r"found no route matching path 'a/'"):
            await URLRouter([path("a/", NotFound("nf"))])(http("/a/"), receive, send)

    def test_include_is_refused(self) -> None:
        with pytest.raises(
            ImproperlyConfigured,
            match=r"^URLRouter cannot route through include\(\): nest a URLRouter instead, "
            r"as in path\('prefix/', URLRouter\(\[\.\.\.\]\)\); got <URLResolver ",
        ):
            URLRouter([path("", include([]))])  # type: ignore[list-item]  # the error under test

    @pytest.mark.parametrize(
        ("route", "match"),
        [
            pytest.param(
                path("ws/chat/", ChatConsumer),  # type: ignore[arg-type]  # the error under test
                r"URLRouter route 'ws/chat/' is the consumer class ChatConsumer, not an ASGI "
                r"application: pass ChatConsumer\.as_asgi\(\) instead",
                id="consumer-class",
            ),
            pytest.param(
                App("a"),
                r"URLRouter routes must be made with django\.urls\.path\(\) or re_path\(\); "
                r"got <tests\.test_routing\.App object",
                id="bare-application",
            ),
            pytest.param(
                ("ws/", App("a")),
                r"URLRouter routes must be made with .*; got \('ws/', ",
                id="tuple",
            ),
            pytest.param(
                URLPattern(path("x/", App("a")).pattern, "not callable"),  # type: ignore[arg-type]  # the error under test
                r"URLRouter route 'x/' must be an ASGI application .*; got 'not callable'",
                id="not-callable-callback",
            ),
        ],
    )
    def test_a_route_that_is_not_an_application_is_refused_when_built(
        self, route: Any, match: str
    ) -> None:
        with pytest.raises(TypeError, match=match):
            URLRouter([route])

    def test_a_nested_router_needs_a_path_or_re_path_pattern(self) -> None:
        route = URLPattern(LocalePrefixPattern(), URLRouter([]))
        with pytest.raises(
            ValueError,
            match=r"a route leading to a nested router must be made with path\(\) or "
            r"re_path\(\); got a LocalePrefixPattern pattern",
        ):
            URLRouter([route])


class TestURLRouterNesting:
    async def test_a_path_prefix_leads_to_an_inner_router(self) -> None:
        chat = App("chat")
        router = URLRouter([path("ws/", URLRouter([path("chat/<str:room>/", chat)]))])
        assert await router(http("/ws/chat/lobby/"), receive, send) == "chat"
        assert chat.scope["url_route"] == {"args": (), "kwargs": {"room": "lobby"}}
        assert chat.scope["path_remaining"] == ""

    async def test_captures_of_every_level_are_merged(self) -> None:
        page = App("page")
        inner = URLRouter(
            [
                re_path(r"^book/(?P<book>[\w-]+)/page/(?P<page>\d+)/$", page),
                re_path(r"^test/(\d+)/$", page),
            ]
        )
        outer = URLRouter(
            [
                path("universe/<int:universe>/author/<str:author>/", inner),
                re_path(r"^positional/(\w+)/", inner),
            ]
        )
        await outer(http("/universe/42/author/andrew/book/guide/page/10/"), receive, send)
        assert page.scope["url_route"] == {
            "args": (),
            "kwargs": {"universe": 42, "author": "andrew", "book": "guide", "page": "10"},
        }
        await outer(http("/positional/foo/test/3/"), receive, send)
        assert page.scope["url_route"] == {"args": ("foo", "3"), "kwargs": {}}

    async def test_an_inner_router_without_a_match_passes_to_the_next_route(self) -> None:
        stuff = App("stuff")
        outer = URLRouter(
            [
                path("prefix/", URLRouter([path("no-match/", App("no"))])),
                path("prefix/stuff/", stuff),
            ]
        )
        outermost = URLRouter([path("", outer)])
        assert await outermost(http("/prefix/stuff/"), receive, send) == "stuff"

    @pytest.mark.parametrize(
        "request_path",
        [
            pytest.param("/number/42/test/3/extra/", id="inner-leftover"),
            pytest.param("/number/42/other/", id="inner-no-route"),
        ],
    )
    async def test_no_match_at_any_level_is_a_value_error_from_the_outermost(
        self, request_path: str
    ) -> None:
        inner = URLRouter([path("test/<int:page>/", App("page"))])
        outer = URLRouter([path("number/<int:number>/", inner)])
        with pytest.raises(ValueError, match=rf"no route matching path '{request_path[1:]}'"):
            await outer(http(request_path), receive, send)

    async def test_a_partial_url_route_set_earlier_is_extended(self) -> None:
        app = App("a")
        scope = http("/a/1/", url_route={"kwargs": {"tenant": "acme"}})
        await URLRouter([path("a/<int:n>/", app)])(scope, receive, send)
        assert app.scope["url_route"] == {"args": (), "kwargs": {"tenant": "acme", "n": 1}}

    async def test_a_router_inside_middleware_without_a_match_passes_to_the_next_route(
        self,
    ) -> None:
        class Tag(BaseMiddleware):
            async def __call__(self, scope: Scope, receive: Receive, send: Send) -> Any:
                return await super().__call__({**scope, "tagged": True}, receive, send)

        chat, fallback = App("chat"), App("fallback")
        router = URLRouter(
            [
                re_path(r"^ws/", Tag(URLRouter([path("chat/", chat)]))),
                path("ws/other/", fallback),
            ]
        )
        assert await router(http("/ws/chat/"), receive, send) == "chat"
        assert chat.scope["tagged"] is True
        assert await router(http("/ws/other/"), receive, send) == "fallback"
        with pytest.raises(ValueError, match=r"found no route matching path 'ws/none/'"):
            await router(http("/ws/none/"), receive, send)

    async def test_a_nested_router_without_a_match_raises_resolver404(self) -> None:
        inner = URLRouter([path("a/", App("a"))])
        with pytest.raises(Resolver404):
            await inner(http("/ignored/", path_remaining="b/"), receive, send)

    async def test_a_wrapper_marked_as_path_routing_nests(self) -> None:
        page = App("page")
        inner = URLRouter([path("test/<int:page>/", page)])

        class Wrapper:
            _path_routing = True

            async def __call__(self, scope: Scope, receive: Receive, send: Send) -> Any:
                return await inner({**scope, "wrapped": True}, receive, send)

        outer = URLRouter([path("number/<int:number>/", Wrapper())])
        assert await outer(http("/number/1/test/2/"), receive, send) == "page"
        assert page.scope["url_route"]["kwargs"] == {"number": 1, "page": 2}
        assert page.scope["wrapped"] is True

    async def test_a_subclass_nests_and_can_extend_it(self) -> None:
        class Counting(URLRouter):
            calls = 0

            async def __call__(self, scope: Scope, receive: Receive, send: Send) -> Any:
                Counting.calls += 1
                return await super().__call__(scope, receive, send)

        app = App("a")
        router = Counting([path("ws/", Counting([path("a/", app)]))])
        assert await router(http("/ws/a/"), receive, send) == "a"
        assert Counting.calls == 2

    async def test_a_nested_router_ignores_root_path(self) -> None:
        app = App("a")
        router = URLRouter([path("ws/", URLRouter([path("a/", app)]))])
        assert await router(http("/root/ws/a/", root_path="/root"), receive, send) == "a"
        assert app.scope["root_path"] == "/root"


class TestSubclasses:
    """What libraries do with the routers: subclass them and read their public state."""

    async def test_a_protocol_type_router_subclass_inspects_application_mapping(self) -> None:
        class Listing(ProtocolTypeRouter):
            def __init__(self, application_mapping: dict[str, Any]) -> None:
                super().__init__(application_mapping)
                self.protocols = sorted(self.application_mapping)

        web, chat = App("http"), App("websocket")
        router = Listing({"websocket": chat, "http": web})
        assert router.protocols == ["http", "websocket"]
        assert router.application_mapping["websocket"] is chat
        assert await router({"type": "websocket"}, receive, send) == "websocket"

    async def test_url_router_routes_expose_pattern_and_callback(self) -> None:
        chat = App("chat")
        inner = URLRouter([path("chat/<str:room>/", chat)])
        router = URLRouter([path("ws/", inner), re_path(r"^echo/$", App("echo"))])
        assert [str(route.pattern) for route in router.routes] == ["ws/", "^echo/$"]
        assert router.routes[0].callback is inner
        assert inner.routes[0].callback is chat
        assert router.routes[0].pattern.match("ws/chat/lobby/") == ("chat/lobby/", (), {})

    async def test_subclasses_defining_obvious_private_names_still_route(self) -> None:
        class Private(URLRouter):
            _routes = "subclass"
            _path = "subclass"
            _pattern = "subclass"
            _application = "subclass"

            def _match(self) -> str:
                return "subclass"

            def _route(self) -> str:
                return "subclass"

        class PrivateProtocols(ProtocolTypeRouter):
            _application_mapping = "subclass"
            _applications = "subclass"

            def _application(self) -> str:
                return "subclass"

        class PrivateChannels(ChannelNameRouter):
            _application_mapping = "subclass"
            _channel = "subclass"

        app = App("a")
        inner = Private([path("a/<int:n>/", app)])
        router = PrivateProtocols({"http": Private([path("x/", inner)])})
        assert await router(http("/x/a/1/"), receive, send) == "a"
        assert app.scope["url_route"]["kwargs"] == {"n": 1}
        worker = PrivateChannels({"mail": app})
        assert await worker({"type": "channel", "channel": "mail"}, receive, send) == "a"


class TestURLRouterRootPath:
    @pytest.mark.parametrize(
        ("root_path", "request_path"),
        [
            pytest.param("/app", "/app/ws/chat/", id="prefixed"),
            pytest.param("", "/ws/chat/", id="empty-root"),
            pytest.param("/app/", "/app/ws/chat/", id="root-with-slash"),
        ],
    )
    async def test_the_root_path_is_removed_before_routing(
        self, root_path: str, request_path: str
    ) -> None:
        app = App("chat")
        router = URLRouter([path("ws/chat/", app)])
        assert await router(http(request_path, root_path=root_path), receive, send) == "chat"

    async def test_a_path_outside_the_root_path_is_a_value_error(self) -> None:
        router = URLRouter([path("ws/chat/", App("chat"))])
        with pytest.raises(
            ValueError,
            match=r"^URLRouter cannot route path '/ws/chat/': it does not start with the "
            r"root path '/app'$",
        ):
            await router(http("/ws/chat/", root_path="/app"), receive, send)


class TestChannelNameRouter:
    async def test_routes_by_channel(self) -> None:
        thumbs, mail = App("thumbs"), App("mail")
        router = ChannelNameRouter({"thumbnails": thumbs, "mail": mail})
        scope: Scope = {"type": "channel", "channel": "mail"}
        assert await router(scope, receive, send) == "mail"
        assert mail.calls == [(scope, receive, send)]
        assert thumbs.calls == []

    def test_keeps_the_mapping_it_was_given(self) -> None:
        mapping = {"mail": App("mail")}
        assert ChannelNameRouter(mapping).application_mapping is mapping

    async def test_an_unknown_channel_is_an_error_naming_the_known_ones(self) -> None:
        router = ChannelNameRouter({"thumbnails": App("t"), "mail": App("m")})
        with pytest.raises(
            ValueError,
            match=r"^ChannelNameRouter has no application for channel 'chat'; "
            r"it routes 'thumbnails', 'mail'$",
        ):
            await router({"type": "channel", "channel": "chat"}, receive, send)

    async def test_a_scope_without_channel_is_an_error(self) -> None:
        router = ChannelNameRouter({"mail": App("m")})
        with pytest.raises(
            ValueError,
            match=r"^ChannelNameRouter routes worker messages by scope\['channel'\] .*; "
            r"got a scope of type 'http' with no 'channel' key$",
        ):
            await router({"type": "http", "path": "/"}, receive, send)

    @pytest.mark.parametrize(
        ("value", "match"),
        [
            pytest.param(
                ChatConsumer,
                r"for 'mail' is the consumer class ChatConsumer.*as_asgi\(\)",
                id="class",
            ),
            pytest.param(None, r"for 'mail' must be an ASGI application .*; got None", id="none"),
        ],
    )
    def test_a_value_that_is_not_an_application_is_refused_when_built(
        self, value: Any, match: str
    ) -> None:
        with pytest.raises(TypeError, match=match):
            ChannelNameRouter({"mail": value})


class TestGetDefaultApplication:
    def test_returns_the_named_application(self) -> None:
        with override_settings(ASGI_APPLICATION="tests.test_routing.application"):
            assert get_default_application() is application

    def test_a_missing_setting_is_improperly_configured(self) -> None:
        with override_settings():
            delattr(settings, "ASGI_APPLICATION")
            with pytest.raises(
                ImproperlyConfigured,
                match=r"^ASGI_APPLICATION is not set: set it to the dotted path",
            ):
                get_default_application()

    @pytest.mark.parametrize(
        ("value", "match"),
        [
            pytest.param(None, r"^ASGI_APPLICATION is not set", id="none"),
            pytest.param(
                "application",
                r"^ASGI_APPLICATION must be the dotted path of an ASGI application, such as "
                r"'myproject\.asgi\.application'; got 'application'$",
                id="no-dot",
            ),
            pytest.param(5, r"^ASGI_APPLICATION must be the dotted path .*; got 5$", id="int"),
            pytest.param(".asgi.app", r"got '\.asgi\.app'$", id="leading-dot"),
            pytest.param(
                "tests.no_such_module.application",
                r"^cannot import ASGI_APPLICATION 'tests\.no_such_module\.application': "
                r"there is no module 'tests\.no_such_module'$",
                id="missing-module",
            ),
            pytest.param(
                "tests.test_routing.nothing_here",
                r"^ASGI_APPLICATION module 'tests\.test_routing' has no attribute "
                r"'nothing_here'",
                id="missing-attribute",
            ),
            pytest.param(
                "tests.test_routing.NOT_AN_APPLICATION",
                r"^ASGI_APPLICATION 'tests\.test_routing\.NOT_AN_APPLICATION' must be an ASGI "
                r"application .*; got 42$",
                id="not-callable",
            ),
            pytest.param(
                "tests.test_routing.consumer_class",
                r"is the consumer class ChatConsumer, not an ASGI application: "
                r"pass ChatConsumer\.as_asgi\(\) instead$",
                id="consumer-class",
            ),
        ],
    )
    def test_a_bad_setting_is_improperly_configured(self, value: object, match: str) -> None:
        with (
            override_settings(ASGI_APPLICATION=value),
            pytest.raises(ImproperlyConfigured, match=match),
        ):
            get_default_application()

    def test_an_import_error_inside_the_module_is_improperly_configured_from_it(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        (tmp_path / "broken_asgi_for_routing_test.py").write_text(
            "import no_such_dependency_for_routing_test\napplication = None\n"
        )
        monkeypatch.setattr(sys, "path", [str(tmp_path), *sys.path])
        with (
            override_settings(ASGI_APPLICATION="broken_asgi_for_routing_test.application"),
            pytest.raises(
                ImproperlyConfigured,
                match=r"^cannot import ASGI_APPLICATION 'broken_asgi_for_routing_test\."
                r"application': importing module 'broken_asgi_for_routing_test' raised "
                r"ModuleNotFoundError: No module named 'no_such_dependency_for_routing_test'$",
            ) as caught,
        ):
            get_default_application()
        # The missing dependency is in the chain, where a traceback shows it.
        assert isinstance(caught.value.__cause__, ModuleNotFoundError)
        assert caught.value.__cause__.name == "no_such_dependency_for_routing_test"
