"""The good clients: many compressed connections whose every echo is checked, and newcomers.

Strategy: one asyncio process holds hundreds of connections, each an
:class:`asyncio.Protocol` (a callback per read, no task per connection),
writing frames built once per process (:mod:`benchmarks.load.messages`) and
parsing the echoes with :class:`~benchmarks.load.wire.FrameReader`. A
connection keeps ``window`` messages in flight, so a server that reorders
can be caught; it counts every echo as good, duplicated, reordered or
corrupted, and at the end every message sent and never echoed as lost (the
server closed or reset the connection) or stalled (still open when the
client's time ran out). A failure on the client's side, such as a refused
or timed-out TCP connect, is counted apart and never as a loss.
"""

from __future__ import annotations

import asyncio
import collections
import errno
import time
import zlib
from typing import Any, Final, Literal, cast

import attrs

from benchmarks.adapters.base import HOST
from benchmarks.load import messages, wire

CONNECT_BOUND: Final = 10.0
"""Seconds a TCP connect may take before the client gives up (a client-side failure)."""

HANDSHAKE_BOUND: Final = 15.0
"""Seconds from connect to the 101 answer before the client gives up: above the
servers' 10 s handshake timeouts, so that theirs shows first."""

CLOSE_BOUND: Final = 5.0
"""Seconds the client waits for the server's close frame and end of stream."""

HEAD_LIMIT: Final = 65_536
"""Bytes of a handshake answer the client reads before it calls it garbage."""

INFLATE_LIMIT: Final = 2 * messages.SIZES["large"]
"""Bytes an echo may inflate to: twice the largest message sent."""

State = Literal["handshake", "open", "closing", "done"]
"""Where a connection is: waiting for 101, echoing, closing, or finished."""


@attrs.define
class Tally:
    """What the good connections of one process saw; the harness sums the processes'."""

    connections: int = 0
    """Connections attempted."""
    opened: int = 0
    """Connections whose opening handshake succeeded."""
    completed: int = 0
    """Connections that got every echo back and a 1000 close from the server."""
    connect_errors: dict[str, int] = attrs.field(factory=dict)
    """TCP connects that failed, by error: a client-side failure, not a server loss."""
    handshake_failures: dict[str, int] = attrs.field(factory=dict)
    """Handshakes that got no 101 (the HTTP status, eof, rst, or the client's timeout)."""
    dropped: dict[str, int] = attrs.field(factory=dict)
    """Open connections the server ended before the last echo (close code, eof, rst)."""
    close_codes: dict[str, int] = attrs.field(factory=dict)
    """Codes of the server's answer to the client's close, when not 1000."""
    sent: int = 0
    """Messages sent."""
    echoed: int = 0
    """Echoes that came back intact, once, in order or not."""
    lost: int = 0
    """Messages sent on a connection the server ended, never echoed."""
    duplicated: int = 0
    """Echoes of a message already echoed."""
    reordered: int = 0
    """Echoes that came after the echo of a later message."""
    corrupted: int = 0
    """Echoes whose text differs from the message sent (or that no message sent had)."""
    stalled: int = 0
    """Messages in flight on connections still open when the client's time ran out
    (a server that drops a message and keeps the connection open shows here)."""
    stalled_connections: int = 0
    """Connections still open when the client's time ran out."""
    handshake_ms: list[float] = attrs.field(factory=list)
    """Connect-to-101 time of every opened connection, in milliseconds."""
    first_open: float | None = None
    """``time.monotonic()`` of the first 101 (the clock is the same in every process)."""
    last_echo: float | None = None
    """``time.monotonic()`` of the last echo."""


def _count(counts: dict[str, int], key: str) -> None:
    """Add one to ``counts[key]``."""
    counts[key] = counts.get(key, 0) + 1


def error_name(exc: BaseException) -> str:
    """Return a short name for a connect error: its errno name, or its type."""
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, OSError) and exc.errno is not None:
        return errno.errorcode.get(exc.errno, str(exc.errno))
    return type(exc).__name__


class EchoConnection(asyncio.Protocol):
    """One good connection: handshake, ``messages`` checked echoes, a 1000 close."""

    def __init__(
        self, conn: int, port: int, messages_to_send: int, window: int, tally: Tally
    ) -> None:
        """Prepare connection number ``conn`` (it starts when the transport connects)."""
        self.conn = conn
        self.port = port
        self.total = messages_to_send
        self.window = window
        self.tally = tally
        self.state: State = "handshake"
        self.started = time.monotonic()
        self.opened_at: float | None = None
        self.first_echo_at: float | None = None
        self.finished: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._key = wire.new_key()
        self._head = bytearray()
        self._reader = wire.FrameReader()
        self._inflater = zlib.decompressobj(-15)
        self._payloads: messages.Payloads | None = None
        self._outstanding: collections.deque[int] = collections.deque()
        self._received: set[int] = set()
        self._next_seq = 0
        self._highest = -1
        self._fragments: list[bytes] = []
        self._fragment_rsv1 = False
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None

    # -- asyncio callbacks -----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Send the opening handshake; give the server :data:`HANDSHAKE_BOUND` to answer."""
        transport = cast(asyncio.Transport, transport)  # create_connection makes a Transport
        self._transport = transport
        transport.write(wire.handshake_request(self.port, self._key))
        self._timer = asyncio.get_running_loop().call_later(
            HANDSHAKE_BOUND - (time.monotonic() - self.started), self._handshake_timeout
        )

    def data_received(self, data: bytes) -> None:
        """Read the 101 answer, then frames."""
        try:
            if self.state == "handshake":
                self._read_head(data)
            elif self.state != "done":
                self._read_frames(data)
        except (wire.WireError, zlib.error) as exc:
            self.tally.corrupted += 1
            self._end("dropped", f"client: {type(exc).__name__}")

    def eof_received(self) -> bool | None:
        """Let the transport close; :meth:`connection_lost` follows."""
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        """Record how the connection ended if it had not finished."""
        how = (
            "rst" if isinstance(exc, ConnectionResetError) else ("eof" if exc is None else "error")
        )
        if self.state == "handshake":
            _count(self.tally.handshake_failures, how)
        elif self.state == "open":
            _count(self.tally.dropped, how)
            self.tally.lost += len(self._outstanding)
        self._finish()

    # -- handshake -------------------------------------------------------------------------

    def _read_head(self, data: bytes) -> None:
        """Accumulate the answer's head; on the blank line, check it and start sending."""
        self._head += data
        end = self._head.find(b"\r\n\r\n")
        if end < 0:
            if len(self._head) > HEAD_LIMIT:
                self._end("handshake", "oversized answer")
            return
        response = wire.parse_response(bytes(self._head[:end]))
        problem = wire.upgrade_problem(response, self._key)
        bits = wire.client_window_bits(response)
        if problem is not None or bits is None:
            self._end("handshake", problem or "deflate declined")
            return
        rest = bytes(self._head[end + 4 :])
        self._head = bytearray()
        self._cancel_timer()
        self.state = "open"
        self.opened_at = time.monotonic()
        self.tally.opened += 1
        self.tally.handshake_ms.append((self.opened_at - self.started) * 1000)
        if self.tally.first_open is None or self.opened_at < self.tally.first_open:
            self.tally.first_open = self.opened_at
        self._payloads = messages.payloads(bits)
        self._send_more()
        if rest:
            self._read_frames(rest)

    def _handshake_timeout(self) -> None:
        """Give up on a server that did not answer the handshake in time."""
        if self.state == "handshake":
            self._end("handshake", "timeout (client bound)")

    # -- frames and messages ---------------------------------------------------------------

    def _read_frames(self, data: bytes) -> None:
        """Handle every frame completed by ``data``."""
        for frame in self._reader.feed(data):
            opcode = frame.opcode
            if opcode in (wire.TEXT, wire.BINARY):
                if frame.fin:
                    self._message(frame.payload, frame.rsv1)
                else:
                    self._fragments = [frame.payload]
                    self._fragment_rsv1 = frame.rsv1
            elif opcode == wire.CONT:
                self._fragments.append(frame.payload)
                if frame.fin:
                    self._message(b"".join(self._fragments), self._fragment_rsv1)
                    self._fragments = []
            elif opcode == wire.PING and self._transport is not None:
                self._transport.write(wire.client_frame(wire.PONG, frame.payload))
            elif opcode == wire.CLOSE:
                self._server_closed(wire.close_code(frame.payload))
            if self.state == "done":
                return

    def _message(self, payload: bytes, compressed: bool) -> None:
        """Check one echo and send what the window allows."""
        if compressed:
            text = self._inflater.decompress(payload + wire.SYNC_TAIL, INFLATE_LIMIT)
            if self._inflater.unconsumed_tail:
                raise wire.WireError("an echo inflates past the limit")
        else:
            text = payload
        now = time.monotonic()
        self.tally.last_echo = now
        if self.first_echo_at is None:
            self.first_echo_at = now
        ids = messages.parse_ids(text)
        if ids is None or ids[0] != self.conn or ids[1] >= self._next_seq:
            self.tally.corrupted += 1
        else:
            self._check(ids[1], text)
        self._send_more()

    def _check(self, seq: int, text: bytes) -> None:
        """Count the echo of message ``seq``: good, duplicated, reordered or corrupted."""
        if seq in self._received:
            self.tally.duplicated += 1
            return
        self._received.add(seq)
        if self._outstanding and self._outstanding[0] == seq:
            self._outstanding.popleft()
        elif seq in self._outstanding:
            self._outstanding.remove(seq)
        if seq < self._highest:
            self.tally.reordered += 1
        self._highest = max(self._highest, seq)
        if text == messages.text(self.conn, seq):
            self.tally.echoed += 1
        else:
            self.tally.corrupted += 1

    def _send_more(self) -> None:
        """Fill the window; after the last echo, start the closing handshake."""
        transport, payloads = self._transport, self._payloads
        if transport is None or payloads is None or self.state != "open":
            return
        while len(self._outstanding) < self.window and self._next_seq < self.total:
            transport.write(payloads.frame(self.conn, self._next_seq))
            self._outstanding.append(self._next_seq)
            self._next_seq += 1
            self.tally.sent += 1
        if self._next_seq == self.total and not self._outstanding:
            self.state = "closing"
            transport.write(wire.close_frame(1000))
            self._timer = asyncio.get_running_loop().call_later(CLOSE_BOUND, self._abort)

    def _server_closed(self, code: int) -> None:
        """Answer the server's close frame, or take it as the answer to ours."""
        if self.state == "open":
            _count(self.tally.dropped, f"close {code}")
            self.tally.lost += len(self._outstanding)
            self._outstanding.clear()
            self.state = "closing"
            if self._transport is not None:
                self._transport.write(wire.close_frame(code if code != 1005 else 1000))
            self._timer = asyncio.get_running_loop().call_later(CLOSE_BOUND, self._abort)
        elif self.state == "closing":
            if code == 1000:
                self.tally.completed += 1
            else:
                _count(self.tally.close_codes, str(code))

    # -- ending ----------------------------------------------------------------------------

    def stall(self) -> None:
        """Count this connection as stalled (the client's time ran out) and abort it."""
        if self.state == "open":
            self.tally.stalled += len(self._outstanding)
            self.tally.stalled_connections += 1
        elif self.state == "handshake":
            _count(self.tally.handshake_failures, "timeout (client bound)")
        self._abort()

    def _end(self, where: Literal["handshake", "dropped"], how: str) -> None:
        """Record a failure of the handshake or of the open connection, and abort."""
        if self.state == "handshake":
            _count(self.tally.handshake_failures, how)
        elif self.state == "open":
            _count(self.tally.dropped, how if where == "dropped" else f"{where}: {how}")
            self.tally.lost += len(self._outstanding)
        self._abort()

    def _abort(self) -> None:
        """Reset the connection (no TIME_WAIT left behind) and finish."""
        if self._transport is not None:
            self._transport.abort()
        self._finish()

    def _cancel_timer(self) -> None:
        """Cancel the pending handshake or close timer."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _finish(self) -> None:
        """Mark the connection done, once."""
        self.state = "done"
        self._cancel_timer()
        if not self.finished.done():
            self.finished.set_result(None)


async def open_echo(
    conn: int, port: int, count: int, window: int, tally: Tally
) -> EchoConnection | None:
    """Connect one :class:`EchoConnection`; return None (counted) if TCP connect fails."""
    loop = asyncio.get_running_loop()
    tally.connections += 1
    protocol = EchoConnection(conn, port, count, window, tally)

    def factory() -> EchoConnection:
        return protocol

    try:
        async with asyncio.timeout(CONNECT_BOUND):
            await loop.create_connection(factory, HOST, port)
    except (OSError, TimeoutError) as exc:
        _count(tally.connect_errors, error_name(exc))
        return None
    return protocol


async def run_traffic(spec: dict[str, Any], stop: asyncio.Event) -> dict[str, Any]:
    """Open this process's share of the connections over the ramp; echo; return the tally.

    ``spec``: ``port``, ``index`` and ``processes`` (this process opens
    connections ``index``, ``index + processes``, ...), ``connections``,
    ``messages``, ``window``, ``ramp`` (seconds over which all processes open
    theirs), ``bound`` (seconds until whatever is left counts as stalled).
    """
    port, index, processes = spec["port"], spec["index"], spec["processes"]
    total, ramp = spec["connections"], spec["ramp"]
    tally = Tally()
    start = time.monotonic()
    deadline = start + spec["bound"]
    opened: list[EchoConnection] = []

    async def one(conn: int) -> None:
        await asyncio.sleep(ramp * conn / max(total, 1))
        protocol = await open_echo(conn, port, spec["messages"], spec["window"], tally)
        if protocol is not None:
            opened.append(protocol)
            await protocol.finished

    tasks = [asyncio.create_task(one(conn)) for conn in range(index, total, processes)]
    if tasks:
        await asyncio.wait(tasks, timeout=max(deadline - time.monotonic(), 0))
    for protocol in opened:
        protocol.stall()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return attrs.asdict(tally)


@attrs.define
class Probe:
    """One newcomer: did it get its echo, and how long after it started connecting."""

    ok: bool
    ms: float | None
    how: str


async def probe_once(conn: int, port: int) -> Probe:
    """Open one connection, wait for its handshake and one echo, close; time it."""
    tally = Tally()
    protocol = await open_echo(conn, port, 1, 1, tally)
    if protocol is None:
        return Probe(False, None, "connect " + ",".join(tally.connect_errors))
    try:
        async with asyncio.timeout(HANDSHAKE_BOUND + CLOSE_BOUND):
            await protocol.finished
    except TimeoutError:
        protocol.stall()
    if protocol.first_echo_at is None or tally.echoed != 1:
        failures = {**tally.handshake_failures, **tally.dropped}
        return Probe(False, None, ",".join(failures) or "no echo")
    return Probe(True, (protocol.first_echo_at - protocol.started) * 1000, "ok")


async def run_newcomers(spec: dict[str, Any], stop: asyncio.Event) -> dict[str, Any]:
    """Open a newcomer every ``interval`` seconds after ``delay`` until stopped.

    ``spec``: ``port``, ``delay``, ``interval``, ``bound`` (seconds in all);
    at most ``bound / interval + 1`` probes.
    """
    start = time.monotonic()
    probes: list[Probe] = []
    await _sleep_unless(stop, spec["delay"])
    limit = int(spec["bound"] / spec["interval"]) + 1
    for i in range(limit):
        if stop.is_set() or time.monotonic() - start > spec["bound"]:
            break
        began = time.monotonic()
        probes.append(await probe_once(1_000_000 + i, spec["port"]))
        await _sleep_unless(stop, spec["interval"] - (time.monotonic() - began))
    return {"probes": [attrs.asdict(p) for p in probes]}


async def _sleep_unless(stop: asyncio.Event, seconds: float) -> None:
    """Sleep ``seconds``, or less if ``stop`` is set meanwhile."""
    if seconds <= 0:
        return
    try:
        async with asyncio.timeout(seconds):
            await stop.wait()
    except TimeoutError:
        pass
