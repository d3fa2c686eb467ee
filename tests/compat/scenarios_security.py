"""Scenarios: OriginValidator, AllowedHostsOriginValidator and WebsocketDenier.

Each handshake is run as an ASGI call: the client sends ``websocket.connect``
then ``websocket.disconnect``; the observation is whether the application was
reached, or the events the client got instead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import ParseResult, urlparse

from django.test import override_settings

from channels.security.websocket import (
    AllowedHostsOriginValidator,
    OriginValidator,
    WebsocketDenier,
)
from channels.testing import WebsocketCommunicator

if TYPE_CHECKING:
    # Read by the type checkers only: upstream has no channels.types.
    from channels.types import ASGIApplication, Event, Receive, ReceivedEvent, Scope, Send

from ._harness import Observation, raised, scenario

Message = dict[str, Any]


async def _reached(scope: Scope, receive: Receive, send: Send) -> None:
    """The protected application: it says it was reached."""
    await send({"type": "reached"})


async def _handshake(
    application: ASGIApplication, headers: list[tuple[bytes, bytes]], scope_type: str = "websocket"
) -> Observation:
    """Run one handshake; return "allowed", the events the client got, or what was raised."""
    incoming: list[Message] = [
        {"type": "websocket.connect"},
        {"type": "websocket.disconnect", "code": 1000},
    ]
    sent: list[Event] = []

    async def receive() -> ReceivedEvent:
        if not incoming:
            raise AssertionError("receive() called after the disconnect")
        return incoming.pop(0)

    async def send(message: Event) -> None:
        sent.append(message)

    scope: Scope = {"type": scope_type, "path": "/ws/", "headers": headers, "subprotocols": []}
    try:
        await application(scope, receive, send)
    except Exception as exc:
        return raised(exc)
    if sent == [{"type": "reached"}]:
        return "allowed"
    return [
        {
            key: value if not isinstance(value, bytes) else value.decode()
            for key, value in event.items()
        }
        for event in sent
    ]


async def _origins(patterns: list[str], origins: list[str | None]) -> dict[str, Observation]:
    """For each origin (None: no Origin header), what a handshake through the validator gives."""
    try:
        validator = OriginValidator(_reached, patterns)
    except Exception as exc:
        return {"build": raised(exc)}
    seen: dict[str, Observation] = {}
    for origin in origins:
        headers = [] if origin is None else [(b"origin", origin.encode("latin-1"))]
        seen[repr(origin)] = await _handshake(validator, headers)
    return seen


_ORIGINS: list[str | None] = [
    "http://example.com",
    "https://example.com",
    "https://example.com:443",
    "https://example.com:8443",
    "http://example.com:80",
    "http://example.com:8000",
    "wss://example.com",
    "HTTP://EXAMPLE.COM",
    "http://sub.example.com",
    "http://a.b.example.com",
    "http://notexample.com",
    "http://example.com.evil.org",
    "http://example.org",
    "http://localhost:8000",
    "http://127.0.0.1:8000",
    "http://[::1]:8000",
    "app://local",
    "example.com",
    "http://",
    "",
    "null",
    None,
]


@scenario
async def origin_table() -> Observation:
    """Allowed or denied, for the supported pattern forms and a table of origins."""
    patterns = {
        "host": ["example.com"],
        "subdomains": [".example.com"],
        "https": ["https://example.com"],
        "https-port": ["https://example.com:8443"],
        "http": ["http://example.com"],
        "scheme-subdomains": ["https://.example.com"],
        "custom-scheme": ["app://local"],
        "ipv4": ["127.0.0.1"],
        "ipv6": ["[::1]"],
        "localhost": ["localhost"],
        "uppercase": ["EXAMPLE.COM"],
        "two": ["example.org", "https://example.com"],
        "star": ["*"],
        "star-and-more": ["example.org", "*"],
        "empty": [],
        "trailing-slash": ["https://example.com/"],
    }
    return {name: await _origins(listed, _ORIGINS) for name, listed in patterns.items()}


@scenario
async def origin_port_without_scheme() -> Observation:
    """A pattern naming a port but no scheme."""
    return await _origins(
        ["example.com:8000"],
        ["http://example.com:8000", "http://example.com:9000", "http://example.com"],
    )


@scenario
async def origin_patterns_that_cannot_match() -> Observation:
    """Patterns that name no origin a browser sends: the validator builds and they match nothing."""
    patterns = ["*.example.com", "", "http://", "exa mple.com", " *", "1http://example.com"]
    origins: list[str | None] = ["http://example.com", "http://www.example.com", None]
    return {repr(pattern): await _origins([pattern], origins) for pattern in patterns}


@scenario
async def origin_patterns_read_loosely_upstream() -> Observation:
    """Malformed patterns that upstream reads as a host: a path, user info, an unbracketed IPv6."""
    patterns = ["example.com/chat", "user@example.com", "::1", "example.com:"]
    origins: list[str | None] = ["http://example.com", "http://[::1]"]
    return {repr(pattern): await _origins([pattern], origins) for pattern in patterns}


@scenario
async def origin_patterns_upstream_fails_on() -> Observation:
    """Patterns that make upstream raise on every handshake: a bad port, an unclosed bracket."""
    origins: list[str | None] = ["http://example.com", "http://example.org"]
    return {
        repr(pattern): await _origins([pattern], origins)
        for pattern in ["http://example.com:99999", "[::1"]
    }


@scenario
async def origin_pattern_international() -> Observation:
    """An international domain in a pattern; browsers send its ASCII form."""
    return await _origins(["b\u00fccher.example"], ["http://xn--bcher-kva.example"])


@scenario
async def origin_malformed_headers() -> Observation:
    """Origins no browser sends, that upstream's urlparse reads leniently."""
    return {
        "host": await _origins(
            ["example.com"],
            [
                "http://evil.org@example.com",
                "http://example.com/",
                "http://example.com/path",
                "http://example.com.",
                " http://example.com",
                "//example.com",
            ],
        ),
        "literal-wildcard": await _origins(["*.example.com"], ["http://*.example.com"]),
    }


@scenario
async def origin_header_unparsable() -> Observation:
    """An Origin header that urlparse cannot read (an unclosed IPv6 bracket)."""
    return await _origins(["example.com"], ["http://[::1"])


@scenario
async def origin_several_headers() -> Observation:
    """Two Origin headers in one handshake."""
    validator = OriginValidator(_reached, ["example.com"])
    return {
        "allowed-last": await _handshake(
            validator, [(b"origin", b"http://evil.org"), (b"origin", b"http://example.com")]
        ),
        "allowed-first": await _handshake(
            validator, [(b"origin", b"http://example.com"), (b"origin", b"http://evil.org")]
        ),
    }


@scenario
async def origin_patterns_given_as_one_string() -> Observation:
    """allowed_origins given as a string instead of a list."""
    return await _origins("example.com", ["http://example.com"])  # type: ignore[arg-type]  # the mistake under test


@scenario
async def origin_non_websocket_scope() -> Observation:
    """An HTTP connection through OriginValidator."""
    return await _handshake(OriginValidator(_reached, ["*"]), [], scope_type="http")


@scenario
async def origin_allowed_hosts() -> Observation:
    """AllowedHostsOriginValidator with the settings' ALLOWED_HOSTS, and with DEBUG and none."""
    origins: list[str | None] = [
        "http://testserver",
        "http://localhost:8000",
        "http://example.com",
        "https://www.example.com",
        "http://a.bad.example",
        "http://bad.example",
        "http://127.0.0.1",
        "http://[::1]:8000",
        None,
    ]
    seen: dict[str, Observation] = {}
    cases: list[tuple[str, dict[str, Any]]] = [
        ("settings", {}),
        ("debug-no-hosts", {"DEBUG": True, "ALLOWED_HOSTS": []}),
        ("no-debug-no-hosts", {"DEBUG": False, "ALLOWED_HOSTS": []}),
        ("star", {"ALLOWED_HOSTS": ["*"]}),
    ]
    for name, overrides in cases:
        with override_settings(**overrides):
            validator = AllowedHostsOriginValidator(_reached)
            seen[name] = {
                repr(origin): await _handshake(
                    validator, [] if origin is None else [(b"origin", origin.encode())]
                )
                for origin in origins
            }
    return seen


@scenario
def origin_validator_methods() -> Observation:
    """Upstream's checking methods, called as subclasses call them."""
    validator = OriginValidator(_reached, [".example.com", "https://example.org:8443"])
    star = OriginValidator(_reached, ["*"])
    parsed = {
        origin: urlparse(origin)
        for origin in [
            "http://www.example.com",
            "https://example.org:8443",
            "https://example.org",
            "http://evil.org",
        ]
    }
    return {
        "allowed_origins": validator.allowed_origins,
        "valid_origin": {origin: validator.valid_origin(value) for origin, value in parsed.items()},
        "valid_origin-none": [validator.valid_origin(None), star.valid_origin(None)],
        "validate_origin": {
            origin: validator.validate_origin(value) for origin, value in parsed.items()
        },
        "match_allowed_origin": [
            validator.match_allowed_origin(parsed["http://www.example.com"], ".example.com"),
            validator.match_allowed_origin(parsed["http://evil.org"], ".example.com"),
            validator.match_allowed_origin(parsed["http://evil.org"], "evil.org"),
            validator.match_allowed_origin(None, "example.com"),
        ],
        "get_origin_port": [
            validator.get_origin_port(urlparse(origin))
            for origin in [
                "http://a",
                "ws://a",
                "https://a",
                "wss://a",
                "app://a",
                "http://a:81",
                "https://a:80",
            ]
        ],
    }


@scenario
def origin_validator_keeps_the_list() -> Observation:
    """The list given is the one kept, and a pattern added later counts."""
    patterns = ["example.com"]
    validator = OriginValidator(_reached, patterns)
    before = validator.valid_origin(urlparse("http://example.org"))
    patterns.append("example.org")
    return {
        "same-list": validator.allowed_origins is patterns,
        "before": before,
        "after": validator.valid_origin(urlparse("http://example.org")),
        "application": validator.application is _reached,
    }


class _AllowMissingOrigin(OriginValidator):
    """Native clients send no Origin; let them through, check the rest (as apps do)."""

    def valid_origin(self, parsed_origin: ParseResult | None) -> bool:
        if parsed_origin is None:
            return True
        return super().valid_origin(parsed_origin)


class _AllowSchemes(OriginValidator):
    """Allow desktop-app schemes by reading the parsed origin's parts."""

    def validate_origin(self, parsed_origin: ParseResult | None) -> bool:
        if parsed_origin is not None and parsed_origin.scheme in ("tauri", "file"):
            return True
        return super().validate_origin(parsed_origin)


@scenario
async def origin_validator_subclasses() -> Observation:
    """Subclasses overriding valid_origin and validate_origin."""
    origins: list[str | None] = [
        "http://example.com",
        "http://evil.org",
        "tauri://localhost",
        "file://",
        None,
    ]
    seen: dict[str, Observation] = {}
    for cls in (_AllowMissingOrigin, _AllowSchemes):
        validator = cls(_reached, ["example.com"])
        seen[cls.__name__] = {
            repr(origin): await _handshake(
                validator, [] if origin is None else [(b"origin", origin.encode())]
            )
            for origin in origins
        }
    return seen


@scenario
async def origin_denial_seen_by_the_client() -> Observation:
    """What a refused client sees through a test communicator."""
    communicator = WebsocketCommunicator(
        OriginValidator(_reached, ["example.com"]),
        "/ws/",
        headers=[(b"origin", b"http://evil.org")],
    )
    connected = await communicator.connect()
    await communicator.disconnect()
    return list(connected)


@scenario
async def origin_denial_with_http_response_extension() -> Observation:
    """A refusal where the server supports the websocket HTTP-response extension."""
    communicator = WebsocketCommunicator(
        OriginValidator(_reached, ["example.com"]),
        "/ws/",
        headers=[(b"origin", b"http://evil.org")],
    )
    communicator.scope["extensions"] = {"websocket.http.response": {}}
    connected = await communicator.connect()
    await communicator.disconnect()
    return list(connected)


@scenario
async def websocket_denier_standalone() -> Observation:
    """WebsocketDenier used as an application of its own."""
    return await _handshake(WebsocketDenier(), [])
