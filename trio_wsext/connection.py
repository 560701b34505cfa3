"""The trio side of a WebSocket connection: the public API of :class:`WebSocketConnection`.

Strategy: a :class:`WebSocketConnection` owns a :class:`trio.abc.Stream` and a
sans-I/O :class:`~trio_wsext.protocol.Protocol`, and does all its I/O in
background tasks started by ``await nursery.start(connection._run)``: a reader,
a writer and an optional keepalive. They, the connection's state and its close
logic live in its base class, :class:`~trio_wsext.tasks.ConnectionTasks`; this
module holds what users call and :class:`ConnectionStatistics`.

Per message, nothing waits that need not: the reader hands a message to a
waiting ``get_message`` directly, a message finds room in a queue without a
scheduler round, and public calls yield only every :data:`SCHEDULE_EVERY`
calls when they do not wait (each still honours cancellation). Measured with
``python -m benchmarks`` (issue 6): a scheduler round per message per task
was most of the cost of a small message.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Final

import attrs
import trio
from trio.lowlevel import cancel_shielded_checkpoint, checkpoint_if_cancelled

from .endpoints import Endpoint
from .exceptions import ConnectionClosed
from .extensions.base import Extension
from .frames import Close, CloseCode, CloseReason, is_valid_close_code
from .pings import MAX_CONTROL_PAYLOAD

# The constants the reader and the writer use live with them in .tasks; they
# are re-exported here, their home before the split, where users import them.
from .tasks import (
    OUTGOING_QUEUE_SIZE as OUTGOING_QUEUE_SIZE,
    RECEIVE_SIZE as RECEIVE_SIZE,
    THREAD_RECEIVE_THRESHOLD as THREAD_RECEIVE_THRESHOLD,
    THREAD_SEND_THRESHOLD as THREAD_SEND_THRESHOLD,
    ConnectionTasks,
    _Outgoing,
    _SendMessage,
    _SendPing,
    _SendPong,
)

__all__ = [
    "ConnectionStatistics",
    "WebSocketConnection",
]


#: A :meth:`~WebSocketConnection.get_message` or
#: :meth:`~WebSocketConnection.send_message` that finds its work done without
#: waiting (a message already queued, room in the outgoing queue) yields to the
#: scheduler only once every this many calls; every call still raises
#: ``Cancelled`` in a cancelled scope. A yield costs a full scheduler round
#: (~5 µs on CPython 3.11), more than the rest of the call; 16 is
#: ``message_queue_size``'s default, so a reader of a full queue yields once
#: per queue's worth.
SCHEDULE_EVERY: Final = 16

#: Close codes after which ``async for message in ws`` ends instead of raising:
#: API.md's 1000 and 1001, and 1005 (a close frame without a code, which
#: browsers send for ``ws.close()``), as websockets does.
NORMAL_CLOSE_CODES: Final = frozenset(
    {CloseCode.NORMAL_CLOSURE, CloseCode.GOING_AWAY, CloseCode.NO_STATUS_RCVD}
)


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


class WebSocketConnection(ConnectionTasks):
    """An open WebSocket connection, client or server side, over any trio stream.

    Users get one from :func:`~trio_wsext.open_websocket` and friends or from
    :meth:`~trio_wsext.WebSocketRequest.accept`. To run one over a stream whose
    opening handshake is already done (an in-memory pair in a test, say),
    construct it and start it with ``await nursery.start(connection._run)``.

    Args:
        stream: the byte stream, after the opening handshake.
        is_client: ``True`` on the client side (frames are masked).
        extensions: the negotiated extensions, in chain order.
        path: the request target (``"/chat?room=1"``).
        subprotocol: the negotiated subprotocol, if any.
        request_headers: the opening handshake's request headers.
        response_headers: the opening handshake's response headers.
        extra_data: bytes received after the handshake: the first frames.
        message_queue_size: whole incoming messages buffered before the
            reader stops reading (0: the reader waits for each ``get_message``).
        max_message_size: the largest incoming message, in bytes, after
            decompression; a larger one fails the connection with 1009.
            ``None`` removes the limit.
        receive_buffer_size: the most bytes asked of the stream per read
            (trio-websocket's option; 64 KiB by default), or ``None`` to let
            the stream choose.
        disconnect_timeout: seconds the closing handshake may take.
        ping_interval: seconds between keepalive pings, ``None`` for none.
        ping_timeout: seconds a keepalive pong may take before the connection
            fails with 1011, ``None`` to never fail.

    Raises:
        ValueError, TypeError: an argument is out of range or of the wrong type.
    """

    # The state's slots are ConnectionTasks'; none here, so still no __dict__.
    __slots__ = ()

    # ------------------------------------------------------------------ properties

    @property
    def closed(self) -> CloseReason | None:
        """``None`` while open; the :class:`~trio_wsext.frames.CloseReason` once closing began.

        It is set once: to the code and reason of :meth:`aclose`, of the peer's
        close frame, or of the failure (1002, 1007, 1009 ... for a protocol
        violation, 1011 for a late keepalive pong, 1006 when the stream broke).
        """
        return self._closed

    @property
    def extensions(self) -> list[Extension]:
        """The negotiated extensions, in chain order (encode order)."""
        return list(self._protocol.extensions)

    @property
    def subprotocol(self) -> str | None:
        """The negotiated subprotocol, or ``None``."""
        return self._subprotocol

    @property
    def path(self) -> str:
        """The request target of the opening handshake (path and query)."""
        return self._path

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
        return self._local

    @property
    def remote(self) -> Endpoint | str:
        """The remote :class:`Endpoint`, or the stream's ``repr`` for a non-TCP stream."""
        return self._remote

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
        protocol = self._protocol
        return ConnectionStatistics(
            messages_sent=protocol.messages_sent,
            messages_received=protocol.messages_received,
            bytes_sent=protocol.bytes_sent,
            bytes_received=protocol.bytes_received,
            wire_bytes_sent=self._wire_bytes_sent,
            wire_bytes_received=self._wire_bytes_received,
        )

    def __repr__(self) -> str:
        side = "client" if self._is_client else "server"
        state = "open" if self._closed is None else f"closed {self._closed}"
        return f"<WebSocketConnection {side} {self._path!r} {state}>"

    # ------------------------------------------------------------------ public API

    async def send_message(
        self,
        message: str | bytes | bytearray | memoryview,
        *,
        compress: bool | None = None,
    ) -> None:
        """Send one message: ``str`` as a text frame, anything bytes-like as binary.

        The message runs through the negotiated extension chain in order.
        Several tasks may call this at once; their messages are never
        interleaved. It returns once the message is queued for the writer
        task; when the peer stops reading, the queue fills and this waits.
        A ``bytearray``/``memoryview`` is copied, so it may be reused at once.

        Cancellation leaves nothing half-sent: the message is queued whole or
        not at all.

        Checkpoints: every call raises ``Cancelled`` in a cancelled scope
        (before queueing anything). When the queue has room, the call yields
        to the scheduler only once every :data:`SCHEDULE_EVERY` calls (calls
        that wait always yield), so a burst of small messages costs no
        scheduler round each; a task sending in a loop still lets the others
        run, and the bounded queue stops it once the writer falls behind.

        Args:
            message: the message.
            compress: ``False`` sends this message uncompressed even with
                permessage-deflate on (already-compressed data); ``None``
                follows the extension's settings.

        Raises:
            ConnectionClosed: the connection is closing or closed.
            TypeError: ``message`` is neither ``str`` nor bytes-like.
        """
        if isinstance(message, str):
            data: str | bytes = message
        elif isinstance(message, bytes | bytearray | memoryview):
            data = bytes(message)
        else:
            raise TypeError(f"message must be str or bytes-like, not {type(message).__name__}")
        if compress is not None and not isinstance(compress, bool):
            raise TypeError(f"compress must be True, False or None, not {compress!r}")
        await self._queue(data if compress is None else _SendMessage(data, compress))

    async def get_message(self) -> str | bytes:
        """Return the next message: ``str`` for text, ``bytes`` for binary.

        Messages received before the peer's close frame can still be read
        after it; after :meth:`aclose`, pending messages are discarded.
        Cancellation loses no message: one that was not returned stays queued.

        Checkpoints: every call raises ``Cancelled`` in a cancelled scope,
        before taking a message. A call that finds a message already queued
        yields to the scheduler only once every :data:`SCHEDULE_EVERY` calls
        (a call that waits always yields), so draining a queue of a thousand
        small messages costs no scheduler round each.

        Raises:
            ConnectionClosed: the connection is closed and no message is left.
        """
        if self._local_close:
            await trio.lowlevel.checkpoint()
            raise self._connection_closed()
        await checkpoint_if_cancelled()
        try:
            data = self._incoming.get_nowait()
        except trio.WouldBlock:
            pass  # wait below
        except trio.EndOfChannel:
            await cancel_shielded_checkpoint()
            raise self._connection_closed() from self._close_cause
        else:
            self._unscheduled_calls += 1
            if self._unscheduled_calls >= SCHEDULE_EVERY:
                self._unscheduled_calls = 0
                await cancel_shielded_checkpoint()
            return data
        try:
            return await self._incoming.get()
        except trio.EndOfChannel:
            raise self._connection_closed() from self._close_cause

    def __aiter__(self) -> AsyncIterator[str | bytes]:
        return self

    async def __anext__(self) -> str | bytes:
        """Return the next message; stop after a normal close (1000, 1001, 1005).

        Raises:
            ConnectionClosed: the connection closed with any other code.
        """
        try:
            return await self.get_message()
        except ConnectionClosed as exc:
            if exc.reason.code in NORMAL_CLOSE_CODES:
                raise StopAsyncIteration from None
            raise

    async def ping(self, payload: bytes | None = None) -> None:
        """Send a ping and wait for the matching pong.

        A pong answers its ping and every ping sent before it (RFC 6455
        §5.5.3 lets a peer answer only the latest). Cancellation stops the
        waiting; the ping may or may not have been sent.

        Args:
            payload: at most 125 bytes; ``None`` picks 4 random bytes.

        Raises:
            ConnectionClosed: the connection closed before the pong came.
            ValueError: ``payload`` is too long, or another ``ping`` with the
                same payload is waiting for its pong.
        """
        data, waiter = self._pings.add(payload)
        try:
            await self._queue(_SendPing(data))
            await waiter.event.wait()
        finally:
            self._pings.forget(data, waiter)
        if not waiter.answered:
            raise self._connection_closed()

    async def pong(self, payload: bytes | None = None) -> None:
        """Send an unsolicited pong (a one-way heartbeat).

        Cancellation leaves the pong queued whole or not at all. It is a
        checkpoint as :meth:`send_message` is.

        Args:
            payload: at most 125 bytes; ``None`` sends an empty pong.

        Raises:
            ConnectionClosed: the connection is closing or closed.
            ValueError: ``payload`` is longer than 125 bytes.
        """
        data = b"" if payload is None else bytes(payload)
        if len(data) > MAX_CONTROL_PAYLOAD:
            raise ValueError(f"pong payload is {len(data)} bytes, more than 125")
        await self._queue(_SendPong(data))

    async def aclose(self, code: int = 1000, reason: str | None = None) -> None:
        """Close the connection with the closing handshake (:rfc:`6455#section-7`).

        Messages already queued by :meth:`send_message` are sent first, then
        the close frame; pending incoming messages are discarded. This waits
        for the peer's close frame and for the TCP connection to close (the
        server closes it first; a client waits for the server), all within
        ``disconnect_timeout``, after which the stream is closed anyway. It
        never raises for a slow or broken peer, and a second call (or a call
        after the peer closed) only waits for the first to finish.

        Cancellation abandons the handshake: the background tasks stop and
        the stream is closed by the connection's task before its nursery exits.

        Args:
            code: the close code (1000, 1001, 1003, 1007-1014 or 3000-4999).
            reason: a reason of at most 123 UTF-8 bytes.

        Raises:
            ValueError: the code may not be sent or the reason is too long.
        """
        if self._closed is None:
            if not is_valid_close_code(code):  # RFC 6455 §7.4.1: 1005, 1006, 1015 are never sent
                raise ValueError(f"close code {code} may not be sent")
            Close(code, reason or "").serialize()  # ValueError for a reason over 123 bytes
            self._closed = CloseReason.from_code(code, reason)
            self._local_close = True
            self._discard_incoming = True
            self._drain_incoming()
            self._request_close(code, reason or "")
        if self._scope is None:  # never started: nothing runs, just close the stream
            self._finish_unstarted()
            await self._stream.aclose()
            return
        try:
            await self._done.wait()
        except BaseException:
            self._finish()
            raise

    # ------------------------------------------------------------------ internals

    def _connection_closed(self) -> ConnectionClosed:
        reason = self._closed or CloseReason.from_code(CloseCode.ABNORMAL_CLOSURE)
        exc = ConnectionClosed(reason)
        exc.__cause__ = self._close_cause
        return exc

    async def _queue(self, item: _Outgoing) -> None:
        if self._closed is not None:
            await trio.lowlevel.checkpoint()
            raise self._connection_closed()
        await checkpoint_if_cancelled()
        try:
            queued = self._outgoing.put_nowait(item)
        except trio.ClosedResourceError:
            await cancel_shielded_checkpoint()
            raise self._connection_closed() from self._close_cause
        if queued:
            self._unscheduled_calls += 1
            if self._unscheduled_calls >= SCHEDULE_EVERY:
                self._unscheduled_calls = 0
                await cancel_shielded_checkpoint()
            return
        try:
            await self._outgoing.put(item)
        except trio.ClosedResourceError:
            raise self._connection_closed() from self._close_cause
