"""The server's side of the opening handshake (:rfc:`6455#section-4.2`), sans-I/O.

:class:`ServerHandshake` checks the request, bounded in header bytes and
count, and gives a :class:`HandshakeRequest`; the application then calls
:meth:`~ServerHandshake.accept` or :meth:`~ServerHandshake.reject`. A bad
request raises a :class:`~trio_wsext.exceptions.HandshakeError`, and
:meth:`~ServerHandshake.error_response` is the HTTP answer to send for it.
The checks that do not depend on HTTP/1.1 (:func:`origin_refusal`,
:func:`negotiate_request`, :func:`request_path`) are functions, which the
HTTP/2 handshake (:rfc:`8441`) uses too.
"""

from __future__ import annotations

import base64
import binascii
import urllib.parse
from collections.abc import Collection, Mapping, Sequence
from typing import Final, final

import attrs
import h11

from ..exceptions import (
    HandshakeError,
    InvalidHeader,
    InvalidHeaderFormat,
)
from ..extensions.base import Extension, ExtensionParameter, ServerExtensionFactory
from ..headers import (
    build_extension_header,
    index_headers,
    is_valid_host,
    normalize_headers,
    parse_extension_header,
    parse_subprotocol_header,
    parse_token_list,
    parse_upgrade_header,
)
from ..negotiation import negotiate_server
from .head import (
    ACCEPT_RESERVED_HEADERS,
    DEFAULT_MAX_HEADER_BYTES,
    DEFAULT_MAX_HEADER_COUNT,
    MAX_ERROR_REASON,
    MAX_HTTP_ERROR_DETAIL,
    REJECT_RESERVED_HEADERS,
    ExtraHeaders,
    H11Side,
    Headers,
    build_head,
    build_response,
    shorten,
    single_value,
    status_line,
)
from .keys import KEY_BYTES, WEBSOCKET_VERSION, accept_key

__all__ = [
    "HandshakeRequest",
    "ServerHandshake",
    "check_handshake_limits",
    "check_origins",
    "negotiate_request",
    "origin_refusal",
    "request_path",
]


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
class ServerHandshake(H11Side[HandshakeRequest]):
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
        super().__init__(
            h11.SERVER,
            max_head_bytes=max_header_bytes,
            finished="the opening handshake request was already received",
        )
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
        return self._receive(data)

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
                detail = shorten(str(exc), MAX_HTTP_ERROR_DETAIL)
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
                return attrs.evolve(self._request, extra_data=self._trailing())
            else:  # pragma: no cover - h11 gives Request, then EndOfMessage (no body: refused)
                raise self._fail(400, HandshakeError(f"unexpected HTTP event: {event!r}"))

    def _check_request(self, event: h11.Request) -> HandshakeRequest:
        """Check a request head (:rfc:`6455#section-4.2.1`); raise at the first fault."""
        if self._head_size() > self.max_header_bytes:
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
            key = single_value(values, "Sec-WebSocket-Key")
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
        extra = normalize_headers(extra_headers, reserved=ACCEPT_RESERVED_HEADERS)
        headers: Headers = [
            (b"Upgrade", b"websocket"),
            (b"Connection", b"Upgrade"),
            (b"Sec-WebSocket-Accept", accept_key(request.key).encode("ascii")),
            *negotiated,
            *extra,
        ]
        return build_head(status_line(101), headers), active, headers

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
        return build_response(
            status_code,
            normalize_headers(extra_headers, reserved=REJECT_RESERVED_HEADERS),
            body or b"",
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
        reason = shorten(str(exc), MAX_ERROR_REASON)
        end = "" if reason.endswith(".") else "."
        body = f"Failed to open a WebSocket connection: {reason}{end}\n".encode()
        headers = [*headers, (b"Content-Type", b"text/plain; charset=utf-8")]
        return build_response(status_code, headers, body)
