"""The opening handshake (:rfc:`6455#section-4`), sans-I/O, on h11: both roles, re-exported.

Strategy: h11 reads the HTTP head (request line or status line, headers,
framing, the 101's switch of protocols); this package checks what RFC 6455
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

Modules: :mod:`~trio_wsext.handshake.head` (the HTTP/1.1 driver both roles
share, limits, response building), :mod:`~trio_wsext.handshake.keys` (the key
and its accept value), :mod:`~trio_wsext.handshake.client` and
:mod:`~trio_wsext.handshake.server`.
"""

from __future__ import annotations

from .client import ClientHandshake, ClientHandshakeResult, negotiate_response, offer_headers
from .head import (
    DEFAULT_MAX_HEADER_BYTES,
    DEFAULT_MAX_HEADER_COUNT,
    DEFAULT_USER_AGENT,
    MAX_ERROR_REASON,
    MAX_HTTP_ERROR_DETAIL,
    MAX_REJECTION_BODY,
    ExtraHeaders,
    Headers,
)
from .keys import GUID, KEY_BYTES, WEBSOCKET_VERSION, accept_key
from .server import (
    HandshakeRequest,
    ServerHandshake,
    check_handshake_limits,
    check_origins,
    negotiate_request,
    origin_refusal,
    request_path,
)

__all__ = [
    "DEFAULT_MAX_HEADER_BYTES",
    "DEFAULT_MAX_HEADER_COUNT",
    "DEFAULT_USER_AGENT",
    "GUID",
    "KEY_BYTES",
    "MAX_ERROR_REASON",
    "MAX_HTTP_ERROR_DETAIL",
    "MAX_REJECTION_BODY",
    "WEBSOCKET_VERSION",
    "ClientHandshake",
    "ClientHandshakeResult",
    "ExtraHeaders",
    "HandshakeRequest",
    "Headers",
    "ServerHandshake",
    "accept_key",
    "check_handshake_limits",
    "check_origins",
    "negotiate_request",
    "negotiate_response",
    "offer_headers",
    "origin_refusal",
    "request_path",
]
