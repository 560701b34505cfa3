"""The client's HTTP/2 side: a WebSocket over an extended CONNECT (:rfc:`8441`), alone or pooled.

Strategy: :func:`connect_http2` is what the client functions call when
``http2`` is asked for. It gets an HTTP/2 connection -- a new one, or one of
an :class:`Http2Pool` to the same origin -- opens a stream on it with the
extended CONNECT of an :class:`~trio_wsext.http2.handshake.Http2ClientHandshake`,
and on a 2xx starts a :class:`~trio_wsext.connection.WebSocketConnection`
over that stream. It falls back to HTTP/1.1, as browsers do, when the server
cannot do RFC 8441:

- over TLS, ALPN chose ``http/1.1``: the same TLS connection then carries
  the HTTP/1.1 handshake (:class:`Http2Fallback` with the stream);
- the server's first SETTINGS lack ``SETTINGS_ENABLE_CONNECT_PROTOCOL = 1``
  (RFC 8441 §3: "a client MUST NOT send a CONNECT request with a :protocol
  pseudo-header field unless it has received this setting"): that
  connection goes away, and the caller opens a fresh one offering only
  ``http/1.1`` (:class:`Http2Fallback` without a stream).

In cleartext there is no ALPN: HTTP/2 is used only "with prior knowledge"
(RFC 9113 §3.3), when the caller says so; a server that then answers in
HTTP/1.1 is an error, not a fallback.

A connection of its own ends with its WebSocket (GOAWAY, then the socket
closes); a pool's stays open for the next WebSocket to its origin until the
server goes away or the pool closes.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable, Hashable, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Final, final

import attrs
import trio

from ..exceptions import ConnectionRejected, ConnectionTimeout, HandshakeError
from ..handshake import MAX_REJECTION_BODY, ClientHandshakeResult
from .handshake import Http2ClientHandshake, response_status
from .selection import ALPN_H2, client_alpn
from .settings import require_h2

if TYPE_CHECKING:
    from ..connection import WebSocketConnection
    from .connection import Http2Connection
    from .streams import Http2Stream

__all__ = ["Http2Fallback", "Http2Pool", "connect_http2"]

logger = logging.getLogger("trio_wsext.client")

Headers = list[tuple[bytes, bytes]]

#: Opens the transport: a TCP (or proxied, or Unix) stream to the target,
#: with TLS offering these ALPN protocols when the target is ``wss``;
#: returns the stream and how to name it in messages.
OpenStream = Callable[[Sequence[str] | None], Awaitable[tuple[trio.abc.Stream, str]]]
#: Makes the WebSocket over a stream once the handshake succeeded: the
#: stream, the handshake's result and the request's headers.
MakeConnection = Callable[[trio.abc.Stream, ClientHandshakeResult, Headers], "WebSocketConnection"]

#: Seconds :class:`Http2Pool` waits, when it closes, for the WebSockets still
#: open on its connections (after GOAWAY) before it closes them.
POOL_CLOSE_TIMEOUT: Final = 10.0


@final
@attrs.frozen
class Http2Fallback:
    """The server cannot do WebSockets over HTTP/2: use HTTP/1.1."""

    stream: trio.abc.Stream | None
    """A TLS stream on which ALPN chose ``http/1.1`` (use it), or ``None`` (open a new one)."""
    where: str
    """Where the stream goes, for messages."""
    reason: str
    """Why, for the log."""


@final
class Http2Pool:
    """HTTP/2 connections shared by the WebSockets a client opens to the same origin.

    ``async with Http2Pool() as pool:`` then ``open_websocket_url(url,
    http2=True, http2_pool=pool)`` for each WebSocket: one to an origin
    (scheme, host, port, TLS context and proxy) reuses an HTTP/2 connection
    of the pool that has room (the server's SETTINGS_MAX_CONCURRENT_STREAMS)
    and is not going away, instead of a TCP connection and TLS handshake of
    its own. A connection whose WebSockets all closed stays open for the next
    one, until the server goes away (or closes it when idle).

    Leaving the block sends GOAWAY on every connection, waits for the
    WebSockets still open on them (at most ``close_timeout`` seconds), then
    closes them. Cancellation closes them at once.

    Args:
        close_timeout: see above.

    Raises:
        ImportError: h2 is not installed (``pip install trio_wsext[http2]``).
    """

    def __init__(self, *, close_timeout: float = POOL_CLOSE_TIMEOUT) -> None:
        require_h2()
        self._close_timeout = close_timeout
        self._connections: dict[Hashable, list[Http2Connection]] = {}
        self._locks: dict[Hashable, trio.Lock] = {}
        self._nursery: trio.Nursery | None = None
        self._stack: contextlib.AsyncExitStack | None = None
        #: TCP connections the pool has opened so far (HTTP/2 ones).
        self.connections_opened = 0

    def __repr__(self) -> str:
        live = sum(len(connections) for connections in self._connections.values())
        return f"<Http2Pool {live} connections, {self.connections_opened} opened>"

    @property
    def connections(self) -> list[Http2Connection]:
        """The pool's HTTP/2 connections that are still running."""
        return [
            connection
            for connections in self._connections.values()
            for connection in connections
            if not connection.finished
        ]

    async def __aenter__(self) -> Http2Pool:
        if self._stack is not None:
            raise RuntimeError("this Http2Pool was entered already")
        stack = contextlib.AsyncExitStack()
        self._nursery = await stack.enter_async_context(trio.open_nursery())
        self._stack = stack
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool | None:
        if self._stack is None or self._nursery is None:
            raise RuntimeError("this Http2Pool is not open")
        nursery = self._nursery
        self._nursery = None
        connections = self.connections
        for connection in connections:
            connection.go_away()
        with trio.move_on_after(self._close_timeout):
            for connection in connections:
                await connection.wait_finished()
        nursery.cancel_scope.cancel()
        return await self._stack.__aexit__(exc_type, exc, traceback)

    async def _acquire(
        self,
        key: Hashable,
        open_connection: Callable[
            [trio.Nursery, bool], Awaitable[Http2Connection | Http2Fallback]
        ],
    ) -> Http2Connection | Http2Fallback:
        """Return a connection of the pool to ``key`` with room for a stream, or open one.

        One task at a time opens a connection per origin: the others wait,
        then share it.
        """
        if self._nursery is None:
            raise RuntimeError("use the pool inside `async with Http2Pool() as pool:`")
        lock = self._locks.setdefault(key, trio.Lock())
        async with lock:
            live = [c for c in self._connections.get(key, []) if not c.finished]
            self._connections[key] = live
            for connection in live:
                if connection.can_open_stream():
                    return connection
            result = await open_connection(self._nursery, False)
            if not isinstance(result, Http2Fallback):
                self.connections_opened += 1
                live.append(result)
            return result


async def _read_body(stream: Http2Stream) -> bytes:
    """Read a refusal's body, up to :data:`MAX_REJECTION_BODY` bytes."""
    body = bytearray()
    with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
        while len(body) < MAX_REJECTION_BODY:
            data = await stream.receive_some()
            if not data:
                break
            body += data
    return bytes(body[:MAX_REJECTION_BODY])


async def _open_connection(
    nursery: trio.Nursery,
    single_use: bool,
    *,
    open_stream: OpenStream,
    secure: bool,
) -> Http2Connection | Http2Fallback:
    """Open a transport, settle HTTP/2 on it, and wait for the server's SETTINGS.

    The connection runs in ``nursery``. On failure or cancellation the
    socket is closed.
    """
    from .connection import Http2Connection

    stream, where = await open_stream(client_alpn(True) if secure else None)
    try:
        if secure:
            if not isinstance(stream, trio.SSLStream):  # pragma: no cover - open_stream's contract
                raise TypeError("a wss transport must be a trio.SSLStream")
            try:
                await stream.do_handshake()
            except trio.BrokenResourceError as exc:
                detail = exc.__cause__ or exc
                raise HandshakeError(f"TLS with {where} failed: {detail}") from exc
            if stream.selected_alpn_protocol() != ALPN_H2:
                return Http2Fallback(stream, where, "ALPN chose HTTP/1.1")
        connection = Http2Connection(
            stream, client=True, log_name=f"http2 {where}", single_use=single_use
        )
        await nursery.start(connection.run)
    except BaseException:
        await trio.aclose_forcefully(stream)
        raise
    try:
        await connection.wait_settings()
    except trio.BrokenResourceError as exc:
        connection.abort()
        how = "over TLS" if secure else "with prior knowledge"
        raise HandshakeError(
            f"{where} did not answer in HTTP/2 ({how}): {exc.__cause__ or exc}"
        ) from exc
    except BaseException:
        connection.abort()
        raise
    if not connection.connect_protocol_enabled:
        connection.go_away()
        return Http2Fallback(None, where, "the server's SETTINGS do not enable extended CONNECT")
    return connection


async def connect_http2(
    nursery: trio.Nursery,
    handshake: Http2ClientHandshake,
    *,
    open_stream: OpenStream,
    make_connection: MakeConnection,
    secure: bool,
    deadline: float,
    where: str,
    pool: Http2Pool | None = None,
    pool_key: Hashable = None,
) -> WebSocketConnection | Http2Fallback:
    """Open a WebSocket over HTTP/2 by ``deadline``, or say to fall back to HTTP/1.1.

    Args:
        nursery: where the WebSocket's tasks run (and, without a pool, its
            HTTP/2 connection's).
        handshake: the extended CONNECT to send.
        open_stream: opens the transport (see :data:`OpenStream`).
        make_connection: makes the WebSocket over the stream.
        secure: whether the target is ``wss`` (ALPN); otherwise prior knowledge.
        deadline: when to give up (``connect_timeout``).
        where: the target, for messages.
        pool: a pool to share connections through, or ``None``.
        pool_key: the pool's key for the target's origin.

    Returns:
        The running connection, or an :class:`Http2Fallback`.

    Raises:
        ConnectionRejected: the server answered with a non-2xx status (its
            body read, up to :data:`~trio_wsext.handshake.MAX_REJECTION_BODY`).
        ConnectionTimeout: not done by ``deadline``.
        HandshakeError: the connection or the stream broke, or the answer is invalid.
        NegotiationError: the server chose what was not offered.

    Cancellation or failure resets the stream; a connection of its own then
    goes away and closes.
    """
    require_h2()
    result: WebSocketConnection | Http2Fallback | None = None
    with trio.move_on_at(deadline):
        result = await _connect(
            nursery, handshake, open_stream, make_connection, secure, pool, pool_key, where
        )
    if result is None:
        raise ConnectionTimeout(
            f"opening a WebSocket over HTTP/2 to {where} took longer than connect_timeout"
        )
    return result


async def _connect(
    nursery: trio.Nursery,
    handshake: Http2ClientHandshake,
    open_stream: OpenStream,
    make_connection: MakeConnection,
    secure: bool,
    pool: Http2Pool | None,
    pool_key: Hashable,
    where: str,
) -> WebSocketConnection | Http2Fallback:
    async def open_connection(
        connection_nursery: trio.Nursery, single_use: bool
    ) -> Http2Connection | Http2Fallback:
        return await _open_connection(
            connection_nursery, single_use, open_stream=open_stream, secure=secure
        )

    if pool is not None:
        connection = await pool._acquire(pool_key, open_connection)
    else:
        connection = await open_connection(nursery, True)
    if isinstance(connection, Http2Fallback):
        logger.debug("%s: falling back to HTTP/1.1: %s", connection.where, connection.reason)
        return connection
    try:
        stream = connection.open_stream(handshake.request_headers)
    except trio.BrokenResourceError as exc:
        raise HandshakeError(f"cannot open an HTTP/2 stream to {where}: {exc}") from exc
    try:
        try:
            headers = await stream.receive_headers()
        except trio.BrokenResourceError as exc:
            raise HandshakeError(
                f"the HTTP/2 stream to {where} broke during the opening handshake: {exc}"
            ) from exc
        status = response_status(headers)
        if not 200 <= status <= 299:
            body = await _read_body(stream)
            regular = [(name, value) for name, value in headers if not name.startswith(b":")]
            raise ConnectionRejected(status, regular, body)
        result = handshake.receive_response(headers)
        websocket = make_connection(stream, result, handshake.request_headers)
        await nursery.start(websocket.run)
    except BaseException:
        await trio.aclose_forcefully(stream)
        raise
    return websocket
