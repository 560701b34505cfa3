"""An echo server: what ``python -m trio_wsext serve`` runs; ``demo`` and ``bench`` use it too.

Strategy: every accepted connection sends back each message it receives,
text as text and binary as binary. A logger (if given) gets one line when a
connection opens, naming the peer, the path and the negotiated extensions
exactly as the ``Sec-WebSocket-Extensions`` response header states them, and
one when it closes, with the close code and the message counts from
:meth:`~trio_wsext.connection.WebSocketConnection.statistics`. Connection
tasks run in a nursery of their own, apart from the listener's, so that a
graceful shutdown can stop accepting first and then close what is open.
"""

from __future__ import annotations

import functools
import logging
import ssl
from typing import Final

import trio

from ..connection import WebSocketConnection
from ..exceptions import ConnectionClosed
from ..frames import CloseCode
from ..server import WebSocketRequest, WebSocketServer, serve_websocket

__all__ = ["SHUTDOWN_TIMEOUT", "describe_extensions", "echo_messages", "serve_echo"]

#: Seconds a graceful shutdown waits for the closing handshakes of the open
#: connections: a peer on the same machine answers in milliseconds, and an
#: operator pressing Ctrl-C will not wait much longer than this.
SHUTDOWN_TIMEOUT: Final = 5.0


def describe_extensions(ws: WebSocketConnection) -> str:
    """Say which extensions ``ws`` negotiated, as the handshake's response header put it.

    Returns:
        The ``Sec-WebSocket-Extensions`` value of the server's response (for
        example ``"permessage-deflate; client_max_window_bits=12"``), or
        ``"none"``.
    """
    values = [
        value.decode("latin-1")
        for name, value in ws.response_headers
        if name.lower() == b"sec-websocket-extensions"
    ]
    return ", ".join(values) or "none"


async def serve_echo(
    host: str | None,
    port: int,
    ssl_context: ssl.SSLContext | None = None,
    *,
    compression: str | None = "deflate",
    logger: logging.Logger | None = None,
    shutdown: trio.Event | None = None,
    task_status: trio.TaskStatus[WebSocketServer] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve WebSocket connections that echo every message, until cancelled or shut down.

    Cancellation drops every connection at once (the clients see 1006). Setting
    ``shutdown`` stops gracefully: the server stops listening, closes each open
    connection with 1001 (going away), waits up to :data:`SHUTDOWN_TIMEOUT`
    seconds for those closing handshakes, and returns.

    Args:
        host: the address to listen on (``None``: every interface).
        port: the TCP port; 0 lets the system choose (read it from the
            :class:`~trio_wsext.server.WebSocketServer` passed to ``task_status``).
        ssl_context: serve ``wss://`` with this context.
        compression: ``"deflate"`` to accept permessage-deflate, ``None`` not to.
        logger: where to log each connection; ``None`` logs nothing.
        shutdown: set it to shut the server down gracefully.
        task_status: gets the ``WebSocketServer`` once it listens.

    Raises:
        OSError: the address cannot be listened on.
    """
    connections: set[WebSocketConnection] = set()

    async def handler(request: WebSocketRequest) -> None:
        ws = await request.accept()
        connections.add(ws)
        try:
            await echo_messages(ws, request.remote, logger)
        finally:
            connections.discard(ws)

    async with trio.open_nursery() as handlers:
        async with trio.open_nursery() as listening:
            server: WebSocketServer = await listening.start(
                functools.partial(
                    serve_websocket,
                    handler,
                    host,
                    port,
                    ssl_context,
                    handler_nursery=handlers,
                    compression=compression,
                )
            )
            task_status.started(server)
            if shutdown is None:
                await trio.sleep_forever()
            else:
                await shutdown.wait()
            listening.cancel_scope.cancel()
        with trio.move_on_after(SHUTDOWN_TIMEOUT):
            async with trio.open_nursery() as closing:
                for ws in connections:
                    closing.start_soon(ws.aclose, CloseCode.GOING_AWAY, "server shutting down")
        handlers.cancel_scope.cancel()


async def echo_messages(
    ws: WebSocketConnection, remote: object, logger: logging.Logger | None
) -> None:
    """Send every message back until the connection closes; log its start and end.

    ``serve``'s echo, in one process or in each worker. The close reason (or
    ``cancelled``) and the count of messages echoed go to ``logger``.
    """
    peer = _endpoint(remote)
    if logger is not None:
        logger.info("%s connected to %s, extensions: %s", peer, ws.path, describe_extensions(ws))
    try:
        async for message in ws:
            await ws.send_message(message)
    except ConnectionClosed:
        pass  # ws.closed says why; logged below
    finally:
        if logger is not None:
            logger.info(
                "%s closed: %s; %d messages echoed",
                peer,
                ws.closed or "cancelled",
                ws.statistics().messages_sent,
            )


def _endpoint(address: object) -> str:
    """Format a peer address for the log: ``host:port``, ``[v6]:port``, or as it is."""
    host = getattr(address, "address", None)
    port = getattr(address, "port", None)
    if host is None and isinstance(address, tuple) and len(address) >= 2:
        host, port = address[0], address[1]
    if host is None:
        return str(address)
    host = str(host)
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
