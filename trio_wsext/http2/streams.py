"""One HTTP/2 stream as a :class:`trio.abc.Stream`: what a WebSocket runs over (:rfc:`8441`).

Strategy: the WebSocket's engine reads and writes a byte stream, and over
HTTP/2 that is the DATA of one stream; :class:`Http2Stream` is that byte
stream, so RFC 6455 framing and every extension run over it unchanged. The
:class:`~trio_wsext.http2.connection.Http2Connection` that owns the HTTP/2
connection feeds it (``_on_data``, ``_on_end``, ``_on_reset``) from its
reader and sends what it writes through h2 and its one writer task.

**Backpressure, both ways, per stream.** ``send_all`` sends no more than the
peer's flow-control window allows (RFC 9113 §5.2), and waits for a
WINDOW_UPDATE for the rest; it also waits while the connection's writer has
more than :data:`~trio_wsext.http2.connection.WRITE_HIGH_WATER` bytes to
write, so TCP's own backpressure reaches the sender. Received DATA is
acknowledged (``acknowledge_received_data``) only as ``receive_some`` hands
it to the engine: a WebSocket whose reader stalls (its message queue full)
stops acknowledging, its window closes, and the peer stops sending on that
stream alone. At most one window (``stream_window``) is ever buffered here.

**Closing** follows RFC 8441 §5: "orderly TCP-level closures are
represented as END_STREAM flags, and RST exceptions are represented with the
RST_STREAM frame". ``send_eof`` sends END_STREAM; ``aclose`` sends it too, then waits
(at most :data:`CLOSE_LINGER` seconds) for the peer's, as a TCP close waits
for the peer's FIN, and resets the stream (CANCEL) if it does not come, or if
``aclose`` is cancelled. The peer's END_STREAM is
``receive_some``'s EOF; its RST_STREAM, or the loss of the connection, makes
both directions raise :exc:`trio.BrokenResourceError`.
"""

from __future__ import annotations

import contextlib
from collections import deque
from typing import TYPE_CHECKING, Final

import h2.errors
import h2.exceptions
import trio
from trio.lowlevel import checkpoint, checkpoint_if_cancelled

if TYPE_CHECKING:
    from .connection import Http2Connection

__all__ = ["CLOSE_LINGER", "Http2Stream"]

#: Seconds ``aclose`` waits for the peer's END_STREAM after sending ours
#: before it resets the stream: the server's own lingering close (a peer
#: answers within a round trip; one that does not is gone).
CLOSE_LINGER: Final = 1.0


class Http2Stream(trio.abc.HalfCloseableStream):
    """The DATA of one HTTP/2 stream as a byte stream (see the module's docstring).

    Made by the connection for each request it receives (server) or sends
    (client); not for users to construct.

    Attributes:
        stream_id: the HTTP/2 stream identifier.
        http_version: always ``"2"``.
    """

    http_version: Final = "2"

    def __init__(self, connection: Http2Connection, stream_id: int) -> None:
        self._connection = connection
        self.stream_id = stream_id
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._headers: list[tuple[bytes, bytes]] | None = None
        self._remote_ended = False
        self._local_ended = False
        self._reset_code: int | None = None
        self._error: BaseException | None = None  # the connection was lost
        self._closed = False  # aclose() was called
        self._finished = False  # removed from the connection
        self._receiving = False
        self._sending = False
        self._receive_lot = trio.lowlevel.ParkingLot()
        self._send_lot = trio.lowlevel.ParkingLot()

    def __repr__(self) -> str:
        return f"<Http2Stream {self.stream_id} of {self._connection.log_name}>"

    # ------------------------------------------------------------ from the connection

    def _on_headers(self, headers: list[tuple[bytes, bytes]]) -> None:
        self._headers = headers
        self._receive_lot.unpark_all()

    def _on_data(self, data: bytes, flow_controlled_length: int) -> None:
        padding = flow_controlled_length - len(data)
        if self._closed:
            # Nobody reads any more: give the whole window back at once.
            self._connection.acknowledge(self.stream_id, flow_controlled_length)
            return
        if padding:
            self._connection.acknowledge(self.stream_id, padding)
        if data:
            self._chunks.append(data)
            self._buffered += len(data)
            self._receive_lot.unpark_all()

    def _on_end(self) -> None:
        self._remote_ended = True
        self._receive_lot.unpark_all()

    def _on_reset(self, error_code: int) -> None:
        if self._reset_code is None:
            self._reset_code = error_code
        self._receive_lot.unpark_all()
        self._send_lot.unpark_all()

    def _on_lost(self, error: BaseException) -> None:
        if self._error is None:
            self._error = error
        self._receive_lot.unpark_all()
        self._send_lot.unpark_all()

    def _on_window(self) -> None:
        self._send_lot.unpark_all()

    @property
    def _broken(self) -> bool:
        return self._reset_code is not None or self._error is not None

    def _broken_error(self) -> trio.BrokenResourceError:
        if self._error is not None:
            exc = trio.BrokenResourceError(f"the HTTP/2 connection was lost: {self._error}")
            exc.__cause__ = self._error
            return exc
        code = self._reset_code or 0
        try:
            name = h2.errors.ErrorCodes(code).name
        except ValueError:
            name = str(code)
        return trio.BrokenResourceError(f"HTTP/2 stream {self.stream_id} was reset ({name})")

    # ------------------------------------------------------------ the client's answer

    async def receive_headers(self) -> list[tuple[bytes, bytes]]:
        """Wait for the response's HEADERS (client side) and return them.

        Cancellation leaves the stream as it was.

        Raises:
            trio.BrokenResourceError: the stream was reset or the connection lost.
            trio.ClosedResourceError: the stream was closed.
        """
        await checkpoint_if_cancelled()
        while self._headers is None:
            if self._closed:
                raise trio.ClosedResourceError("the HTTP/2 stream was closed")
            if self._broken:
                raise self._broken_error()
            if self._remote_ended:
                raise trio.BrokenResourceError("the HTTP/2 stream ended without a response")
            await self._receive_lot.park()
        return self._headers

    # ------------------------------------------------------------ trio.abc.Stream

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        """Return the next bytes of the stream's DATA, ``b""`` after the peer's END_STREAM.

        What is returned is acknowledged to the peer (its window reopens);
        what is not read stays unacknowledged. Cancellation loses nothing.

        Raises:
            trio.BrokenResourceError: the peer reset the stream, or the
                connection was lost (after the bytes received before).
            trio.ClosedResourceError: the stream was closed.
            trio.BusyResourceError: another task is receiving.
        """
        if max_bytes is not None and max_bytes < 1:
            raise ValueError(f"max_bytes must be >= 1, not {max_bytes}")
        if self._receiving:
            raise trio.BusyResourceError("another task is receiving on this stream")
        self._receiving = True
        try:
            await checkpoint_if_cancelled()
            while not self._chunks:
                if self._closed:
                    raise trio.ClosedResourceError("the HTTP/2 stream was closed")
                if self._broken:
                    raise self._broken_error()
                if self._remote_ended:
                    await trio.lowlevel.cancel_shielded_checkpoint()
                    return b""
                await self._receive_lot.park()
            data = self._take(max_bytes)
            self._connection.acknowledge(self.stream_id, len(data))
            await trio.lowlevel.cancel_shielded_checkpoint()
            return data
        finally:
            self._receiving = False

    def _take(self, max_bytes: int | None) -> bytes:
        chunks = self._chunks
        if max_bytes is None or self._buffered <= max_bytes:
            data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
            chunks.clear()
        else:
            parts = []
            wanted = max_bytes
            while wanted:
                chunk = chunks[0]
                if len(chunk) <= wanted:
                    parts.append(chunks.popleft())
                    wanted -= len(chunk)
                else:
                    parts.append(chunk[:wanted])
                    chunks[0] = chunk[wanted:]
                    wanted = 0
            data = b"".join(parts)
        self._buffered -= len(data)
        return data

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        """Send ``data`` as DATA frames, as the peer's flow-control windows allow.

        Waits for window updates, and while the connection has too much
        waiting for the socket. Cancellation may leave part of ``data``
        sent, as ``send_all`` may; the stream is then not to be used.

        Raises:
            trio.BrokenResourceError: the peer reset the stream, or the
                connection was lost.
            trio.ClosedResourceError: the stream was closed, or ``send_eof`` called.
            trio.BusyResourceError: another task is sending.
        """
        if self._sending:
            raise trio.BusyResourceError("another task is sending on this stream")
        self._sending = True
        try:
            await checkpoint_if_cancelled()
            connection = self._connection
            view = memoryview(data).cast("B")
            while True:
                if self._closed or self._local_ended:
                    raise trio.ClosedResourceError("the HTTP/2 stream was closed for sending")
                if self._broken:
                    raise self._broken_error()
                if not view:
                    break
                window = connection.send_window(self.stream_id)
                if window <= 0:
                    await self._send_lot.park()
                    continue
                size = min(window, len(view))
                try:
                    connection.send_data(self.stream_id, bytes(view[:size]))
                except h2.exceptions.StreamClosedError as exc:
                    raise trio.BrokenResourceError("the HTTP/2 stream was closed") from exc
                view = view[size:]
                await connection.wait_drained()
            await trio.lowlevel.cancel_shielded_checkpoint()
        finally:
            self._sending = False

    async def wait_send_all_might_not_block(self) -> None:
        """Wait until the stream's flow-control window is open."""
        await checkpoint_if_cancelled()
        while not self._broken and not self._closed:
            if self._connection.send_window(self.stream_id) > 0:
                break
            await self._send_lot.park()
        await trio.lowlevel.cancel_shielded_checkpoint()

    async def send_eof(self) -> None:
        """Send END_STREAM: the peer's reads then end (RFC 8441 §5's orderly close).

        Raises:
            trio.BrokenResourceError: the stream was reset or the connection lost.
            trio.ClosedResourceError: the stream was closed.
            trio.BusyResourceError: a ``send_all`` is in progress.
        """
        await checkpoint()
        if self._sending:
            raise trio.BusyResourceError("send_eof while another task is sending")
        if self._closed:
            raise trio.ClosedResourceError("the HTTP/2 stream was closed")
        if self._broken:
            raise self._broken_error()
        self._end_local()

    def _end_local(self) -> None:
        if self._local_ended or self._broken:
            return
        self._local_ended = True
        # Reset meanwhile, or the connection failed: nothing to end.
        with contextlib.suppress(h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
            self._connection.end_stream(self.stream_id)

    async def aclose(self) -> None:
        """Close the stream: END_STREAM, then the peer's (or a reset after :data:`CLOSE_LINGER`).

        Unread received bytes are dropped (and their window given back).
        Cancellation resets the stream (RST_STREAM, CANCEL) and closes it.
        """
        if self._closed:
            await checkpoint()
            return
        self._closed = True
        self._receive_lot.unpark_all()
        self._send_lot.unpark_all()
        try:
            # A forced close (aclose cancelled, aclose_forcefully) is an abort:
            # no END_STREAM, which would read as an orderly end; a reset.
            await checkpoint_if_cancelled()
            self._end_local()
            if not (self._remote_ended or self._broken):
                with trio.move_on_after(CLOSE_LINGER):
                    while not (self._remote_ended or self._broken):
                        await self._receive_lot.park()
            else:
                await trio.lowlevel.cancel_shielded_checkpoint()
        finally:
            if self._buffered:
                self._connection.acknowledge(self.stream_id, self._buffered)
                self._chunks.clear()
                self._buffered = 0
            if not (self._broken or self._remote_ended):
                self._connection.reset_stream(self.stream_id, h2.errors.ErrorCodes.CANCEL)
            self._finished = True
            self._connection.stream_done(self)
