"""Refuse websocket handshakes from web pages of other sites.

Browsers let any page open a websocket to any host and send that host's
cookies with it, so a websocket authenticated by session cookie must check the
``Origin`` header, which browsers set to the page's origin and pages cannot
forge. ``OriginValidator`` checks it against a list of allowed origin
patterns; ``AllowedHostsOriginValidator`` takes the list from
``settings.ALLOWED_HOSTS``. A refused handshake is answered by
``WebsocketDenier``.

Patterns (matched case-insensitively):

- ``"example.com"``: that host, with any scheme and port;
- ``".example.com"``: ``example.com`` and every subdomain of it;
- ``"example.com:8000"``: that host on that port, with any scheme;
- ``"https://example.com"`` or ``"https://example.com:8443"``: that scheme,
  host and port (80 and 443 are implied by ``http`` and ``https``, as by
  ``ws`` and ``wss``); a host here may also start with a dot;
- ``"[::1]"``: an IPv6 literal, in brackets as in URLs;
- ``"bücher.example"``: international names, compared in their ASCII
  (IDNA) form, which is what browsers send;
- ``"*"``: everything, including handshakes without an ``Origin``.

A pattern may end in one ``/`` (``"https://example.com/"``). Any other
pattern can never match: ``"*.example.com"`` (write ``".example.com"``), a
path, user info, whitespace, a bad port. Such a pattern is ignored, and a
warning naming it is logged once, so a typo in ``ALLOWED_HOSTS`` does not
stop the application.

Only a well-formed origin, ``scheme://host[:port]`` in ASCII, can match a
host pattern: user info (``http://example.com@evil.org``), a path, a query,
whitespace or more than one ``Origin`` header make it malformed, and a
missing, malformed or ``null`` origin is refused unless ``"*"`` is allowed.
One trailing dot is dropped from hosts before comparing, as Django does for
``Host``: ``example.com.`` names the same host as ``example.com``, and
dropping it can only make a name equal to an allowed one when it is that name.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import ParseResult, urlparse, urlsplit

from django.conf import settings

# Upstream's module loads the generic websocket consumers; code relies on that.
import channels.generic.websocket  # noqa: F401  # pyright: ignore[reportUnusedImport]
from channels.types import ASGIApplication, Receive, Scope, Send

__all__ = ["AllowedHostsOriginValidator", "OriginValidator", "WebsocketDenier"]

_DEFAULT_PORTS = {"http": 80, "ws": 80, "https": 443, "wss": 443}
_LABELS = re.compile(r"[a-z0-9_-]+(?:\.[a-z0-9_-]+)*")
_SCHEME = re.compile(r"[a-z][a-z0-9+.-]*")
# Printable ASCII without spaces: everything else is malformed in an Origin.
_ORIGIN_CHARS = re.compile(r"[!-~]+")


class _Malformed(ValueError):
    """An origin or pattern that does not parse."""


@dataclass(frozen=True)
class _Origin:
    """A parsed, normalised origin: lowercase scheme and host, explicit port or None."""

    scheme: str
    host: str
    port: int | None

    @property
    def effective_port(self) -> int | None:
        """The explicit port, else the scheme's default, else None."""
        return self.port if self.port is not None else _DEFAULT_PORTS.get(self.scheme)


@dataclass(frozen=True)
class _Pattern:
    """A parsed allowed-origin pattern for hosts."""

    scheme: str | None
    host: str
    port: int | None
    subdomains: bool

    def matches(self, origin: _Origin) -> bool:
        """Whether ``origin`` is allowed by this pattern."""
        if self.subdomains:
            host_ok = origin.host == self.host or origin.host.endswith("." + self.host)
        else:
            host_ok = origin.host == self.host
        if not host_ok:
            return False
        if self.scheme is not None:
            wanted = self.port if self.port is not None else _DEFAULT_PORTS.get(self.scheme)
            return origin.scheme == self.scheme and origin.effective_port == wanted
        return self.port is None or origin.effective_port == self.port


def _parse_host(host: str) -> str:
    """Normalise a host: lowercase, one trailing dot dropped, IPv6 compressed in brackets."""
    if host.startswith("[") and host.endswith("]"):
        try:
            return f"[{ipaddress.IPv6Address(host[1:-1]).compressed}]"
        except ValueError:
            raise _Malformed(f"not an IPv6 address: {host!r}") from None
    host = host.lower().removesuffix(".")
    # International names compare in the ASCII form browsers put in Origin;
    # origins themselves must already be ASCII.
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError as exc:
            raise _Malformed(f"not an international host name: {host!r} ({exc})") from None
    if not _LABELS.fullmatch(host):
        raise _Malformed(f"not a host name: {host!r}")
    return host


def _parse_netloc(netloc: str) -> tuple[str, int | None]:
    """Split ``host[:port]`` (the host may be a bracketed IPv6 literal) and normalise both."""
    if "@" in netloc:
        raise _Malformed(f"user info is not allowed: {netloc!r}")
    host, port_text = netloc, None
    bracket = netloc.rfind("]")
    colon = netloc.rfind(":")
    if colon > bracket:
        host, port_text = netloc[:colon], netloc[colon + 1 :]
    port: int | None = None
    if port_text is not None:
        if not (port_text.isascii() and port_text.isdigit() and int(port_text) <= 65535):
            raise _Malformed(f"not a port: {port_text!r}")
        port = int(port_text)
    return _parse_host(host), port


def _parse_origin(value: str) -> _Origin:
    """Parse an ``Origin`` header value, ``scheme://host[:port]``, strictly."""
    if not (value.isascii() and _ORIGIN_CHARS.fullmatch(value)):
        raise _Malformed(f"not printable ASCII: {value!r}")
    try:
        parts = urlsplit(value)
    except ValueError as exc:  # an unbalanced IPv6 bracket
        raise _Malformed(f"does not parse: {value!r} ({exc})") from None
    if not (_SCHEME.fullmatch(parts.scheme) and value.lower().startswith(parts.scheme + "://")):
        raise _Malformed(f"no scheme://: {value!r}")
    if parts.path or parts.query or parts.fragment or "?" in value or "#" in value:
        raise _Malformed(f"more than scheme://host[:port]: {value!r}")
    host, port = _parse_netloc(parts.netloc)
    return _Origin(parts.scheme, host, port)


def _parse_pattern(pattern: str) -> _Pattern:
    """Parse one allowed-origin pattern for hosts (not ``*``)."""
    scheme: str | None = None
    rest = pattern.lower().removesuffix("/")
    if "://" in rest:
        scheme, rest = rest.split("://", 1)
        if not _SCHEME.fullmatch(scheme):
            raise _Malformed(f"not a scheme: {scheme!r}")
    subdomains = rest.startswith(".")
    if subdomains:
        rest = rest[1:]
    if rest.startswith("*."):
        raise _Malformed("'*.' is no wildcard here: a leading dot allows a domain's subdomains")
    if not rest or any(char in rest for char in "/?#"):
        raise _Malformed("expected [scheme://][.]host[:port]")
    host, port = _parse_netloc(rest)
    if subdomains and host.startswith("["):
        raise _Malformed("an IP address has no subdomains")
    return _Pattern(scheme, host, port, subdomains)


_logger = logging.getLogger(__name__)

#: Patterns already reported as unusable: each is logged once per process.
_reported: set[str] = set()


def _unusable(pattern: str, reason: str) -> None:
    """Log, once per process, that ``pattern`` can never match and is ignored."""
    if pattern in _reported:
        return
    _reported.add(pattern)
    _logger.warning(
        "the allowed origin pattern %r can never match, so it is ignored (%s); "
        "supported forms: '*' (every origin), 'example.com', '.example.com' (the "
        "domain and its subdomains), 'example.com:8000', 'https://example.com[:port]', "
        "'[::1]'",
        pattern,
        reason,
    )


class _ReceivedOrigin(ParseResult):
    """``urlparse``'s reading of the ``Origin`` header, with our strict reading of its text.

    Subclasses of OriginValidator read the parts; matching uses ``strict``,
    parsed from the header itself, which ``urlparse`` may have tidied (it
    drops tabs and leading spaces). ``strict`` is None for a malformed origin.
    """

    strict: _Origin | None


def _received_origin(values: list[bytes]) -> _ReceivedOrigin | None:
    """Parse the ``Origin`` header values of a handshake; None if ``urlparse`` cannot."""
    # Several Origin headers join into one malformed value, so they are refused.
    text = b", ".join(values).decode("latin-1")
    try:
        received = _ReceivedOrigin(*urlparse(text))
    except ValueError:  # an unbalanced IPv6 bracket
        return None
    received.strict = _strict_origin(text)
    return received


def _strict_origin(text: str) -> _Origin | None:
    """The origin ``text`` names, or None if it is not a well-formed origin."""
    try:
        return _parse_origin(text)
    except _Malformed:
        return None


class OriginValidator:
    """Pass websocket handshakes whose ``Origin`` is allowed; deny the others.

    ``allowed_origins`` is a list of patterns (see the module docstring). A
    pattern that can never match is ignored, with a warning logged once.
    The checks are upstream's methods, which subclasses may override:
    ``valid_origin(parsed_origin)`` decides, given ``urlparse``'s reading of
    the header (None when there is none); it allows a missing origin only
    under ``"*"`` and asks ``validate_origin``, which asks
    ``match_allowed_origin`` for each pattern.
    """

    def __init__(self, application: ASGIApplication, allowed_origins: Iterable[str]) -> None:
        if isinstance(allowed_origins, str | bytes):
            raise TypeError(
                "allowed_origins must be a list of origin patterns such as ['example.com']; "
                f"got the single string {allowed_origins!r}"
            )
        self.application = application
        # A list given is kept, as upstream keeps it (changes to it take effect).
        self.allowed_origins: list[str] = (
            allowed_origins if isinstance(allowed_origins, list) else list(allowed_origins)
        )
        self.__patterns: dict[str, _Pattern | None] = {}
        for pattern in self.allowed_origins:
            self.__compiled(pattern)

    def __compiled(self, pattern: str) -> _Pattern | None:
        """The parsed form of a host pattern, or None (and a warning) if it cannot match."""
        try:
            return self.__patterns[pattern]
        except KeyError:
            pass
        if not isinstance(pattern, str):  # pyright: ignore[reportUnnecessaryIsInstance] - untyped callers
            raise TypeError(f"allowed origin patterns must be strings; got {pattern!r}")
        compiled: _Pattern | None = None
        if pattern != "*":
            try:
                compiled = _parse_pattern(pattern)
            except _Malformed as exc:
                _unusable(pattern, str(exc))
        self.__patterns[pattern] = compiled
        return compiled

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> Any:
        """Run the application if the handshake's origin is allowed, else deny it.

        Returns what the application returns (``Any``: ASGI ignores it).

        Raises:
            ValueError: for a scope that is not a websocket's.
        """
        if scope["type"] != "websocket":
            raise ValueError(
                "OriginValidator checks websocket handshakes only; route other protocols "
                f"around it; got a {scope['type']!r} scope"
            )
        values = [value for name, value in scope.get("headers", ()) if name == b"origin"]
        if values:
            parsed_origin = _received_origin(values)
            allowed = parsed_origin is not None and self.valid_origin(parsed_origin)
        else:
            allowed = self.valid_origin(None)
        if allowed:
            return await self.application(scope, receive, send)
        return await WebsocketDenier()(scope, receive, send)

    def valid_origin(self, parsed_origin: ParseResult | None) -> bool:
        """Whether the origin (``urlparse``'s reading; None when absent) is allowed."""
        if parsed_origin is None and "*" not in self.allowed_origins:
            return False
        return self.validate_origin(parsed_origin)

    def validate_origin(self, parsed_origin: ParseResult | None) -> bool:
        """Whether any allowed pattern matches the origin; ``"*"`` matches everything."""
        return any(
            pattern == "*" or self.match_allowed_origin(parsed_origin, pattern)
            for pattern in self.allowed_origins
        )

    def match_allowed_origin(self, parsed_origin: ParseResult | None, pattern: str) -> bool:
        """Whether the host pattern ``pattern`` matches the origin.

        Only a well-formed ``scheme://host[:port]`` origin can match.
        """
        if parsed_origin is None:
            return False
        compiled = self.__compiled(pattern)
        if compiled is None:
            return False
        if isinstance(parsed_origin, _ReceivedOrigin):
            origin = parsed_origin.strict
        else:  # made by the caller, with urlparse
            origin = _strict_origin(parsed_origin.geturl())
        return origin is not None and compiled.matches(origin)

    def get_origin_port(self, origin: ParseResult) -> int | None:
        """The origin's port: the explicit one, else its scheme's default, else None.

        Raises:
            ValueError: for a port that is not a number from 0 to 65535.
        """
        port = origin.port
        return port if port is not None else _DEFAULT_PORTS.get(origin.scheme.lower())


def AllowedHostsOriginValidator(application: ASGIApplication) -> OriginValidator:
    """Return an OriginValidator allowing the hosts in ``settings.ALLOWED_HOSTS``.

    With ``DEBUG`` on and ``ALLOWED_HOSTS`` empty, as Django itself does, it
    allows ``localhost``, ``127.0.0.1`` and ``[::1]``.
    """
    allowed_hosts: list[str] = list(settings.ALLOWED_HOSTS)
    if settings.DEBUG and not allowed_hosts:
        allowed_hosts = ["localhost", "127.0.0.1", "[::1]"]
    return OriginValidator(application, allowed_hosts)


class WebsocketDenier:
    """An ASGI application that refuses every websocket handshake.

    It answers with an HTTP 403 where the server supports the
    ``websocket.http.response`` extension, and with ``websocket.close``
    (which servers turn into a 403) otherwise.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Wait for the handshake and refuse it."""
        if scope["type"] != "websocket":
            raise ValueError(
                f"WebsocketDenier handles websocket connections only; got a {scope['type']!r} scope"
            )
        event = await receive()
        if event["type"] != "websocket.connect":
            return
        if "websocket.http.response" in scope.get("extensions", {}):
            await send(
                {
                    "type": "websocket.http.response.start",
                    "status": 403,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8")],
                }
            )
            await send({"type": "websocket.http.response.body", "body": b"Forbidden"})
        else:
            await send({"type": "websocket.close"})
