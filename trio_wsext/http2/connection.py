"""One HTTP/2 connection that carries WebSockets: h2 over a trio stream, one reader, one writer.

Strategy: h2 is sans-I/O: bytes in (``receive_data``), events out, frames
queued (``data_to_send``). An :class:`Http2Connection` runs it over a
:class:`trio.abc.Stream` (TCP or TLS) with two tasks. The *reader* (the
``run`` task itself) feeds what arrives to h2 and hands each event to the
:class:`~trio_wsext.http2.streams.Http2Stream` it concerns: DATA, END_STREAM,
RST_STREAM, window updates; new requests go to the server's ``on_request``.
Everything that changes h2's state is synchronous (no task switch between a
change and the next), and ends by waking the *writer*, the only task that
calls ``send_all``: it takes everything h2 queued meanwhile, from every
stream, and writes it in one piece. Streams wait while more than
:data:`WRITE_HIGH_WATER` bytes wait for the socket.

**Going away** (RFC 9113 §6.8) is handled beside h2 (see
:mod:`~trio_wsext.http2.goaway`): our GOAWAY stops new streams and lets the
open ones run to their end; the peer's does the same the other way. The
connection ends, flushes what is queued and closes the TCP connection once
no stream is left and either side went away (or, for a client connection
of its own, once its one WebSocket ended). A server's connection also goes
away once it has had no stream for ``idle_timeout`` seconds. If the TCP
connection breaks or h2 finds a protocol error, every stream breaks
(:exc:`trio.BrokenResourceError` in its WebSocket: close code 1006) and the
others are not waited for.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Callable, Sequence
from typing import Final, cast

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings
import trio

from .goaway import GoAway, GoAwayFilter, serialize_goaway
from .settings import Http2Options
from .streams import Http2Stream

__all__ = ["RECEIVE_SIZE", "WRITE_HIGH_WATER", "Http2Connection"]

logger = logging.getLogger("trio_wsext.http2")

#: Bytes asked of the socket per read: the engine's own read size.
RECEIVE_SIZE: Final = 65536

#: Bytes that may wait for the socket before streams' ``send_all`` wait:
#: a few frames of every busy stream, so that one write carries many.
WRITE_HIGH_WATER: Final = 256 * 1024

#: Seconds a closing connection may take to flush and close its socket
#: (TLS's close_notify included).
CLOSE_TIMEOUT: Final = 5.0

Headers = list[tuple[bytes, bytes]]
#: What a server connection calls for each new request: the stream, its
#: headers, and whether the HEADERS frame ended the stream.
RequestCallback = Callable[[Http2Stream, Headers, bool], None]


class Http2Connection:
    """Runs one HTTP/2 connection over ``stream`` for the WebSockets (streams) it carries.

    Start it with ``await nursery.start(connection.run)``.

    Args:
        stream: a connected TCP or TLS stream (TLS after ALPN chose ``h2``).
        client: the client side (it opens the streams) or the server side.
        options: windows and stream limits (the server's SETTINGS).
        initial_data: bytes already read from ``stream`` (the server's
            sniffing of the connection preface).
        log_name: what this connection's log lines start with.
        idle_timeout: (server) seconds without any stream after which the
            connection goes away; ``None`` for never.
        single_use: (client) end the connection once its streams have ended.
        on_request: (server) called for each request received.
    """

    def __init__(
        self,
        stream: trio.abc.Stream,
        *,
        client: bool,
        options: Http2Options | None = None,
        initial_data: bytes = b"",
        log_name: str = "http2",
        idle_timeout: float | None = None,
        single_use: bool = False,
        on_request: RequestCallback | None = None,
    ) -> None:
        self.options = options or Http2Options()
        self.stream = stream
        self.log_name = log_name
        self.client = client
        config = h2.config.H2Configuration(client_side=client, header_encoding=None)
        self.h2 = h2.connection.H2Connection(config=config)
        codes = h2.settings.SettingCodes
        initial: dict[h2.settings.SettingCodes, int] = {
            codes.INITIAL_WINDOW_SIZE: self.options.stream_window,
        }
        if client:
            initial[codes.ENABLE_PUSH] = 0
        else:
            initial[codes.MAX_CONCURRENT_STREAMS] = self.options.max_concurrent_streams
            # RFC 8441 §3: "SETTINGS_ENABLE_CONNECT_PROTOCOL ... Upon receipt
            # of SETTINGS_ENABLE_CONNECT_PROTOCOL with a value of 1, a client
            # MAY use the Extended CONNECT as defined in this document".
            initial[codes.ENABLE_CONNECT_PROTOCOL] = 1
        self.h2.local_settings = h2.settings.Settings(client=client, initial_values=initial)
        #: The streams in use, by stream ID.
        self.streams: dict[int, Http2Stream] = {}
        #: The last stream ID of the GOAWAY we sent, or ``None``.
        self.local_goaway: int | None = None
        #: The peer's GOAWAY, or ``None``.
        self.peer_goaway: GoAway | None = None
        #: Streams opened over this connection's life.
        self.streams_opened = 0
        self._initial = initial_data
        self._filter = GoAwayFilter(server=not client)
        self._idle_timeout = idle_timeout
        self._single_use = single_use
        self._on_request = on_request
        self._outgoing: list[bytes] = []  # bytes put ahead of h2's, in order (GOAWAY)
        self._queued = 0  # bytes of DATA queued in h2 since the writer's last take
        self._in_flight = 0  # bytes in the writer's send_all
        self._writer_lot = trio.lowlevel.ParkingLot()
        self._drain_lot = trio.lowlevel.ParkingLot()
        self._writer_done = trio.Event()
        self._settings = trio.Event()  # the peer's first SETTINGS came (or the end)
        self._finished = trio.Event()
        self._finishing = False
        self._lost: BaseException | None = None
        self._read_scope: trio.CancelScope | None = None
        self._scope: trio.CancelScope | None = None
        self._idle_deadline = math.inf

    def __repr__(self) -> str:
        side = "client" if self.client else "server"
        return f"<Http2Connection {side} {self.log_name} streams={len(self.streams)}>"

    # ------------------------------------------------------------------ state

    @property
    def connect_protocol_enabled(self) -> bool:
        """Whether the peer's SETTINGS enabled extended CONNECT (RFC 8441 §3)."""
        return bool(self.h2.remote_settings.enable_connect_protocol)

    @property
    def finished(self) -> bool:
        """Whether the connection ended (its socket is closed or closing)."""
        return self._finishing or self._lost is not None or self._finished.is_set()

    def can_open_stream(self) -> bool:
        """Whether a client may open one more WebSocket here (for a pool)."""
        return (
            not self.finished
            and self.local_goaway is None
            and self.peer_goaway is None
            and self.connect_protocol_enabled
            and len(self.streams) < self.h2.remote_settings.max_concurrent_streams
        )

    async def wait_settings(self) -> None:
        """Wait for the peer's first SETTINGS frame.

        Raises:
            trio.BrokenResourceError: the connection ended first.
        """
        await self._settings.wait()
        if self._lost is not None:
            raise trio.BrokenResourceError(f"the HTTP/2 connection was lost: {self._lost}")
        if self.finished and not self.streams and self.peer_goaway is not None:
            raise trio.BrokenResourceError("the server went away (GOAWAY)")

    async def wait_finished(self) -> None:
        """Wait until the connection's ``run`` has returned."""
        await self._finished.wait()

    # ------------------------------------------------------------------ for streams

    def kick(self) -> None:
        """Wake the writer: h2 has frames to send."""
        self._writer_lot.unpark_all()

    def send_window(self, stream_id: int) -> int:
        """Bytes a stream may send now: its window, the connection's, one frame at most."""
        if self._lost is not None:
            return 0
        try:
            window = self.h2.local_flow_control_window(stream_id)
        except h2.exceptions.StreamClosedError:
            return 0
        return min(window, self.h2.max_outbound_frame_size)

    def send_data(self, stream_id: int, data: bytes) -> None:
        """Queue one DATA frame (within the window) and wake the writer."""
        self.h2.send_data(stream_id, data)
        self._queued += len(data)
        self.kick()

    def end_stream(self, stream_id: int) -> None:
        """Queue END_STREAM on a stream."""
        self.h2.end_stream(stream_id)
        self.kick()

    def reset_stream(self, stream_id: int, error_code: int) -> None:
        """Queue RST_STREAM, unless the stream or the connection is gone already."""
        if self._lost is not None:
            return
        with contextlib.suppress(h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
            self.h2.reset_stream(stream_id, error_code)
            self.kick()

    def acknowledge(self, stream_id: int, size: int) -> None:
        """Give ``size`` received bytes of a stream back to the peer's windows."""
        if size and self._lost is None:
            with contextlib.suppress(h2.exceptions.ProtocolError):
                self.h2.acknowledge_received_data(size, stream_id)
                self.kick()

    def send_headers(self, stream_id: int, headers: Headers, *, end_stream: bool = False) -> None:
        """Queue a HEADERS frame (a response, or a client's request).

        Raises:
            trio.BrokenResourceError: the stream or the connection is gone.
        """
        if self._lost is not None:
            raise trio.BrokenResourceError(f"the HTTP/2 connection was lost: {self._lost}")
        try:
            self.h2.send_headers(stream_id, headers, end_stream=end_stream)
        except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError) as exc:
            raise trio.BrokenResourceError(f"cannot answer on HTTP/2 stream {stream_id}") from exc
        self.kick()

    async def wait_drained(self) -> None:
        """Wait while more than :data:`WRITE_HIGH_WATER` bytes wait for the socket."""
        while self._queued + self._in_flight > WRITE_HIGH_WATER and self._lost is None:
            await self._drain_lot.park()

    def stream_done(self, stream: Http2Stream) -> None:
        """A stream was closed: forget it, and end the connection if it was the last one due."""
        if self.streams.get(stream.stream_id) is stream:
            del self.streams[stream.stream_id]
        self._update_idle()
        self._maybe_finish()

    def open_stream(self, headers: Headers) -> Http2Stream:
        """Send a request on a new stream (client side) and return the stream.

        Raises:
            trio.BrokenResourceError: the connection cannot open streams any more.
        """
        if self.finished or self.local_goaway is not None or self.peer_goaway is not None:
            raise trio.BrokenResourceError("this HTTP/2 connection is going away")
        try:
            stream_id = self.h2.get_next_available_stream_id()
            self.h2.send_headers(stream_id, headers)
        except h2.exceptions.H2Error as exc:
            raise trio.BrokenResourceError(f"cannot open an HTTP/2 stream: {exc}") from exc
        stream = Http2Stream(self, stream_id)
        self.streams[stream_id] = stream
        self.streams_opened += 1
        self._update_idle()
        self.kick()
        return stream

    # ------------------------------------------------------------------ ending

    def go_away(self, error_code: int = 0, debug_data: bytes = b"") -> None:
        """Send GOAWAY: no new streams; the connection ends once the open ones have.

        The server's last stream ID is the highest it received (those run on);
        a client's is 0 (it accepts no pushed streams).
        """
        if self.local_goaway is not None or self.finished:
            return
        last = self.h2.highest_inbound_stream_id if not self.client else 0
        self._outgoing.append(self.h2.data_to_send())
        self._outgoing.append(serialize_goaway(last, error_code, debug_data))
        self.local_goaway = last
        logger.debug("%s: sent GOAWAY (last stream %d)", self.log_name, last)
        self.kick()
        self._maybe_finish()

    def abort(self) -> None:
        """End the connection now: every stream breaks, the socket is closed."""
        self._lose(trio.ClosedResourceError("the HTTP/2 connection was aborted"))

    def _maybe_finish(self) -> None:
        if self.streams or self._finishing:
            return
        if self.local_goaway is None and self.peer_goaway is None:
            if not (self._single_use and self.streams_opened):
                return
            self.go_away()
            return  # go_away() came back here
        self._finish()

    def _finish(self) -> None:
        """Flush what is queued, then stop: the run task closes the socket."""
        self._finishing = True
        self._settings.set()
        self.kick()
        if self._read_scope is not None:
            self._read_scope.cancel()

    def _lose(self, error: BaseException) -> None:
        if self._lost is not None:
            return
        self._lost = error
        for stream in list(self.streams.values()):
            stream._on_lost(error)
        self._drain_lot.unpark_all()
        self._settings.set()
        if self._scope is not None:
            self._scope.cancel()

    def _update_idle(self) -> None:
        if self._idle_timeout is None:
            return
        if self.streams:
            self._idle_deadline = math.inf
        elif self._idle_deadline == math.inf:
            self._idle_deadline = trio.current_time() + self._idle_timeout
        if self._read_scope is not None:
            self._read_scope.deadline = self._idle_deadline

    # ------------------------------------------------------------------ the tasks

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run the connection until it ends, then close the socket.

        Returns once the connection runs (under ``nursery.start``). Cancelling
        it breaks every stream and closes the socket at once.
        """
        self.h2.initiate_connection()
        extra_window = self.options.connection_window - self.h2.inbound_flow_control_window
        if extra_window > 0:
            self.h2.increment_flow_control_window(extra_window)
        try:
            async with trio.open_nursery() as nursery:
                self._scope = nursery.cancel_scope
                nursery.start_soon(self._writer)
                self._update_idle()
                if self._initial:
                    self._receive(self._initial)
                    self._initial = b""
                task_status.started()
                await self._reader()
        finally:
            self._lose(trio.ClosedResourceError("the HTTP/2 connection ended"))
            with trio.move_on_after(CLOSE_TIMEOUT) as scope:
                scope.shield = True
                with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                    await self.stream.aclose()
            if scope.cancelled_caught:
                await trio.aclose_forcefully(self.stream)
            self._finished.set()

    async def _reader(self) -> None:
        while not self._finishing:
            with trio.CancelScope(deadline=self._idle_deadline) as scope:
                self._read_scope = scope
                try:
                    data = await self.stream.receive_some(RECEIVE_SIZE)
                except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                    self._lose(exc)
                    return
            self._read_scope = None
            if scope.cancelled_caught:
                if not self._finishing and not self.streams:
                    logger.debug(
                        "%s: idle for %s s, going away", self.log_name, self._idle_timeout
                    )
                    self.go_away()
                continue
            if not data:
                self._lose(trio.BrokenResourceError("the peer closed the TCP connection"))
                return
            self._receive(bytes(data))
        await self._writer_done.wait()

    async def _writer(self) -> None:
        try:
            while True:
                data = self.h2.data_to_send()
                if self._outgoing:
                    self._outgoing.append(data)
                    data = b"".join(self._outgoing)
                    self._outgoing.clear()
                if data:
                    self._queued = 0
                    self._in_flight = len(data)
                    await self.stream.send_all(data)
                    self._in_flight = 0
                    self._drain_lot.unpark_all()
                    continue
                if self._finishing:
                    return
                await self._writer_lot.park()
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            self._lose(exc)
        finally:
            self._writer_done.set()

    # ------------------------------------------------------------------ receiving

    def _receive(self, data: bytes) -> None:
        passed, goaways = self._filter.feed(data)
        if passed:
            try:
                events = self.h2.receive_data(passed)
            except h2.exceptions.ProtocolError as exc:
                # h2 queued a GOAWAY with the error code; it goes out, then the socket closes.
                logger.info("%s: HTTP/2 protocol error from the peer: %s", self.log_name, exc)
                for stream in list(self.streams.values()):
                    stream._on_lost(exc)
                self.streams.clear()
                self.local_goaway = 0
                self._finish()
                return
            for event in events:
                self._handle(event)
        for goaway in goaways:
            self._on_goaway(goaway)
        self.kick()

    def _handle(self, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.DataReceived):
            stream = self.streams.get(event.stream_id or 0)
            length = event.flow_controlled_length or 0
            if stream is None:
                self.acknowledge(event.stream_id or 0, length)
            else:
                stream._on_data(event.data or b"", length)
        elif isinstance(event, h2.events.StreamEnded):
            stream = self.streams.get(event.stream_id or 0)
            if stream is not None:
                stream._on_end()
        elif isinstance(event, h2.events.WindowUpdated):
            if not event.stream_id:
                for stream in self.streams.values():
                    stream._on_window()
            elif (stream := self.streams.get(event.stream_id)) is not None:
                stream._on_window()
        elif isinstance(event, h2.events.RequestReceived):
            self._on_request_received(event)
        elif isinstance(event, h2.events.ResponseReceived):
            stream = self.streams.get(event.stream_id or 0)
            if stream is not None:
                stream._on_headers(_as_headers(event.headers))
        elif isinstance(event, h2.events.StreamReset):
            stream = self.streams.get(event.stream_id or 0)
            if stream is not None:
                stream._on_reset(int(event.error_code or 0))
        elif isinstance(event, h2.events.RemoteSettingsChanged):
            self._settings.set()
            if h2.settings.SettingCodes.INITIAL_WINDOW_SIZE in event.changed_settings:
                for stream in self.streams.values():
                    stream._on_window()
        elif isinstance(event, h2.events.ConnectionTerminated):  # pragma: no cover - filtered
            self._on_goaway(GoAway(event.last_stream_id or 0, int(event.error_code or 0)))

    def _on_request_received(self, event: h2.events.RequestReceived) -> None:
        stream_id = event.stream_id or 0
        # RFC 9113 §6.8: after our GOAWAY, streams above its last stream ID
        # are not processed; REFUSED_STREAM tells the client it may retry.
        if (
            self._on_request is None
            or self._finishing
            or (self.local_goaway is not None and stream_id > self.local_goaway)
        ):
            self.reset_stream(stream_id, h2.errors.ErrorCodes.REFUSED_STREAM)
            return
        stream = Http2Stream(self, stream_id)
        self.streams[stream_id] = stream
        self.streams_opened += 1
        self._update_idle()
        ended = event.stream_ended is not None
        self._on_request(stream, _as_headers(event.headers), ended)

    def _on_goaway(self, goaway: GoAway) -> None:
        if goaway.malformed:
            logger.info("%s: malformed GOAWAY from the peer", self.log_name)
            with contextlib.suppress(h2.exceptions.ProtocolError):
                self.h2.close_connection(h2.errors.ErrorCodes.PROTOCOL_ERROR)
            self._lose(trio.BrokenResourceError("the peer sent a malformed GOAWAY"))
            return
        logger.debug(
            "%s: the peer went away (GOAWAY, last stream %d, error %d)",
            self.log_name,
            goaway.last_stream_id,
            goaway.error_code,
        )
        self.peer_goaway = goaway
        # RFC 9113 §6.8: streams we opened above its last stream ID were not
        # processed: they are refused.
        mine = 1 if self.client else 0
        for stream_id, stream in list(self.streams.items()):
            if stream_id % 2 == mine and stream_id > goaway.last_stream_id:
                stream._on_reset(h2.errors.ErrorCodes.REFUSED_STREAM)
        self._settings.set()
        self._maybe_finish()


def _as_headers(headers: Sequence[tuple[bytes | str, bytes | str]] | None) -> Headers:
    """h2's header list as bytes pairs (``header_encoding=None`` gives bytes already)."""
    return cast(Headers, list(headers or []))
