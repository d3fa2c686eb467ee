from __future__ import annotations

import pytest
from django.test import override_settings

from channels.security.websocket import (
    AllowedHostsOriginValidator,
    OriginValidator,
    WebsocketDenier,
)
from channels.testing import HttpCommunicator, WebsocketCommunicator
from channels.types import Event, Receive, ReceivedEvent, Scope, Send


class Recorder:
    """A websocket/HTTP application that accepts everything and records its scopes."""

    def __init__(self) -> None:
        self.scopes: list[Scope] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.scopes.append(scope)
        if scope["type"] == "http":
            await receive()
            await send({"type": "http.response.start", "status": 200})
            await send({"type": "http.response.body", "body": b"ok"})
            return
        event = await receive()
        assert event["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        while (await receive())["type"] != "websocket.disconnect":
            pass


async def never_receive() -> ReceivedEvent:
    raise AssertionError("receive() is not called")


async def never_send(event: Event) -> None:
    raise AssertionError(f"send() is not called; got {event!r}")


def allows(patterns: list[str], origin: str | None) -> bool:
    return OriginValidator(Recorder(), patterns).valid_origin(origin)


class TestHostPatterns:
    @pytest.mark.parametrize(
        ("origin", "allowed"),
        [
            pytest.param("http://example.com", True, id="exact"),
            pytest.param("https://example.com:8443", True, id="any-scheme-and-port"),
            pytest.param("HTTP://EXAMPLE.COM", True, id="uppercase"),
            pytest.param("http://example.com.", True, id="one-trailing-dot-same-host"),
            pytest.param("http://example.com..", False, id="two-trailing-dots"),
            pytest.param("http://sub.example.com", False, id="subdomain"),
            pytest.param("http://example.com.evil.org", False, id="suffix-trick"),
            pytest.param("http://evilexample.com", False, id="prefix-trick"),
            pytest.param("http://example.com@evil.org", False, id="userinfo-then-evil"),
            pytest.param("http://evil.org@example.com", False, id="userinfo-then-allowed"),
            pytest.param("http://user:pw@example.com", False, id="userinfo-with-password"),
            pytest.param("http://evil.org#@example.com", False, id="fragment-trick"),
            pytest.param("http://evil.org?@example.com", False, id="query-trick"),
            pytest.param("http://evil.org\\@example.com", False, id="backslash-trick"),
            pytest.param("http://evil.org/example.com", False, id="path-trick"),
            pytest.param("http://example.com/", False, id="trailing-slash"),
            pytest.param(" http://example.com", False, id="leading-space"),
            pytest.param("http://exa\tmple.com", False, id="tab-removed-by-urlsplit"),
            pytest.param("http://example.com:", False, id="empty-port"),
            pytest.param("http://example.com:99999", False, id="port-out-of-range"),
            pytest.param("http://example.com:8o", False, id="port-not-digits"),
            pytest.param("example.com", False, id="no-scheme"),
            pytest.param("http:example.com", False, id="no-slashes"),
            pytest.param("//example.com", False, id="scheme-relative"),
            pytest.param("http://", False, id="no-host"),
            pytest.param("null", False, id="null-not-listed"),
            pytest.param("http://ex\u00e4mple.com", False, id="raw-unicode-host"),
            pytest.param("http://xn--exmple-cua.com", False, id="lookalike-punycode"),
            pytest.param(None, False, id="missing"),
        ],
    )
    def test_exact_host(self, origin: str | None, allowed: bool) -> None:
        assert allows(["example.com"], origin) is allowed

    @pytest.mark.parametrize(
        ("origin", "allowed"),
        [
            pytest.param("http://example.com", True, id="the-domain-itself"),
            pytest.param("https://a.b.example.com", True, id="nested-subdomain"),
            pytest.param("http://sub.example.com.", True, id="subdomain-trailing-dot"),
            pytest.param("http://example.com.evil.org", False, id="suffix-trick"),
            pytest.param("http://notexample.com", False, id="prefix-trick"),
            pytest.param("http://sub.example.com@evil.org", False, id="userinfo-trick"),
        ],
    )
    def test_leading_dot_allows_subdomains(self, origin: str, allowed: bool) -> None:
        assert allows([".example.com"], origin) is allowed

    @pytest.mark.parametrize(
        ("pattern", "origin", "allowed"),
        [
            pytest.param("https://example.com:8443", "https://example.com:8443", True, id="same"),
            pytest.param("https://example.com:8443", "https://example.com", False, id="port"),
            pytest.param("https://example.com:8443", "http://example.com:8443", False, id="scheme"),
            pytest.param("https://example.com:8443", "wss://example.com:8443", False, id="wss"),
            pytest.param("https://example.com", "https://example.com:443", True, id="implied-443"),
            pytest.param("https://example.com", "http://example.com", False, id="http-for-https"),
            pytest.param("http://example.com", "http://example.com:80", True, id="implied-80"),
            pytest.param("http://example.com", "http://example.com:8080", False, id="other-port"),
            pytest.param("HTTPS://Example.COM", "https://example.com", True, id="uppercase"),
            pytest.param("https://.example.com", "https://a.example.com", True, id="dot-scheme"),
            pytest.param("https://.example.com", "http://a.example.com", False, id="dot-http"),
            pytest.param("example.com:8000", "http://example.com:8000", True, id="port-only"),
            pytest.param("example.com:8000", "https://example.com:8000", True, id="port-https"),
            pytest.param("example.com:8000", "http://example.com", False, id="port-implied"),
            pytest.param("app://local", "app://local", True, id="custom-scheme"),
            pytest.param("app://local", "app://local:1", False, id="custom-scheme-port"),
        ],
    )
    def test_scheme_and_port(self, pattern: str, origin: str, allowed: bool) -> None:
        assert allows([pattern], origin) is allowed

    @pytest.mark.parametrize(
        ("pattern", "origin", "allowed"),
        [
            pytest.param("[::1]", "http://[::1]", True, id="literal"),
            pytest.param("[::1]", "http://[::1]:8000", True, id="any-port"),
            pytest.param("[::1]", "http://[0:0:0:0:0:0:0:1]", True, id="uncompressed"),
            pytest.param("[0::1]", "http://[::1]", True, id="pattern-uncompressed"),
            pytest.param("[::1]", "http://[::2]", False, id="other-address"),
            pytest.param("[::1]", "http://::1", False, id="no-brackets"),
            pytest.param("[::1]", "http://[::1", False, id="unclosed"),
            pytest.param("[::1]", "http://[::1]@evil.org", False, id="userinfo"),
            pytest.param("http://[::1]:8000", "http://[::1]:8000", True, id="scheme-port"),
            pytest.param("http://[::1]:8000", "http://[::1]", False, id="scheme-wrong-port"),
            pytest.param("127.0.0.1", "http://127.0.0.1:8000", True, id="ipv4"),
        ],
    )
    def test_ip_literals(self, pattern: str, origin: str, allowed: bool) -> None:
        assert allows([pattern], origin) is allowed

    @pytest.mark.parametrize(
        ("pattern", "origin", "allowed"),
        [
            pytest.param("b\u00fccher.example", "http://xn--bcher-kva.example", True, id="idna"),
            pytest.param("B\u00dcCHER.example", "http://xn--bcher-kva.example", True, id="upper"),
            pytest.param(".b\u00fccher.example", "http://a.xn--bcher-kva.example", True, id="dot"),
            pytest.param("xn--bcher-kva.example", "http://XN--BCHER-KVA.EXAMPLE", True, id="ace"),
            pytest.param("b\u00fccher.example", "http://b\u00fccher.example", False, id="raw"),
            pytest.param("bucher.example", "http://xn--bcher-kva.example", False, id="lookalike"),
        ],
    )
    def test_international_names(self, pattern: str, origin: str, allowed: bool) -> None:
        assert allows([pattern], origin) is allowed

    def test_any_listed_pattern_suffices(self) -> None:
        patterns = ["example.com", "https://other.org"]
        assert allows(patterns, "https://other.org")
        assert not allows(patterns, "http://other.org")

    def test_an_empty_list_allows_nothing(self) -> None:
        assert not allows([], "http://example.com")
        assert not allows([], None)


class TestSpecialPatterns:
    @pytest.mark.parametrize(
        ("origin", "allowed"),
        [
            pytest.param("null", True, id="null"),
            pytest.param("NULL", True, id="case-insensitive"),
            pytest.param(None, False, id="missing"),
            pytest.param("http://example.com", False, id="a-host"),
        ],
    )
    def test_null_allows_only_the_null_origin(self, origin: str | None, allowed: bool) -> None:
        assert allows(["null"], origin) is allowed

    @pytest.mark.parametrize(
        "origin",
        [
            pytest.param(None, id="missing"),
            pytest.param("null", id="null"),
            pytest.param("not an origin", id="malformed"),
            pytest.param("http://anything.example", id="a-host"),
        ],
    )
    def test_star_allows_everything(self, origin: str | None) -> None:
        assert allows(["*"], origin)

    def test_the_patterns_given_are_kept(self) -> None:
        patterns = ["example.com", "*"]
        assert OriginValidator(Recorder(), patterns).allowed_origins == patterns


class TestBadPatterns:
    @pytest.mark.parametrize(
        "pattern",
        [
            pytest.param("", id="empty"),
            pytest.param("http://", id="scheme-only"),
            pytest.param("example.com/path", id="path"),
            pytest.param("https://example.com/", id="trailing-slash"),
            pytest.param("exa mple.com", id="space"),
            pytest.param("*.example.com", id="wildcard-label"),
            pytest.param("user@example.com", id="userinfo"),
            pytest.param("example.com:99999", id="port-out-of-range"),
            pytest.param("example.com:", id="empty-port"),
            pytest.param("::1", id="ipv6-without-brackets"),
            pytest.param("[::1", id="unclosed-bracket"),
            pytest.param(".[::1]", id="subdomains-of-an-ip"),
            pytest.param("1http://example.com", id="bad-scheme"),
            pytest.param("\u00e4" * 70 + ".example", id="label-too-long-for-idna"),
        ],
    )
    def test_a_malformed_pattern_raises_value_error(self, pattern: str) -> None:
        with pytest.raises(ValueError, match=r"an allowed origin must be .*; got "):
            OriginValidator(Recorder(), [pattern])

    def test_a_single_string_raises_type_error(self) -> None:
        with pytest.raises(TypeError, match=r"must be a list of origin patterns.*'example\.com'"):
            OriginValidator(Recorder(), "example.com")

    def test_a_pattern_that_is_not_a_string_raises_type_error(self) -> None:
        with pytest.raises(TypeError, match=r"patterns must be strings; got b'example\.com'"):
            OriginValidator(Recorder(), [b"example.com"])  # type: ignore[list-item]  # the wrong type under test


class TestAllowedHostsOriginValidator:
    @override_settings(ALLOWED_HOSTS=[".example.com", "[::1]"], DEBUG=False)
    def test_uses_allowed_hosts(self) -> None:
        validator = AllowedHostsOriginValidator(Recorder())
        assert validator.valid_origin("https://www.example.com")
        assert validator.valid_origin("http://[::1]:8000")
        assert not validator.valid_origin("http://localhost")

    @pytest.mark.parametrize(
        ("origin", "allowed"),
        [
            pytest.param("http://localhost:8000", True, id="localhost"),
            pytest.param("http://127.0.0.1:8000", True, id="ipv4-loopback"),
            pytest.param("http://[::1]:8000", True, id="ipv6-loopback"),
            pytest.param("http://example.com", False, id="other"),
        ],
    )
    @override_settings(ALLOWED_HOSTS=[], DEBUG=True)
    def test_debug_with_no_hosts_allows_local_addresses(self, origin: str, allowed: bool) -> None:
        assert AllowedHostsOriginValidator(Recorder()).valid_origin(origin) is allowed

    @override_settings(ALLOWED_HOSTS=[], DEBUG=False)
    def test_no_hosts_without_debug_allows_nothing(self) -> None:
        assert not AllowedHostsOriginValidator(Recorder()).valid_origin("http://localhost")

    @override_settings(ALLOWED_HOSTS=["*"], DEBUG=False)
    def test_star_allows_everything(self) -> None:
        assert AllowedHostsOriginValidator(Recorder()).valid_origin(None)


class TestHandshake:
    async def test_an_allowed_origin_reaches_the_application(self) -> None:
        inner = Recorder()
        communicator = WebsocketCommunicator(
            OriginValidator(inner, ["example.com"]),
            "/ws/",
            headers=[(b"origin", b"https://example.com")],
        )
        assert await communicator.connect() == (True, None)
        await communicator.disconnect()
        assert len(inner.scopes) == 1

    async def test_a_refused_origin_is_closed_without_the_application(self) -> None:
        inner = Recorder()
        communicator = WebsocketCommunicator(
            OriginValidator(inner, ["example.com"]),
            "/ws/",
            headers=[(b"origin", b"https://evil.org")],
        )
        assert await communicator.connect() == (False, 1000)
        await communicator.wait()
        assert inner.scopes == []

    async def test_a_refusal_is_an_http_403_where_the_server_supports_it(self) -> None:
        communicator = WebsocketCommunicator(
            OriginValidator(Recorder(), ["example.com"]),
            "/ws/",
            headers=[(b"origin", b"https://evil.org")],
        )
        communicator.scope["extensions"] = {"websocket.http.response": {}}
        assert await communicator.connect() == (False, 403)
        assert await communicator.receive_output() == {
            "type": "websocket.http.response.body",
            "body": b"Forbidden",
        }
        await communicator.wait()

    @pytest.mark.parametrize(
        "headers",
        [
            pytest.param([], id="no-origin"),
            pytest.param(
                [(b"origin", b"https://example.com"), (b"origin", b"https://example.com")],
                id="two-origins",
            ),
            pytest.param([(b"origin", "https://ex\u00e4mple.com".encode())], id="utf8-bytes"),
        ],
    )
    async def test_a_missing_or_malformed_origin_is_refused(
        self, headers: list[tuple[bytes, bytes]]
    ) -> None:
        communicator = WebsocketCommunicator(
            OriginValidator(Recorder(), ["example.com", "ex\u00e4mple.com"]), "/ws/", headers
        )
        assert await communicator.connect() == (False, 1000)
        await communicator.wait()

    async def test_other_scopes_pass_through(self) -> None:
        inner = Recorder()
        communicator = HttpCommunicator(OriginValidator(inner, []), "GET", "/")
        response = await communicator.get_response()
        assert response["status"] == 200
        assert inner.scopes[0]["type"] == "http"


class TestWebsocketDenier:
    async def test_a_disconnect_before_the_handshake_ends_it_quietly(self) -> None:
        communicator = WebsocketCommunicator(WebsocketDenier(), "/ws/")
        await communicator.send_input({"type": "websocket.disconnect", "code": 1001})
        await communicator.wait()
        assert communicator.output_queue.empty()

    async def test_a_scope_that_is_not_a_websocket_raises_value_error(self) -> None:
        with pytest.raises(ValueError, match=r"websocket connections only; got a 'http' scope"):
            await WebsocketDenier()({"type": "http"}, never_receive, never_send)
