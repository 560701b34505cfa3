"""The opening handshake over HTTP/2 (:rfc:`8441`): extended CONNECT, sans-I/O.

Strategy: over HTTP/2 a WebSocket opens with a request on a stream of its
own::

    :method = CONNECT              :status = 200
    :protocol = websocket          sec-websocket-protocol = chat
    :scheme = https                sec-websocket-extensions = permessage-deflate
    :path = /chat
    :authority = example.com
    sec-websocket-version = 13
    sec-websocket-protocol = chat, superchat
    sec-websocket-extensions = permessage-deflate; client_max_window_bits
    origin = https://example.com

RFC 8441 §5: the ``Upgrade``/``Connection`` headers, the key and the accept
hash are not used, and any 2xx is a success (RFC 9113 §8.5). Everything else
is RFC 6455's: the version, the offers, the origin. Those checks are the
HTTP/1.1 handshake's own (:func:`~trio_wsext.handshake.origin_refusal`,
:func:`~trio_wsext.handshake.negotiate_request`,
:func:`~trio_wsext.handshake.negotiate_response`, the header grammar of
:mod:`trio_wsext.headers`); this module only maps them onto HTTP/2's header
list. h2 has already checked what HTTP/2 itself requires of the pseudo-headers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, final

from ..exceptions import HandshakeError, InvalidHeaderFormat
from ..extensions.base import ClientExtensionFactory, Extension, ServerExtensionFactory
from ..handshake import (
    DEFAULT_USER_AGENT,
    WEBSOCKET_VERSION,
    ClientHandshakeResult,
    ExtraHeaders,
    HandshakeRequest,
    negotiate_request,
    negotiate_response,
    offer_headers,
    origin_refusal,
    request_path,
)
from ..headers import (
    build_host,
    index_headers,
    normalize_headers,
    parse_extension_header,
    parse_subprotocol_header,
)

__all__ = [
    "Http2ClientHandshake",
    "Http2Refusal",
    "accept_headers",
    "check_request",
    "reject_headers",
    "request_target",
    "response_status",
]

Headers = list[tuple[bytes, bytes]]

#: RFC 8441 §4: "a new pseudo-header field :protocol"; §5: its value for
#: WebSockets is "websocket" (the Upgrade token of RFC 6455 §11.2).
PROTOCOL: Final = "websocket"

#: RFC 9113 §8.2.2: "An endpoint MUST NOT generate an HTTP/2 message
#: containing connection-specific header fields", and RFC 8441 §5 drops the
#: Upgrade handshake's own headers; none may come through ``extra_headers``.
_CONNECTION_SPECIFIC: Final = frozenset(
    {
        b"connection",
        b"upgrade",
        b"keep-alive",
        b"proxy-connection",
        b"transfer-encoding",
        b"te",  # codespell:ignore te
    }
)
_WEBSOCKET_HEADERS: Final = frozenset(
    b"sec-websocket-key sec-websocket-accept sec-websocket-version"
    b" sec-websocket-protocol sec-websocket-extensions".split()
)
_CLIENT_RESERVED: Final = _CONNECTION_SPECIFIC | _WEBSOCKET_HEADERS | {b"content-length"}
_ACCEPT_RESERVED: Final = _CONNECTION_SPECIFIC | _WEBSOCKET_HEADERS | {b"content-length"}
_REJECT_RESERVED: Final = _CONNECTION_SPECIFIC | {b"content-length"}


class Http2Refusal(HandshakeError):
    """An HTTP/2 request that is not a valid WebSocket handshake, with the answer it gets.

    Attributes:
        status_code: the HTTP status to answer with.
        headers: more response headers (``allow``, ``sec-websocket-version``).
    """

    def __init__(self, status_code: int, message: str, headers: Headers | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.headers = list(headers or [])

    def response(self) -> tuple[Headers, bytes]:
        """The response's headers (``:status`` first) and its one-line text body."""
        reason = str(self)
        end = "" if reason.endswith(".") else "."
        body = f"Failed to open a WebSocket connection: {reason}{end}\n".encode()
        headers = [*self.headers, (b"content-type", b"text/plain; charset=utf-8")]
        return reject_headers(self.status_code, headers, body), body


def _lower(headers: Headers) -> Headers:
    # RFC 9113 §8.2.1: "field names MUST be converted to lowercase".
    return [(name.lower(), value) for name, value in headers]


def _pseudo(headers: Sequence[tuple[bytes, bytes]]) -> dict[bytes, bytes]:
    return {name: value for name, value in headers if name.startswith(b":")}


def request_target(headers: Sequence[tuple[bytes, bytes]]) -> tuple[str, str]:
    """Return a request's ``:method`` and ``:path`` (``""`` when absent), as text."""
    pseudo = _pseudo(headers)
    return (
        pseudo.get(b":method", b"").decode("latin-1"),
        pseudo.get(b":path", b"").decode("latin-1"),
    )


def check_request(
    headers: Sequence[tuple[bytes, bytes]],
    *,
    end_stream: bool = False,
    origins: frozenset[str | None] | None = None,
    max_header_bytes: int = 16384,
    max_header_count: int = 128,
) -> HandshakeRequest:
    """Check an extended CONNECT (:rfc:`8441#section-4`); return it as a :class:`HandshakeRequest`.

    The request's ``headers`` become ``host`` (from ``:authority``) followed
    by the regular headers in order, as a handler reads them over HTTP/1.1;
    ``method`` is ``"CONNECT"`` and ``key`` is empty (RFC 8441 has none).

    Args:
        headers: the HEADERS frame's list, pseudo-headers first (h2 checked them).
        end_stream: whether the HEADERS frame ended the stream.
        origins: as :func:`~trio_wsext.handshake.check_origins` returns them.
        max_header_bytes: the most bytes of names and values (431 beyond).
        max_header_count: the most header fields (431 beyond).

    Raises:
        Http2Refusal: not a WebSocket handshake; answer it with its status.
    """
    if len(headers) > max_header_count:
        raise Http2Refusal(431, f"request has more than {max_header_count} headers")
    if sum(len(name) + len(value) + 4 for name, value in headers) > max_header_bytes:
        raise Http2Refusal(431, f"request head exceeds {max_header_bytes} bytes")
    pseudo = _pseudo(headers)
    method = pseudo.get(b":method", b"").decode("latin-1")
    if method != "CONNECT":
        raise Http2Refusal(
            405,
            f"unsupported HTTP method {method!r}: over HTTP/2 a WebSocket opens with"
            " an extended CONNECT (RFC 8441)",
            [(b"allow", b"CONNECT")],
        )
    protocol = pseudo.get(b":protocol")
    if protocol is None:
        raise Http2Refusal(400, "a CONNECT without :protocol (a tunnel) is not served here")
    # RFC 9220 §3 (for a :protocol a server does not support): "the server
    # SHOULD respond to the request with a 501 (Not Implemented) status code".
    if protocol.decode("latin-1").lower() != PROTOCOL:
        raise Http2Refusal(501, f"unsupported :protocol {protocol.decode('latin-1')!r}")
    # RFC 8441 §4: "A CONNECT request ... MUST include :scheme and :path";
    # RFC 8441 §5: the stream carries the WebSocket's bytes, so the request
    # cannot end with its headers.
    if end_stream:
        raise Http2Refusal(400, "the extended CONNECT ended its stream")
    regular = [(name, value) for name, value in headers if not name.startswith(b":")]
    values = index_headers(regular)
    # RFC 6455 §4.4 (via RFC 8441 §5): another version gets "an appropriate
    # HTTP error code ... and a |Sec-WebSocket-Version| header field".
    versions = values.get("sec-websocket-version", [])
    if versions != [WEBSOCKET_VERSION]:
        shown = ", ".join(versions) or "none"
        raise Http2Refusal(
            400,
            f"unsupported Sec-WebSocket-Version: {shown[:100]}",
            [(b"sec-websocket-version", WEBSOCKET_VERSION.encode("ascii"))],
        )
    try:
        extensions = parse_extension_header(values.get("sec-websocket-extensions", []))
        subprotocols = parse_subprotocol_header(values.get("sec-websocket-protocol", []))
    except InvalidHeaderFormat as exc:
        raise Http2Refusal(400, str(exc)) from None
    path = request_path(pseudo.get(b":path", b"").decode("latin-1"))
    if path is None:
        raise Http2Refusal(400, "request :path is not a path")
    refusal = origin_refusal(values, origins)
    if refusal is not None:
        raise Http2Refusal(403, str(refusal))
    authority = pseudo.get(b":authority")
    hosts = [value for name, value in regular if name == b"host"]
    host = authority if authority is not None else (hosts[0] if hosts else b"")
    return HandshakeRequest(
        method=method,
        path=path,
        headers=[(b"host", host), *((n, v) for n, v in regular if n != b"host")],
        key="",
        subprotocols=subprotocols,
        extensions=extensions,
        extra_data=b"",
    )


def accept_headers(
    request: HandshakeRequest,
    *,
    subprotocol: str | None = None,
    extra_headers: ExtraHeaders = None,
    extensions: Sequence[ServerExtensionFactory] = (),
) -> tuple[Headers, list[Extension]]:
    """Accept an extended CONNECT: the 200's headers (``:status`` first) and the extensions.

    Raises:
        ValueError: the subprotocol was not offered, or an extra header is
            invalid or one the handshake sets (or HTTP/2 forbids).
    """
    negotiated, active = negotiate_request(request, subprotocol, extensions)
    extra = normalize_headers(extra_headers, reserved=_ACCEPT_RESERVED)
    return [(b":status", b"200"), *_lower(negotiated), *_lower(extra)], active


def reject_headers(
    status_code: int, extra_headers: ExtraHeaders = None, body: bytes = b""
) -> Headers:
    """The headers of a response that refuses a request (``:status`` first).

    Raises:
        ValueError: the status is not 200-599, or a header is invalid or one
            HTTP/2 forbids.
    """
    if isinstance(status_code, bool) or not isinstance(status_code, int):
        raise ValueError(f"status_code must be an int, not {status_code!r}")
    if not 200 <= status_code <= 599:
        raise ValueError(f"status_code must be from 200 to 599, not {status_code}")
    extra = normalize_headers(extra_headers, reserved=_REJECT_RESERVED)
    return [
        (b":status", str(status_code).encode("ascii")),
        *_lower(extra),
        (b"content-length", str(len(body)).encode("ascii")),
    ]


def response_status(headers: Sequence[tuple[bytes, bytes]]) -> int:
    """Return a response's ``:status`` (h2 checked that there is one, three digits).

    Raises:
        HandshakeError: there is none (a peer h2 did not check, in a test).
    """
    status = _pseudo(headers).get(b":status", b"")
    if not status.isdigit():
        raise HandshakeError(f"response has no valid :status: {status[:20]!r}")
    return int(status)


@final
class Http2ClientHandshake:
    """The client's extended CONNECT (:rfc:`8441#section-4`) and the check of its answer.

    Args:
        host: the server's host name or IP address (for ``:authority``).
        port: the server's port; left out of ``:authority`` when it is the
            scheme's default.
        resource: the request target, path and query, starting with ``/``.
        secure: whether the connection uses TLS (``:scheme`` https).
        subprotocols: subprotocols to offer, in order of preference.
        extra_headers: more request headers; ``Host`` becomes ``:authority``
            (RFC 9113 §8.3.1), ``User-Agent`` replaces the default one.
            Connection-specific headers (RFC 9113 §8.2.2) and the handshake's
            own are refused.
        extensions: extension factories, offered in this order.

    Raises:
        ValueError: an argument cannot make a valid request.
    """

    def __init__(
        self,
        host: str,
        port: int,
        resource: str,
        *,
        secure: bool,
        subprotocols: Sequence[str] | None = None,
        extra_headers: ExtraHeaders = None,
        extensions: Sequence[ClientExtensionFactory] | None = None,
    ) -> None:
        if not resource.startswith("/") or not resource.isascii():
            raise ValueError(f"resource must be ASCII and start with '/', not {resource!r}")
        if isinstance(subprotocols, str):
            raise ValueError("subprotocols must be a sequence of str, not a str")
        self._subprotocols = list(subprotocols or [])
        self._factories = list(extensions or [])
        extra = _lower(normalize_headers(extra_headers, reserved=_CLIENT_RESERVED))
        authority = build_host(host, port, secure=secure).encode("ascii")
        hosts = [value for name, value in extra if name == b"host"]
        if hosts:
            authority = hosts[-1]
        headers: Headers = [
            (b":method", b"CONNECT"),
            (b":protocol", PROTOCOL.encode("ascii")),
            (b":scheme", b"https" if secure else b"http"),
            (b":path", resource.encode("ascii")),
            (b":authority", authority),
            (b"sec-websocket-version", WEBSOCKET_VERSION.encode("ascii")),
        ]
        headers += _lower(offer_headers(self._subprotocols, self._factories))
        if not any(name == b"user-agent" for name, _ in extra):
            headers.append((b"user-agent", DEFAULT_USER_AGENT.encode("ascii")))
        headers += [(name, value) for name, value in extra if name != b"host"]
        self.request_headers: Final[Headers] = headers
        """The request's headers, as sent (pseudo-headers first)."""

    def receive_response(self, headers: Sequence[tuple[bytes, bytes]]) -> ClientHandshakeResult:
        """Check a 2xx answer: the subprotocol and extensions the server chose.

        Returns:
            The result; its ``response_headers`` are the regular headers
            (no ``:status``), its ``extra_data`` empty.

        Raises:
            HandshakeError: the status is not 2xx (the caller reads the body
                and raises :exc:`~trio_wsext.exceptions.ConnectionRejected`
                for those first).
            InvalidHeader: a malformed header.
            NegotiationError: an extension or subprotocol that was not
                offered, or a factory refused the answer.
        """
        status = response_status(headers)
        if not 200 <= status <= 299:
            raise HandshakeError(f"the server answered {status}, not 2xx")
        regular = [(name, value) for name, value in headers if not name.startswith(b":")]
        subprotocol, extensions = negotiate_response(
            index_headers(regular), self._factories, self._subprotocols
        )
        return ClientHandshakeResult(
            subprotocol=subprotocol,
            extensions=extensions,
            response_headers=regular,
            extra_data=b"",
        )
