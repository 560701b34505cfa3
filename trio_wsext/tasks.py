"""The machinery under a WebSocket connection: its state, its close logic, its tasks.

Strategy: :class:`ConnectionTasks` is the base of
:class:`~trio_wsext.connection.WebSocketConnection`. It owns the
:class:`trio.abc.Stream`, the sans-I/O :class:`~trio_wsext.protocol.Protocol`
and every piece of per-connection state, and runs the background tasks started
by ``await nursery.start(connection._run)``:

- The **reader** (the ``_run`` task itself) does one ``receive_some`` of up
  to 64 KiB, feeds the protocol's receive side and handles every event. Whole
  messages go into a :class:`~trio_wsext.queues.MessageQueue` of
  ``message_queue_size``; when it is full the reader stops reading, so TCP
  pushes back on the peer.
- The **writer** takes everything waiting in a bounded
  :class:`~trio_wsext.queues.OutgoingQueue`, runs the protocol's send side on
  the whole batch and hands the bytes to one ``send_all``: frames never
  interleave, the compressor's state is advanced by this task only, and a peer
  that stops reading makes ``send_message`` wait.
- The optional **keepalive** is a deadline on the reader that pings every
  ``ping_interval`` seconds.

Only the reader touches the protocol's receive side and only the writer its
send side, so either may run in a worker thread for a large message while the
other goes on; with an extension negotiated, they do. Neither task ever raises:
errors are recorded, the connection is torn down, and
:exc:`~trio_wsext.exceptions.ConnectionClosed` carries the original error as
``__cause__``. The public API on top (``send_message``, ``get_message``,
``ping``, ``aclose`` ...) lives in :mod:`trio_wsext.connection`.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
from collections.abc import Sequence
from typing import Final, TypeAlias

import attrs
import trio

from .endpoints import stream_endpoint
from .extensions.base import Extension
from .frames import CloseCode, CloseReason, is_valid_close_code
from .options import check_connection_options
from .pings import PingTracker, PingWaiter
from .protocol import (
    CloseReceived,
    ConnectionFailed,
    Event,
    Message,
    Ping,
    Pong,
    Protocol,
    Side,
)
from .queues import MessageQueue, OutgoingQueue

__all__ = ["ConnectionTasks"]

# The logger keeps the name users know: these tasks are the connection's.
logger = logging.getLogger("trio_wsext.connection")

#: The most the reader asks of the stream at once by default (STYLE.md: "one
#: receive_some of up to 64 KiB"); the size of a TCP receive window that still
#: fits a cache. trio-websocket's ``receive_buffer_size`` option overrides it.
RECEIVE_SIZE: Final = 64 * 1024

#: Outgoing items (messages, pings, pongs) that may wait for the writer. With
#: ``message_queue_size`` on the way in it bounds the memory of a connection
#: whose peer stops reading; 16 matches websockets' ``max_queue``.
OUTGOING_QUEUE_SIZE: Final = 16

#: Messages at least this long (bytes, or characters for text) are run through
#: the extension chain in a worker thread when an extension is negotiated, so
#: a 16 MiB compression does not stall the other connections of the process.
#: Below about 1 MiB a thread round trip (~50 µs) costs more than it saves.
THREAD_SEND_THRESHOLD: Final = 1024 * 1024

#: Incoming: once this many received bytes are waiting to become a message,
#: feeding more runs in a worker thread (decompression happens when a frame is
#: complete). Compressed data is typically 4-10x smaller than the message, so
#: this is a quarter of :data:`THREAD_SEND_THRESHOLD`.
THREAD_RECEIVE_THRESHOLD: Final = 256 * 1024


# Items of the outgoing queue: a message to send with the default compression
# is its bare ``str``/``bytes`` (no object per message); the rest are these.
@attrs.frozen
class _SendMessage:
    data: str | bytes
    compress: bool | None


@attrs.frozen
class _SendPing:
    payload: bytes


@attrs.frozen
class _SendPong:
    payload: bytes


_Outgoing: TypeAlias = str | bytes | _SendMessage | _SendPing | _SendPong


class ConnectionTasks(trio.abc.AsyncResource):
    """The state, close logic and background tasks of a WebSocket connection.

    The base of :class:`~trio_wsext.connection.WebSocketConnection`, which
    documents the arguments and holds the public API; not meant to be used on
    its own.
    """

    # Slots, not a __dict__: an idle server holds thousands of these.
    __slots__ = (
        "_close_cause",
        "_close_received",
        "_close_request",
        "_close_sent",
        "_close_timed_out",
        "_closed",
        "_discard_incoming",
        "_disconnect_timeout",
        "_done",
        "_eof",
        "_event_index",
        "_events",
        "_extra_data",
        "_failing",
        "_finishing",
        "_incoming",
        "_is_client",
        "_local",
        "_local_close",
        "_offload",
        "_outgoing",
        "_path",
        "_pending_keepalive",
        "_pending_pong",
        "_pending_receive_bytes",
        "_ping_interval",
        "_ping_timeout",
        "_pings",
        "_protocol",
        "_receive_done",
        "_receive_size",
        "_remote",
        "_request_headers",
        "_response_headers",
        "_scope",
        "_stream",
        "_subprotocol",
        "_unscheduled_calls",
        "_wire_bytes_received",
        "_wire_bytes_sent",
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
        message_queue_size: int = 16,
        max_message_size: int | None = 2**20,
        receive_buffer_size: int | None = RECEIVE_SIZE,
        disconnect_timeout: float = 60,
        ping_interval: float | None = 20,
        ping_timeout: float | None = 20,
    ) -> None:
        check_connection_options(
            message_queue_size=message_queue_size,
            max_message_size=max_message_size,
            receive_buffer_size=receive_buffer_size,
            disconnect_timeout=disconnect_timeout,
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
        )
        self._stream = stream
        self._is_client = is_client
        self._protocol = Protocol(
            Side.CLIENT if is_client else Side.SERVER,
            list(extensions),
            max_message_size=max_message_size,
        )
        self._path = path
        self._subprotocol = subprotocol
        self._request_headers = list(request_headers or [])
        self._response_headers = list(response_headers or [])
        self._extra_data = extra_data
        self._receive_size = receive_buffer_size
        self._disconnect_timeout = disconnect_timeout
        self._ping_interval = ping_interval
        self._ping_timeout = ping_timeout
        self._local = stream_endpoint(stream, local=True)
        self._remote = stream_endpoint(stream, local=False)
        # Offload big messages to a thread only where an extension does work.
        self._offload = bool(extensions)

        self._incoming: MessageQueue[str | bytes] = MessageQueue(message_queue_size)
        self._outgoing: OutgoingQueue[_Outgoing] = OutgoingQueue(OUTGOING_QUEUE_SIZE)
        # Control slots, answered ahead of queued messages. RFC 6455 §5.5.3: an
        # endpoint "MAY elect to send a Pong frame for only the most recently
        # processed Ping frame", so one slot bounds what a ping flood costs.
        self._pending_pong: bytes | None = None
        self._pending_keepalive: bytes | None = None
        self._pings = PingTracker()

        self._closed: CloseReason | None = None
        self._close_cause: BaseException | None = None
        self._close_request: tuple[int, str] | None = None
        self._close_sent = False
        self._close_received = False
        self._local_close = False
        self._failing = False
        self._discard_incoming = False
        self._receive_done = False
        self._finishing = False
        self._close_timed_out = False
        self._pending_receive_bytes = 0
        self._events: list[Event] = []  # the last read's events, handled up to _event_index
        self._event_index = 0
        self._eof = False
        self._wire_bytes_sent = 0
        self._wire_bytes_received = 0
        self._scope: trio.CancelScope | None = None
        self._done = trio.Event()
        self._unscheduled_calls = 0  # see connection.SCHEDULE_EVERY

    # ------------------------------------------------------------------ closing

    def _closing(self) -> bool:
        return self._close_request is not None

    def _wake_writer(self) -> None:
        self._outgoing.wake()

    def _drain_incoming(self) -> None:
        """Discard queued incoming messages, unblocking a reader waiting on a full queue."""
        self._incoming.clear()

    def _request_close(self, code: int, reason: str) -> None:
        """Ask the writer to send a close frame after what is queued, and start the clock."""
        self._close_request = (code, reason)
        # Senders blocked on a full queue get ClosedResourceError -> ConnectionClosed;
        # the writer sends what is queued, then sees the queue's end and sends the close.
        self._outgoing.close()
        if self._scope is not None:
            deadline = trio.current_time() + self._disconnect_timeout
            self._scope.deadline = min(self._scope.deadline, deadline)

    def _fail(self, code: int, reason: str, cause: BaseException | None) -> None:
        """Fail the connection (:rfc:`6455#section-7.1.7`): send ``code`` if possible, then close.

        RFC 6455 §7.1.7: "the endpoint SHOULD send a Close frame with an
        appropriate status code before proceeding to _Close the WebSocket
        Connection_"; nothing waits for the peer's answer.
        """
        if self._closed is None:
            self._closed = CloseReason.from_code(code, reason or None)
            self._close_cause = cause
        self._discard_incoming = True
        self._receive_done = True
        self._incoming.close()  # get_message: what is queued, then ConnectionClosed
        if self._close_request is None and is_valid_close_code(code):
            self._failing = True
            self._request_close(code, reason)
        elif self._close_sent or self._close_request is None:
            self._finish()
        else:
            self._failing = True  # a close is queued: the writer finishes after sending it

    def _connection_lost(self, cause: BaseException | None, reason: str) -> None:
        """The stream broke or ended without a closing handshake: code 1006, tear down."""
        if self._closed is None:
            self._closed = CloseReason.from_code(CloseCode.ABNORMAL_CLOSURE, reason)
            self._close_cause = cause
        self._finish()

    def _finish(self) -> None:
        """Stop the background tasks; ``_run`` then closes the stream."""
        self._finishing = True
        self._outgoing.close()
        if self._scope is not None:
            self._scope.cancel()

    def _finish_unstarted(self) -> None:
        self._finishing = True
        self._outgoing.close()
        self._incoming.close()
        self._pings.close()
        self._done.set()

    def _close_handshake_progress(self) -> None:
        """Called when our close was sent or the peer's arrived."""
        if self._failing and self._close_sent:
            self._finish()
        elif self._close_sent and self._close_received and not self._is_client:
            # RFC 6455 §7.1.1: "the underlying TCP connection, in most normal
            # cases, SHOULD be closed first by the server".
            self._finish()
        # A client waits for the server to close TCP: the reader ends on EOF.

    # ------------------------------------------------------------------ tasks

    async def _run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run the background tasks until the connection is closed, then close the stream.

        Use as ``await nursery.start(connection._run)``: it returns once the
        tasks run. Cancelling it tears the connection down at once (code 1006
        if it was open) and closes the stream.
        """
        try:
            async with trio.open_nursery() as nursery:
                self._scope = nursery.cancel_scope
                nursery.start_soon(self._writer_task)
                task_status.started()
                # The reader runs in this task, not a child: one task less
                # per connection (~2 KiB of an idle connection's memory).
                await self._reader_task()
            if self._scope.cancelled_caught and not self._finishing:
                # The disconnect_timeout deadline ended the tasks.
                self._close_timed_out = not self._close_received
                logger.debug("%s: closing handshake timed out", repr(self))
        finally:
            if self._closed is None:
                self._closed = CloseReason.from_code(
                    CloseCode.ABNORMAL_CLOSURE, "connection task cancelled"
                )
            self._finishing = True
            self._outgoing.close()
            self._incoming.close()
            self._pings.close()
            try:
                # aclose() closes the stream even when cancelled; a broken one
                # (TLS without close_notify, a reset) has nothing left to report.
                with (
                    trio.move_on_after(self._disconnect_timeout),
                    contextlib.suppress(trio.BrokenResourceError, OSError),
                ):
                    await self._stream.aclose()
            finally:
                self._done.set()

    async def _reader_task(self) -> None:
        try:
            if self._ping_interval is None:
                await self._read()
            else:
                await self._read_with_keepalive(self._ping_interval, self._ping_timeout)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            self._connection_lost(exc, "stream broke while reading")
        except Exception as exc:
            logger.exception("%s: reader failed", repr(self))
            self._fail(CloseCode.INTERNAL_ERROR, "internal error", exc)

    async def _read(self) -> None:
        """Read, parse and hand on events until the receive side is done.

        Cancel-safe, so that the keepalive deadline may interrupt it anywhere
        and call it again: ``receive_some`` loses nothing when cancelled, the
        protocol is fed without a checkpoint (or shielded, in a thread), and
        an event leaves :attr:`_events` only once handled.
        """
        while True:
            events = self._events
            while self._event_index < len(events):
                if self._receive_done:
                    return
                await self._handle_event(events[self._event_index])
                self._event_index += 1
            if self._receive_done:
                return
            if self._eof:
                self._on_eof()
                return
            if self._extra_data:
                data: bytes | bytearray = self._extra_data
                self._extra_data = b""
            else:
                data = await self._stream.receive_some(self._receive_size)
                self._eof = not data
            self._wire_bytes_received += len(data)
            await self._feed(data)

    async def _feed(self, data: bytes | bytearray) -> None:
        """Feed the protocol's receive side and keep its events for :meth:`_read`."""
        protocol = self._protocol
        if self._offload and self._pending_receive_bytes + len(data) >= THREAD_RECEIVE_THRESHOLD:
            with trio.CancelScope(shield=True):  # the data must reach the protocol
                await trio.to_thread.run_sync(protocol.receive_data, data)
        else:
            protocol.receive_data(data)
        events = protocol.events_received()
        if events:
            self._pending_receive_bytes = 0
        else:
            self._pending_receive_bytes += len(data)
        self._events = events
        self._event_index = 0

    async def _read_with_keepalive(self, interval: float, pong_timeout: float | None) -> None:
        """:meth:`_read`, pinging every ``interval`` s; 1011 if a pong takes ``pong_timeout``.

        The keepalive is a deadline on the reader, not a task of its own: an
        idle connection costs one task less (~2-3 KiB), and no message pays
        for it. A ping goes out ``interval`` seconds after the previous one if
        that one's pong came by then; otherwise at its pong deadline, where a
        pong still missing fails the connection.
        """
        now = trio.current_time()
        next_ping = now + interval
        waiter: PingWaiter | None = None
        pong_deadline = math.inf
        while True:
            deadline = pong_deadline if next_ping <= now else min(next_ping, pong_deadline)
            with trio.CancelScope(deadline=deadline):
                await self._read()
                return
            now = trio.current_time()
            if self._closing():
                break  # no more pings: the closing handshake has its own timeout
            if waiter is not None:
                if not waiter.answered and now >= pong_deadline:
                    # websockets does the same: "keepalive ping timeout", code 1011.
                    self._fail(CloseCode.INTERNAL_ERROR, "keepalive ping timeout", None)
                    break
                if waiter.answered:
                    waiter, pong_deadline = None, math.inf
            if waiter is None and now >= next_ping:
                payload, waiter = self._pings.add()
                self._pending_keepalive = payload
                self._wake_writer()
                next_ping = now + interval
                if pong_timeout is None:
                    self._pings.forget(payload, waiter)  # never fail: nothing to wait for
                    waiter = None
                else:
                    pong_deadline = now + pong_timeout
        await self._read()

    async def _handle_event(self, event: Event) -> None:
        match event:
            case Message(data=data):
                # A full queue stops reading here. A closed one (the
                # connection failed meanwhile: keepalive) drops the message.
                if not self._discard_incoming and not self._incoming.put_nowait(data):
                    await self._incoming.put(data)
            case Ping(payload=payload):
                if self._close_request is None:
                    self._pending_pong = payload
                    self._wake_writer()
            case Pong(payload=payload):
                self._pings.pong_received(payload)
            case CloseReceived(code=code, reason=reason):
                self._on_close_received(code, reason)
            case ConnectionFailed(code=code, reason=reason, exception=exception):
                self._fail(code, reason, exception)

    def _on_close_received(self, code: int, reason: str) -> None:
        self._close_received = True
        self._incoming.close()  # no message can follow a close frame
        if self._closed is None:
            self._closed = CloseReason.from_code(code, reason or None)
        if self._close_request is None:
            # RFC 6455 §5.5.1: "If an endpoint receives a Close frame and did
            # not previously send a Close frame, the endpoint MUST send a Close
            # frame in response. (When sending a Close frame in response, the
            # endpoint typically echos the status code it received.)"
            self._request_close(code, reason)
        self._close_handshake_progress()

    def _on_eof(self) -> None:
        if self._close_received:
            self._finish()  # the server closed TCP after the closing handshake
        else:
            self._connection_lost(None, "stream ended without a close frame")

    async def _writer_task(self) -> None:
        queue = self._outgoing
        try:
            while True:
                batch, end = queue.take()
                if (
                    not batch
                    and not end
                    and self._pending_pong is None
                    and self._pending_keepalive is None
                ):
                    await queue.wait()
                    continue
                await self._write_batch(batch, end)
                if end:
                    return
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            self._connection_lost(exc, "stream broke while writing")
        except Exception as exc:
            logger.exception("%s: writer failed", repr(self))
            self._fail(CloseCode.INTERNAL_ERROR, "internal error", exc)
            if not self._close_sent:
                self._finish()  # the protocol's send side cannot be trusted to send a close

    async def _write_batch(self, batch: list[_Outgoing], end: bool) -> None:
        protocol = self._protocol
        if self._pending_pong is not None:
            payload, self._pending_pong = self._pending_pong, None
            protocol.send_pong(payload)
        if self._pending_keepalive is not None:
            payload, self._pending_keepalive = self._pending_keepalive, None
            protocol.send_ping(payload)
        for item in batch:
            if self._failing:
                break  # a failing connection sends only its close
            if isinstance(item, str | bytes):
                if self._offload and len(item) >= THREAD_SEND_THRESHOLD:
                    await trio.to_thread.run_sync(protocol.send_message, item)
                else:
                    protocol.send_message(item)
            elif isinstance(item, _SendMessage):
                if self._offload and len(item.data) >= THREAD_SEND_THRESHOLD:
                    send = functools.partial(
                        protocol.send_message, item.data, compress=item.compress
                    )
                    await trio.to_thread.run_sync(send)
                else:
                    protocol.send_message(item.data, compress=item.compress)
            elif isinstance(item, _SendPing):
                protocol.send_ping(item.payload)
            else:
                protocol.send_pong(item.payload)
        sending_close = end and self._close_request is not None
        if sending_close:
            code, reason = self._close_request  # type: ignore[misc]
            protocol.send_close(code, reason)
        data = protocol.data_to_send()
        if data:
            await self._stream.send_all(data)
            self._wire_bytes_sent += len(data)
        if sending_close:
            self._close_sent = True
            self._close_handshake_progress()
