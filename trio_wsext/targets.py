"""Where a client connects: ``ws``/``wss`` URLs, Unix sockets, and the redirects it follows.

:func:`parse_url` splits a URL as :rfc:`6455#section-3` defines it; a
:class:`Target` is one opening handshake's destination; :func:`follow_redirect`
says where a 301, 302, 303, 307 or 308 answer sends the client next, as
websockets does (never from ``wss`` to ``ws``, only ``ws``/``wss`` URLs, and
credentials kept only on the same origin); :func:`cross_origin_headers`
drops what must not follow the client to another origin. Pure functions:
:mod:`trio_wsext.client` does the connecting.
"""

from __future__ import annotations

import base64
import os
import ssl
import urllib.parse
from collections.abc import Mapping, Sequence
from typing import Final, TypeAlias, final

import attrs

from .exceptions import ConnectionRejected, RedirectError
from .headers import build_host
from .options import check_ssl_context

__all__ = [
    "CROSS_ORIGIN_HEADERS",
    "DEFAULT_PORTS",
    "REDIRECT_STATUSES",
    "UNIX_HOST",
    "ExtraHeaders",
    "Target",
    "cross_origin_headers",
    "follow_redirect",
    "parse_url",
    "split_host",
    "unix_target",
    "url_target",
    "with_authorization",
]

#: Request headers given by the caller: pairs or a mapping, or ``None``.
ExtraHeaders: TypeAlias = (
    Sequence[tuple[str | bytes, str | bytes]]
    | Mapping[str, str | bytes]
    | Mapping[bytes, str | bytes]
    | None
)

#: RFC 6455 §3: "The port component is OPTIONAL; the default for "ws" is port
#: 80, while the default for "wss" is port 443."
DEFAULT_PORTS: Final = {"ws": 80, "wss": 443}

#: The redirections followed (RFC 9110 §15.4: each names its one target in
#: ``Location``); 300 offers a choice, 304 is about caches, 305/306 are gone.
REDIRECT_STATUSES: Final = frozenset({301, 302, 303, 307, 308})

#: Request headers not carried to another origin by a redirect: credentials
#: and cookies (as websockets drops them), and a ``Host`` that names the old one.
CROSS_ORIGIN_HEADERS: Final = frozenset({"authorization", "cookie", "proxy-authorization", "host"})

#: The ``Host`` of a request over a Unix socket, as websockets sends it (its
#: URL is ``ws://localhost/``).
UNIX_HOST: Final = "localhost"


def parse_url(
    url: str, ssl_context: ssl.SSLContext | None = None
) -> tuple[str, int, str, bool | ssl.SSLContext, str | None]:
    """Split a ``ws://`` or ``wss://`` URL (:rfc:`6455#section-3`) into what a connection needs.

    Args:
        url: the URL, for example ``"wss://[::1]:8443/chat?room=1"``.
        ssl_context: the TLS context for a ``wss`` URL; ``None`` means the
            default context. Not allowed with ``ws``.

    Returns:
        ``(host, port, resource, use_ssl, authorization)``: the host without
        brackets, the port (80/443 by default), the path and query ("/" when
        empty), ``ssl_context`` or a bool, and a ``Basic`` ``Authorization``
        header value when the URL carries ``user:password@``, else ``None``.

    Raises:
        ValueError: another scheme, no host, a bad port, a fragment, or an
            ``ssl_context`` with a ``ws`` URL.
    """
    parts = urllib.parse.urlsplit(str(url))
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise ValueError(f"WebSocket URL scheme must be 'ws' or 'wss', not {parts.scheme!r}")
    check_ssl_context("ssl_context", ssl_context)
    if scheme == "ws" and ssl_context is not None:
        raise ValueError("ssl_context must be None for a ws:// URL")
    # RFC 6455 §3: "Fragment identifiers are meaningless in the context of
    # WebSocket URIs and MUST NOT be used on these URIs."
    if parts.fragment or url.endswith("#"):
        raise ValueError(f"WebSocket URL must not have a fragment: {url!r}")
    host = parts.hostname
    if not host:
        raise ValueError(f"WebSocket URL has no host: {url!r}")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"WebSocket URL has an invalid port: {url!r}") from None
    if port is None:
        port = DEFAULT_PORTS[scheme]
    elif port == 0:
        raise ValueError(f"WebSocket URL has an invalid port: {url!r}")
    # RFC 7230 §5.3.1: "If the target URI's path component is empty, the
    # client MUST send "/" as the path within the origin-form of request-target."
    resource = parts.path or "/"
    if parts.query or "?" in url:
        resource += "?" + parts.query
    use_ssl: bool | ssl.SSLContext = ssl_context if ssl_context is not None else scheme == "wss"
    authorization = None
    if parts.username is not None:
        user = urllib.parse.unquote(parts.username)
        password = urllib.parse.unquote(parts.password or "")
        credentials = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
        authorization = f"Basic {credentials}"
    return host, port, resource, use_ssl, authorization


def _header_pairs(extra_headers: ExtraHeaders) -> list[tuple[str | bytes, str | bytes]]:
    if extra_headers is None:
        return []
    if isinstance(extra_headers, Mapping):
        return list(extra_headers.items())
    return list(extra_headers)


def _header_name(name: str | bytes) -> str:
    return (name.decode("latin-1") if isinstance(name, bytes) else name).lower()


def with_authorization(extra_headers: ExtraHeaders, authorization: str | None) -> ExtraHeaders:
    """Add ``Authorization: <authorization>`` unless the caller's headers have one."""
    if authorization is None:
        return extra_headers
    pairs = _header_pairs(extra_headers)
    if "authorization" not in {_header_name(n) for n, _ in pairs}:
        pairs.append(("Authorization", authorization))  # an explicit header wins over the URL's
    return pairs


@final
@attrs.frozen
class Target:
    """Where one opening handshake goes: a ``ws``/``wss`` URL's parts, and a Unix socket or not."""

    secure: bool
    host: str
    port: int
    resource: str
    authorization: str | None = None
    """A ``Basic`` value from the URL's ``user:password@``."""
    unix_path: str | None = None
    """The Unix socket to connect to instead of ``host:port``."""

    @property
    def url(self) -> str:
        """The target as a URL (without credentials), to resolve a ``Location`` against."""
        scheme = "wss" if self.secure else "ws"
        return f"{scheme}://{build_host(self.host, self.port, secure=self.secure)}{self.resource}"

    @property
    def origin(self) -> tuple[bool, str, int]:
        """Scheme, host and port: what a redirect must keep to stay on the same origin."""
        return self.secure, self.host.lower(), self.port

    @property
    def where(self) -> str:
        """The address connected to, for messages."""
        if self.unix_path is not None:
            return f"unix:{self.unix_path}"
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def url_target(url: str, ssl_context: ssl.SSLContext | None) -> Target:
    """The target of a ``ws``/``wss`` URL.

    Raises:
        ValueError, TypeError: as :func:`parse_url`.
    """
    host, port, resource, use_ssl, authorization = parse_url(url, ssl_context)
    return Target(use_ssl is not False, host, port, resource, authorization)


def unix_target(path: str | os.PathLike[str], resource: str, *, secure: bool) -> Target:
    """The target of a Unix socket: ``Host: localhost``, as websockets sends it."""
    port = DEFAULT_PORTS["wss" if secure else "ws"]
    return Target(secure, UNIX_HOST, port, resource, unix_path=os.fspath(path))


def follow_redirect(target: Target, rejected: ConnectionRejected) -> Target | None:
    """Return where a redirect sends the client, or ``None`` when ``rejected`` is no redirect.

    Raises:
        RedirectError: a redirect that is not followed: its ``Location`` is
            not a ``ws``/``wss`` URL, goes from ``wss`` to ``ws``, or leaves
            the origin over a Unix socket.
    """
    locations = [value for name, value in rejected.headers if name.lower() == b"location"]
    if rejected.status_code not in REDIRECT_STATUSES or len(locations) != 1:
        return None
    status = f"HTTP {rejected.status_code}"
    # RFC 9110 §10.2.2: a relative Location is resolved against the request's URL.
    location = urllib.parse.urljoin(target.url, locations[0].decode("latin-1").strip())
    location = urllib.parse.urldefrag(location).url  # RFC 6455 §3: no fragment in a ws URL
    try:
        new = attrs.evolve(url_target(location, None), unix_path=target.unix_path)
    except ValueError as exc:
        raise RedirectError(
            f"cannot follow {status} to {location!r}: {exc}", location, rejected
        ) from None
    if target.secure and not new.secure:
        raise RedirectError(
            f"refused to follow {status} from {target.url} to {location}: a redirect may not"
            " leave wss for ws",
            location,
            rejected,
        )
    if target.unix_path is not None and new.origin != target.origin:
        raise RedirectError(
            f"cannot follow {status} to {location} over Unix socket {target.unix_path}:"
            " it leaves the origin",
            location,
            rejected,
        )
    if new.origin == target.origin and new.authorization is None:
        new = attrs.evolve(new, authorization=target.authorization)
    return new


def split_host(host: str) -> tuple[str, int | None]:
    """Split a ``Host`` value, ``name``, ``name:port``, ``[v6]:port`` or a bare IPv6 address."""
    if host.startswith("["):
        name, bracket, rest = host[1:].partition("]")
        if not bracket:
            raise ValueError(f"host has an unclosed '[': {host!r}")
    elif host.count(":") == 1:
        name, colon, rest = host.partition(":")
        rest = colon + rest
    else:
        name, rest = host, ""  # a name, or an IPv6 address without brackets
    if not rest:
        return name, None
    digits = rest[1:]
    if not rest.startswith(":") or not digits.isascii() or not digits.isdigit():
        raise ValueError(
            f"host must be a host name or address with an optional :port, not {host!r}"
        )
    port = int(digits)
    if not 1 <= port <= 65535:
        raise ValueError(f"host has a port out of range 1-65535: {host!r}")
    return name, port


def cross_origin_headers(extra_headers: ExtraHeaders) -> ExtraHeaders:
    """The caller's headers less :data:`CROSS_ORIGIN_HEADERS`, for a redirect to another origin."""
    return [
        (name, value)
        for name, value in _header_pairs(extra_headers)
        if _header_name(name) not in CROSS_ORIGIN_HEADERS
    ]
