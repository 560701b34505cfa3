"""The opening handshake (:rfc:`6455#section-4`), sans-I/O, on h11.

Strategy: h11 reads the HTTP head (request line or status line, headers,
framing, the 101's switch of protocols); this module checks what RFC 6455
asks of it and builds the answer. Nothing here does I/O or knows a clock: the
caller feeds received bytes to ``receive_data`` (``b""`` at EOF), sends the
bytes it is handed, and bounds the whole exchange with its own timeout.

- :class:`ClientHandshake` makes the request at construction
  (:meth:`~ClientHandshake.request_bytes`) and checks the response: a 101 gives
  a :class:`ClientHandshakeResult`; any other final status raises
  :class:`~trio_wsext.exceptions.ConnectionRejected` once its body is read
  (at most :data:`MAX_REJECTION_BODY` bytes of it are kept).
- :class:`ServerHandshake` checks the request, bounded in header bytes and
  count, and gives a :class:`HandshakeRequest`; the application then calls
  :meth:`~ServerHandshake.accept` or :meth:`~ServerHandshake.reject`. A bad
  request raises a :class:`~trio_wsext.exceptions.HandshakeError`, and
  :meth:`~ServerHandshake.error_response` is the HTTP answer to send for it.

Bytes that arrive right behind the head (the peer's first frames) are never
lost: they come back as ``extra_data``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import http
import os
import sys
import urllib.parse
from collections.abc import Collection, Mapping, Sequence
from importlib import metadata
from typing import Final, TypeAlias, final

import attrs
import h11

from .exceptions import (
    ConnectionRejected,
    HandshakeError,
    InvalidHeader,
    InvalidHeaderFormat,
    NegotiationError,
    ProtocolError,
)
from .extensions.base import (
    ClientExtensionFactory,
    Extension,
    ExtensionParameter,
    ServerExtensionFactory,
)
from .headers import (
    HeadersLike,
    build_extension_header,
    build_host,
    build_subprotocol_header,
    index_headers,
    is_valid_host,
    normalize_headers,
    parse_extension_header,
    parse_subprotocol_header,
    parse_token_list,
    parse_upgrade_header,
)
from .negotiation import negotiate_client, negotiate_server

__all__ = [
    "DEFAULT_USER_AGENT",
    "ClientHandshake",
    "ClientHandshakeResult",
    "HandshakeRequest",
    "ServerHandshake",
    "accept_key",
    "negotiate_request",
    "negotiate_response",
    "origin_refusal",
]

ExtraHeaders: TypeAlias = HeadersLike | None
Headers: TypeAlias = list[tuple[bytes, bytes]]

#: RFC 6455 §1.3: the GUID that the server appends to the key.
GUID: Final = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

#: RFC 6455 §4.1: "The value of this header field MUST be 13."
WEBSOCKET_VERSION: Final = "13"

#: RFC 6455 §4.1: the key "MUST be a nonce consisting of a randomly selected
#: 16-byte value that has been base64-encoded".
KEY_BYTES: Final = 16

#: Bytes of request (or response) line plus headers: h11's default
#: ``max_incomplete_event_size``, and what nginx's large_client_header_buffers
#: allows (4 x 8 KiB) halved; ample for cookies and tokens.
DEFAULT_MAX_HEADER_BYTES: Final = 16384

#: Header lines: a browser sends about 15; Apache's LimitRequestFields is 100.
DEFAULT_MAX_HEADER_COUNT: Final = 128

#: Characters of h11's description of a malformed head kept in an error
#: message: h11 quotes the whole offending line, which may be kilobytes of the
#: peer's garbage; the start says what went wrong, and logs stay readable.
MAX_HTTP_ERROR_DETAIL: Final = 100

#: Characters of the reason in the body of :meth:`ServerHandshake.error_response`:
#: one readable line, never kilobytes of the client's own header echoed back.
MAX_ERROR_REASON: Final = 200

#: Body bytes of a non-101 answer that the client keeps for ConnectionRejected:
#: enough for any error page a person reads, bounded against a hostile server.
MAX_REJECTION_BODY: Final = 65536


def _package_version() -> str:
    try:
        return metadata.version("trio_wsext")
    except metadata.PackageNotFoundError:  # running from a source tree
        return "0+unknown"


#: The client's ``User-Agent``: ``trio_wsext/<version> Python/<major.minor>``.
DEFAULT_USER_AGENT: Final = (
    f"trio_wsext/{_package_version()} Python/{sys.version_info.major}.{sys.version_info.minor}"
)

# Headers that the handshake writes itself; extra_headers may not set them.
_FRAMING: Final = frozenset({b"content-length", b"transfer-encoding"})
_UPGRADE: Final = frozenset(
    b"upgrade connection sec-websocket-protocol sec-websocket-extensions".split()
)
_CLIENT_RESERVED: Final = _FRAMING | _UPGRADE | {b"sec-websocket-key", b"sec-websocket-version"}
_ACCEPT_RESERVED: Final = _FRAMING | _UPGRADE | {b"sec-websocket-accept"}
_REJECT_RESERVED: Final = _FRAMING


def accept_key(key: str) -> str:
    """Compute ``Sec-WebSocket-Accept`` for a ``Sec-WebSocket-Key`` (:rfc:`6455#section-1.3`).

    Args:
        key: the client's key, as sent (base64 text).

    Returns:
        ``base64(SHA-1(key + GUID))``.
    """
    digest = hashlib.sha1((key + GUID).encode("ascii"), usedforsecurity=False).digest()
    return base64.b64encode(digest).decode("ascii")


def _single(index: Mapping[str, list[str]], name: str) -> str:
    """Return the one value of a header that may appear once (``index`` from index_headers).

    Raises:
        InvalidHeader: the header is missing or appears more than once.
    """
    values = index.get(name.lower(), [])
    if not values:
        raise InvalidHeader(name)
    if len(values) > 1:
        raise InvalidHeader(name, ", ".join(values), f"more than one line: {values!r}")
    return values[0]


def _shorten(text: str, limit: int) -> str:
    """Return ``text`` on one line, cut to ``limit`` characters with ``...`` if longer."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


def _build_head(start_line: bytes, headers: Sequence[tuple[bytes, bytes]]) -> bytes:
    lines = [start_line]
    lines.extend(name + b": " + value for name, value in headers)
    return b"\r\n".join(lines) + b"\r\n\r\n"


def _status_line(status_code: int) -> bytes:
    try:
        phrase = http.HTTPStatus(status_code).phrase
    except ValueError:
        phrase = ""
    return f"HTTP/1.1 {status_code} {phrase}".rstrip().encode("ascii")


@final
@attrs.frozen
class ClientHandshakeResult:
    """What a successful opening handshake gives the client."""

    subprotocol: str | None
    """The subprotocol the server chose, or ``None``."""
    extensions: list[Extension]
    """The negotiated extensions, in the order of the server's response."""
    response_headers: list[tuple[bytes, bytes]]
    """The 101 response's headers, names in lowercase (as h11 gives them)."""
    extra_data: bytes
    """Bytes received after the response head: the server's first frames."""


@final
@attrs.frozen
class HandshakeRequest:
    """A client's opening handshake request that passed every check."""

    method: str
    """The request method (always ``"GET"``)."""
    path: str
    """The request target: path and query, as sent."""
    headers: list[tuple[bytes, bytes]]
    """Every header, names in lowercase (as h11 gives them), in order."""
    key: str
    """``Sec-WebSocket-Key``."""
    subprotocols: list[str]
    """The offered subprotocols, in the client's order of preference."""
    extensions: list[tuple[str, list[ExtensionParameter]]]
    """The offered extensions, parsed, in the client's order."""
    extra_data: bytes
    """Bytes received after the request head: the client's first frames."""


@final
class ClientHandshake:
    """The client's side of the opening handshake.

    The request is made at construction, so that a bad argument raises at
    once; send :meth:`request_bytes`, then feed what arrives to
    :meth:`receive_data` until it returns a result or raises.

    Args:
        host: the server's host name or IP address (for ``Host``).
        port: the server's port; left out of ``Host`` when it is the default
            for the scheme (80, or 443 with ``secure``).
        resource: the request target, path and query, starting with ``/``.
        secure: whether the connection uses TLS (``wss``).
        subprotocols: subprotocols to offer, in order of preference.
        extra_headers: more request headers; a ``Host`` or ``User-Agent`` here
            replaces the default one. The headers the handshake sets itself
            (``Upgrade``, ``Connection``, ``Sec-WebSocket-*``) are refused.
        extensions: extension factories, offered in this order.

    Raises:
        ValueError: an argument cannot make a valid request; the message names it.
    """

    def __init__(
        self,
        host: str,
        port: int,
        resource: str,
        *,
        secure: bool = False,
        subprotocols: Sequence[str] | None = None,
        extra_headers: ExtraHeaders = None,
        extensions: Sequence[ClientExtensionFactory] | None = None,
    ) -> None:
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            raise ValueError(f"port must be an int from 1 to 65535, not {port!r}")
        if not resource.startswith("/"):
            raise ValueError(f"resource must start with '/', not {resource!r}")
        if not resource.isascii():
            raise ValueError(f"resource must be ASCII (percent-encode the rest), not {resource!r}")
        if isinstance(subprotocols, str):
            raise ValueError("subprotocols must be a sequence of str, not a str")
        self.key: Final = base64.b64encode(os.urandom(KEY_BYTES)).decode("ascii")
        """The ``Sec-WebSocket-Key`` of this handshake."""
        self._subprotocols = list(subprotocols or [])
        self._factories = list(extensions or [])
        headers: Headers = [
            (b"Host", build_host(host, port, secure=secure).encode("ascii")),
            (b"Upgrade", b"websocket"),
            (b"Connection", b"Upgrade"),
            (b"Sec-WebSocket-Key", self.key.encode("ascii")),
            (b"Sec-WebSocket-Version", WEBSOCKET_VERSION.encode("ascii")),
        ]
        if self._subprotocols:
            header = build_subprotocol_header(self._subprotocols)
            headers.append((b"Sec-WebSocket-Protocol", header.encode("ascii")))
        if self._factories:
            offers = [(f.name, f.get_request_params()) for f in self._factories]
            header = build_extension_header(offers)
            headers.append((b"Sec-WebSocket-Extensions", header.encode("ascii")))
        headers.append((b"User-Agent", DEFAULT_USER_AGENT.encode("ascii")))
        extra = normalize_headers(extra_headers, reserved=_CLIENT_RESERVED)
        replaced = {name.lower() for name, _ in extra} & {b"host", b"user-agent"}
        headers = [(n, v) for n, v in headers if n.lower() not in replaced] + extra
        self.request_headers: Final[list[tuple[bytes, bytes]]] = headers
        """The request's headers, as sent."""
        self._connection = h11.Connection(
            h11.CLIENT, max_incomplete_event_size=DEFAULT_MAX_HEADER_BYTES
        )
        try:
            self._request = self._connection.send(
                h11.Request(method="GET", target=resource.encode("ascii"), headers=headers)
            )
        except h11.LocalProtocolError as exc:
            raise ValueError(f"cannot make a request for {resource!r}: {exc}") from None
        self._connection.send(h11.EndOfMessage())
        self._received = 0
        self._eof = False
        self._done = False
        self._status_code = 0
        self._response_headers: Headers = []
        self._body = bytearray()

    def request_bytes(self) -> bytes:
        """Return the request to send: the HTTP head, no body."""
        return self._request

    def receive_data(self, data: bytes) -> ClientHandshakeResult | None:
        """Feed bytes received from the server; ``b""`` means EOF.

        Returns:
            ``None`` while the response is incomplete, then the result (whose
            ``extra_data`` holds any bytes behind the 101's head).

        Raises:
            ConnectionRejected: the server answered with a final status other
                than 101; its body, read through ``Content-Length``, chunks or
                EOF, is kept up to :data:`MAX_REJECTION_BODY` bytes (reading
                stops there).
            InvalidHeader: the 101 lacks a header RFC 6455 requires, or a
                value is wrong (``InvalidHeaderFormat`` if it is malformed).
            NegotiationError: the server chose an extension or subprotocol that
                was not offered, or an extension factory refused the answer.
            HandshakeError: the response is not valid HTTP, is too large, or
                the connection closed before it was complete.
            ProtocolError: called again after the handshake ended.
        """
        if self._done:
            raise ProtocolError("the opening handshake is over")
        if not data:
            self._eof = True
        self._received += len(data)
        self._connection.receive_data(data)
        try:
            return self._process_events()
        except BaseException:
            self._done = True
            raise

    def _process_events(self) -> ClientHandshakeResult | None:
        while True:
            try:
                event = self._connection.next_event()
            except h11.RemoteProtocolError as exc:
                if exc.error_status_hint == 431:
                    message = f"response head exceeds {DEFAULT_MAX_HEADER_BYTES} bytes"
                elif self._eof and self._status_code:
                    # The body was cut short: the rejection is still the answer.
                    raise self._rejected() from exc
                elif self._eof:
                    message = "connection closed before the handshake response was complete"
                else:
                    message = f"invalid HTTP response: {_shorten(str(exc), MAX_HTTP_ERROR_DETAIL)}"
                raise HandshakeError(message) from exc
            if event is h11.NEED_DATA:
                return None
            if isinstance(event, h11.InformationalResponse | h11.Response):
                self._check_head_size(event.headers)
            if isinstance(event, h11.InformationalResponse):
                if event.status_code == 101:
                    self._done = True
                    return self._check_switch(list(event.headers))
                # RFC 7231 §6.2: "A client MUST be able to parse one or more
                # 1xx responses received prior to a final response".
                continue
            if isinstance(event, h11.Response):
                self._status_code = event.status_code
                self._response_headers = list(event.headers)
            elif isinstance(event, h11.Data):
                room = MAX_REJECTION_BODY - len(self._body)
                self._body += event.data[:room]
                if len(event.data) >= room:
                    raise self._rejected()
            elif isinstance(event, h11.EndOfMessage):
                raise self._rejected()
            else:  # pragma: no cover - h11 gives nothing else before the end of a response
                raise HandshakeError(f"unexpected HTTP event: {event!r}")

    def _check_head_size(self, headers: Sequence[tuple[bytes, bytes]]) -> None:
        # h11 bounds a head that arrives in pieces; one that arrives whole is
        # measured here: everything received minus what h11 has not parsed.
        size = self._received - len(self._connection.trailing_data[0])
        if size > DEFAULT_MAX_HEADER_BYTES:
            raise HandshakeError(f"response head exceeds {DEFAULT_MAX_HEADER_BYTES} bytes")
        if len(headers) > DEFAULT_MAX_HEADER_COUNT:
            raise HandshakeError(f"response has more than {DEFAULT_MAX_HEADER_COUNT} headers")

    def _rejected(self) -> ConnectionRejected:
        return ConnectionRejected(self._status_code, self._response_headers, bytes(self._body))

    def _check_switch(self, headers: Headers) -> ClientHandshakeResult:
        """Check a 101 response (:rfc:`6455#section-4.1`, the client's checks)."""
        # "If the response lacks an |Upgrade| header field or the |Upgrade|
        # header field contains a value that is not an ASCII case-insensitive
        # match for the value "websocket", the client MUST _Fail the WebSocket
        # Connection_."
        values = index_headers(headers)
        upgrade = values.get("upgrade", [])
        if not upgrade:
            raise InvalidHeader("Upgrade")
        protocols = parse_upgrade_header(upgrade)
        if [p.lower() for p in protocols] != ["websocket"]:
            raise InvalidHeader("Upgrade", ", ".join(upgrade))
        # "If the response lacks a |Connection| header field or the
        # |Connection| header field doesn't contain a token that is an ASCII
        # case-insensitive match for the value "Upgrade", the client MUST
        # _Fail the WebSocket Connection_."
        connection = values.get("connection", [])
        if not connection:
            raise InvalidHeader("Connection")
        options = parse_token_list(connection, name="Connection")
        if "upgrade" not in (option.lower() for option in options):
            raise InvalidHeader("Connection", ", ".join(connection))
        # "If the response lacks a |Sec-WebSocket-Accept| header field or the
        # |Sec-WebSocket-Accept| contains a value other than the
        # base64-encoded SHA-1 of the concatenation of the |Sec-WebSocket-Key|
        # (as a string, not base64-decoded) with the string
        # "258EAFA5-E914-47DA-95CA-C5AB0DC85B11" ... the client MUST _Fail the
        # WebSocket Connection_."
        accept = _single(values, "Sec-WebSocket-Accept")
        if accept != accept_key(self.key):
            raise InvalidHeader("Sec-WebSocket-Accept", accept)
        subprotocol, extensions = negotiate_response(values, self._factories, self._subprotocols)
        return ClientHandshakeResult(
            subprotocol=subprotocol,
            extensions=extensions,
            response_headers=headers,
            extra_data=self._connection.trailing_data[0],
        )


def check_handshake_limits(max_header_bytes: object, max_header_count: object) -> None:
    """Check the request-head limits a server takes.

    Raises:
        ValueError: a limit is not a positive ``int``; the message names it.
    """
    for name, limit in (
        ("max_header_bytes", max_header_bytes),
        ("max_header_count", max_header_count),
    ):
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValueError(f"{name} must be a positive int, not {limit!r}")


def check_origins(origins: object) -> frozenset[str | None] | None:
    """Return ``origins`` as a frozenset, checked.

    Raises:
        TypeError: not ``None``, a string (a common slip for a list of one),
            or a collection holding anything but ``str`` and ``None``.
    """
    if origins is None:
        return None
    if isinstance(origins, str | bytes) or not isinstance(origins, Collection):
        raise TypeError(
            f"origins must be a list of origins (str, or None), not {type(origins).__name__}"
        )
    for origin in origins:
        if origin is not None and not isinstance(origin, str):
            raise TypeError(f"origins must hold str or None, not {type(origin).__name__}")
    return frozenset(origins)


def origin_refusal(
    values: Mapping[str, list[str]], origins: frozenset[str | None] | None
) -> HandshakeError | None:
    """Return why a request's ``Origin`` is refused (answer 403), or ``None`` if it is allowed.

    ``values`` is the request's headers as :func:`~trio_wsext.headers.index_headers`
    gives them; ``origins`` as :func:`check_origins` returns them (``None``
    admits any request). Shared by the HTTP/1.1 and the HTTP/2 handshakes.
    """
    if origins is None:
        return None
    origin = values.get("origin", [])
    if len(origin) > 1 or (origin[0] if origin else None) not in origins:
        shown = ", ".join(origin) if origin else "none"
        return HandshakeError(f"origin not allowed: {shown[:100]}")
    return None


def negotiate_request(
    request: HandshakeRequest,
    subprotocol: str | None,
    extensions: Sequence[ServerExtensionFactory],
) -> tuple[Headers, list[Extension]]:
    """Settle a request's subprotocol and extensions: the response headers, and what to run.

    Shared by the HTTP/1.1 (101) and the HTTP/2 (200, :rfc:`8441`) answers.

    Returns:
        ``Sec-WebSocket-Protocol`` and ``Sec-WebSocket-Extensions`` headers
        (those that apply), and the negotiated extensions in chain order.

    Raises:
        ValueError: ``subprotocol`` was not offered by the client.
    """
    # RFC 6455 §4.2.2: the server's subprotocol must be "one of the values
    # the client sent in its handshake" (the client fails otherwise).
    if subprotocol is not None and subprotocol not in request.subprotocols:
        raise ValueError(f"subprotocol {subprotocol!r} was not offered by the client")
    response, active = negotiate_server(extensions, request.extensions)
    headers: Headers = []
    if subprotocol is not None:
        headers.append((b"Sec-WebSocket-Protocol", subprotocol.encode("ascii")))
    if response:
        headers.append(
            (b"Sec-WebSocket-Extensions", build_extension_header(response).encode("ascii"))
        )
    return headers, active


def negotiate_response(
    values: Mapping[str, list[str]],
    factories: Sequence[ClientExtensionFactory],
    subprotocols: Sequence[str],
) -> tuple[str | None, list[Extension]]:
    """Check the subprotocol and extensions of a server's answer; build the extensions.

    Shared by the HTTP/1.1 (101) and the HTTP/2 (2xx, :rfc:`8441`) answers.
    ``values`` is the response's headers as
    :func:`~trio_wsext.headers.index_headers` gives them.

    Returns:
        The chosen subprotocol (or ``None``) and the negotiated extensions.

    Raises:
        InvalidHeader: several subprotocols, or a malformed header.
        NegotiationError: an extension or subprotocol that was not offered,
            or a factory refused the answer.
    """
    # "If the response includes a |Sec-WebSocket-Extensions| header field
    # and this header field indicates the use of an extension that was not
    # present in the client's handshake ..., the client MUST _Fail the
    # WebSocket Connection_." (negotiate_client enforces it.)
    extensions = negotiate_client(
        factories, parse_extension_header(values.get("sec-websocket-extensions", []))
    )
    # "If the response includes a |Sec-WebSocket-Protocol| header field
    # and this header field indicates the use of a subprotocol that was
    # not present in the client's handshake ..., the client MUST _Fail the
    # WebSocket Connection_."
    protocol = values.get("sec-websocket-protocol", [])
    if not protocol:
        return None, extensions
    chosen = parse_subprotocol_header(protocol)
    if len(chosen) > 1:
        raise InvalidHeader(
            "Sec-WebSocket-Protocol", ", ".join(protocol), f"several values: {chosen!r}"
        )
    if chosen[0] not in subprotocols:
        raise NegotiationError(f"server chose subprotocol {chosen[0]!r}, which was not offered")
    return chosen[0], extensions


def request_path(target: str) -> str | None:
    """The path and query a request target names, or ``None`` if it names none.

    RFC 7230 §5.3: the origin-form (``/chat?room=1``) is what a client sends
    to a server; a server "MUST accept the absolute-form"
    (``http://example.com/chat``), which is reduced to its path and query so
    that a handler routing on ``path`` never sees a host in it. The
    authority-form and the asterisk-form name no resource here.
    """
    if target.startswith("/"):
        return target
    scheme, _, rest = target.partition("://")
    if scheme.lower() not in {"http", "https", "ws", "wss"} or not rest:
        return None
    parts = urllib.parse.urlsplit(target)
    if not parts.netloc:
        return None
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


@final
class ServerHandshake:
    """The server's side of the opening handshake.

    Feed received bytes to :meth:`receive_data` until it returns a
    :class:`HandshakeRequest`, then answer with :meth:`accept` or
    :meth:`reject`. If it raises, send :meth:`error_response` and close.

    Args:
        max_header_bytes: the most bytes of request line and headers accepted
            (431 beyond).
        max_header_count: the most header lines accepted (431 beyond).
        origins: ``None`` admits any request; otherwise the ``Origin`` values
            allowed, compared exactly (``None`` in it admits a request without
            ``Origin``, such as one from a program rather than a browser).
            Others get 403: a browser sends the page's origin, so this is
            what stops cross-site WebSocket hijacking.

    Raises:
        ValueError: a limit is not a positive ``int``.
        TypeError: ``origins`` is not ``None`` or a collection of ``str``/``None``.
    """

    def __init__(
        self,
        *,
        max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES,
        max_header_count: int = DEFAULT_MAX_HEADER_COUNT,
        origins: Collection[str | None] | None = None,
    ) -> None:
        check_handshake_limits(max_header_bytes, max_header_count)
        self.max_header_bytes: Final = max_header_bytes
        self.max_header_count: Final = max_header_count
        self.origins: Final = check_origins(origins)
        self._connection = h11.Connection(h11.SERVER, max_incomplete_event_size=max_header_bytes)
        self._received = 0
        self._eof = False
        self._done = False
        self._request: HandshakeRequest | None = None
        self._failure: tuple[HandshakeError, int, Headers] | None = None

    def receive_data(self, data: bytes) -> HandshakeRequest | None:
        """Feed bytes received from the client; ``b""`` means EOF.

        Returns:
            ``None`` while the request is incomplete, then the request (whose
            ``extra_data`` holds any bytes behind its head).

        Raises:
            HandshakeError: the request is not a valid opening handshake
                (``InvalidHeader`` or ``InvalidHeaderFormat`` for a header);
                answer with :meth:`error_response`.
            ProtocolError: called again after the handshake ended.
        """
        if self._done:
            raise ProtocolError("the opening handshake request was already received")
        if not data:
            self._eof = True
        self._received += len(data)
        self._connection.receive_data(data)
        try:
            return self._process_events()
        except BaseException:
            self._done = True
            raise

    def _fail(
        self,
        status_code: int,
        exc: HandshakeError,
        headers: Sequence[tuple[bytes, bytes]] = (),
    ) -> HandshakeError:
        """Remember the HTTP status (and headers) that answer ``exc``; return it."""
        self._failure = (exc, status_code, list(headers))
        return exc

    def _process_events(self) -> HandshakeRequest | None:
        while True:
            try:
                event = self._connection.next_event()
            except h11.RemoteProtocolError as exc:
                if exc.error_status_hint == 431:
                    raise self._fail(
                        431, HandshakeError(f"request head exceeds {self.max_header_bytes} bytes")
                    ) from exc
                if self._eof:
                    raise self._fail(
                        400, HandshakeError("connection closed before the request was complete")
                    ) from exc
                detail = _shorten(str(exc), MAX_HTTP_ERROR_DETAIL)
                raise self._fail(
                    exc.error_status_hint, HandshakeError(f"invalid HTTP request: {detail}")
                ) from exc
            if event is h11.NEED_DATA:
                return None
            if isinstance(event, h11.ConnectionClosed):
                # h11 reports EOF before the first byte as an event, not an error.
                raise self._fail(
                    400, HandshakeError("connection closed before the request was complete")
                )
            if isinstance(event, h11.Request):
                self._request = self._check_request(event)
            elif isinstance(event, h11.EndOfMessage) and self._request is not None:
                self._done = True
                return attrs.evolve(self._request, extra_data=self._connection.trailing_data[0])
            else:  # pragma: no cover - h11 gives Request, then EndOfMessage (no body: refused)
                raise self._fail(400, HandshakeError(f"unexpected HTTP event: {event!r}"))

    def _check_request(self, event: h11.Request) -> HandshakeRequest:
        """Check a request head (:rfc:`6455#section-4.2.1`); raise at the first fault."""
        # h11 bounds a head that arrives in pieces; one that arrives whole is
        # measured here: everything received minus what h11 has not parsed.
        size = self._received - len(self._connection.trailing_data[0])
        if size > self.max_header_bytes:
            raise self._fail(
                431, HandshakeError(f"request head exceeds {self.max_header_bytes} bytes")
            )
        if len(event.headers) > self.max_header_count:
            raise self._fail(
                431, HandshakeError(f"request has more than {self.max_header_count} headers")
            )
        headers = list(event.headers)
        method = event.method.decode("latin-1")
        # "The method of the request MUST be GET, and the HTTP version MUST be
        # at least 1.1."
        if method != "GET":
            raise self._fail(
                405, HandshakeError(f"unsupported HTTP method {method!r}"), [(b"Allow", b"GET")]
            )
        if event.http_version != b"1.1":
            version = event.http_version.decode("latin-1")
            status = 400 if version == "1.0" else 505
            raise self._fail(status, HandshakeError(f"unsupported HTTP version {version}"))
        # RFC 7230 §5.4: "A server MUST respond with a 400 (Bad Request) status
        # code to any HTTP/1.1 request message that lacks a Host header field
        # and to any request message that contains more than one Host header
        # field": h11 checks both and raises RemoteProtocolError (400); "...
        # or a Host header field with an invalid field-value" is checked here.
        values = index_headers(headers)
        hosts = values.get("host", [])
        if len(hosts) != 1 or not is_valid_host(hosts[0]):
            shown = ", ".join(hosts)[:100]
            raise self._fail(400, InvalidHeader("Host", shown, f"invalid Host: {shown!r}"))
        # "An |Upgrade| header field containing the value "websocket", treated
        # as an ASCII case-insensitive value." RFC 7231 §6.5.15: "The server
        # MUST send an Upgrade header field in a 426 response".
        upgrade_required = [(b"Upgrade", b"websocket"), (b"Connection", b"Upgrade, close")]
        upgrade = values.get("upgrade", [])
        if not upgrade:
            raise self._fail(426, InvalidHeader("Upgrade"), upgrade_required)
        try:
            protocols = parse_upgrade_header(upgrade)
        except InvalidHeaderFormat as exc:
            raise self._fail(400, exc) from None
        if "websocket" not in (protocol.lower() for protocol in protocols):
            raise self._fail(426, InvalidHeader("Upgrade", ", ".join(upgrade)), upgrade_required)
        # "A |Connection| header field that includes the token "Upgrade",
        # treated as an ASCII case-insensitive value."
        connection = values.get("connection", [])
        if not connection:
            raise self._fail(426, InvalidHeader("Connection"), upgrade_required)
        try:
            options = parse_token_list(connection, name="Connection")
        except InvalidHeaderFormat as exc:
            raise self._fail(400, exc) from None
        if "upgrade" not in (option.lower() for option in options):
            raise self._fail(
                426, InvalidHeader("Connection", ", ".join(connection)), upgrade_required
            )
        # RFC 6455 §4.4: "If this version does not match a version understood
        # by the server, the server MUST abort the WebSocket handshake
        # described in this section and instead send an appropriate HTTP error
        # code (such as 426 Upgrade Required) and a |Sec-WebSocket-Version|
        # header field indicating the version(s) the server is capable of
        # understanding."
        version_required = [*upgrade_required, (b"Sec-WebSocket-Version", b"13")]
        versions = values.get("sec-websocket-version", [])
        if not versions:
            raise self._fail(426, InvalidHeader("Sec-WebSocket-Version"), version_required)
        if versions != [WEBSOCKET_VERSION]:
            raise self._fail(
                426, InvalidHeader("Sec-WebSocket-Version", ", ".join(versions)), version_required
            )
        # "A |Sec-WebSocket-Key| header field with a base64-encoded (see
        # Section 4 of [RFC4648]) value that, when decoded, is 16 bytes in
        # length." RFC 6455 §11.3.1: it "MUST NOT appear more than once".
        try:
            key = _single(values, "Sec-WebSocket-Key")
        except InvalidHeader as exc:
            raise self._fail(400, exc) from None
        try:
            raw_key = base64.b64decode(key.encode("latin-1"), validate=True)
        except binascii.Error:
            raw_key = b""
        if len(raw_key) != KEY_BYTES:
            raise self._fail(
                400,
                InvalidHeader("Sec-WebSocket-Key", key, f"not the base64 of 16 bytes: {key!r}"),
            )
        try:
            extensions = parse_extension_header(values.get("sec-websocket-extensions", []))
            subprotocols = parse_subprotocol_header(values.get("sec-websocket-protocol", []))
        except InvalidHeaderFormat as exc:
            raise self._fail(400, exc) from None
        # A GET request may not carry a body here: the bytes behind the head
        # are the client's first frames.
        lengths = values.get("content-length", [])
        if values.get("transfer-encoding", []) or any(v.strip() != "0" for v in lengths):
            raise self._fail(400, HandshakeError("a handshake request has no body"))
        path = request_path(event.target.decode("latin-1"))
        if path is None:
            raise self._fail(
                400, HandshakeError(f"request target is not a path: {event.target[:100]!r}")
            )
        refusal = origin_refusal(values, self.origins)
        if refusal is not None:
            raise self._fail(403, refusal)
        return HandshakeRequest(
            method=method,
            path=path,
            headers=headers,
            key=key,
            subprotocols=subprotocols,
            extensions=extensions,
            extra_data=b"",
        )

    def accept(
        self,
        request: HandshakeRequest,
        *,
        subprotocol: str | None = None,
        extra_headers: ExtraHeaders = None,
        extensions: Sequence[ServerExtensionFactory] | None = None,
    ) -> tuple[bytes, list[Extension], list[tuple[bytes, bytes]]]:
        """Accept the request: negotiate the extensions and build the 101 response.

        The response's ``Sec-WebSocket-Extensions`` lists the accepted
        extensions in the order accepted (the client's order), as
        :func:`~trio_wsext.negotiation.negotiate_server` decides.

        Args:
            request: what :meth:`receive_data` returned.
            subprotocol: one of ``request.subprotocols``, or ``None``.
            extra_headers: more response headers (not ``Upgrade``,
                ``Connection`` nor ``Sec-WebSocket-*``).
            extensions: the server's extension factories.

        Returns:
            The response bytes to send, the negotiated extensions (to run as
            a chain, in this order) and the response headers.

        Raises:
            ValueError: the subprotocol was not offered, or an extra header
                is invalid or reserved.
        """
        negotiated, active = negotiate_request(request, subprotocol, extensions or ())
        extra = normalize_headers(extra_headers, reserved=_ACCEPT_RESERVED)
        headers: Headers = [
            (b"Upgrade", b"websocket"),
            (b"Connection", b"Upgrade"),
            (b"Sec-WebSocket-Accept", accept_key(request.key).encode("ascii")),
            *negotiated,
            *extra,
        ]
        return _build_head(_status_line(101), headers), active, headers

    def reject(
        self,
        status_code: int,
        *,
        extra_headers: ExtraHeaders = None,
        body: bytes | None = None,
    ) -> bytes:
        """Build a response that refuses the connection; then close it.

        Args:
            status_code: a final HTTP status, 200 to 599.
            extra_headers: more response headers (``Content-Length`` and
                ``Transfer-Encoding`` are set here); a ``Connection`` header
                here replaces the default ``Connection: close``.
            body: the response body, or ``None`` for none.

        Raises:
            ValueError: the status is not a final one, or a header is invalid.
        """
        if isinstance(status_code, bool) or not isinstance(status_code, int):
            raise ValueError(f"status_code must be an int, not {status_code!r}")
        if not 200 <= status_code <= 599:
            raise ValueError(f"status_code must be from 200 to 599, not {status_code}")
        return _build_response(
            status_code, normalize_headers(extra_headers, reserved=_REJECT_RESERVED), body or b""
        )

    def error_response(self, exc: HandshakeError) -> bytes:
        """Build the HTTP answer to a request that :meth:`receive_data` refused.

        The status says what failed: 400 for a malformed request or header,
        405 (with ``Allow: GET``) for another method, 426 (with
        ``Upgrade: websocket``) for a request that is not a WebSocket upgrade,
        and also with ``Sec-WebSocket-Version: 13`` for another version, 431
        for too many or too large headers, 505 for an HTTP version other than
        1.x. The body is one line of text: the reason (at most
        :data:`MAX_ERROR_REASON` characters of it). The response ends with
        ``Connection: close``; close the connection after sending it.

        Args:
            exc: the exception :meth:`receive_data` raised (any other
                ``HandshakeError`` gets a 400).
        """
        status_code: int = 400
        headers: Headers = []
        if self._failure is not None and self._failure[0] is exc:
            _, status_code, headers = self._failure
        reason = _shorten(str(exc), MAX_ERROR_REASON)
        end = "" if reason.endswith(".") else "."
        body = f"Failed to open a WebSocket connection: {reason}{end}\n".encode()
        headers = [*headers, (b"Content-Type", b"text/plain; charset=utf-8")]
        return _build_response(status_code, headers, body)


def _build_response(status_code: int, headers: Headers, body: bytes) -> bytes:
    if not any(name.lower() == b"connection" for name, _ in headers):
        headers = [*headers, (b"Connection", b"close")]
    headers = [*headers, (b"Content-Length", str(len(body)).encode("ascii"))]
    return _build_head(_status_line(status_code), headers) + body
