"""The broadcast benchmark's client process: ``python -m benchmarks.broadcast_clients``.

Strategy: the clients must cost the same whichever server they face, and
little, so they are not a WebSocket library. One process holds many
connections. It reads its spec (one JSON line: ``port``, ``connections``,
``configuration``), opens the connections one after the other over plain
blocking sockets, each with its own opening handshake offering
``permessage-deflate; client_max_window_bits`` (:mod:`benchmarks.load.wire`
builds and checks it), and refuses a response that did not negotiate what
the configuration needs: ``server_no_context_takeover`` or its absence. It
answers ``{"ready": true, ...}`` and from then on only reads: one epoll loop
receives into one buffer and walks the frame headers to count bytes,
messages and compressed messages per connection, never copying or
inflating a payload. A ``{"report": K, "bound": S}`` line asks for the
totals once every connection has K messages, or when nothing has arrived
for :data:`QUIET` seconds (a server that skipped some connections), or
after S seconds; the answer is one JSON line. The process exits when its
stdin closes.
"""

from __future__ import annotations

import json
import os
import selectors
import socket
import sys
import time
from typing import Any, Final

from benchmarks.adapters.base import HOST
from benchmarks.load import wire
from benchmarks.load.agent import raise_fd_limit

HANDSHAKE_TIMEOUT: Final = 30.0
"""Seconds one connection's connect and opening handshake may take."""

RECEIVE_SIZE: Final = 256 * 1024
"""Bytes read per ``recv``: a connection's backlog in a few calls."""

QUIET: Final = 1.0
"""Seconds without a byte after which a report no longer waits for missing messages."""

IDLE_POLL: Final = 0.1
"""Longest wait of the epoll loop, so that a report's bounds are looked at."""


class WireCounter:
    """Counts one connection's bytes and messages by walking its frame headers."""

    __slots__ = ("bytes", "closed", "compressed", "head", "messages", "remaining", "sock")

    def __init__(self, sock: socket.socket) -> None:
        """Start counting ``sock``'s bytes after the opening handshake."""
        self.sock = sock
        self.bytes = 0
        self.messages = 0
        """Data frames with FIN set: whole messages, as the servers never fragment here."""
        self.compressed = 0
        """Data frames with RSV1 set: messages the server compressed."""
        self.closed = False
        """A close frame arrived, or the server closed the socket."""
        self.remaining = 0
        """Payload bytes of the current frame still to come."""
        self.head = b""
        """The start of a frame header that a read cut in two."""

    def feed(self, data: bytes | memoryview) -> None:
        """Count ``data``, the next bytes of the stream.

        Raises:
            wire.WireError: If a frame is masked (servers never mask).
        """
        self.bytes += len(data)
        if self.head:
            data = self.head + bytes(data)
            self.head = b""
        pos, end = 0, len(data)
        while pos < end:
            if self.remaining:
                step = min(self.remaining, end - pos)
                self.remaining -= step
                pos += step
                continue
            if end - pos < 2:
                self.head = bytes(data[pos:end])
                return
            first, second = data[pos], data[pos + 1]
            if second & 0x80:
                raise wire.WireError("the server masked a frame")
            length = second & 0x7F
            size = 2 + {126: 2, 127: 8}.get(length, 0)
            if end - pos < size:
                self.head = bytes(data[pos:end])
                return
            if size > 2:
                length = int.from_bytes(data[pos + 2 : pos + size], "big")
            opcode = first & 0x0F
            if opcode in (wire.TEXT, wire.BINARY) and first & 0x40:
                self.compressed += 1
            if opcode in (wire.CONT, wire.TEXT, wire.BINARY) and first & 0x80:
                self.messages += 1
            elif opcode == wire.CLOSE:
                self.closed = True
            pos += size
            self.remaining = length


def deflate_parameters(response: wire.Response) -> set[str] | None:
    """Return the names of the permessage-deflate parameters the server answered, or None."""
    for extension in response.headers.get("sec-websocket-extensions", "").split(","):
        name, *params = (part.strip() for part in extension.split(";"))
        if name == "permessage-deflate":
            return {param.partition("=")[0].strip() for param in params}
    return None


def negotiation_problem(response: wire.Response, configuration: str) -> str | None:
    """Return why ``response`` does not fit ``configuration``, or None if it does."""
    parameters = deflate_parameters(response)
    if parameters is None:
        return "permessage-deflate declined"
    takeover = "server_no_context_takeover" not in parameters
    if configuration == "no_context_takeover" and takeover:
        return "server_no_context_takeover not negotiated"
    if configuration == "context_takeover" and not takeover:
        return "server_no_context_takeover negotiated, context takeover expected"
    return None


def open_connection(port: int, configuration: str) -> tuple[WireCounter, str]:
    """Connect, do the opening handshake, check it; return the counter and the extension header.

    Raises:
        wire.WireError: If the server refused, answered wrongly, or negotiated the wrong thing.
        OSError: If the connection failed.
    """
    sock = socket.create_connection((HOST, port), timeout=HANDSHAKE_TIMEOUT)
    try:
        key = wire.new_key()
        sock.sendall(wire.handshake_request(port, key))
        received = b""
        while b"\r\n\r\n" not in received:
            chunk = sock.recv(4096)
            if not chunk:
                raise wire.WireError("closed during the handshake")
            received += chunk
        head, _, rest = received.partition(b"\r\n\r\n")
        response = wire.parse_response(head)
        problem = wire.upgrade_problem(response, key) or negotiation_problem(
            response, configuration
        )
        if problem is not None:
            raise wire.WireError(problem)
        sock.setblocking(False)
        counter = WireCounter(sock)
        if rest:
            counter.feed(rest)
        return counter, response.headers.get("sec-websocket-extensions", "")
    except BaseException:
        sock.close()
        raise


def read_spec() -> dict[str, Any]:
    """Return the first JSON line of stdin, read unbuffered (the epoll loop reads the rest)."""
    line = bytearray()
    while not line.endswith(b"\n"):
        byte = os.read(sys.stdin.fileno(), 1)
        if not byte:
            raise SystemExit("stdin closed before the spec")
        line += byte
    spec: dict[str, Any] = json.loads(line)
    return spec


def answer(message: dict[str, Any]) -> None:
    """Write one JSON line to stdout."""
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def totals(counters: list[WireCounter], complete: bool, cpu_start: float) -> dict[str, Any]:
    """Return the report: bytes and messages summed, the fewest and most per connection."""
    messages = [counter.messages for counter in counters]
    return {
        "connections": len(counters),
        "bytes": sum(counter.bytes for counter in counters),
        "messages": sum(messages),
        "compressed": sum(counter.compressed for counter in counters),
        "min_messages": min(messages, default=0),
        "max_messages": max(messages, default=0),
        "closed": sum(counter.closed for counter in counters),
        "complete": complete,
        "cpu": time.process_time() - cpu_start,
    }


def serve_reports(counters: list[WireCounter]) -> None:
    """Read every connection until stdin closes; answer each report line.

    Raises:
        wire.WireError: If a server sends a masked frame.
    """
    selector = selectors.DefaultSelector()
    for counter in counters:
        selector.register(counter.sock, selectors.EVENT_READ, counter)
    stdin = sys.stdin.fileno()
    os.set_blocking(stdin, False)
    selector.register(stdin, selectors.EVENT_READ, None)
    buffer = bytearray(RECEIVE_SIZE)
    view = memoryview(buffer)
    pending = b""
    report: dict[str, Any] | None = None
    deadline = last_data = 0.0
    cpu_start = time.process_time()
    while True:
        for key, _ in selector.select(IDLE_POLL):
            counter = key.data
            if counter is None:
                chunk = os.read(stdin, 65536)
                if not chunk:
                    return
                pending += chunk
                while b"\n" in pending:
                    line, _, pending = pending.partition(b"\n")
                    report = json.loads(line)
                    deadline = time.monotonic() + float(report.get("bound", 30.0))
                    last_data = time.monotonic()
                continue
            try:
                size = counter.sock.recv_into(buffer)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                size = 0
            if size:
                counter.feed(view[:size])
                last_data = time.monotonic()
            else:
                counter.closed = True
                selector.unregister(counter.sock)
        if report is not None:
            target = int(report["report"])
            now = time.monotonic()
            complete = all(c.messages >= target or c.closed for c in counters)
            if complete or now > deadline or now - last_data > QUIET:
                answer(totals(counters, complete, cpu_start))
                report = None


def main() -> None:
    """Read the spec, open the connections, answer ready, then count until stdin closes."""
    raise_fd_limit()
    spec = read_spec()
    counters: list[WireCounter] = []
    started = time.monotonic()
    try:
        extensions = ""
        for _ in range(int(spec["connections"])):
            counter, extensions = open_connection(int(spec["port"]), str(spec["configuration"]))
            counters.append(counter)
    except (OSError, wire.WireError) as exc:
        answer({"error": f"connection {len(counters) + 1}: {type(exc).__name__}: {exc}"})
        return
    answer({
        "ready": True, "pid": os.getpid(), "connections": len(counters),
        "extensions": extensions, "seconds": time.monotonic() - started,
    })  # fmt: skip
    try:
        serve_reports(counters)
    except wire.WireError as exc:
        answer({"error": f"{type(exc).__name__}: {exc}"})


if __name__ == "__main__":
    main()
