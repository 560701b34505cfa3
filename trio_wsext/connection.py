"""An open WebSocket connection: :class:`WebSocketConnection`, what users call.

Strategy: a :class:`WebSocketConnection` holds the opening handshake's
results (path, subprotocol, headers) and a
:class:`~trio_wsext.engine.ConnectionEngine`, which owns the stream, the
sans-I/O protocol, the reader and writer and the close state; every method
here checks its arguments and hands over to it. Start one over a stream whose
handshake is done with ``await nursery.start(connection.run)``.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Sequence
from typing import Final

import attrs
import trio

from .endpoints import Endpoint
from .engine import (
    RECEIVE_SIZE as RECEIVE_SIZE,
    SCHEDULE_EVERY as SCHEDULE_EVERY,
    THREAD_RECEIVE_THRESHOLD as THREAD_RECEIVE_THRESHOLD,
    THREAD_SEND_THRESHOLD as THREAD_SEND_THRESHOLD,
    ConnectionEngine,
    check_control_payload,
)
from .exceptions import ConnectionClosed
from .extensions.base import Extension
from .frames import CloseCode, CloseReason
from .options import DEFAULT_OPTIONS, DEFAULT_WRITE_LIMIT as DEFAULT_WRITE_LIMIT, ConnectionOptions

__all__ = [
    "ConnectionStatistics",
    "MessageStream",
    "WebSocketConnection",
]

#: Close codes after which ``async for message in ws`` ends instead of raising:
#: 1000 and 1001, and 1005 (a close frame without a code, which browsers send
#: for ``ws.close()``), as websockets does.
NORMAL_CLOSE_CODES: Final = frozenset(
    {CloseCode.NORMAL_CLOSURE, CloseCode.GOING_AWAY, CloseCode.NO_STATUS_RCVD}
)


class Default(enum.Enum):
    """The type of :data:`DEFAULT`."""

    DEFAULT = enum.auto()


#: "The connection's setting", where ``None`` means something else (no limit).
DEFAULT: Final = Default.DEFAULT


@attrs.frozen
class ConnectionStatistics:
    """A snapshot of what a connection has carried, from :meth:`WebSocketConnection.statistics`.

    The ``bytes_*`` fields count application payload (UTF-8 bytes for text),
    the ``wire_bytes_*`` fields what crossed the stream: frame headers, masks
    and (with permessage-deflate) compressed payloads. Their ratio is the
    compression ratio. The opening handshake is counted in neither.
    """

    messages_sent: int
    """Whole messages handed to the protocol for sending."""
    messages_received: int
    """Whole messages received and decoded."""
    bytes_sent: int
    """Application payload bytes of the messages sent."""
    bytes_received: int
    """Application payload bytes of the messages received."""
    wire_bytes_sent: int
    """Bytes written to the stream after the opening handshake, framing included."""
    wire_bytes_received: int
    """Bytes read from the stream after the opening handshake, framing included."""


class WebSocketConnection(trio.abc.AsyncResource):
    """An open WebSocket connection, client or server side, over any trio stream.

    Users get one from :func:`~trio_wsext.open_websocket` and friends or from
    :meth:`~trio_wsext.WebSocketRequest.accept`. To run one over a stream whose
    opening handshake is already done (an in-memory pair in a test, say),
    construct it and start it with ``await nursery.start(connection.run)``.

    Memory per connection is bounded (``Q`` = ``message_queue_size``, ``M`` =
    ``max_message_size``, ``R`` = ``receive_buffer_size``, ``W`` =
    ``write_limit``): incoming, ``Q`` decoded messages queued plus one being
    assembled (``(Q + 1) * M`` bytes) and at most ``R`` received bytes not
    parsed yet (or one frame being collected) -- with the queue full, the
    rest waits in TCP buffers, compressed; outgoing, ``W`` bytes waiting for the wire plus the
    message each sending task has framed.

    Args:
        stream: the byte stream, after the opening handshake.
        is_client: ``True`` on the client side (frames are masked).
        extensions: the negotiated extensions, in chain order.
        path: the request target (``"/chat?room=1"``).
        subprotocol: the negotiated subprotocol, if any.
        request_headers: the opening handshake's request headers.
        response_headers: the opening handshake's response headers.
        extra_data: bytes received after the handshake: the first frames.
        options: the connection's settings (:class:`~trio_wsext.options.ConnectionOptions`):
            ``message_queue_size`` whole incoming messages decoded ahead of
            :meth:`get_message` before the connection stops reading (0: a
            message is decoded only for a waiting ``get_message``);
            ``max_message_size``, the largest incoming message in bytes after
            decompression (1009 beyond; ``None``: no limit);
            ``receive_buffer_size``, the most bytes asked of the stream per
            read; ``write_limit``, the bytes that may wait for the wire before
            :meth:`send_message` waits (until a quarter is left), as
            websockets' ``write_limit``; ``disconnect_timeout`` for the
            closing handshake; ``ping_interval`` and ``ping_timeout`` for the
            keepalive, which fails the connection with 1011 when a pong is
            late -- not while this side's own reader has stopped for
            backpressure (the pong may be behind data this side has not
            read), unless the peer has read nothing of this side's since the
            ping either: it sends and never reads.
        log_name: what this connection's log lines start with; by default
            ``conn N <peer address>``, N unique in the process.
        endpoints: the stream's ``(local, remote)`` endpoints, for a caller
            that read them already (a server, for its log lines); by default
            they are read from the stream.
        http_version: the HTTP version of the opening handshake: ``"1.1"``
            (an Upgrade), or ``"2"`` (an extended CONNECT over one stream of
            an HTTP/2 connection, :rfc:`8441`); see :attr:`http_version`.

    Raises:
        ValueError, TypeError: an argument is out of range or of the wrong type.
    """

    # Slots, not a __dict__: an idle server holds thousands of these.
    __slots__ = (
        "_engine",
        "_http_version",
        "_is_client",
        "_path",
        "_request_headers",
        "_response_headers",
        "_subprotocol",
    )

    def __init__(
        self,
        stream: trio.abc.Stream,
        *,
        is_client: bool,
        extensions: Sequence[Extension] = (),
        path: str = "/",
        subprotocol: str | None = None,
        request_headers: list[tuple[bytes, bytes]] | None = None,
        response_headers: list[tuple[bytes, bytes]] | None = None,
        extra_data: bytes = b"",
        options: ConnectionOptions = DEFAULT_OPTIONS,
        log_name: str | None = None,
        endpoints: tuple[Endpoint | str, Endpoint | str] | None = None,
        http_version: str = "1.1",
    ) -> None:
        if http_version not in {"1.1", "2"}:
            raise ValueError(f"http_version must be '1.1' or '2', not {http_version!r}")
        self._engine = ConnectionEngine(
            stream,
            is_client=is_client,
            extensions=extensions,
            extra_data=extra_data,
            options=options,
            log_name=log_name,
            endpoints=endpoints,
        )
        self._is_client = is_client
        self._http_version = http_version
        self._path = path
        self._subprotocol = subprotocol
        self._request_headers = list(request_headers or [])
        self._response_headers = list(response_headers or [])

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run the connection until it is closed, then close the stream.

        Start it as ``await nursery.start(connection.run)``: that returns
        once the connection runs, and the nursery's task then reads, writes,
        keeps the connection alive and closes it. Cancelling that task tears
        the connection down at once (close code 1006 if it was open) and
        closes the stream. The client functions and ``accept()`` do this for
        their connections.

        Raises:
            RuntimeError: the connection was started before.
        """
        await self._engine.run(task_status=task_status)

    # ------------------------------------------------------------------ properties

    @property
    def closed(self) -> CloseReason | None:
        """``None`` while open; the :class:`~trio_wsext.frames.CloseReason` once closing began.

        It is set once: to the code and reason of :meth:`aclose`, of the peer's
        close frame, or of the failure (1002, 1007, 1009 ... for a protocol
        violation, 1011 for a late keepalive pong, 1006 when the stream broke).
        A peer's close frame counts once the messages before it are taken.
        """
        return self._engine.closed

    @property
    def closing_timed_out(self) -> bool:
        """Whether closing gave up at ``disconnect_timeout`` without the peer's close frame."""
        return self._engine.close_timed_out

    @property
    def extensions(self) -> list[Extension]:
        """The negotiated extensions, in chain order (encode order)."""
        return list(self._engine.protocol.extensions)

    @property
    def subprotocol(self) -> str | None:
        """The negotiated subprotocol, or ``None``."""
        return self._subprotocol

    @property
    def path(self) -> str:
        """The request target of the opening handshake (path and query)."""
        return self._path

    @property
    def http_version(self) -> str:
        """The HTTP version the opening handshake used: ``"1.1"`` or ``"2"``.

        ``"2"`` means the WebSocket runs over one stream of an HTTP/2
        connection (:rfc:`8441`), which other WebSockets may share; its
        frames and extensions are the same either way.
        """
        return self._http_version

    @property
    def is_client(self) -> bool:
        """Whether this is the client side."""
        return self._is_client

    @property
    def is_server(self) -> bool:
        """Whether this is the server side."""
        return not self._is_client

    @property
    def local(self) -> Endpoint | str:
        """The local :class:`Endpoint`, or the stream's ``repr`` for a non-TCP stream."""
        return self._engine.local

    @property
    def remote(self) -> Endpoint | str:
        """The remote :class:`Endpoint`, or the stream's ``repr`` for a non-TCP stream."""
        return self._engine.remote

    @property
    def request_headers(self) -> list[tuple[bytes, bytes]]:
        """The opening handshake's request headers, as ``(name, value)`` byte pairs."""
        return list(self._request_headers)

    @property
    def response_headers(self) -> list[tuple[bytes, bytes]]:
        """The opening handshake's response headers, as ``(name, value)`` byte pairs."""
        return list(self._response_headers)

    @property
    def handshake_headers(self) -> tuple[tuple[bytes, bytes], ...]:
        """The headers the peer sent in the opening handshake (trio-websocket's name).

        On the client, :attr:`response_headers`; on the server,
        :attr:`request_headers`: every header, as ``(name, value)`` byte
        pairs, names in lowercase, in the order received.
        """
        headers = self._response_headers if self._is_client else self._request_headers
        return tuple(headers)

    def statistics(self) -> ConnectionStatistics:
        """Return message and byte counts so far (handshake bytes excluded)."""
        engine = self._engine
        protocol = engine.protocol
        return ConnectionStatistics(
            messages_sent=engine.messages_sent,
            messages_received=protocol.messages_received,
            bytes_sent=engine.bytes_sent,
            bytes_received=protocol.bytes_received,
            wire_bytes_sent=engine.wire_bytes_sent,
            wire_bytes_received=engine.wire_bytes_received,
        )

    def __repr__(self) -> str:
        side = "client" if self._is_client else "server"
        closed = self._engine.closed
        state = "open" if closed is None else f"closed {closed}"
        return f"<WebSocketConnection {side} {self._path!r} {state}>"

    # ------------------------------------------------------------------ public API

    async def send_message(
        self,
        message: str
        | bytes
        | bytearray
        | memoryview
        | Iterable[str | bytes | bytearray | memoryview]
        | AsyncIterable[str | bytes | bytearray | memoryview],
        *,
        compress: bool | None = None,
    ) -> None:
        """Send one message: ``str`` as a text frame, anything bytes-like as binary.

        An iterable or async iterable of chunks (all ``str``, or all
        bytes-like) is sent as one fragmented message, a frame per chunk as
        the chunks come, then an empty final frame (the end is not known
        before); an empty iterable sends nothing. Compression, where
        negotiated, runs per fragment (RSV1 on the first only). The message
        holds the send turn until its end: other senders wait, pings and
        pongs go out between fragments, and after each fragment the call
        waits while more than ``write_limit`` bytes wait for the wire, so a
        slow reader slows the producer down. Cancellation, or an error from
        the iterable, after the first fragment fails the connection with
        1011: half a message cannot be taken back.

        The message runs through the negotiated extension chain in order,
        framed by the calling task, and is written at once when the stream
        takes it. Several tasks may call this at once; their messages are
        never interleaved. When more than ``write_limit`` bytes wait for the
        wire (the peer reads slowly), this waits, in arrival order with the
        other senders, until a quarter of that is left. A
        ``bytearray``/``memoryview`` is copied, so it may be reused at once.

        Cancellation leaves nothing half-sent: a call cancelled while it
        waits for its turn sends nothing; once framed, the message goes out
        whole. A message of 1 MiB or more with an extension negotiated is
        encoded in a worker thread, which is not interrupted.

        Checkpoints: every call raises ``Cancelled`` in a cancelled scope
        (before framing anything). A call that need not wait yields to the
        scheduler only once every :data:`SCHEDULE_EVERY` calls, so a burst of
        small messages costs no scheduler round each.

        Args:
            message: the message.
            compress: ``False`` sends this message uncompressed even with
                permessage-deflate on (already-compressed data); ``None``
                follows the extension's settings.

        Raises:
            ConnectionClosed: the connection is closing or closed.
            TypeError: ``message`` is neither ``str`` nor bytes-like.
        """
        if compress is not None and not isinstance(compress, bool):
            raise TypeError(f"compress must be True, False or None, not {compress!r}")
        if isinstance(message, str):
            data: str | bytes = message
        elif isinstance(message, bytes | bytearray | memoryview):
            data = bytes(message)
        elif isinstance(message, AsyncIterable):
            await self._engine.send_stream(aiter(message), compress)
            return
        elif isinstance(message, Iterable):
            await self._engine.send_stream(_AsyncChunks(message), compress)
            return
        else:
            raise TypeError(
                "message must be str, bytes-like, or an iterable or async iterable of them,"
                f" not {type(message).__name__}"
            )
        await self._engine.send_message(data, compress)

    async def get_message(self) -> str | bytes:
        """Return the next message: ``str`` for text, ``bytes`` for binary.

        Messages received before the peer's close frame, or before the
        connection failed, can still be read after it; after :meth:`aclose`,
        pending messages are discarded. Cancellation loses no message: one
        that was not returned stays queued.

        Checkpoints: every call raises ``Cancelled`` in a cancelled scope,
        before taking a message. A call that finds a message already queued
        yields to the scheduler only once every :data:`SCHEDULE_EVERY` calls,
        so draining a queue of a thousand small messages costs no scheduler
        round each.

        Raises:
            ConnectionClosed: the connection is closed and no message is left.
        """
        return await self._engine.get_message()

    def get_message_stream(self, *, max_size: int | Default | None = DEFAULT) -> MessageStream:
        """Return the next message as an async iterator of pieces, for messages too large to hold.

        ``async for piece in ws.get_message_stream(): ...`` yields the
        message's frames as they arrive (``str`` pieces for text, each with
        whole characters; ``bytes`` for binary), so that only one frame at a
        time is held. A message that was already queued whole when the
        iteration started comes as one piece. Messages are taken in order
        with :meth:`get_message`; leaving the loop before the end discards
        the rest of that message.

        Args:
            max_size: the most bytes the whole message may have, by default
                the connection's ``max_message_size``; ``None`` lifts the
                limit for this message. Each frame is still held whole, so no
                single frame may exceed ``max_message_size``. Beyond either,
                the connection fails with 1009.

        Backpressure and cancellation are as for :meth:`get_message`: the
        connection reads on only while fewer than ``message_queue_size``
        pieces wait, and a cancelled wait loses no piece.
        """
        if isinstance(max_size, Default):
            max_size = self._engine.protocol.max_message_size
        elif max_size is not None and (
            not isinstance(max_size, int) or isinstance(max_size, bool) or max_size <= 0
        ):
            raise ValueError(f"max_size must be a positive int or None, not {max_size!r}")
        return MessageStream(self._engine, max_size)

    def __aiter__(self) -> AsyncIterator[str | bytes]:
        return self

    async def __anext__(self) -> str | bytes:
        """Return the next message; stop after a normal close (1000, 1001, 1005).

        Raises:
            ConnectionClosed: the connection closed with any other code.
        """
        try:
            return await self._engine.get_message()
        except ConnectionClosed as exc:
            if exc.reason.code in NORMAL_CLOSE_CODES:
                raise StopAsyncIteration from None
            raise

    async def ping(self, payload: bytes | None = None) -> None:
        """Send a ping and wait for its pong.

        Pings are matched to pongs in the order they went on the wire: a
        pong answers its own ping and every ping sent before it (RFC 6455
        §5.5.3 lets a peer answer only the latest). Cancellation stops the
        waiting; the ping may or may not have been sent.

        Args:
            payload: at most 125 bytes; ``None`` picks 4 random bytes.

        Raises:
            ConnectionClosed: the connection closed before the pong came.
            ValueError: ``payload`` is too long, or another ``ping`` with the
                same payload is waiting for its pong.
        """
        await self._engine.ping(None if payload is None else bytes(payload))

    async def pong(self, payload: bytes | None = None) -> None:
        """Send an unsolicited pong (a one-way heartbeat).

        Cancellation leaves the pong sent whole or not at all. It is a
        checkpoint as :meth:`send_message` is.

        Args:
            payload: at most 125 bytes; ``None`` sends an empty pong.

        Raises:
            ConnectionClosed: the connection is closing or closed.
            ValueError: ``payload`` is longer than 125 bytes.
        """
        data = check_control_payload(payload, "pong")
        protocol = self._engine.protocol
        await self._engine.send_control(lambda: protocol.send_pong(data))

    async def aclose(self, code: int = 1000, reason: str | None = None) -> None:
        """Close the connection with the closing handshake (:rfc:`6455#section-7`).

        Messages already sent by :meth:`send_message` go out first, then the
        close frame; pending incoming messages are discarded. This waits
        for the peer's close frame and for the TCP connection to close (the
        server closes it first; a client waits for the server), all within
        ``disconnect_timeout``, after which the stream is closed anyway. It
        never raises for a slow or broken peer, and a second call (or a call
        after the peer closed) only waits for the first to finish.

        Cancellation abandons the handshake: the connection is torn down and
        the stream closed by the connection's task before its nursery exits.

        Args:
            code: the close code (1000, 1001, 1003, 1007-1014 or 3000-4999).
            reason: a reason of at most 123 UTF-8 bytes.

        Raises:
            ValueError: the code may not be sent or the reason is too long.
        """
        await self._engine.aclose(code, reason)


class MessageStream:
    """The pieces of one message as they arrive (:meth:`WebSocketConnection.get_message_stream`).

    An async iterator: each ``__anext__`` returns the next piece; it stops
    after the last. Iterate it once, in one task.
    """

    __slots__ = ("_done", "_engine", "_max_size", "_started")

    def __init__(self, engine: ConnectionEngine, max_size: int | None) -> None:
        self._engine = engine
        self._max_size = max_size
        self._started = False
        self._done = False

    def __aiter__(self) -> MessageStream:
        return self

    async def __anext__(self) -> str | bytes:
        """Return the next piece of the message.

        Empty frames inside the message are skipped (an empty message gives
        one empty piece).

        Raises:
            StopAsyncIteration: the message ended.
            ConnectionClosed: the connection closed before the message ended.
        """
        if self._done:
            raise StopAsyncIteration
        engine = self._engine
        first = not self._started
        if first:
            self._started = True
            whole = await engine.start_stream(self._max_size)
            if whole is not None:
                self._done = True
                return whole
        while True:
            data, fin = await engine.next_fragment()
            if fin:
                self._done = True
            if data or first:
                return data
            if fin:
                raise StopAsyncIteration


class _AsyncChunks:
    """A plain iterable as an async iterator (no async generator: nothing to finalize)."""

    __slots__ = ("_chunks",)

    def __init__(self, chunks: Iterable[object]) -> None:
        self._chunks = iter(chunks)

    def __aiter__(self) -> _AsyncChunks:
        return self

    async def __anext__(self) -> object:
        try:
            return next(self._chunks)
        except StopIteration:
            raise StopAsyncIteration from None
