"""trio_wsext: WebSocket client and server for trio, with composable extensions.

The public API: the client functions, the server, the connection and its
statistics, the frame values, and the main exceptions.
Extensions live in :mod:`trio_wsext.extensions`.
"""

from __future__ import annotations

from .broadcasting import BroadcastResult, broadcast
from .client import (
    connect_websocket,
    connect_websocket_unix,
    connect_websocket_url,
    open_websocket,
    open_websocket_unix,
    open_websocket_url,
    wrap_client_stream,
)
from .connection import ConnectionStatistics, WebSocketConnection
from .endpoints import Endpoint
from .exceptions import (
    ConnectionClosed,
    ConnectionRejected,
    ConnectionTimeout,
    DisconnectionTimeout,
    DuplicateParameter,
    HandshakeError,
    InvalidHeader,
    InvalidHeaderFormat,
    InvalidParameterName,
    InvalidParameterValue,
    NegotiationError,
    PayloadTooBig,
    ProtocolError,
    ProxyError,
    ProxyStatusError,
    RedirectError,
    WebSocketError,
)
from .frames import Close, CloseCode, CloseReason, Frame, Opcode
from .http2 import Http2Options, Http2Pool, StaticResponse
from .options import ConnectionOptions
from .server import (
    WebSocketRequest,
    WebSocketServer,
    serve_websocket,
    serve_websocket_unix,
    wrap_server_stream,
)

#: The release, as trio-websocket exposes its own; kept equal to pyproject.toml's
#: ``version`` (tests/test_parity.py checks it).
__version__ = "0.1.0"

__all__ = [
    "BroadcastResult",
    "Close",
    "CloseCode",
    "CloseReason",
    "ConnectionClosed",
    "ConnectionOptions",
    "ConnectionRejected",
    "ConnectionStatistics",
    "ConnectionTimeout",
    "DisconnectionTimeout",
    "DuplicateParameter",
    "Endpoint",
    "Frame",
    "HandshakeError",
    "Http2Options",
    "Http2Pool",
    "InvalidHeader",
    "InvalidHeaderFormat",
    "InvalidParameterName",
    "InvalidParameterValue",
    "NegotiationError",
    "Opcode",
    "PayloadTooBig",
    "ProtocolError",
    "ProxyError",
    "ProxyStatusError",
    "RedirectError",
    "StaticResponse",
    "WebSocketConnection",
    "WebSocketError",
    "WebSocketRequest",
    "WebSocketServer",
    "broadcast",
    "connect_websocket",
    "connect_websocket_unix",
    "connect_websocket_url",
    "open_websocket",
    "open_websocket_unix",
    "open_websocket_url",
    "serve_websocket",
    "serve_websocket_unix",
    "wrap_client_stream",
    "wrap_server_stream",
]
