"""The client's side of the opening handshake (:rfc:`6455#section-4.1`), sans-I/O.

:class:`ClientHandshake` makes the request at construction
(:meth:`~ClientHandshake.request_bytes`) and checks the response: a 101 gives
a :class:`ClientHandshakeResult`; any other final status raises
:class:`~trio_wsext.exceptions.ConnectionRejected` once its body is read (at
most :data:`~trio_wsext.handshake.head.MAX_REJECTION_BODY` bytes of it are
kept). :func:`negotiate_response` checks the server's choice of extensions
and subprotocol; the HTTP/2 handshake (:rfc:`8441`) uses it too.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping, Sequence
from typing import Final, final

import attrs
import h11

from ..exceptions import (
    ConnectionRejected,
    HandshakeError,
    InvalidHeader,
    NegotiationError,
)
from ..extensions.base import ClientExtensionFactory, Extension
from ..headers import (
    build_extension_header,
    build_host,
    build_subprotocol_header,
    index_headers,
    normalize_headers,
    parse_extension_header,
    parse_subprotocol_header,
    parse_token_list,
    parse_upgrade_header,
)
from ..negotiation import negotiate_client
from .head import (
    CLIENT_RESERVED_HEADERS,
    DEFAULT_MAX_HEADER_BYTES,
    DEFAULT_MAX_HEADER_COUNT,
    DEFAULT_USER_AGENT,
    MAX_HTTP_ERROR_DETAIL,
    MAX_REJECTION_BODY,
    ExtraHeaders,
    H11Side,
    Headers,
    shorten,
    single_value,
)
from .keys import KEY_BYTES, WEBSOCKET_VERSION, accept_key

__all__ = ["ClientHandshake", "ClientHandshakeResult", "negotiate_response", "offer_headers"]


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
class ClientHandshake(H11Side[ClientHandshakeResult]):
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
        headers += offer_headers(self._subprotocols, self._factories)
        headers.append((b"User-Agent", DEFAULT_USER_AGENT.encode("ascii")))
        extra = normalize_headers(extra_headers, reserved=CLIENT_RESERVED_HEADERS)
        replaced = {name.lower() for name, _ in extra} & {b"host", b"user-agent"}
        headers = [(n, v) for n, v in headers if n.lower() not in replaced] + extra
        self.request_headers: Final[list[tuple[bytes, bytes]]] = headers
        """The request's headers, as sent."""
        super().__init__(
            h11.CLIENT,
            max_head_bytes=DEFAULT_MAX_HEADER_BYTES,
            finished="the opening handshake is over",
        )
        try:
            self._request = self._connection.send(
                h11.Request(method="GET", target=resource.encode("ascii"), headers=headers)
            )
        except h11.LocalProtocolError as exc:
            raise ValueError(f"cannot make a request for {resource!r}: {exc}") from None
        self._connection.send(h11.EndOfMessage())
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
        return self._receive(data)

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
                    message = f"invalid HTTP response: {shorten(str(exc), MAX_HTTP_ERROR_DETAIL)}"
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
        if self._head_size() > DEFAULT_MAX_HEADER_BYTES:
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
        accept = single_value(values, "Sec-WebSocket-Accept")
        if accept != accept_key(self.key):
            raise InvalidHeader("Sec-WebSocket-Accept", accept)
        subprotocol, extensions = negotiate_response(values, self._factories, self._subprotocols)
        return ClientHandshakeResult(
            subprotocol=subprotocol,
            extensions=extensions,
            response_headers=headers,
            extra_data=self._trailing(),
        )


def offer_headers(
    subprotocols: Sequence[str], factories: Sequence[ClientExtensionFactory]
) -> Headers:
    """The request headers that offer ``subprotocols`` and the factories' extensions.

    ``Sec-WebSocket-Protocol`` and ``Sec-WebSocket-Extensions``, each only when
    there is something to offer, in the same form over HTTP/1.1 and HTTP/2
    (where the caller lowercases the names).
    """
    headers: Headers = []
    if subprotocols:
        header = build_subprotocol_header(subprotocols)
        headers.append((b"Sec-WebSocket-Protocol", header.encode("ascii")))
    if factories:
        offers = [(f.name, f.get_request_params()) for f in factories]
        header = build_extension_header(offers)
        headers.append((b"Sec-WebSocket-Extensions", header.encode("ascii")))
    return headers


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
