"""The trio side of a WebSocket connection: bytes in and out of a stream, one close state.

Strategy: a :class:`ConnectionEngine` drives a sans-I/O
:class:`~trio_wsext.protocol.Protocol` over a :class:`trio.abc.Stream`, with as
few task hand-offs per message as the guarantees allow.

**Sending.** The task that calls :meth:`~ConnectionEngine.send_message`
frames the message itself (synchronously: nothing else can frame in
between, so frames never interleave and the compressor advances one message
at a time) and hands the bytes to :meth:`~ConnectionEngine._write`. On a TCP
socket with nothing else waiting, that writes them straight to the socket
without blocking; whatever the socket does not take (or everything, on other
streams: TLS, in-memory pairs) waits in the outgoing buffer for the writer
task, which owns the only ``send_all`` in progress. A cancelled
``send_message`` therefore never leaves half a frame on the wire: once
framed, a message belongs to the connection and goes out whole. Senders wait
(in arrival order) while more than ``write_limit`` bytes wait for the wire,
until the writer has drained them to a quarter of it: the outgoing side is
bounded in bytes, as websockets' ``write_limit``. A message of
:data:`THREAD_SEND_THRESHOLD` or more, with an extension negotiated, is
framed in a worker thread; other senders and the engine's own control
frames wait for it.

**Receiving.** Received bytes go into the protocol unparsed; events are
parsed one at a time, and only while the incoming
:class:`~trio_wsext.queues.MessageQueue` has room. The reader task parses
after each read; ``get_message`` parses the next message itself when it
takes one from a full queue, so a burst of messages is consumed without
waking another task. When the queue is full the reader stops parsing and
reading, so that TCP pushes back on the peer: what is left of the last read
(at most ``receive_buffer_size`` bytes) waits as it came, compressed, not as
decoded messages.

**Closing** is one state (:class:`Phase`) next to the protocol's::

    OPEN ──aclose(), or the peer's close frame──────────────▶ CLOSING
    OPEN, CLOSING ──protocol violation, late pong, bug──────▶ FAILING
    CLOSING ──both close frames crossed (server), EOF (client)──▶ DONE
    FAILING ──our close frame written (or unwritable)───────▶ DONE
    any ──EOF, a broken stream, disconnect_timeout──────────▶ DONE

The close frame is framed when closing starts, behind every message framed
before it. CLOSING and FAILING run under ``disconnect_timeout``. DONE
cancels the tasks; the run task then closes the stream.

Memory bound per connection, with ``Q = message_queue_size``,
``M = max_message_size``, ``R = receive_buffer_size`` and
``W = write_limit``: incoming, at most ``Q`` decoded messages of ``M`` bytes
queued, one message of at most ``M`` being assembled, and at most ``R``
received bytes unparsed (more only while one frame larger than that is
being collected, up to ``M`` plus DEFLATE's worst-case 14 % with an
extension); outgoing, at most ``W`` bytes plus the messages framed by senders
already past their turn (one each).
"""

from __future__ import annotations

import contextlib
import ctypes
import enum
import functools
import itertools
import logging
import math
import os
import sys
from collections import deque
from collections.abc import AsyncIterator, Callable, Hashable, Sequence
from typing import Final

import trio
from trio.lowlevel import cancel_shielded_checkpoint, checkpoint_if_cancelled

from .direct_io import BLOCKED, socket_fd
from .endpoints import Endpoint, stream_endpoints
from .exceptions import ConnectionClosed
from .extensions.base import Extension
from .frames import (
    SEPARATE_PAYLOAD_FROM,
    Close,
    CloseCode,
    CloseReason,
    is_valid_close_code,
)
from .options import (
    DEFAULT_OPTIONS,
    DEFAULT_RECEIVE_BUFFER_SIZE,
    ConnectionOptions,
)
from .pings import MAX_CONTROL_PAYLOAD, PingTracker, PingWaiter
from .protocol import (
    CloseReceived,
    ConnectionFailed,
    Event,
    Fragment,
    Message,
    Ping,
    Pong,
    Protocol,
    Side,
)
from .queues import MessageQueue, TurnQueue

__all__ = [
    "CLOSING",
    "IDLE_RELEASE_AFTER",
    "READY",
    "RECEIVE_SIZE",
    "SCHEDULE_EVERY",
    "SLOW",
    "THREAD_RECEIVE_THRESHOLD",
    "THREAD_SEND_THRESHOLD",
    "UNKNOWN_BROADCAST_KEY",
    "ConnectionEngine",
    "Phase",
]

# The logger keeps the name users know: the engine is the connection's.
logger = logging.getLogger("trio_wsext.connection")

#: The most the reader asks of the stream at once by default (see
#: :data:`~trio_wsext.options.DEFAULT_RECEIVE_BUFFER_SIZE`).
RECEIVE_SIZE: Final = DEFAULT_RECEIVE_BUFFER_SIZE

#: The most one read asks of a plain TCP socket while a large frame is being
#: received (what is missing of the frame, up to this): a 1 MiB message in
#: four reads instead of sixteen. Without a frame in progress, reads ask for
#: ``receive_buffer_size``.
LARGE_READ: Final = 1024 * 1024


#: Messages at least this long (bytes, or characters for text) are run through
#: the extension chain in a worker thread when an extension is negotiated, so
#: a 16 MiB compression does not stall the other connections of the process.
#: Below about 1 MiB a thread round trip (~50 µs) costs more than it saves.
THREAD_SEND_THRESHOLD: Final = 1024 * 1024

#: A received frame of at least this many bytes (whole in the buffer) is
#: decoded in a worker thread when an extension is negotiated. Compressed data
#: is typically 4-10x smaller than the message, so this is a quarter of
#: :data:`THREAD_SEND_THRESHOLD`.
THREAD_RECEIVE_THRESHOLD: Final = 256 * 1024

#: A public call that finds its work done without waiting (a message already
#: queued, a message written at once) yields to the scheduler only once every
#: this many calls; every call still raises ``Cancelled`` in a cancelled
#: scope. A yield costs a full scheduler round (~5 µs on CPython 3.11), more
#: than the rest of the call.
SCHEDULE_EVERY: Final = 16

#: Seconds without a message sent after which the extensions are asked to
#: free what they can rebuild (permessage-deflate's compressor: a sender may
#: start a fresh one at any message boundary). The connection looks every
#: half of this, and releases when nothing was sent since its last look: so
#: between half of this and all of it after the last message. A connection
#: that sends more often keeps its compressor; one that has released and
#: sent nothing since does not look again until its next message.
IDLE_RELEASE_AFTER: Final = 10.0

#: Seconds a client waits for the server to close TCP once both close frames
#: crossed (the server closes first, RFC 6455 §7.1.1), before closing itself.
CLIENT_CLOSE_WAIT: Final = 1.0

#: Control frames the reader may owe while the send side is busy in a worker
#: thread (pongs, mostly) before it stops parsing: a ping flood costs no more.
_MAX_DEFERRED: Final = 64

#: :attr:`ConnectionEngine.broadcast_key` before a broadcast has looked at the connection.
UNKNOWN_BROADCAST_KEY: Final = object()

#: :meth:`ConnectionEngine.broadcast_readiness`: a message can be framed at once.
READY: Final = 0
#: :meth:`ConnectionEngine.broadcast_readiness`: a send would wait.
SLOW: Final = 1
#: :meth:`ConnectionEngine.broadcast_readiness`: the connection is closing or closed.
CLOSING: Final = 2

# What the reader does next, from ConnectionEngine._pump.
_READ: Final = 0
_THREAD: Final = 1
_WAIT: Final = 2
_EOF: Final = 3


def _unwritten(
    parts: list[bytes | bytearray], written: int
) -> list[bytes | bytearray | memoryview]:
    """What is left of ``parts`` after the first ``written`` bytes went out."""
    for index, part in enumerate(parts):
        if written < len(part):
            rest: list[bytes | bytearray | memoryview] = [memoryview(part)[written:]]
            rest.extend(parts[index + 1 :])
            return rest
        written -= len(part)
    return []


def _coalesce(
    chunks: list[bytes | bytearray | memoryview],
) -> list[bytes | bytearray | memoryview]:
    """Join runs of small chunks into one buffer each; leave large ones as they are.

    One ``send_all`` per buffer: many small messages cost one system call,
    and a large payload is not copied only to be sent.
    """
    if len(chunks) == 1:
        return chunks
    out: list[bytes | bytearray | memoryview] = []
    run: list[bytes | bytearray | memoryview] = []
    for chunk in chunks:
        if len(chunk) >= SEPARATE_PAYLOAD_FROM:
            if run:
                out.append(run[0] if len(run) == 1 else b"".join(run))
                run = []
            out.append(chunk)
        else:
            run.append(chunk)
    if run:
        out.append(run[0] if len(run) == 1 else b"".join(run))
    return out


class Phase(enum.Enum):
    """Where the trio side of a connection is in its life (see the module's diagram)."""

    #: Messages flow both ways.
    OPEN = "open"
    #: Our close frame is framed (first, or echoing the peer's); waiting for
    #: the peer's close frame and for the TCP connection to end.
    CLOSING = "closing"
    #: The connection failed: our close frame, if any, goes out, then the
    #: stream is closed without waiting for the peer.
    FAILING = "failing"
    #: Nothing more crosses the stream; the tasks stop and the stream closes.
    DONE = "done"


_OPEN: Final = Phase.OPEN
_DONE: Final = Phase.DONE


_connection_numbers: Final = itertools.count(1)


def new_log_name(remote: object) -> str:
    """A name for one connection's log lines: ``conn N <peer address>``, N unique in the process.

    The server gives one to each accepted socket, so that the lines of its
    handshake, its handler and its connection all start the same.
    """
    number = next(_connection_numbers)
    # A stream without an address (a memory stream, say) has only a long repr.
    if not isinstance(remote, Endpoint):
        return f"conn {number}"
    host = str(remote.address) if remote.address.version == 4 else f"[{remote.address}]"
    return f"conn {number} {host}:{remote.port}"


def _load_malloc_trim() -> Callable[[], None] | None:
    """glibc's ``malloc_trim(0)``, or ``None`` where there is none (musl, macOS, Windows)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None)
        function = libc.malloc_trim
    except (OSError, AttributeError):  # pragma: no cover - a libc without it
        return None
    function.argtypes = [ctypes.c_size_t]
    function.restype = ctypes.c_int

    def trim() -> None:
        function(0)

    return trim


_malloc_trim: Final = _load_malloc_trim()

#: Seconds between a connection's release and the heap trim it asks for: the
#: connections that went quiet together release together, and one trim
#: serves them all.
TRIM_DELAY: Final = 1.0


class _TrimState:
    """The process's one pending heap trim, and when the last one ran."""

    pending = False
    last = -math.inf


def request_heap_trim() -> None:
    """Ask for :func:`trim_heap` soon: one, :data:`TRIM_DELAY` later, in a worker thread.

    At most one trim per half idle period per process, and none where there
    is no glibc. Called by a connection whose extensions just released
    memory; it never waits.
    """
    now = trio.current_time()
    if (
        _malloc_trim is None
        or _TrimState.pending
        or now - _TrimState.last < IDLE_RELEASE_AFTER / 2
    ):
        return
    _TrimState.pending = True
    trio.lowlevel.spawn_system_task(_trim_later)


async def _trim_later() -> None:
    # A system task: an exception escaping it would end the whole trio run.
    try:
        await trio.sleep(TRIM_DELAY)
        await trio.to_thread.run_sync(trim_heap)
        _TrimState.last = trio.current_time()
    except Exception:  # pragma: no cover - malloc_trim does not raise
        logger.warning("heap trim failed", exc_info=True)
    finally:
        _TrimState.pending = False


def trim_heap() -> None:
    """Give freed heap memory back to the operating system (glibc's ``malloc_trim``).

    zlib's and zlib-ng's compressors are allocated with ``malloc``; when idle
    connections free theirs, glibc keeps the pages for reuse, so the
    process's resident memory does not go down (measured: 200 released
    compressor pairs, 337 KiB per connection before a trim, 26 KiB after).
    It walks the whole heap, so it runs in a worker thread
    (:func:`request_heap_trim`). Elsewhere than glibc it does nothing.
    """
    if _malloc_trim is not None:
        _malloc_trim()


class ConnectionEngine:
    """Runs one WebSocket connection over a stream: framing, I/O, keepalive, closing.

    :class:`~trio_wsext.connection.WebSocketConnection` holds one and documents
    the arguments; start it with ``await nursery.start(engine.run)``.
    """

    # Slots, not a __dict__: an idle server holds thousands of these.
    __slots__ = (
        "_close_cause",
        "_closed",
        "_corked",
        "_deferred",
        "_discard",
        "_disconnect_timeout",
        "_done",
        "_drain_waiter",
        "_drained",
        "_fd",
        "_finished",
        "_framed",
        "_high_water",
        "_hold_fragmented",
        "_idle_mark",
        "_incoming",
        "_low_water",
        "_messages_framed",
        "_next_release",
        "_nursery",
        "_offload",
        "_parsing_in_thread",
        "_paused",
        "_pauses",
        "_pending_stats",
        "_phase",
        "_ping_interval",
        "_ping_timeout",
        "_pings",
        "_reader",
        "_reads_without_wait",
        "_receive_size",
        "_released_at",
        "_scope",
        "_send_busy",
        "_senders",
        "_started",
        "_stream_unfinished",
        "_streaming",
        "_timer_scope",
        "_timers_after_pong",
        "_unscheduled_calls",
        "_unsent",
        "_unsent_bytes",
        "_writer",
        "_writing",
        "broadcast_key",
        "bytes_sent",
        "close_timed_out",
        "extra_data",
        "local",
        "log_name",
        "messages_sent",
        "protocol",
        "remote",
        "stream",
        "wire_bytes_received",
        "wire_bytes_sent",
    )

    def __init__(
        self,
        stream: trio.abc.Stream,
        *,
        is_client: bool,
        extensions: Sequence[Extension] = (),
        extra_data: bytes = b"",
        options: ConnectionOptions = DEFAULT_OPTIONS,
        log_name: str | None = None,
        endpoints: tuple[Endpoint | str, Endpoint | str] | None = None,
    ) -> None:
        if not isinstance(options, ConnectionOptions):
            raise TypeError(f"options must be a ConnectionOptions, not {type(options).__name__}")
        message_queue_size = options.message_queue_size
        max_message_size = options.max_message_size
        write_limit = options.write_limit
        #: The byte stream, after the opening handshake.
        self.stream = stream
        #: The sans-I/O protocol.
        self.protocol = Protocol(
            Side.CLIENT if is_client else Side.SERVER,
            list(extensions),
            max_message_size=max_message_size,
        )
        #: Bytes received after the handshake, fed before the first read.
        self.extra_data = extra_data
        #: The stream's endpoints (as the server read them already, if it did).
        self.local, self.remote = endpoints or stream_endpoints(stream)
        #: What this connection's log lines start with (``conn N <peer>``).
        self.log_name = log_name or new_log_name(self.remote)
        #: What crossed the stream after the opening handshake.
        self.wire_bytes_sent = 0
        self.wire_bytes_received = 0
        #: Whole messages (and their payload bytes) written to the stream to the last byte.
        self.messages_sent = 0
        self.bytes_sent = 0
        #: Whether the closing handshake ended at ``disconnect_timeout``
        #: without the peer's close frame.
        self.close_timed_out = False
        #: The connections this one may share broadcast frames with, once
        #: :func:`~trio_wsext.broadcast` has worked it out (it never changes).
        self.broadcast_key: Hashable | None = UNKNOWN_BROADCAST_KEY

        self._receive_size = options.receive_buffer_size
        self._high_water = write_limit
        self._low_water = write_limit // 4
        self._disconnect_timeout = options.disconnect_timeout
        self._ping_interval = options.ping_interval
        self._ping_timeout = options.ping_timeout
        # Offload big messages to a thread only where an extension does work.
        self._offload = bool(extensions)
        self._fd = -1  # set by run() for a plain TCP stream

        self._incoming: MessageQueue[str | bytes | Fragment] = MessageQueue(message_queue_size)
        # A message handed out fragment by fragment whose last one is not taken yet.
        self._stream_unfinished = False
        # Parsing stops after the first frame of a fragmented message until a
        # task asks for it: get_message() assembles it, get_message_stream()
        # streams it. So a message too large to hold is not assembled (and
        # failed with 1009) before its reader could ask for a stream.
        self._hold_fragmented = True
        self._discard = False  # after aclose(): messages still parsed are dropped
        self._reader: trio.lowlevel.Task | None = None  # the reader, parked for room
        self._parsing_in_thread = False
        self._paused = False  # the reader stopped for room (keepalive reads it)
        self._drained = False  # the last socket read emptied the socket
        self._reads_without_wait = 0
        self._pauses = 0  # times it did

        self._senders = TurnQueue()
        self._send_busy = False  # the send side is in a worker thread
        self._streaming = False  # a task sends a fragmented message (it holds the turn)
        self._drain_waiter: trio.lowlevel.Task | None = None  # that task, parked for room
        self._deferred: list[Callable[[], None]] = []  # control frames owed meanwhile
        self._unsent: list[bytes | bytearray | memoryview] = []
        self._unsent_bytes = 0  # waiting for the wire, in flight included
        self._framed = 0  # bytes framed since the handshake
        self._pending_stats: deque[tuple[int, int]] | None = None  # (framed end, payload)
        self._messages_framed = 0
        self._idle_mark = -1
        self._released_at = 0  # messages framed when the extensions last released
        # When the reader next looks for idleness (inf: nothing sent since the
        # last release; the next message sets it again, see _count_message).
        self._next_release = math.inf
        self._writer: trio.lowlevel.Task | None = None  # the writer, parked for work
        self._writing = False  # the writer task runs (it owns send_all)
        self._corked = False  # a write went straight out since the last yield
        self._pings = PingTracker()
        # The keepalive's deadline on the reader, and what it becomes when a
        # pong answers the ping it waits for (see _read_with_timers).
        self._timer_scope: trio.CancelScope | None = None
        self._timers_after_pong = math.inf

        self._phase = _OPEN
        self._closed: CloseReason | None = None
        self._close_cause: BaseException | None = None
        self._scope: trio.CancelScope | None = None
        self._nursery: trio.Nursery | None = None
        self._started = False
        self._done: trio.Event | None = None  # made by the first task to wait for the end
        self._finished = False
        self._unscheduled_calls = 0

    # ------------------------------------------------------------------ state

    @property
    def phase(self) -> Phase:
        """Where the connection is (see :class:`Phase`)."""
        return self._phase

    @property
    def closed(self) -> CloseReason | None:
        """``None`` while open; the reason once closing began (set once)."""
        return self._closed

    def connection_closed(self) -> ConnectionClosed:
        """A new :exc:`ConnectionClosed` for the current reason, with the cause chained."""
        reason = self._closed or CloseReason.from_code(CloseCode.ABNORMAL_CLOSURE)
        exc = ConnectionClosed(reason)
        exc.__cause__ = self._close_cause
        return exc

    def _leaving(self) -> bool:
        # Not OPEN any more (a method: the phase changes across awaits).
        return self._phase is not _OPEN

    def _set_closed(self, code: int, reason: str | None, cause: BaseException | None) -> None:
        if self._closed is None:
            self._closed = CloseReason.from_code(code, reason or None)
            self._close_cause = cause

    def _enter(self, phase: Phase) -> None:
        """Leave OPEN (or CLOSING) for ``phase``: senders stop, the disconnect clock starts."""
        first = self._phase is _OPEN
        self._phase = phase
        if first:
            self._senders.close(self.connection_closed)
            if self._scope is not None:
                deadline = trio.current_time() + self._disconnect_timeout
                self._scope.deadline = min(self._scope.deadline, deadline)

    def _advance(self) -> None:
        """Go to DONE once the closing is over (called whenever it may be)."""
        phase = self._phase
        if phase is _OPEN or phase is _DONE:
            return
        protocol = self.protocol
        flushed = protocol.close_sent is not None and not self._unsent_bytes
        if phase is Phase.FAILING:
            # Our close frame is out, or none will go (a code that may not be
            # sent, or a send side that cannot be trusted).
            if flushed or (protocol.close_sent is None and not self._deferred):
                self._teardown()
        elif flushed and protocol.close_received is not None:
            # RFC 6455 §7.1.1: "the underlying TCP connection, in most normal
            # cases, SHOULD be closed first by the server". A client waits for
            # the server to close it (its reader ends on EOF), briefly.
            if protocol.side is Side.SERVER:
                self._teardown()
            elif self._scope is not None:
                deadline = trio.current_time() + CLIENT_CLOSE_WAIT
                self._scope.deadline = min(self._scope.deadline, deadline)

    def _teardown(self) -> None:
        """DONE: wake every waiting task; the run task closes the stream."""
        if self._phase is _DONE:
            return
        self._set_closed(CloseCode.ABNORMAL_CLOSURE, "connection closed", None)
        self._enter(_DONE)
        self._fd = -1
        self._incoming.close()  # get_message: what is queued, then ConnectionClosed
        self._pings.close()
        self._wake_writer()
        self._wake_reader()
        self._wake_drain_waiter()
        if self._scope is not None:
            self._scope.cancel()

    def _fail(self, code: int, reason: str, cause: BaseException | None) -> None:
        """Fail the connection (:rfc:`6455#section-7.1.7`): send ``code`` if possible, then close.

        RFC 6455 §7.1.7: "the endpoint SHOULD send a Close frame with an
        appropriate status code before proceeding to _Close the WebSocket
        Connection_"; nothing waits for the peer's answer. Messages already
        queued for ``get_message`` are still delivered.
        """
        if self._phase is _DONE:
            return
        self._set_closed(code, reason, cause)
        self._incoming.close()
        self._enter(Phase.FAILING)
        if self.protocol.close_sent is None and is_valid_close_code(code):
            self._frame_control(functools.partial(self.protocol.send_close, code, reason))
        self._advance()

    def _lost(self, cause: BaseException | None, reason: str) -> None:
        """The stream broke or ended without a closing handshake: 1006, tear down."""
        self._set_closed(CloseCode.ABNORMAL_CLOSURE, reason, cause)
        self._teardown()

    # ------------------------------------------------------------------ writing

    def _write(self, parts: list[bytes | bytearray]) -> None:
        """Send framed bytes: straight to the socket when nothing waits, else via the writer.

        Straight to the socket (``os.writev``: a large payload and its header
        go out without being joined) only for the first write since the
        connection last yielded to the scheduler -- a reply in lockstep
        traffic: no task hop, no wait. Writes after it, in the same burst,
        wait in the outgoing buffer and go out together in the writer's
        ``send_all`` at the next scheduler round -- at most
        :data:`SCHEDULE_EVERY` calls away -- instead of a system call each.
        """
        if not parts:
            return
        size = len(parts[0]) if len(parts) == 1 else sum(map(len, parts))
        self._framed += size
        if self._phase is _DONE:
            return  # the stream is closing: nothing more goes out
        fd = self._fd
        if fd >= 0 and not self._unsent_bytes and not self._corked:
            try:
                written = os.write(fd, parts[0]) if len(parts) == 1 else os.writev(fd, parts)
            except BLOCKED:
                written = 0
            except OSError as exc:
                self._lost(exc, "stream broke while writing")
                return
            # Until this connection yields, further writes gather for one send_all.
            self._corked = True
            self._wrote(written)
            if written == size:
                if self._phase is not _OPEN:
                    self._advance()
                return
            self._unsent.extend(_unwritten(parts, written))
            self._unsent_bytes += size - written
        else:
            self._unsent.extend(parts)
            self._unsent_bytes += size
        self._start_writer()

    def _wrote(self, count: int) -> None:
        """Account for ``count`` bytes on the wire: the messages they completed count as sent."""
        self.wire_bytes_sent += count
        pending = self._pending_stats
        if pending:
            wire = self.wire_bytes_sent
            while pending and pending[0][0] <= wire:
                _, payload = pending.popleft()
                self.messages_sent += 1
                self.bytes_sent += payload

    def _count_message(self, payload: int) -> None:
        # A message whose last byte is framed at self._framed: sent once written.
        if self._next_release == math.inf and self._offload:
            self._arm_release()
        if self.wire_bytes_sent >= self._framed and not self._pending_stats:
            self.messages_sent += 1
            self.bytes_sent += payload
            return
        if self._pending_stats is None:
            self._pending_stats = deque()
        self._pending_stats.append((self._framed, payload))

    def _arm_release(self) -> None:
        # The first message since the extensions last released: look for
        # idleness again, IDLE_RELEASE_AFTER / 2 from now (see _read_with_timers).
        when = trio.current_time() + IDLE_RELEASE_AFTER / 2
        self._next_release = when
        scope = self._timer_scope
        if scope is not None and when < scope.deadline:
            scope.deadline = when

    def _start_writer(self) -> None:
        if self._writing:
            self._wake_writer()
        elif self._nursery is not None:
            self._writing = True
            self._nursery.start_soon(self._writer_task)

    def _wake_writer(self) -> None:
        if self._writer is not None:
            trio.lowlevel.reschedule(self._writer)
            self._writer = None

    async def _writer_task(self) -> None:
        """Write out the outgoing buffer with ``send_all``, the only one in progress.

        On a socket it ends once the buffer is empty (the next write goes
        straight to the socket); on other streams it stays, parked, to spare a
        task start per message.
        """
        persistent = self._fd < 0
        try:
            while True:
                chunks = self._unsent
                if not chunks:
                    if not persistent or self._phase is _DONE:
                        return
                    await self._park_writer()
                    continue
                self._unsent = []
                for data in _coalesce(chunks):
                    await self.stream.send_all(data)
                    self._unsent_bytes -= len(data)
                    self._wrote(len(data))
                self._corked = False
                if self._unsent_bytes <= self._low_water:
                    self._wake_drain_waiter()
                    self._senders.wake_one()
                if self._phase is not _OPEN and not self._unsent_bytes:
                    self._advance()
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            self._lost(exc, "stream broke while writing")
        finally:
            self._writing = False

    async def _park_writer(self) -> None:
        self._writer = trio.lowlevel.current_task()

        def abort(_: object) -> trio.lowlevel.Abort:
            self._writer = None
            return trio.lowlevel.Abort.SUCCEEDED

        await trio.lowlevel.wait_task_rescheduled(abort)

    # ------------------------------------------------------------------ framing

    def _frame_control(self, frame: Callable[[], None]) -> None:
        """Frame a control frame now, or after the message being framed in a thread."""
        if self._send_busy:
            self._deferred.append(frame)
            return
        frame()
        self._write(self.protocol.data_to_send_parts())

    def _run_deferred(self) -> None:
        deferred, self._deferred = self._deferred, []
        protocol = self.protocol
        for frame in deferred:
            if protocol.close_sent is None:
                frame()
        self._write(protocol.data_to_send_parts())

    async def _take_turn(self) -> bool:
        """Start a send: refuse it when closing, honour cancellation, wait for the turn.

        Returns whether it had to wait (then the caller passes the turn on
        after framing; otherwise it counts towards :data:`SCHEDULE_EVERY`).

        Raises:
            ConnectionClosed: the connection is closing or closed.
        """
        if self._phase is not _OPEN:
            await trio.lowlevel.checkpoint()
            raise self.connection_closed()
        await checkpoint_if_cancelled()
        if (
            self._send_busy
            or self._streaming
            or self._unsent_bytes > self._high_water
            or self._senders
        ):
            await self._wait_turn()
            return True
        return False

    async def _wait_turn(self) -> None:
        """Wait until this task may frame: the send side free, the buffer under the mark."""
        while (
            self._send_busy
            or self._streaming
            or self._unsent_bytes > self._high_water
            or self._senders
        ):
            await self._senders.wait()
            if not (self._send_busy or self._streaming or self._unsent_bytes > self._high_water):
                return

    def _pass_turn(self) -> None:
        # After framing: the next waiting sender may go if there is room.
        if (
            self._senders
            and not self._send_busy
            and not self._streaming
            and self._unsent_bytes <= self._high_water
        ):
            self._senders.wake_one()

    async def _checkpoint_now_and_then(self) -> None:
        self._unscheduled_calls += 1
        if self._unscheduled_calls >= SCHEDULE_EVERY:
            self._unscheduled_calls = 0
            await cancel_shielded_checkpoint()
            self._corked = False

    async def send_message(self, data: str | bytes, compress: bool | None) -> None:
        """Frame ``data`` as one message and write it (see the module's "Sending").

        Cancellation: before its turn, nothing is sent; once framed, the
        message goes out whole.

        Raises:
            ConnectionClosed: the connection is closing or closed.
        """
        waited = await self._take_turn()
        protocol = self.protocol
        before = protocol.bytes_sent
        if self._offload and len(data) >= THREAD_SEND_THRESHOLD:
            await self._frame_in_thread(
                functools.partial(protocol.send_message, data, compress=compress)
            )
        else:
            try:
                protocol.send_message(data, compress=compress)
            except Exception as exc:
                self._send_side_failed(exc)
                raise self.connection_closed() from exc
            self._write(protocol.data_to_send_parts())
        self._messages_framed += 1
        self._count_message(protocol.bytes_sent - before)
        if self._senders:
            self._pass_turn()
        if not waited:
            await self._checkpoint_now_and_then()

    async def send_stream(self, chunks: AsyncIterator[object], compress: bool | None) -> None:
        """Send each chunk as a frame of one fragmented message, as the chunks come.

        Holds the send turn from the first chunk to the last: other senders
        wait, control frames go out between fragments. After each fragment it
        waits while more than ``write_limit`` bytes wait for the wire, so a
        slow peer slows the producer down. The message ends with an empty
        final frame once ``chunks`` is exhausted (its end is not known
        before); no chunk at all sends nothing. Text chunks (``str``) and
        binary ones (bytes) may not be mixed.

        Cancellation, or an error from ``chunks``, before the first fragment
        sends nothing; after it, the message cannot be finished or taken back,
        so the connection is failed with 1011 before the error goes on.

        Raises:
            ConnectionClosed: the connection is closing or closed.
            TypeError: a chunk is neither ``str`` nor bytes-like, or of the
                other kind than the first.
        """
        waited = await self._take_turn()
        self._streaming = True
        text: bool | None = None
        payload = 0
        try:
            async for chunk in chunks:
                data, is_text = _chunk_data(chunk)
                if text is None:
                    text = is_text
                elif is_text is not text:
                    kind = "str" if text else "bytes-like"
                    raise TypeError(
                        f"a fragmented message's chunks must all be {kind},"
                        f" not {type(chunk).__name__}"
                    )
                payload += await self._send_fragment(data, text, False, compress)
            if text is not None:
                payload += await self._send_fragment(b"", text, True, compress)
                self._messages_framed += 1
                self._count_message(payload)
        except BaseException as exc:
            if text is not None and self._phase is _OPEN:
                # Half a message is out: nothing else may follow it.
                self._fail(CloseCode.INTERNAL_ERROR, "sending a fragmented message failed", exc)
            raise
        finally:
            self._streaming = False
            self._pass_turn()
        if not waited:
            await self._checkpoint_now_and_then()

    async def _send_fragment(
        self, data: bytes, text: bool, fin: bool, compress: bool | None
    ) -> int:
        """Frame one fragment and write it; wait while the outgoing buffer is full.

        Returns the fragment's payload size.
        """
        if self._phase is not _OPEN:
            raise self.connection_closed()
        protocol = self.protocol
        before = protocol.bytes_sent
        frame = functools.partial(
            protocol.send_fragment, data, text=text, fin=fin, compress=compress
        )
        if self._offload and len(data) >= THREAD_SEND_THRESHOLD:
            await self._frame_in_thread(frame)
        else:
            try:
                frame()
            except Exception as exc:
                self._send_side_failed(exc)
                raise self.connection_closed() from exc
            self._write(protocol.data_to_send_parts())
        if self._unsent_bytes > self._high_water and not fin:
            await self._wait_drained()
        return protocol.bytes_sent - before

    async def _wait_drained(self) -> None:
        """Wait until the writer brought the outgoing buffer down to a quarter of the mark.

        Raises:
            ConnectionClosed: the connection was torn down meanwhile.
        """
        while self._unsent_bytes > self._low_water:
            if self._phase is _DONE:
                raise self.connection_closed()
            self._drain_waiter = trio.lowlevel.current_task()

            def abort(_: object) -> trio.lowlevel.Abort:
                self._drain_waiter = None
                return trio.lowlevel.Abort.SUCCEEDED

            await trio.lowlevel.wait_task_rescheduled(abort)

    def _wake_drain_waiter(self) -> None:
        if self._drain_waiter is not None:
            trio.lowlevel.reschedule(self._drain_waiter)
            self._drain_waiter = None

    # ------------------------------------------------------------------ broadcast

    def broadcast_readiness(self) -> int:
        """Whether a message can be framed now without waiting, for a broadcast.

        Returns :data:`READY` (open, the send side free, the outgoing buffer
        at or under ``write_limit``), :data:`SLOW` (open, but a send would
        wait: the buffer is over the mark, a message is being framed in a
        worker thread, or a fragmented message is being sent) or
        :data:`CLOSING` (closing or closed).
        """
        if self._phase is not _OPEN:
            return CLOSING
        if self._send_busy or self._streaming or self._unsent_bytes > self._high_water:
            return SLOW
        return READY

    def send_message_now(self, data: str | bytes, compress: bool | None) -> bool:
        """Frame and write ``data`` without waiting; the caller checked :data:`READY`.

        Returns whether the message was framed: ``False`` if an extension
        failed on it (the connection is then closed with 1011, as
        :meth:`send_message` does).
        """
        protocol = self.protocol
        before = protocol.bytes_sent
        try:
            protocol.send_message(data, compress=compress)
        except Exception as exc:
            self._send_side_failed(exc)
            return False
        self._sent_now(protocol.bytes_sent - before)
        return True

    def send_prepared_now(self, parts: Sequence[bytes], payload_size: int) -> None:
        """Write a message framed for several connections; the caller checked :data:`READY`.

        See :meth:`~trio_wsext.protocol.Protocol.send_prepared_message`.
        """
        self.protocol.send_prepared_message(parts, payload_size)
        self._sent_now(payload_size)

    def _sent_now(self, payload_size: int) -> None:
        # A broadcast writes once per connection and then yields: its write
        # must not leave the connection corked, or the connection's next
        # writes would all wait for the writer task.
        corked = self._corked
        self._write(self.protocol.data_to_send_parts())
        self._corked = corked
        self._messages_framed += 1
        self._count_message(payload_size)

    def fail_now(self, code: int, reason: str) -> None:
        """Fail the connection with ``code`` without waiting (a broadcast's too-slow policy).

        The close frame goes out behind what is already buffered; the
        connection is torn down once it is written, or after
        ``disconnect_timeout``.
        """
        self._fail(code, reason, None)

    async def _frame_in_thread(self, frame: Callable[[], None]) -> None:
        """Frame in a worker thread; control frames owed meanwhile go right after.

        Not cancellable: the message is framed whole (the cancellation reaches
        the caller at its next checkpoint).
        """
        self._send_busy = True
        try:
            await trio.to_thread.run_sync(frame)
        except Exception as exc:
            self._send_busy = False
            self._send_side_failed(exc)
            raise self.connection_closed() from exc
        self._send_busy = False
        self._write(self.protocol.data_to_send_parts())
        if self._deferred:
            self._run_deferred()
        self._wake_reader()  # it may have stopped for owing too many control frames

    def _send_side_failed(self, exc: Exception) -> None:
        # An extension's encode (or a bug) failed: the send side's state is
        # unknown, so no close frame can be trusted to go out after it.
        logger.error("%s: sending failed", self.log_name, exc_info=exc)
        self._set_closed(CloseCode.INTERNAL_ERROR, "internal error", exc)
        self._incoming.close()
        self._teardown()

    async def send_control(self, frame: Callable[[], None]) -> None:
        """Frame a ping or pong from the application in its turn, as a message would be.

        While a fragmented message is being sent (its sender holds the turn
        until its end), the control frame goes out between two fragments.
        """
        if self._streaming and self._phase is _OPEN and not self._send_busy:
            await checkpoint_if_cancelled()
            self._frame_control(frame)
            await cancel_shielded_checkpoint()
            return
        waited = await self._take_turn()
        frame()
        self._write(self.protocol.data_to_send_parts())
        if self._senders:
            self._pass_turn()
        if not waited:
            await self._checkpoint_now_and_then()

    async def ping(self, payload: bytes | None) -> None:
        """Send a ping and wait for its pong (or a later one), matched in wire order.

        The ping is registered when it is framed, so the order of the
        tracker is the order on the wire.

        Raises:
            ConnectionClosed: the connection closed before the pong came.
            ValueError: the payload is too long or already in flight.
        """
        waiter: PingWaiter | None = None
        data = b""

        def frame() -> None:
            nonlocal waiter, data
            data, waiter = self._pings.add(payload)
            self.protocol.send_ping(data)

        if payload is not None:
            self._pings.check(payload)  # ValueError before waiting for a turn
        await self.send_control(frame)
        assert waiter is not None
        try:
            await waiter.event.wait()
        finally:
            self._pings.forget(data, waiter)
        if not waiter.answered:
            raise self.connection_closed()

    async def aclose(self, code: int, reason: str | None) -> None:
        """Close with the closing handshake; see :meth:`WebSocketConnection.aclose`."""
        if self._phase is _OPEN:
            if not is_valid_close_code(code):  # RFC 6455 §7.4.1: 1005, 1006, 1015 are never sent
                raise ValueError(f"close code {code} may not be sent")
            Close(code, reason or "").serialize()  # ValueError for a reason over 123 bytes
            self._set_closed(code, reason, None)
            self._discard = True
            self._incoming.clear()
            self._incoming.close()
            self._enter(Phase.CLOSING)
            self._frame_control(functools.partial(self.protocol.send_close, code, reason or ""))
            self._wake_reader()  # it reads on, discarding, to find the peer's close frame
            self._advance()
        if not self._started:  # never started: nothing runs, just close the stream
            self._teardown()
            self._finish()
            await self.stream.aclose()
            return
        try:
            await self._wait_finished()
        except BaseException:
            self._teardown()
            raise

    async def _wait_finished(self) -> None:
        # The event exists only once a task waits: an idle connection holds none.
        if self._finished:
            await trio.lowlevel.checkpoint()
            return
        if self._done is None:
            self._done = trio.Event()
        await self._done.wait()

    def _finish(self) -> None:
        self._finished = True
        if self._done is not None:
            self._done.set()

    # ------------------------------------------------------------------ receiving

    async def get_message(self) -> str | bytes:
        """Return the next message, parsing it here when the reader stopped for room.

        Cancellation loses no message.

        Raises:
            ConnectionClosed: the connection is closed and no message is left.
        """
        await checkpoint_if_cancelled()
        if self._stream_unfinished:
            await self._skip_stream_rest()
        if not len(self._incoming):
            self._hold_fragmented = False  # a fragmented message next is assembled for us
        item = await self._take()
        assert not isinstance(item, Fragment)  # fragments only follow start_stream()
        return item

    async def _take(self) -> str | bytes | Fragment:
        """Take the next item of the incoming queue, parsing the one after it here.

        At once when one is queued (then the next is parsed in this task, and
        the call yields only now and then, see :data:`SCHEDULE_EVERY`);
        otherwise the reader is woken and this waits. Cancellation loses no item.

        Raises:
            ConnectionClosed: the connection is closed and nothing is left.
        """
        incoming = self._incoming
        try:
            item = incoming.get_nowait()
        except trio.WouldBlock:
            pass
        except trio.EndOfChannel:
            await cancel_shielded_checkpoint()
            raise self.connection_closed() from self._close_cause
        else:
            if self.protocol.buffered and not self._parsing_in_thread:
                self._refill()
            await self._checkpoint_now_and_then()
            return item
        self._wake_reader()  # size 0: a task waits now, so the reader may parse
        self._corked = False  # the next reply is written at once
        try:
            return await incoming.get()
        except trio.EndOfChannel:
            raise self.connection_closed() from self._close_cause

    async def start_stream(self, max_size: int | None) -> str | bytes | None:
        """Start taking the next message fragment by fragment (see :meth:`next_fragment`).

        Returns the next message whole if it was queued already (it fitted
        ``max_message_size``); otherwise ``None``, and the message in
        progress, or the next one, arrives through :meth:`next_fragment`,
        with ``max_size`` as its limit.

        Raises:
            ConnectionClosed: the connection is closed and no message is left.
        """
        await checkpoint_if_cancelled()
        if self._stream_unfinished:
            await self._skip_stream_rest()
        incoming = self._incoming
        if len(incoming):
            return await self.get_message()
        while self._parsing_in_thread:  # the receive side is busy in a worker thread
            await trio.sleep(0.001)
            if len(incoming):
                return await self.get_message()
        if incoming.closed:
            await cancel_shielded_checkpoint()
            raise self.connection_closed() from self._close_cause
        self.protocol.stream_next_message(max_size)
        self._stream_unfinished = True
        self._refill()
        await cancel_shielded_checkpoint()
        return None

    async def next_fragment(self) -> tuple[str | bytes, bool]:
        """Return the next piece of the message being streamed, and whether it is the last.

        Cancellation loses nothing.

        Raises:
            ConnectionClosed: the connection closed before the message ended.
        """
        item = await self._take()
        assert isinstance(item, Fragment)
        if item.fin:
            self._stream_unfinished = False
            self._hold_fragmented = True
        return item.data, item.fin

    async def _skip_stream_rest(self) -> None:
        # A stream left before its last piece: the rest of that message goes.
        while self._stream_unfinished:
            await self.next_fragment()

    def _refill(self) -> None:
        # A message was taken from the queue: parse the next one here, in
        # this task, and wake the reader only if it must read or thread.
        if self._reader is not None:
            if self._pump() != _WAIT:
                self._wake_reader()
        elif self._phase is _OPEN or self._discard:
            self._pump()

    def _pump(self) -> int:
        """Handle events while the queue has room; say what the reader should do next.

        Returns :data:`_READ` (the buffer holds no whole event: read),
        :data:`_THREAD` (a large whole frame: decode it in a thread),
        :data:`_EOF` (nothing more will come: handle the end) or :data:`_WAIT`
        (no room, or the connection is failing: park).
        """
        protocol = self.protocol
        incoming = self._incoming
        offload = self._offload
        while incoming.has_room() or self._discard:
            phase = self._phase
            if phase is Phase.FAILING or phase is _DONE or len(self._deferred) >= _MAX_DEFERRED:
                return _WAIT
            if self._hold_fragmented and protocol.assembling and not self._discard:
                return _WAIT  # until get_message() or get_message_stream() asks
            if offload and protocol.next_frame_size >= THREAD_RECEIVE_THRESHOLD:
                return _THREAD
            event = protocol.next_event()
            if event is None:
                return _EOF if protocol.eof_received else _READ
            self._handle(event)
        if not protocol.receiving:
            return _EOF if protocol.eof_received else _READ
        return _WAIT  # no room (EOF too is handled once everything before it was taken)

    def _handle(self, event: Event) -> None:
        if type(event) is Message:
            self._hold_fragmented = True
            if not self._discard:
                self._incoming.put(event.data)
        elif type(event) is Fragment:
            if not self._discard:
                self._incoming.put(event)
        elif type(event) is Ping:
            if self.protocol.close_sent is None:
                self._frame_control(functools.partial(self.protocol.send_pong, event.payload))
        elif type(event) is Pong:
            self._pings.pong_received(event.payload)
            scope = self._timer_scope
            if scope is not None and self._timers_after_pong < scope.deadline:
                # The reader waited for this pong: its next deadline is the next ping.
                scope.deadline = self._timers_after_pong
        elif type(event) is CloseReceived:
            self._on_close_received(event.code, event.reason)
        else:
            assert type(event) is ConnectionFailed
            if event.code == CloseCode.INTERNAL_ERROR:
                # An extension's decode raised: our bug, not the peer's.
                logger.error(
                    "%s: %s", self.log_name, event.reason, exc_info=event.exception.__cause__
                )
            self._fail(event.code, event.reason, event.exception)

    def _on_close_received(self, code: int, reason: str) -> None:
        self._incoming.close()  # no message can follow a close frame
        self._set_closed(code, reason, None)
        if self._phase is _OPEN:
            self._enter(Phase.CLOSING)
        if self.protocol.close_sent is None:
            # RFC 6455 §5.5.1: "If an endpoint receives a Close frame and did
            # not previously send a Close frame, the endpoint MUST send a Close
            # frame in response. (When sending a Close frame in response, the
            # endpoint typically echos the status code it received.)"
            self._frame_control(functools.partial(self.protocol.send_close, code, reason))
        self._advance()

    def _is_done(self) -> bool:
        # A method, so that a type checker does not take the phase read
        # before a _pump() for the phase after it.
        return self._phase is _DONE

    def _wake_reader(self) -> None:
        if self._reader is not None:
            trio.lowlevel.reschedule(self._reader)
            self._reader = None

    async def _park_reader(self) -> None:
        # Stopped for room (or while failing). The pause counts for the
        # keepalive until the reader goes on reading.
        self._pauses += 1
        self._reader = trio.lowlevel.current_task()

        def abort(_: object) -> trio.lowlevel.Abort:
            self._reader = None
            return trio.lowlevel.Abort.SUCCEEDED

        await trio.lowlevel.wait_task_rescheduled(abort)

    async def _read(self) -> None:
        """Read, parse and handle events until DONE (see the module's "Receiving").

        Cancel-safe, so that the keepalive deadline may interrupt it anywhere
        and call it again: ``receive_some`` loses nothing when cancelled,
        parking loses nothing, and a threaded decode is shielded.
        """
        protocol = self.protocol
        stream = self.stream
        size = self._receive_size
        socket_size = size or RECEIVE_SIZE
        while self._phase is not _DONE:
            if protocol.receiving:
                status = self._pump()
            else:  # after a close frame or a failure: read on (discarding) until EOF
                status = _EOF if protocol.eof_received else _READ
            if status == _WAIT:
                if self._is_done():
                    return  # the close frame just handled ended it: nothing to wait for
                self._paused = True
                await self._park_reader()
                continue
            self._paused = False
            if status == _THREAD:
                await self._decode_in_thread()
            elif status == _EOF:
                self._on_eof()
                return
            else:
                data: bytes | bytearray
                if self._fd >= 0:
                    # A plain TCP socket, read here rather than in a coroutine
                    # of its own (each costs an idle connection its frame).
                    # trio's receive_some tries recv first and waits on
                    # EAGAIN: in request/response traffic, where every read
                    # drains the socket, a failed system call per message.
                    # After a read that drained it, wait for readability
                    # first. A read that did not wait yields once every
                    # SCHEDULE_EVERY reads, so a peer that keeps the socket
                    # full cannot starve the other tasks. Cancel-safe: a
                    # cancelled wait has read nothing.
                    if self._drained:
                        await trio.lowlevel.wait_readable(self._fd)
                        self._reads_without_wait = 0
                    elif self._reads_without_wait >= SCHEDULE_EVERY:
                        await trio.lowlevel.checkpoint()
                        self._reads_without_wait = 0
                    else:
                        await checkpoint_if_cancelled()
                    fd = self._fd
                    if fd < 0:
                        raise trio.ClosedResourceError("the connection is being torn down")
                    # Inside a large frame, read what is missing of it (up to
                    # LARGE_READ): it is part of the frame's own bound.
                    wanted = max(socket_size, min(protocol.frame_bytes_missing, LARGE_READ))
                    try:
                        data = os.read(fd, wanted)
                    except BLOCKED:
                        self._drained = True
                        continue
                    except OSError as exc:
                        raise trio.BrokenResourceError(f"socket read failed: {exc}") from exc
                    self._drained = len(data) < wanted
                    self._reads_without_wait += 1
                else:
                    data = await stream.receive_some(size)
                self._corked = False
                self.wire_bytes_received += len(data)
                protocol.receive_data(data)

    async def _decode_in_thread(self) -> None:
        protocol = self.protocol
        self._parsing_in_thread = True
        try:
            with trio.CancelScope(shield=True):  # the frame is half-consumed otherwise
                event = await trio.to_thread.run_sync(protocol.next_event)
        finally:
            self._parsing_in_thread = False
        if event is not None:
            self._handle(event)

    def _on_eof(self) -> None:
        if self.protocol.close_received is not None:
            if self.protocol.side is Side.SERVER and self._unsent_bytes:
                # A client that half-closes with its close frame (Chromium
                # over HTTP/2 sets END_STREAM on it, RFC 8441) still gets our
                # close frame: the writer flushes it, then _advance ends the
                # connection (within disconnect_timeout).
                return
            self._teardown()  # the server closed TCP after the closing handshake
        else:
            self._lost(None, "stream ended without a close frame")

    # ------------------------------------------------------------------ the run task

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run the connection until it is closed, then close the stream.

        Use as ``await nursery.start(engine.run)``: it returns once running.
        Cancelling it tears the connection down at once (1006 if it was open)
        and closes the stream.

        Raises:
            RuntimeError: it was started before.
        """
        if self._started:
            raise RuntimeError("this connection was started already")
        self._started = True
        try:
            async with trio.open_nursery() as nursery:
                self._scope = nursery.cancel_scope
                self._nursery = nursery
                if self._phase is not _OPEN:  # closed before it started
                    self._teardown()
                self._fd = socket_fd(self.stream)
                if self._fd < 0:
                    self._writing = True
                    nursery.start_soon(self._writer_task)
                if self._unsent:
                    self._start_writer()
                if self.extra_data:
                    self.wire_bytes_received += len(self.extra_data)
                    self.protocol.receive_data(self.extra_data)
                    self.extra_data = b""
                task_status.started()
                # The reader runs in this task, not a child, and is not a
                # coroutine of its own: each costs an idle connection memory.
                try:
                    if self._ping_interval is None and not self._offload:
                        await self._read()
                    else:
                        await self._read_with_timers()
                except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                    self._lost(exc, "stream broke while reading")
                except Exception as exc:
                    logger.exception("%s: reader failed", self.log_name)
                    self._fail(CloseCode.INTERNAL_ERROR, "internal error", exc)
                    await self._read()  # until our close frame is out (or the timeout)
            if self._scope.cancelled_caught and self._phase is not _DONE:
                # The disconnect_timeout deadline ended the tasks.
                self.close_timed_out = self.protocol.close_received is None
                logger.debug("%s: closing handshake timed out", self.log_name)
        finally:
            self._set_closed(CloseCode.ABNORMAL_CLOSURE, "connection task cancelled", None)
            self._teardown()
            self._nursery = None
            try:
                if type(self.stream) is trio.SocketStream:
                    # Cannot block or fail; and this task ends here, so no
                    # checkpoint (SocketStream.aclose's costs a scheduler round).
                    self.stream.socket.close()
                else:
                    # aclose() closes the stream even when cancelled; a broken one
                    # (TLS without close_notify, a reset) has nothing left to report.
                    with (
                        trio.move_on_after(self._disconnect_timeout),
                        contextlib.suppress(trio.BrokenResourceError, OSError),
                    ):
                        await self.stream.aclose()
            finally:
                self._finish()

    async def _read_with_timers(self) -> None:
        """:meth:`_read` under the keepalive and idle-release deadlines.

        The timers are a deadline on the reader, not tasks of their own: an
        idle connection costs one task less, and no message pays for them. A
        ping goes out ``ping_interval`` seconds after the previous one if that
        one's pong came by then; otherwise at its pong deadline, where a pong
        still missing fails the connection with 1011 -- unless the reader
        stopped for backpressure meanwhile: then the pong may be behind data
        this side chose not to read, and the deadline moves on -- unless
        this side's own bytes have waited unwritten all that time (the peer
        reads nothing: it only sends, and would hold the connection forever).
        """
        interval = self._ping_interval
        pong_timeout = self._ping_timeout
        now = trio.current_time()
        next_ping = math.inf if interval is None else now + interval
        waiter: PingWaiter | None = None
        pauses_at_ping = 0
        written_at_ping = 0
        pong_deadline = math.inf
        while self._phase is _OPEN:
            next_release = self._next_release
            deadline = min(pong_deadline if waiter is not None else next_ping, next_release)
            self._timers_after_pong = min(next_ping, next_release)
            with trio.CancelScope(deadline=deadline) as scope:
                self._timer_scope = scope
                try:
                    await self._read()
                    return
                finally:
                    self._timer_scope = None
            now = trio.current_time()
            if self._leaving():
                break  # no more pings: the closing handshake has its own timeout
            if now >= self._next_release:
                if self._release_if_idle():
                    request_heap_trim()
                if self._released_at == self._messages_framed == self._idle_mark:
                    # Released, and nothing sent since: no need to look again
                    # before the next message (an idle connection sleeps).
                    self._next_release = math.inf
                else:
                    self._next_release = now + IDLE_RELEASE_AFTER / 2
            if waiter is not None:
                if waiter.answered:
                    waiter, pong_deadline = None, math.inf
                elif now >= pong_deadline:
                    stuck = self._unsent_bytes > 0 and self.wire_bytes_sent == written_at_ping
                    if (self._paused or self._pauses != pauses_at_ping) and not stuck:
                        pauses_at_ping = self._pauses
                        written_at_ping = self.wire_bytes_sent
                        assert pong_timeout is not None
                        pong_deadline = now + pong_timeout
                        continue
                    # websockets does the same: "keepalive ping timeout", code 1011.
                    # A peer that has read nothing of ours since the ping (our
                    # bytes wait unwritten) fails too, paused or not: it sends
                    # and never reads, and would hold the connection forever.
                    reason = "keepalive ping timeout"
                    if stuck:
                        reason += ": the peer has read nothing since the ping"
                    self._fail(CloseCode.INTERNAL_ERROR, reason, None)
                    break
            if waiter is None and interval is not None and now >= next_ping:
                next_ping = now + interval
                if self._send_busy:
                    continue  # a big message is being framed: try at the next interval
                payload, waiter = self._pings.add()
                written_at_ping = self.wire_bytes_sent
                self._frame_control(functools.partial(self.protocol.send_ping, payload))
                pauses_at_ping = self._pauses
                if pong_timeout is None:
                    self._pings.forget(payload, waiter)  # never fail: nothing to wait for
                    waiter = None
                else:
                    pong_deadline = now + pong_timeout
        await self._read()

    def _release_if_idle(self) -> bool:
        # No message framed since the last look: let the extensions free what
        # they can rebuild. Never in the middle of a message (framing is whole).
        released = False
        if self._messages_framed == self._idle_mark and not self._send_busy:
            if self._messages_framed != self._released_at:
                released = True
                self._released_at = self._messages_framed
            for extension in self.protocol.extensions:
                release = getattr(extension, "release_idle_memory", None)
                if release is not None:
                    release()
        self._idle_mark = self._messages_framed
        return released


def _chunk_data(chunk: object) -> tuple[bytes, bool]:
    """Return a chunk of a fragmented message as bytes, and whether it is text.

    Raises:
        TypeError: the chunk is neither ``str`` nor bytes-like.
    """
    if isinstance(chunk, str):
        return chunk.encode("utf-8"), True
    if isinstance(chunk, bytes | bytearray | memoryview):
        return bytes(chunk), False
    raise TypeError(
        f"a fragmented message's chunks must be str or bytes-like, not {type(chunk).__name__}"
    )


def check_control_payload(payload: bytes | bytearray | memoryview | None, kind: str) -> bytes:
    """Return a ping or pong payload as bytes.

    Raises:
        ValueError: longer than 125 bytes (:rfc:`6455#section-5.5`).
    """
    data = b"" if payload is None else bytes(payload)
    if len(data) > MAX_CONTROL_PAYLOAD:
        raise ValueError(f"{kind} payload is {len(data)} bytes, more than 125")
    return data
