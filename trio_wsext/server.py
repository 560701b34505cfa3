"""The server: serve_websocket, WebSocketServer, wrap_server_stream and WebSocketRequest.

Strategy: :func:`~trio_wsext.accepting.serve_listeners` (trio's, less a
scheduler round per connection) gives each accepted stream its own task
(in ``handler_nursery`` if one is given). That task reads the opening
handshake with the sans-I/O :class:`~trio_wsext.handshake.ServerHandshake`
within ``connect_timeout`` (so a silent socket cannot hold a slot), answers a
malformed request with its HTTP error and closes, and otherwise calls the
handler with a :class:`WebSocketRequest`. The handler runs in that same task,
inside a nursery that holds the connection's background tasks once it
accepts. Whatever the handler does, the task ends by closing the connection;
an exception from a handler is logged (``logging.getLogger("trio_wsext.server")``)
and never reaches the listener, so one failing handler cannot stop the server.
A connection that speaks HTTP/2 (ALPN ``h2`` over TLS, or the connection
preface in cleartext) goes to :func:`~trio_wsext.http2.server.serve_http2`
instead, which makes a :class:`WebSocketRequest` of each extended CONNECT
(:rfc:`8441`) and runs the handler for it the same way, many at once.
:func:`wrap_server_stream` reads the request the same way from a stream the
caller accepted, and leaves the answer and the connection's lifetime to it.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import socket
import ssl
import stat
from collections.abc import Awaitable, Callable, Collection, Sequence
from typing import TYPE_CHECKING, Final, TypeAlias, final

import attrs
import trio

from .accepting import BurstListener, serve_listeners
from .connection import WebSocketConnection
from .direct_io import receive_some, send_all, socket_fd
from .endpoints import Endpoint, listener_endpoint, stream_endpoints
from .engine import new_log_name
from .exceptions import ConnectionClosed, ConnectionTimeout, HandshakeError
from .extensions.base import ExtensionParameter, ServerExtensionFactory
from .extensions.permessage_deflate import enable_server_permessage_deflate
from .frames import CloseCode, CloseReason
from .handshake import (
    DEFAULT_MAX_HEADER_BYTES,
    DEFAULT_MAX_HEADER_COUNT,
    ExtraHeaders,
    HandshakeRequest,
    ServerHandshake,
    check_handshake_limits,
    check_origins,
)
from .http2.selection import Http2Detected, configure_server_alpn, read_preface
from .http2.settings import Http2Options, h2_available
from .options import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_DISCONNECT_TIMEOUT,
    DEFAULT_MAX_MESSAGE_SIZE,
    DEFAULT_MESSAGE_QUEUE_SIZE,
    DEFAULT_PING_INTERVAL,
    DEFAULT_PING_TIMEOUT,
    DEFAULT_RECEIVE_BUFFER_SIZE,
    DEFAULT_WRITE_LIMIT,
    ConnectionOptions,
    check_extension_factories,
    check_ssl_context,
)

if TYPE_CHECKING:
    from .http2.connection import Http2Connection
    from .http2.server import Http2ServerHandshake
    from .http2.streams import Http2Stream

__all__ = [
    "Handler",
    "WebSocketRequest",
    "WebSocketServer",
    "serve_websocket",
    "serve_websocket_unix",
    "wrap_server_stream",
]

logger = logging.getLogger("trio_wsext.server")

#: Bytes asked of the stream per read while the request head arrives; the
#: head is bounded by ServerHandshake's max_header_bytes (16 KiB) anyway.
HANDSHAKE_RECEIVE_SIZE: Final = 65536

#: The status sent when a handler raises before accepting or rejecting:
#: RFC 9110 §15.6.1, "500 (Internal Server Error) ... an unexpected condition".
HANDLER_ERROR_STATUS: Final = 500

#: How long, and how much, the server keeps reading (and dropping) what a
#: client still sends after an HTTP error or rejection, so that closing does
#: not reset the response away (nginx's lingering close: 5 s, unbounded;
#: 1 s and 1 MiB are enough for a client that sent a too-large head).
LINGER_SECONDS: Final = 1.0
LINGER_BYTES: Final = 2**20


@attrs.frozen
class _Options:
    """What every connection of one server shares."""

    extensions: list[ServerExtensionFactory]
    connection: ConnectionOptions
    origins: frozenset[str | None] | None = None
    max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES
    max_header_count: int = DEFAULT_MAX_HEADER_COUNT
    http2: Http2Options | None = None
    """HTTP/2's settings, or ``None`` for HTTP/1.1 only (asked for, or h2 not installed)."""

    @property
    def connect_timeout(self) -> float:
        return self.connection.connect_timeout

    @property
    def disconnect_timeout(self) -> float:
        return self.connection.disconnect_timeout

    @classmethod
    def build(
        cls,
        *,
        extensions: Sequence[ServerExtensionFactory] | None,
        compression: str | None,
        connection: ConnectionOptions,
        origins: Collection[str | None] | None = None,
        max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES,
        max_header_count: int = DEFAULT_MAX_HEADER_COUNT,
        http2: bool | Http2Options = False,
    ) -> _Options:
        """Check a server's options and settle its extension factories.

        The connections' own settings were checked when ``connection`` was made.

        Raises:
            ValueError, TypeError: an option is invalid; the message names it.
        """
        check_handshake_limits(max_header_bytes, max_header_count)
        return cls(
            extensions=_server_extensions(extensions, compression),
            connection=connection,
            origins=check_origins(origins),
            max_header_bytes=max_header_bytes,
            max_header_count=max_header_count,
            http2=_http2_options(http2),
        )

    def handshake(self) -> ServerHandshake:
        """A new sans-I/O handshake with this server's limits and origins."""
        return ServerHandshake(
            max_header_bytes=self.max_header_bytes,
            max_header_count=self.max_header_count,
            origins=self.origins,
        )


def _http2_options(http2: object) -> Http2Options | None:
    """Settle the ``http2`` option: its settings, or ``None`` for HTTP/1.1 only.

    ``True`` serves HTTP/2 with the default settings when h2 is installed,
    and HTTP/1.1 only (silently) when it is not.

    Raises:
        TypeError: not a bool or an :class:`~trio_wsext.http2.Http2Options`.
    """
    if isinstance(http2, Http2Options):
        return http2 if h2_available() else None
    if not isinstance(http2, bool):
        raise TypeError(f"http2 must be True, False or an Http2Options, not {http2!r}")
    return Http2Options() if http2 and h2_available() else None


@final
class WebSocketRequest:
    """A client's opening handshake, waiting for the handler to accept or reject it.

    The handler must call :meth:`accept` or :meth:`reject` once. If it returns
    without either, the TCP connection is closed without an HTTP answer, as
    trio-websocket does; if it raises before either, the client gets a 500.
    """

    def __init__(
        self,
        stream: trio.abc.Stream,
        handshake: ServerHandshake | Http2ServerHandshake,
        request: HandshakeRequest,
        nursery: trio.Nursery,
        options: _Options,
        on_accept: Callable[[WebSocketConnection], None] | None = None,
        log_name: str | None = None,
        endpoints: tuple[Endpoint | str, Endpoint | str] | None = None,
        http_version: str = "1.1",
    ) -> None:
        self._stream = stream
        self._on_accept = on_accept
        # Dropped once accepted: its h11 state (~1 KiB) would live as long as the connection.
        self._handshake: ServerHandshake | Http2ServerHandshake | None = handshake
        self._http_version = http_version
        self._request = request
        self._nursery = nursery
        self._options = options
        self._answer: str | None = None
        self._connection: WebSocketConnection | None = None
        self._local, self._remote = endpoints or stream_endpoints(stream)
        self._log_name = log_name or new_log_name(self._remote)

    @property
    def path(self) -> str:
        """The request target: path and query, as sent."""
        return self._request.path

    @property
    def headers(self) -> list[tuple[bytes, bytes]]:
        """Every request header as ``(name, value)`` bytes, names in lowercase, in order."""
        return list(self._request.headers)

    @property
    def http_version(self) -> str:
        """``"1.1"`` for an Upgrade; ``"2"`` for an extended CONNECT over HTTP/2 (:rfc:`8441`).

        Over HTTP/2 the request is one stream of a connection that other
        WebSockets may share (``remote`` is the same for them all);
        :attr:`headers` then start with ``host`` (from ``:authority``), and
        the method is ``CONNECT``. The handler needs nothing else to tell.
        """
        return self._http_version

    @property
    def subprotocols(self) -> list[str]:
        """The subprotocols the client offered, in its order of preference."""
        return list(self._request.subprotocols)

    @property
    def proposed_subprotocols(self) -> tuple[str, ...]:
        """The offered subprotocols, under trio-websocket's name."""
        return tuple(self._request.subprotocols)

    @property
    def extensions(self) -> list[tuple[str, list[ExtensionParameter]]]:
        """The extensions the client offered, parsed: ``(name, [(param, value), ...])``."""
        return [(name, list(params)) for name, params in self._request.extensions]

    @property
    def local(self) -> Endpoint | str:
        """The server's :class:`~trio_wsext.connection.Endpoint` (or the stream's ``repr``)."""
        return self._local

    @property
    def remote(self) -> Endpoint | str:
        """The client's :class:`~trio_wsext.connection.Endpoint` (or the stream's ``repr``)."""
        return self._remote

    def __repr__(self) -> str:
        return f"<WebSocketRequest {self.path!r} from {self._remote}>"

    def _check_unanswered(self) -> ServerHandshake | Http2ServerHandshake:
        if self._answer is not None or self._handshake is None:
            raise RuntimeError(f"this request was already {self._answer}")
        return self._handshake

    async def accept(
        self, subprotocol: str | None = None, extra_headers: ExtraHeaders = None
    ) -> WebSocketConnection:
        """Accept the connection: negotiate extensions, send the 101, start the connection.

        The server's extension factories negotiate the client's offers
        (:func:`~trio_wsext.negotiation.negotiate_server`). Under
        :func:`serve_websocket` the connection runs until the handler returns,
        then it is closed; from :func:`wrap_server_stream` it runs in the
        nursery given there until you close it.

        Args:
            subprotocol: one of :attr:`subprotocols`, or ``None``.
            extra_headers: more response headers (not ``Upgrade``,
                ``Connection`` nor ``Sec-WebSocket-*``).

        Returns:
            The open connection.

        Raises:
            ValueError: the subprotocol was not offered or a header is invalid
                (the request stays unanswered).
            RuntimeError: the request was already accepted or rejected.
            ConnectionClosed: the client went away before the 101 was sent (1006).

        Cancellation while the 101 is sent leaves the request answered but
        without a connection; the server then closes the stream.
        """
        handshake = self._check_unanswered()
        options = self._options
        response, extensions, response_headers = handshake.accept(
            self._request,
            subprotocol=subprotocol,
            extra_headers=extra_headers,
            extensions=options.extensions,
        )
        self._answer = "accepted"
        self._handshake = None
        try:
            await send_all(self._stream, socket_fd(self._stream), response)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            reason = CloseReason.from_code(CloseCode.ABNORMAL_CLOSURE, "client went away")
            raise ConnectionClosed(reason) from exc
        connection = WebSocketConnection(
            self._stream,
            is_client=False,
            extensions=extensions,
            path=self._request.path,
            subprotocol=subprotocol,
            request_headers=self._request.headers,
            response_headers=response_headers,
            extra_data=self._request.extra_data,
            options=options.connection,
            log_name=self._log_name,
            endpoints=(self._local, self._remote),
            http_version=self._http_version,
        )
        await self._nursery.start(connection.run)
        self._connection = connection
        if self._on_accept is not None:
            self._on_accept(connection)
        return connection

    async def reject(
        self,
        status_code: int,
        extra_headers: ExtraHeaders = None,
        body: bytes | None = None,
    ) -> None:
        """Refuse the connection with an HTTP response, then close the stream.

        Args:
            status_code: a final HTTP status, 200 to 599 (typically 4xx or 5xx).
            extra_headers: more response headers.
            body: the response body, or ``None`` for none.

        Raises:
            ValueError: the status is not 200-599 or a header is invalid (the
                request stays unanswered).
            RuntimeError: the request was already accepted or rejected.

        A client that already went away is not an error. Cancellation closes
        the stream, maybe before the whole response was sent.
        """
        handshake = self._check_unanswered()
        response = handshake.reject(status_code, extra_headers=extra_headers, body=body)
        self._answer = "rejected"
        await _send_and_close(
            self._stream, response, self._options.disconnect_timeout, self._log_name
        )


async def _send_and_close(
    stream: trio.abc.Stream, response: bytes, within: float, log_name: str
) -> None:
    """Send an HTTP error or rejection, then close without resetting it away, ``within`` seconds.

    ``within`` bounds it all: a client that never reads cannot hold the
    handler (or the server's slot) with a large body.

    Closing a TCP socket with unread bytes in its receive buffer makes the
    kernel send a reset, which can destroy the response before the client
    reads it (a 431 for an oversized head is the usual case). So, like
    nginx's lingering close, a half-closeable stream is shut for writing and
    what the client still sends is read and dropped, for at most
    ``LINGER_SECONDS`` and ``LINGER_BYTES``, before the stream is closed.
    """
    try:
        with trio.move_on_after(within) as scope:
            await _send_and_linger(stream, response, log_name)
        if scope.cancelled_caught:
            logger.info(
                "%s: dropped a client that did not read its HTTP answer within %s s",
                log_name,
                within,
            )
    finally:
        await trio.aclose_forcefully(stream)


async def _send_and_linger(stream: trio.abc.Stream, response: bytes, log_name: str) -> None:
    try:
        await stream.send_all(response)
        if isinstance(stream, trio.abc.HalfCloseableStream):
            await stream.send_eof()
            with trio.move_on_after(LINGER_SECONDS):
                drained = 0
                while drained < LINGER_BYTES:
                    data = await stream.receive_some(HANDSHAKE_RECEIVE_SIZE)
                    if not data:
                        break
                    drained += len(data)
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        logger.debug("%s: client went away before the HTTP response was sent", log_name)


class _ClientLeft(Exception):
    """The client closed or broke the stream before a whole request: nothing to answer."""


async def _read_request(
    stream: trio.abc.Stream, options: _Options, log_name: str
) -> tuple[ServerHandshake, HandshakeRequest]:
    """Read the opening handshake within ``connect_timeout``; answer a bad one.

    Raises:
        ConnectionTimeout: no whole request within ``connect_timeout``.
        _ClientLeft: EOF before the first byte, or the stream broke.
        HandshakeError: a bad request; its HTTP error response was sent and
            the stream closed.
    """
    handshake = options.handshake()
    connect_timeout = options.connect_timeout
    received = 0
    fd = socket_fd(stream)
    with trio.move_on_after(connect_timeout):
        try:
            if options.http2 is not None and isinstance(stream, trio.SSLStream):
                # RFC 9113 §3.2: over TLS the client chooses HTTP/2 with ALPN.
                await stream.do_handshake()
                if stream.selected_alpn_protocol() == "h2":
                    raise Http2Detected(b"")
            while True:
                # A busy server accepts late: the request is usually there by
                # then, and reading it at once saves the handshake a scheduler
                # round (under load, a round is every busy connection's turn).
                data = await receive_some(
                    stream, fd, HANDSHAKE_RECEIVE_SIZE, wait_first=received > 0
                )
                if not data and not received:
                    raise _ClientLeft(
                        "the client closed the connection before sending an opening handshake"
                    )
                if options.http2 is not None and not received:
                    # RFC 9113 §3.3: in cleartext, "prior knowledge": the preface.
                    is_http2, data = await read_preface(
                        data, lambda: receive_some(stream, fd, HANDSHAKE_RECEIVE_SIZE)
                    )
                    if is_http2:
                        raise Http2Detected(data)
                received += len(data)
                request = handshake.receive_data(data)
                if request is not None:
                    return handshake, request
        except HandshakeError as exc:
            await _send_and_close(stream, handshake.error_response(exc), connect_timeout, log_name)
            raise
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            detail = exc.__cause__ or exc
            raise _ClientLeft(
                f"the connection broke during the opening handshake: {detail}"
            ) from exc
    raise ConnectionTimeout(
        f"the client sent no whole opening handshake within {connect_timeout} seconds"
    )


def _only_connection_closed(exc: BaseException) -> bool:
    """Whether ``exc`` is an exception group holding nothing but ``ConnectionClosed``."""
    if not isinstance(exc, BaseExceptionGroup):
        return False
    _, rest = exc.split(ConnectionClosed)
    return rest is None


#: What :func:`serve_websocket` calls for each valid opening handshake:
#: ``async def handler(request: WebSocketRequest) -> None``.
Handler: TypeAlias = Callable[[WebSocketRequest], Awaitable[None]]


def _accepting_in_bursts(
    listener: trio.abc.Listener[trio.abc.Stream],
) -> trio.abc.Listener[trio.abc.Stream]:
    """Wrap a plain TCP listener in a :class:`BurstListener`; leave others as they are."""
    if isinstance(listener, trio.SocketListener):
        return BurstListener(listener)
    return listener


def _server_extensions(
    extensions: Sequence[ServerExtensionFactory] | None, compression: str | None
) -> list[ServerExtensionFactory]:
    check_extension_factories(extensions, server=True)
    if compression == "deflate":
        return list(enable_server_permessage_deflate(extensions))
    if compression is None:
        return list(extensions or [])
    raise ValueError(f"compression must be 'deflate' or None, not {compression!r}")


@final
class WebSocketServer:
    """Serves WebSocket connections on one or more listeners (trio-websocket's class).

    Usually made by :func:`serve_websocket`; build one yourself to serve on
    listeners you opened, then ``await nursery.start(server.run)``.

    Args:
        handler: ``async def handler(request: WebSocketRequest)``, called once
            per connection whose opening handshake is valid.
        listeners: the :class:`trio.abc.Listener` objects to accept on. A
            :class:`trio.SocketListener` is taken over by a
            :class:`~trio_wsext.accepting.BurstListener`, which accepts every
            pending connection (up to 100) each time the socket is ready, so
            that newcomers are not kept in the kernel's backlog while the
            server is busy; :func:`serve_websocket` does the same under TLS.
        handler_nursery: where connection tasks run; by default a nursery of
            the server's own.
        extensions: :class:`~trio_wsext.extensions.ServerExtensionFactory`
            objects; each offer of a client goes to the first unused one of
            its name.
        compression: ``"deflate"`` adds the default permessage-deflate
            factory unless ``extensions`` has one; ``None`` adds nothing.
        message_queue_size: whole incoming messages buffered per connection.
        max_message_size: the largest incoming message, in bytes after
            decompression (1009 beyond), or ``None``.
        receive_buffer_size: the most bytes asked of the stream per read
            (trio-websocket's option; 64 KiB by default), or ``None`` to let
            the stream choose.
        write_limit: bytes that may wait for the wire before a send waits
            (until a quarter is left), as websockets' ``write_limit``; 64 KiB
            by default. :func:`~trio_wsext.broadcast` skips (or closes) a
            connection over it.
        connect_timeout: seconds a client has, from TCP accept, to send its
            whole opening handshake (TLS included); then it is dropped.
        disconnect_timeout: seconds for the closing handshake.
        ping_interval: seconds between keepalive pings, ``None`` for none.
        ping_timeout: seconds a keepalive pong may take (then 1011), or ``None``.
        origins: ``None`` (the default) admits any ``Origin``; otherwise the
            allowed ``Origin`` values, compared exactly (``None`` in the list
            admits requests without ``Origin``); others get HTTP 403. Browsers
            send the page's origin: this stops cross-site WebSocket hijacking.
        max_header_bytes: the most bytes of request line and headers (431 beyond).
        max_header_count: the most request header lines (431 beyond).
        http2: ``True`` (the default) also serves WebSockets over HTTP/2
            (:rfc:`8441`) on the same listeners: a client that chose ``h2``
            with ALPN, or sends HTTP/2's connection preface in cleartext,
            gets an HTTP/2 connection whose every extended CONNECT becomes a
            :class:`WebSocketRequest` (``http_version == "2"``). An
            :class:`~trio_wsext.http2.Http2Options` sets its limits and
            static answers; ``False`` serves HTTP/1.1 only. Needs the h2
            package (``trio_wsext[http2]``); without it, HTTP/1.1 only. TLS
            listeners of your own need ``h2`` in their context's ALPN
            protocols (:func:`serve_websocket` sets them).

    Raises:
        ValueError, TypeError: no listeners, or an option out of range.
    """

    def __init__(
        self,
        handler: Handler,
        listeners: Sequence[trio.abc.Listener[trio.abc.Stream]],
        *,
        handler_nursery: trio.Nursery | None = None,
        extensions: Sequence[ServerExtensionFactory] | None = None,
        compression: str | None = "deflate",
        message_queue_size: int = DEFAULT_MESSAGE_QUEUE_SIZE,
        max_message_size: int | None = DEFAULT_MAX_MESSAGE_SIZE,
        receive_buffer_size: int | None = DEFAULT_RECEIVE_BUFFER_SIZE,
        write_limit: int = DEFAULT_WRITE_LIMIT,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        disconnect_timeout: float = DEFAULT_DISCONNECT_TIMEOUT,
        ping_interval: float | None = DEFAULT_PING_INTERVAL,
        ping_timeout: float | None = DEFAULT_PING_TIMEOUT,
        origins: Collection[str | None] | None = None,
        max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES,
        max_header_count: int = DEFAULT_MAX_HEADER_COUNT,
        http2: bool | Http2Options = True,
    ) -> None:
        if not listeners:
            raise ValueError("listeners must contain at least one listener")
        self._options = _Options.build(
            extensions=extensions,
            compression=compression,
            connection=ConnectionOptions(
                message_queue_size=message_queue_size,
                max_message_size=max_message_size,
                receive_buffer_size=receive_buffer_size,
                write_limit=write_limit,
                connect_timeout=connect_timeout,
                disconnect_timeout=disconnect_timeout,
                ping_interval=ping_interval,
                ping_timeout=ping_timeout,
            ),
            origins=origins,
            max_header_bytes=max_header_bytes,
            max_header_count=max_header_count,
            http2=http2,
        )
        self._handler = handler
        self._listeners = [_accepting_in_bursts(listener) for listener in listeners]
        self._handler_nursery = handler_nursery
        self._endpoints = [listener_endpoint(listener) for listener in self._listeners]
        # Shutdown: the open connections, who asked to stop, and when it is over.
        self._connections: set[WebSocketConnection] = set()
        self._reading: set[trio.CancelScope] = set()  # opening handshakes being read
        self._http2_connections: set[Http2Connection] = set()  # told to go away at shutdown
        self._stop = trio.Event()
        self._stopped = trio.Event()
        self._served = trio.Event()
        self._closing = False
        self._accept_scope = trio.CancelScope()
        self._serve_scope = trio.CancelScope(shield=True)
        self._nursery: trio.Nursery | None = None

    @property
    def port(self) -> int:
        """The port of the one TCP listener (the kernel's choice for port 0).

        Raises:
            RuntimeError: there are several listeners (``host=None`` binds
                IPv4 and IPv6: see :attr:`listeners`), or it has no port.
        """
        if len(self._listeners) > 1:
            raise RuntimeError(
                f"this server has {len(self._listeners)} listeners; read their ports from"
                " .listeners"
            )
        endpoint = self.listeners[0]
        if not isinstance(endpoint, Endpoint):
            raise RuntimeError(f"this listener has no port: {endpoint}")
        return endpoint.port

    @property
    def listeners(self) -> list[Endpoint | str]:
        """Each listener as an :class:`~trio_wsext.connection.Endpoint`, or its ``repr``.

        Read when the server was made (listeners are bound by then), so it
        stays valid after the server stopped.
        """
        return list(self._endpoints)

    async def run(
        self, *, task_status: trio.TaskStatus[WebSocketServer] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Accept connections until :meth:`aclose` or cancellation, then shut down gracefully.

        Use as ``server = await nursery.start(server.run)``; ``task_status.started()``
        gets this server once it listens. Cancelling it, or :meth:`aclose`,
        shuts the server down: it stops accepting, closes every open
        connection with 1001 (going away), so that handlers see
        ``ConnectionClosed(1001)``, and waits for them to return, all within
        ``disconnect_timeout``; handlers still running then are cancelled.
        Clients still sending their opening handshake are dropped at once.
        Then it returns (after :meth:`aclose`) or lets the cancellation go on.
        Connections of a ``handler_nursery`` of yours are closed with 1001
        too; their handlers stay yours.

        Ctrl-C (``KeyboardInterrupt``, which trio raises in the main task)
        shuts the server down the same way, then comes out as a plain
        ``KeyboardInterrupt``, not inside an exception group, so that
        ``except KeyboardInterrupt`` around ``trio.run`` ends a program
        quietly.
        """
        try:
            async with trio.open_nursery() as nursery:
                await nursery.start(self._serve)
                task_status.started(self)
                try:
                    await self._stop.wait()
                finally:
                    with trio.CancelScope(shield=True):
                        await self._shut_down()
        except BaseExceptionGroup as group:
            _, rest = group.split(KeyboardInterrupt)
            if rest is None:
                raise KeyboardInterrupt from None
            raise
        finally:
            self._stopped.set()

    async def aclose(self) -> None:
        """Shut the server down gracefully (see :meth:`run`) and wait until it is done.

        A server that is not running, or already stopped, returns at once.
        """
        self._stop.set()
        if self._nursery is not None:
            await self._stopped.wait()
        else:
            await trio.lowlevel.checkpoint()

    async def _serve(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        # The handlers and connections live in a shielded scope: an outer
        # cancellation reaches them only through _shut_down, as a 1001 close
        # first and a cancellation after disconnect_timeout.
        try:
            with self._serve_scope:
                async with trio.open_nursery() as nursery:
                    self._nursery = nursery
                    await nursery.start(self._accept)
                    logger.debug("listening on %s", ", ".join(map(str, self.listeners)))
                    task_status.started()
        finally:
            self._served.set()  # every handler of ours has returned

    async def _accept(
        self,
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        assert self._nursery is not None
        with self._accept_scope:
            await serve_listeners(
                self._handle_stream,
                self._listeners,
                handler_nursery=self._handler_nursery or self._nursery,
                task_status=task_status,
            )

    def _accepted(self, connection: WebSocketConnection) -> None:
        # WebSocketRequest.accept() calls this: a connection to close at shutdown.
        self._connections.add(connection)
        if self._closing and self._nursery is not None:
            self._nursery.start_soon(self._close_going_away, connection)

    async def _close_going_away(self, connection: WebSocketConnection) -> None:
        await connection.aclose(CloseCode.GOING_AWAY, "server shutting down")

    async def _shut_down(self) -> None:
        """Stop accepting; 1001 everywhere; wait for the handlers, then cancel the rest."""
        if self._closing:
            return
        self._closing = True
        self._accept_scope.cancel()
        for listener in self._listeners:
            await trio.aclose_forcefully(listener)
        # A client still sending its opening handshake has no connection to
        # close with 1001 yet: drop it now rather than wait for connect_timeout.
        for reading in self._reading:
            reading.cancel()
        # HTTP/2: GOAWAY (no new streams); their WebSockets get 1001 below.
        for http2 in list(self._http2_connections):
            http2.go_away()
        deadline = trio.current_time() + self._options.disconnect_timeout
        if self._nursery is not None:
            for connection in list(self._connections):
                self._nursery.start_soon(self._close_going_away, connection)
        with trio.move_on_at(deadline):
            await self._served.wait()
        if not self._served.is_set() and self._nursery is not None:
            logger.info(
                "shutdown: %d handlers still running after %s seconds, cancelled",
                len(self._nursery.child_tasks),
                self._options.disconnect_timeout,
            )
        self._serve_scope.cancel()

    async def _handle_stream(self, stream: trio.abc.Stream) -> None:
        """Serve one connection, from the first byte to the handler's return.

        :func:`~trio_wsext.accepting.serve_listeners` closes the stream when this returns.
        """
        endpoints = stream_endpoints(stream)
        log_name = new_log_name(endpoints[1])
        received = None
        http2: Http2Detected | None = None
        with trio.CancelScope() as reading:
            # Shutdown drops handshakes in progress (see _shut_down).
            self._reading.add(reading)
            if self._closing:
                reading.cancel()
            try:
                received = await self._receive_request(stream, log_name)
            except Http2Detected as detected:
                http2 = detected
            finally:
                self._reading.discard(reading)
        if reading.cancelled_caught:
            logger.debug("%s: dropped at shutdown before a whole opening handshake", log_name)
        if http2 is not None:
            await self._serve_http2(stream, http2.initial_data, log_name, endpoints)
            return
        if received is None:
            return
        handshake, request = received
        async with trio.open_nursery() as nursery:
            ws_request = WebSocketRequest(
                stream,
                handshake,
                request,
                nursery,
                self._options,
                self._accepted,
                log_name,
                endpoints,
            )
            del received, handshake  # ws_request drops its h11 state once answered
            try:
                await self._run_handler(ws_request)
            finally:
                if ws_request._connection is not None:
                    self._connections.discard(ws_request._connection)

    async def _serve_http2(
        self,
        stream: trio.abc.Stream,
        initial_data: bytes,
        log_name: str,
        endpoints: tuple[Endpoint | str, Endpoint | str],
    ) -> None:
        """Serve an HTTP/2 connection: a WebSocketRequest per extended CONNECT."""
        from .http2.server import serve_http2

        options = self._options
        assert options.http2 is not None  # Http2Detected is raised only then

        async def run_request(
            h2_stream: Http2Stream,
            handshake: Http2ServerHandshake,
            request: HandshakeRequest,
            name: str,
        ) -> None:
            async with trio.open_nursery() as nursery:
                ws_request = WebSocketRequest(
                    h2_stream,
                    handshake,
                    request,
                    nursery,
                    options,
                    self._accepted,
                    name,
                    endpoints,
                    http_version="2",
                )
                try:
                    await self._run_handler(ws_request)
                finally:
                    if ws_request._connection is not None:
                        self._connections.discard(ws_request._connection)
            await trio.aclose_forcefully(h2_stream)  # unanswered: RST_STREAM

        await serve_http2(
            stream,
            initial_data,
            options=options.http2,
            run_request=run_request,
            log_name=log_name,
            origins=options.origins,
            max_header_bytes=options.max_header_bytes,
            max_header_count=options.max_header_count,
            idle_timeout=options.connect_timeout,
            connections=self._http2_connections,
            going_away=self._closing,
        )

    async def _receive_request(
        self, stream: trio.abc.Stream, log_name: str
    ) -> tuple[ServerHandshake, HandshakeRequest] | None:
        """Read the opening handshake within connect_timeout; answer a bad one."""
        try:
            return await _read_request(stream, self._options, log_name)
        except ConnectionTimeout:
            logger.info(
                "%s: dropped a connection that sent no opening handshake within %s seconds",
                log_name,
                self._options.connect_timeout,
            )
        except _ClientLeft as exc:  # a port check (connect, close), or a reset
            logger.debug("%s: %s", log_name, exc)
        except HandshakeError as exc:
            logger.info("%s: refused a bad opening handshake: %s", log_name, exc)
        return None

    async def _run_handler(self, request: WebSocketRequest) -> None:
        crashed = False
        try:
            await self._handler(request)
        except ConnectionClosed as exc:
            # A client that goes away is not a bug of the handler.
            logger.debug(
                "%s: handler for %r ended: connection closed %s",
                request._log_name,
                request.path,
                exc,
            )
        except Exception as exc:
            if _only_connection_closed(exc):
                # The same, from a handler with a nursery of its own.
                logger.debug(
                    "%s: handler for %r ended: connection closed (%s)",
                    request._log_name,
                    request.path,
                    exc,
                )
            else:
                crashed = True
                logger.exception(
                    "%s: connection handler failed for %r", request._log_name, request.path
                )
        connection = request._connection
        if connection is not None:
            if connection.closed is None:
                code = CloseCode.INTERNAL_ERROR if crashed else CloseCode.NORMAL_CLOSURE
                await connection.aclose(code)
            # else it is closing or closed already: the nursery around the
            # handler waits for its task to finish, within disconnect_timeout.
        elif request._handshake is not None and request._answer is None and crashed:
            await _send_and_close(
                request._stream,
                request._handshake.reject(
                    HANDLER_ERROR_STATUS,
                    body=b"Failed to open a WebSocket connection: the server's handler failed.\n",
                ),
                self._options.disconnect_timeout,
                request._log_name,
            )


async def serve_websocket(
    handler: Handler,
    host: str | bytes | None,
    port: int,
    ssl_context: ssl.SSLContext | None,
    *,
    handler_nursery: trio.Nursery | None = None,
    extensions: Sequence[ServerExtensionFactory] | None = None,
    compression: str | None = "deflate",
    message_queue_size: int = DEFAULT_MESSAGE_QUEUE_SIZE,
    max_message_size: int | None = DEFAULT_MAX_MESSAGE_SIZE,
    receive_buffer_size: int | None = DEFAULT_RECEIVE_BUFFER_SIZE,
    write_limit: int = DEFAULT_WRITE_LIMIT,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    disconnect_timeout: float = DEFAULT_DISCONNECT_TIMEOUT,
    ping_interval: float | None = DEFAULT_PING_INTERVAL,
    ping_timeout: float | None = DEFAULT_PING_TIMEOUT,
    origins: Collection[str | None] | None = None,
    max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES,
    max_header_count: int = DEFAULT_MAX_HEADER_COUNT,
    http2: bool | Http2Options = True,
    task_status: trio.TaskStatus[WebSocketServer] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve WebSocket connections over TCP (and TLS) until cancelled or closed.

    Use as ``server = await nursery.start(serve_websocket, handler, host, port, None)``:
    it returns the :class:`WebSocketServer` once listening (``server.port``
    gives the port chosen for port 0). Cancelling it, or ``await
    server.aclose()``, shuts down gracefully: no new connections, every open
    one closed with 1001 within ``disconnect_timeout``, handlers see
    ``ConnectionClosed(1001)`` and are waited for (see
    :meth:`WebSocketServer.run`).

    Args:
        handler: ``async def handler(request: WebSocketRequest)``.
        host: the address to bind (``"127.0.0.1"``, ``"::1"``, a name), or
            ``None`` for every interface, IPv4 and IPv6 (then there may be
            several listeners, with different ports for port 0).
        port: the port, 0 for any free one.
        ssl_context: a server :class:`ssl.SSLContext` for ``wss``, or ``None``.
        handler_nursery: see :class:`WebSocketServer`, as are the others.
        extensions: see :class:`WebSocketServer`.
        compression: see :class:`WebSocketServer`.
        message_queue_size: see :class:`WebSocketServer`.
        max_message_size: see :class:`WebSocketServer`.
        receive_buffer_size: see :class:`WebSocketServer`.
        write_limit: see :class:`WebSocketServer`.
        connect_timeout: see :class:`WebSocketServer`.
        disconnect_timeout: see :class:`WebSocketServer`.
        ping_interval: see :class:`WebSocketServer`.
        ping_timeout: see :class:`WebSocketServer`.
        origins: see :class:`WebSocketServer`.
        max_header_bytes: see :class:`WebSocketServer`.
        max_header_count: see :class:`WebSocketServer`.
        http2: see :class:`WebSocketServer`. With ``ssl_context``, HTTP/2
            is offered with ALPN (``h2``, ``http/1.1``) when the context has
            no ALPN protocols of its own (they are set on it); a context
            whose ALPN protocols were set is left as it is.
        task_status: for ``nursery.start``.

    Raises:
        OSError: the address cannot be bound.
        ValueError, TypeError: an option is out of range (before binding).
    """
    check_ssl_context("ssl_context", ssl_context)
    options = _Options.build(  # ValueError/TypeError before binding
        extensions=extensions,
        compression=compression,
        connection=ConnectionOptions(
            message_queue_size=message_queue_size,
            max_message_size=max_message_size,
            receive_buffer_size=receive_buffer_size,
            write_limit=write_limit,
            connect_timeout=connect_timeout,
            disconnect_timeout=disconnect_timeout,
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
        ),
        origins=origins,
        max_header_bytes=max_header_bytes,
        max_header_count=max_header_count,
        http2=http2,
    )
    if ssl_context is not None and options.http2 is not None:
        configure_server_alpn(ssl_context)
    listeners: Sequence[trio.abc.Listener[trio.abc.Stream]]
    listeners = [BurstListener(tcp) for tcp in await trio.open_tcp_listeners(port, host=host)]
    if ssl_context is not None:
        listeners = [
            trio.SSLListener(listener, ssl_context, https_compatible=True)
            for listener in listeners
        ]
    server = WebSocketServer(
        handler,
        listeners,
        handler_nursery=handler_nursery,
        extensions=extensions,
        compression=compression,
        message_queue_size=message_queue_size,
        max_message_size=max_message_size,
        receive_buffer_size=receive_buffer_size,
        write_limit=write_limit,
        connect_timeout=connect_timeout,
        disconnect_timeout=disconnect_timeout,
        ping_interval=ping_interval,
        ping_timeout=ping_timeout,
        origins=origins,
        max_header_bytes=max_header_bytes,
        max_header_count=max_header_count,
        http2=http2,
    )
    await server.run(task_status=task_status)


#: The listen(2) backlog of a Unix socket: trio's own for TCP listeners
#: (0xFFFF); the kernel caps it at ``net.core.somaxconn``.
UNIX_BACKLOG: Final = 0xFFFF


def _remove_stale_socket(path: str) -> None:
    """Remove a Unix socket file that no server listens on any more; refuse a live one.

    A server that was killed leaves its socket file behind, and bind(2) then
    fails with EADDRINUSE; asyncio removes any such file, which would also
    steal the path from a server still running. Here a connection attempt
    tells them apart (a refused one means nobody listens). Anything that is
    not a socket is left for bind(2) to refuse.
    """
    try:
        if not stat.S_ISSOCK(os.stat(path).st_mode):
            return
    except FileNotFoundError:
        return
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.setblocking(False)
        try:
            probe.connect(path)
        except ConnectionRefusedError:
            os.unlink(path)
            return
        except BlockingIOError:
            pass  # a full backlog: someone listens
    raise OSError(errno.EADDRINUSE, f"a server already listens on Unix socket {path!r}")


async def serve_websocket_unix(
    handler: Handler,
    path: str | os.PathLike[str],
    ssl_context: ssl.SSLContext | None = None,
    *,
    handler_nursery: trio.Nursery | None = None,
    extensions: Sequence[ServerExtensionFactory] | None = None,
    compression: str | None = "deflate",
    message_queue_size: int = DEFAULT_MESSAGE_QUEUE_SIZE,
    max_message_size: int | None = DEFAULT_MAX_MESSAGE_SIZE,
    receive_buffer_size: int | None = DEFAULT_RECEIVE_BUFFER_SIZE,
    write_limit: int = DEFAULT_WRITE_LIMIT,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    disconnect_timeout: float = DEFAULT_DISCONNECT_TIMEOUT,
    ping_interval: float | None = DEFAULT_PING_INTERVAL,
    ping_timeout: float | None = DEFAULT_PING_TIMEOUT,
    origins: Collection[str | None] | None = None,
    max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES,
    max_header_count: int = DEFAULT_MAX_HEADER_COUNT,
    task_status: trio.TaskStatus[WebSocketServer] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve WebSocket connections on a Unix socket until cancelled or closed.

    :func:`serve_websocket` on a Unix socket instead of TCP: for a server
    behind a reverse proxy on the same machine (nginx's ``proxy_pass
    http://unix:/run/app.sock``), where file permissions, not a port, say who
    may connect. Use as ``server = await nursery.start(serve_websocket_unix,
    handler, path)``; ``server.listeners`` is ``["unix:" + path]``, and
    ``request.local`` / ``request.remote`` are ``"unix:/run/app.sock"`` and
    ``"unix:"`` (a client's socket has no name). Shutdown is as
    :func:`serve_websocket`'s.

    A socket file that no server listens on any more (left by a server that
    was killed) is replaced; the file is removed when the server stops, unless
    another file took its place meanwhile.

    Args:
        handler: ``async def handler(request: WebSocketRequest)``.
        path: the socket file's path (``"\\0name"``: Linux's abstract
            namespace, no file). Its permissions follow the umask; change them
            with :func:`os.chmod` once ``nursery.start`` returned.
        ssl_context: a server :class:`ssl.SSLContext` for ``wss``, or ``None``.
        handler_nursery: see :class:`WebSocketServer`, as are the others.
        extensions: see :class:`WebSocketServer`.
        compression: see :class:`WebSocketServer`.
        message_queue_size: see :class:`WebSocketServer`.
        max_message_size: see :class:`WebSocketServer`.
        receive_buffer_size: see :class:`WebSocketServer`.
        write_limit: see :class:`WebSocketServer`.
        connect_timeout: see :class:`WebSocketServer`.
        disconnect_timeout: see :class:`WebSocketServer`.
        ping_interval: see :class:`WebSocketServer`.
        ping_timeout: see :class:`WebSocketServer`.
        origins: see :class:`WebSocketServer`.
        max_header_bytes: see :class:`WebSocketServer`.
        max_header_count: see :class:`WebSocketServer`.
        task_status: for ``nursery.start``.

    Raises:
        OSError: the path cannot be bound (a server already listens there:
            ``EADDRINUSE``; a file that is not a socket is in the way).
        ValueError, TypeError: an option is out of range (before binding).
    """
    check_ssl_context("ssl_context", ssl_context)
    _Options.build(  # ValueError/TypeError before binding
        extensions=extensions,
        compression=compression,
        connection=ConnectionOptions(
            message_queue_size=message_queue_size,
            max_message_size=max_message_size,
            receive_buffer_size=receive_buffer_size,
            write_limit=write_limit,
            connect_timeout=connect_timeout,
            disconnect_timeout=disconnect_timeout,
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
        ),
        origins=origins,
        max_header_bytes=max_header_bytes,
        max_header_count=max_header_count,
    )
    path = os.fspath(path)
    in_file_system = not path.startswith("\0")
    if in_file_system:
        _remove_stale_socket(path)
    sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        await sock.bind(path)
        sock.listen(UNIX_BACKLOG)
    except BaseException:
        sock.close()
        raise
    bound = os.stat(path).st_ino if in_file_system else None
    listener: trio.abc.Listener[trio.abc.Stream] = BurstListener(trio.SocketListener(sock))
    if ssl_context is not None:
        listener = trio.SSLListener(listener, ssl_context, https_compatible=True)
    try:
        server = WebSocketServer(
            handler,
            [listener],
            handler_nursery=handler_nursery,
            extensions=extensions,
            compression=compression,
            message_queue_size=message_queue_size,
            max_message_size=max_message_size,
            receive_buffer_size=receive_buffer_size,
            write_limit=write_limit,
            connect_timeout=connect_timeout,
            disconnect_timeout=disconnect_timeout,
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
            origins=origins,
            max_header_bytes=max_header_bytes,
            max_header_count=max_header_count,
        )
        await server.run(task_status=task_status)
    finally:
        # Unlinking first: closing may meet a cancellation, which would skip the rest.
        if bound is not None:
            with contextlib.suppress(OSError):
                if os.stat(path).st_ino == bound:
                    os.unlink(path)
        await trio.aclose_forcefully(listener)  # closed already, unless run() never started


async def wrap_server_stream(
    nursery: trio.Nursery,
    stream: trio.abc.Stream,
    message_queue_size: int = DEFAULT_MESSAGE_QUEUE_SIZE,
    max_message_size: int | None = DEFAULT_MAX_MESSAGE_SIZE,
    receive_buffer_size: int | None = DEFAULT_RECEIVE_BUFFER_SIZE,
    write_limit: int = DEFAULT_WRITE_LIMIT,
    *,
    extensions: Sequence[ServerExtensionFactory] | None = None,
    compression: str | None = "deflate",
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    disconnect_timeout: float = DEFAULT_DISCONNECT_TIMEOUT,
    ping_interval: float | None = DEFAULT_PING_INTERVAL,
    ping_timeout: float | None = DEFAULT_PING_TIMEOUT,
    origins: Collection[str | None] | None = None,
    max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES,
    max_header_count: int = DEFAULT_MAX_HEADER_COUNT,
) -> WebSocketRequest:
    """Read a client's opening handshake from a stream you accepted; return the request.

    trio-websocket's low-level function, for streams :func:`serve_websocket`
    does not accept: a listener of your own, a Unix socket, one end of
    :func:`trio.testing.memory_stream_pair`. Answer the request as a handler
    does, with :meth:`WebSocketRequest.accept` (the connection's tasks then
    run in ``nursery``) or :meth:`WebSocketRequest.reject` (which closes the
    stream). Unlike under :func:`serve_websocket`, nothing closes the
    connection for you: call :meth:`WebSocketConnection.aclose` when done, or
    leave ``nursery``. A request that is never answered leaves the stream to
    you.

    Args:
        nursery: where the connection's tasks run once accepted.
        stream: any :class:`trio.abc.Stream`, nothing read from it yet.
        message_queue_size: see :class:`WebSocketServer`, as are the others.
        max_message_size: see :class:`WebSocketServer`.
        receive_buffer_size: see :class:`WebSocketServer`.
        write_limit: see :class:`WebSocketServer`.
        extensions: see :class:`WebSocketServer`.
        compression: see :class:`WebSocketServer`.
        connect_timeout: seconds the client has to send its whole request.
        disconnect_timeout: see :class:`WebSocketServer`.
        ping_interval: see :class:`WebSocketServer`.
        ping_timeout: see :class:`WebSocketServer`.
        origins: see :class:`WebSocketServer`.
        max_header_bytes: see :class:`WebSocketServer`.
        max_header_count: see :class:`WebSocketServer`.

    Returns:
        The request, waiting for ``accept`` or ``reject``.

    Raises:
        ConnectionTimeout: no whole request within ``connect_timeout``.
        HandshakeError: the request is not a valid opening handshake (the
            client got the HTTP error response, as from the server: 400, 405,
            426, 431 ...), or the client closed or broke the stream first.
        ValueError, TypeError: an option is invalid; raised before any I/O,
            and the stream is left open.

    Whenever it raises after reading began, or is cancelled, the stream is
    closed.
    """
    options = _Options.build(
        extensions=extensions,
        compression=compression,
        connection=ConnectionOptions(
            message_queue_size=message_queue_size,
            max_message_size=max_message_size,
            receive_buffer_size=receive_buffer_size,
            write_limit=write_limit,
            connect_timeout=connect_timeout,
            disconnect_timeout=disconnect_timeout,
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
        ),
        origins=origins,
        max_header_bytes=max_header_bytes,
        max_header_count=max_header_count,
    )
    try:
        endpoints = stream_endpoints(stream)
        log_name = new_log_name(endpoints[1])
        handshake, request = await _read_request(stream, options, log_name)
    except _ClientLeft as exc:
        await trio.aclose_forcefully(stream)
        raise HandshakeError(str(exc)) from exc.__cause__
    except BaseException:
        await trio.aclose_forcefully(stream)
        raise
    return WebSocketRequest(
        stream, handshake, request, nursery, options, log_name=log_name, endpoints=endpoints
    )
