from __future__ import annotations

import logging
from typing import Any
from urllib.parse import ParseResult, urlparse

import pytest
from django.test import override_settings

from channels.security.websocket import (
    AllowedHostsOriginValidator,
    OriginValidator,
    WebsocketDenier,
)
from channels.testing import WebsocketCommunicator
from channels.types import Event, Receive, ReceivedEvent, Scope, Send

LOGGER = "channels.security.websocket"


class Recorder:
    """A websocket application that accepts everything and records its scopes."""

    def __init__(self) -> None:
        self.scopes: list[Scope] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.scopes.append(scope)
        event = await receive()
        assert event["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        while (await receive())["type"] != "websocket.disconnect":
            pass


async def never_receive() -> ReceivedEvent:
    raise AssertionError("receive() is not called")


async def never_send(event: Event) -> None:
    raise AssertionError(f"send() is not called; got {event!r}")


async def handshake(validator: OriginValidator, headers: list[tuple[bytes, bytes]]) -> bool:
    """Run one handshake through ``validator``; whether it reached the application."""
    reached: list[Scope] = []
    incoming: list[ReceivedEvent] = [
        {"type": "websocket.connect"},
        {"type": "websocket.disconnect", "code": 1000},
    ]
    sent: list[Event] = []

    async def application(scope: Scope, receive: Receive, send: Send) -> None:
        reached.append(scope)

    async def receive() -> ReceivedEvent:
        return incoming.pop(0)

    async def send(event: Event) -> None:
        sent.append(event)

    validator.application = application
    await validator({"type": "websocket", "headers": headers}, receive, send)
    if not reached:
        assert sent == [{"type": "websocket.close"}]
    return bool(reached)


async def allows(patterns: list[str], origin: str | None) -> bool:
    """Whether a handshake with this ``Origin`` header (None: none) is let through."""
    headers = [] if origin is None else [(b"origin", origin.encode("latin-1"))]
    return await handshake(OriginValidator(Recorder(), patterns), headers)


def warnings_about(caplog: pytest.LogCaptureFixture, pattern: str) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == LOGGER
        and record.levelno == logging.WARNING
        and repr(pattern) in record.getMessage()
    ]


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
    async def test_exact_host(self, origin: str | None, allowed: bool) -> None:
        assert await allows(["example.com"], origin) is allowed

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
    async def test_leading_dot_allows_subdomains(self, origin: str, allowed: bool) -> None:
        assert await allows([".example.com"], origin) is allowed

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
    async def test_scheme_and_port(self, pattern: str, origin: str, allowed: bool) -> None:
        assert await allows([pattern], origin) is allowed

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
    async def test_ip_literals(self, pattern: str, origin: str, allowed: bool) -> None:
        assert await allows([pattern], origin) is allowed

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
    async def test_international_names(self, pattern: str, origin: str, allowed: bool) -> None:
        assert await allows([pattern], origin) is allowed

    async def test_any_listed_pattern_suffices(self) -> None:
        patterns = ["example.com", "https://other.org"]
        assert await allows(patterns, "https://other.org")
        assert not await allows(patterns, "http://other.org")

    async def test_an_empty_list_allows_nothing(self) -> None:
        assert not await allows([], "http://example.com")
        assert not await allows([], None)


class TestSpecialPatterns:
    @pytest.mark.parametrize(
        "origin",
        [
            pytest.param(None, id="missing"),
            pytest.param("null", id="null"),
            pytest.param("not an origin", id="malformed"),
            pytest.param("http://anything.example", id="a-host"),
        ],
    )
    async def test_star_allows_everything(self, origin: str | None) -> None:
        assert await allows(["*"], origin)

    async def test_only_a_bare_star_is_a_wildcard(self) -> None:
        assert not await allows([" *"], "http://example.com")

    @pytest.mark.parametrize(
        ("origin", "allowed"),
        [
            pytest.param("null", False, id="null-origin"),
            pytest.param("http://null", True, id="a-host-named-null"),
        ],
    )
    async def test_null_is_a_host_name_not_the_null_origin(
        self, origin: str, allowed: bool
    ) -> None:
        assert await allows(["null"], origin) is allowed

    @pytest.mark.parametrize(
        ("pattern", "origin", "allowed"),
        [
            pytest.param("https://example.com/", "https://example.com", True, id="scheme"),
            pytest.param("example.com/", "http://example.com:8000", True, id="host"),
            pytest.param("https://example.com/", "http://example.com", False, id="other-scheme"),
        ],
    )
    async def test_one_trailing_slash_is_ignored(
        self, pattern: str, origin: str, allowed: bool, caplog: pytest.LogCaptureFixture
    ) -> None:
        assert await allows([pattern], origin) is allowed
        assert warnings_about(caplog, pattern) == []


class TestPatternsThatCannotMatch:
    @pytest.mark.parametrize(
        "pattern",
        [
            pytest.param("", id="empty"),
            pytest.param("http://", id="scheme-only"),
            pytest.param("example.com/path", id="path"),
            pytest.param("https://example.com//", id="two-slashes"),
            pytest.param("exa mple.com", id="space"),
            pytest.param(" example.com", id="leading-space"),
            pytest.param("*.example.com", id="wildcard-label"),
            pytest.param(".*.example.com", id="dot-wildcard-label"),
            pytest.param("user@example.com", id="userinfo"),
            pytest.param("example.com:99999", id="port-out-of-range"),
            pytest.param("http://example.com:99999", id="scheme-port-out-of-range"),
            pytest.param("example.com:", id="empty-port"),
            pytest.param("::1", id="ipv6-without-brackets"),
            pytest.param("[::1", id="unclosed-bracket"),
            pytest.param(".[::1]", id="subdomains-of-an-ip"),
            pytest.param("1http://example.com", id="bad-scheme"),
            pytest.param("\u00e4" * 70 + ".example", id="label-too-long-for-idna"),
        ],
    )
    async def test_builds_matches_nothing_and_warns_once(
        self, pattern: str, caplog: pytest.LogCaptureFixture
    ) -> None:
        with caplog.at_level(logging.WARNING, logger=LOGGER):
            validator = OriginValidator(Recorder(), [pattern, "example.org"])
            OriginValidator(Recorder(), [pattern])
            origins = ["http://example.com", "https://www.example.com", "http://[::1]", None]
            for origin in origins:
                headers = [] if origin is None else [(b"origin", origin.encode())]
                assert not await handshake(validator, headers)
            assert await handshake(validator, [(b"origin", b"http://example.org")])
        [warning] = warnings_about(caplog, pattern)
        assert "can never match, so it is ignored" in warning
        assert "'*' (every origin)" in warning
        assert "'.example.com' (the domain and its subdomains)" in warning

    def test_the_warning_says_how_to_write_a_wildcard(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        with caplog.at_level(logging.WARNING, logger=LOGGER):
            OriginValidator(Recorder(), ["*.wildcard.example"])
        [warning] = warnings_about(caplog, "*.wildcard.example")
        assert "'*.' is no wildcard here: a leading dot allows a domain's subdomains" in warning

    async def test_a_pattern_added_later_is_checked_then(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        patterns = ["example.com"]
        validator = OriginValidator(Recorder(), patterns)
        with caplog.at_level(logging.WARNING, logger=LOGGER):
            patterns.append("*.later.example")
            assert not await handshake(validator, [(b"origin", b"http://a.later.example")])
            assert not await handshake(validator, [(b"origin", b"http://b.later.example")])
        assert len(warnings_about(caplog, "*.later.example")) == 1

    def test_a_single_string_raises_type_error(self) -> None:
        with pytest.raises(TypeError, match=r"must be a list of origin patterns.*'example\.com'"):
            OriginValidator(Recorder(), "example.com")

    def test_a_pattern_that_is_not_a_string_raises_type_error(self) -> None:
        with pytest.raises(TypeError, match=r"patterns must be strings; got b'example\.com'"):
            OriginValidator(Recorder(), [b"example.com"])  # type: ignore[list-item]  # the wrong type under test


class TestAllowedHostsOriginValidator:
    @override_settings(ALLOWED_HOSTS=[".example.com", "[::1]"], DEBUG=False)
    async def test_uses_allowed_hosts(self) -> None:
        validator = AllowedHostsOriginValidator(Recorder())
        assert await handshake(validator, [(b"origin", b"https://www.example.com")])
        assert await handshake(validator, [(b"origin", b"http://[::1]:8000")])
        assert not await handshake(validator, [(b"origin", b"http://localhost")])

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
        validator = AllowedHostsOriginValidator(Recorder())
        assert validator.valid_origin(urlparse(origin)) is allowed

    @override_settings(ALLOWED_HOSTS=[], DEBUG=False)
    def test_no_hosts_without_debug_allows_nothing(self) -> None:
        validator = AllowedHostsOriginValidator(Recorder())
        assert not validator.valid_origin(urlparse("http://localhost"))

    @override_settings(ALLOWED_HOSTS=["*"], DEBUG=False)
    def test_star_allows_everything(self) -> None:
        assert AllowedHostsOriginValidator(Recorder()).valid_origin(None)

    @override_settings(ALLOWED_HOSTS=["*.hosts.example", ".example.com"], DEBUG=False)
    async def test_a_host_that_cannot_match_is_ignored_with_a_warning(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        with caplog.at_level(logging.WARNING, logger=LOGGER):
            validator = AllowedHostsOriginValidator(Recorder())
        assert len(warnings_about(caplog, "*.hosts.example")) == 1
        assert not await handshake(validator, [(b"origin", b"http://a.hosts.example")])
        assert await handshake(validator, [(b"origin", b"http://www.example.com")])


class TestUpstreamMethods:
    """The checking methods upstream's OriginValidator has, which subclasses override."""

    def test_valid_origin_takes_what_urlparse_reads(self) -> None:
        validator = OriginValidator(Recorder(), [".example.com"])
        assert validator.valid_origin(urlparse("https://www.example.com"))
        assert not validator.valid_origin(urlparse("https://evil.org"))
        assert not validator.valid_origin(None)

    def test_a_missing_origin_passes_only_under_star(self) -> None:
        assert OriginValidator(Recorder(), ["*"]).valid_origin(None)
        assert not OriginValidator(Recorder(), ["example.com"]).validate_origin(None)

    def test_match_allowed_origin_checks_one_pattern(self) -> None:
        validator = OriginValidator(Recorder(), [])
        origin = urlparse("http://a.example.com:8000")
        assert validator.match_allowed_origin(origin, ".example.com")
        assert validator.match_allowed_origin(origin, "a.example.com:8000")
        assert not validator.match_allowed_origin(origin, "example.com")
        assert not validator.match_allowed_origin(None, ".example.com")

    @pytest.mark.parametrize(
        ("origin", "port"),
        [
            pytest.param("http://a", 80, id="http"),
            pytest.param("ws://a", 80, id="ws"),
            pytest.param("HTTPS://a", 443, id="https"),
            pytest.param("wss://a", 443, id="wss"),
            pytest.param("app://a", None, id="other-scheme"),
            pytest.param("https://a:80", 80, id="explicit"),
        ],
    )
    def test_get_origin_port(self, origin: str, port: int | None) -> None:
        assert OriginValidator(Recorder(), []).get_origin_port(urlparse(origin)) == port

    async def test_a_subclass_sees_the_parsed_header(self) -> None:
        seen: list[ParseResult | None] = []

        class Spy(OriginValidator):
            def valid_origin(self, parsed_origin: ParseResult | None) -> bool:
                seen.append(parsed_origin)
                return super().valid_origin(parsed_origin)

        validator = Spy(Recorder(), ["example.com"])
        assert await handshake(validator, [(b"origin", b"https://example.com:8443")])
        assert not await handshake(validator, [])
        [parsed, missing] = seen
        assert isinstance(parsed, ParseResult)
        assert (parsed.scheme, parsed.hostname, parsed.port) == ("https", "example.com", 8443)
        assert missing is None

    async def test_a_subclass_may_let_clients_without_origin_through(self) -> None:
        class NativeClientsToo(OriginValidator):
            def valid_origin(self, parsed_origin: ParseResult | None) -> bool:
                return parsed_origin is None or super().valid_origin(parsed_origin)

        validator = NativeClientsToo(Recorder(), ["example.com"])
        assert await handshake(validator, [])
        assert await handshake(validator, [(b"origin", b"http://example.com")])
        assert not await handshake(validator, [(b"origin", b"http://evil.org")])

    async def test_a_subclass_may_allow_app_schemes(self) -> None:
        class AppSchemes(OriginValidator):
            def validate_origin(self, parsed_origin: ParseResult | None) -> bool:
                if parsed_origin is not None and parsed_origin.scheme == "tauri":
                    return True
                return super().validate_origin(parsed_origin)

        validator = AppSchemes(Recorder(), ["example.com"])
        assert await handshake(validator, [(b"origin", b"tauri://localhost")])
        assert not await handshake(validator, [(b"origin", b"file://")])

    async def test_the_header_text_is_checked_not_urlparses_tidied_reading(self) -> None:
        validator = OriginValidator(Recorder(), ["example.com"])
        assert urlparse("http://exa\tmple.com").hostname == "example.com"
        assert not await handshake(validator, [(b"origin", b"http://exa\tmple.com")])

    async def test_a_header_urlparse_cannot_read_is_refused(self) -> None:
        validator = OriginValidator(Recorder(), ["example.com"])
        assert not await handshake(validator, [(b"origin", b"http://[::1")])

    def test_the_list_given_is_kept(self) -> None:
        patterns = ["example.com", "*"]
        assert OriginValidator(Recorder(), patterns).allowed_origins is patterns
        assert OriginValidator(Recorder(), iter(patterns)).allowed_origins == patterns


class TestSubclassPrivateNames:
    async def test_a_subclass_with_the_obvious_private_names_still_works(self) -> None:
        class Clashing(OriginValidator):
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                self._patterns = "mine"
                self._allow_all = "mine"
                self._allow_null = "mine"
                self._compiled = "mine"
                self._cache = "mine"
                super().__init__(*args, **kwargs)

            def _parse(self) -> str:
                return "mine"

            def _match(self) -> str:
                return "mine"

            def mine(self) -> tuple[object, ...]:
                return (self._patterns, self._allow_all, self._compiled, self._parse())

        validator = Clashing(Recorder(), [".example.com"])
        assert await handshake(validator, [(b"origin", b"https://www.example.com")])
        assert not await handshake(validator, [(b"origin", b"https://evil.org")])
        assert validator.mine() == ("mine",) * 4


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

    @pytest.mark.parametrize("scope_type", ["http", "lifespan"])
    async def test_another_scope_raises_value_error(self, scope_type: str) -> None:
        inner = Recorder()
        with pytest.raises(
            ValueError, match=rf"websocket handshakes only.*; got a '{scope_type}' scope"
        ):
            await OriginValidator(inner, ["*"])({"type": scope_type}, never_receive, never_send)
        assert inner.scopes == []


class TestWebsocketDenier:
    async def test_a_disconnect_before_the_handshake_ends_it_quietly(self) -> None:
        communicator = WebsocketCommunicator(WebsocketDenier(), "/ws/")
        await communicator.send_input({"type": "websocket.disconnect", "code": 1001})
        await communicator.wait()
        assert communicator.output_queue.empty()

    async def test_a_scope_that_is_not_a_websocket_raises_value_error(self) -> None:
        with pytest.raises(ValueError, match=r"websocket connections only; got a 'http' scope"):
            await WebsocketDenier()({"type": "http"}, never_receive, never_send)
