"""Hostile clients on raw sockets, and what each one got back from the server, and when.

Strategy: each hostile client is one coroutine on a non-blocking socket in
an asyncio process of their own, away from the good clients. It does its
one bad thing, then records the first answer it gets: an HTTP status, a
close frame's code, end of stream, a reset, or nothing within its bound.
Each kind's clock starts when its bad thing is done (the garbage sent, the
bomb sent, the socket connected for slowloris, the handshake done for the
slow consumer). A client that never reads (the slow consumer, the
backpressure client) learns how its connection ended from the kernel's
tcp_info instead of reading, so that it keeps not reading to the end.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import os
import random
import socket
import struct
import termios
import time
import zlib
from collections.abc import Awaitable, Callable
from functools import cache
from typing import Any, Final

import attrs

from benchmarks.adapters.base import HOST, MAX_SIZE
from benchmarks.load import monitor, wire
from benchmarks.load.settings import HostileKind
from benchmarks.load.traffic import CONNECT_BOUND, HANDSHAKE_BOUND, error_name

GARBAGE: Final = random.Random(6455).randbytes(256) + b"\r\n\r\n"
"""What the garbage client sends instead of a handshake: random bytes, then a blank
line, so that a server which waits for a whole request head has one."""

SLOWLORIS_REQUEST: Final = wire.handshake_request(0, "dGhlIHNhbXBsZSBub25jZQ==")[:-2] + (
    b"".join(b"X-Slow-%d: %s\r\n" % (i, b"x" * 20) for i in range(64))
)
"""The bytes a slowloris sends, one per second: a request head that never ends."""

SLOW_INTERVAL: Final = 1.0
"""Seconds between two slowloris bytes."""

BOMB_SIZE: Final = MAX_SIZE + 2**20
"""Bytes the compression bomb inflates to: 1 MiB over the 64 MiB message limit the
benchmark servers run with (the libraries' own default is 1 MiB)."""

RESET_PROMISE: Final = 65_536
"""Payload length the mid-frame-reset client's frame header promises; it sends half."""

RESET_PAUSE: Final = 0.2
"""Seconds between the half frame and the reset, so the server is reading the frame."""

FLOOD_MESSAGE: Final = 16_384
"""Bytes of each message the slow consumer and the backpressure client send: random,
so the echo compresses to its own size and fills the socket buffers."""

FLOOD_POOL: Final = 16
"""Distinct flood messages: 16 x 16 KiB is 8 deflate windows."""

FLOOD_LIMIT: Final = 256 * 2**20
"""Most bytes a flooding client sends, whatever the server does."""

POLL: Final = 0.1
"""Seconds between two tcp_info polls of a client that does not read."""

STALL: Final = 2.0
"""Seconds without a byte accepted after which the backpressure client calls it a stall."""


@attrs.define
class Outcome:
    """What one hostile client did and got."""

    kind: str
    how: str
    """``http NNN``, ``close NNNN``, ``eof``, ``rst``, ``none`` (nothing within the bound),
    ``reset by client``, or ``connect: ...`` / ``handshake: ...`` if it never got to attack."""
    seconds: float | None
    """From the attack to the answer; None without an answer."""
    sent: int = 0
    """Bytes the client sent after its handshake (the flooding kinds)."""


def answered(how: str) -> bool:
    """Return whether ``how`` is an answer from the server."""
    return how in ("eof", "rst") or how.startswith(("http ", "close "))


@cache
def bomb_frame(window_bits: int) -> bytes:
    """Return a masked compressed binary frame of :data:`BOMB_SIZE` zero bytes.

    Deflate's best ratio is about 1,000 to 1, so the frame is about 66 KB.
    """
    compressor = zlib.compressobj(9, zlib.DEFLATED, -max(window_bits, 9))
    zeros = bytes(2**20)
    parts = [compressor.compress(zeros) for _ in range(BOMB_SIZE // len(zeros))]
    parts.append(compressor.flush(zlib.Z_SYNC_FLUSH))
    payload = b"".join(parts)[: -len(wire.SYNC_TAIL)]
    return wire.client_frame(wire.BINARY, payload, rsv1=True)


@cache
def flood_frames() -> tuple[bytes, ...]:
    """Return the flood messages as masked compressed frames.

    Compressed with a 9-bit window, the smallest, so they are valid whatever
    window the server allows the client; random bytes come out as stored blocks.
    """
    rng = random.Random(1951)
    return tuple(
        wire.client_frame(
            wire.BINARY, wire.deflate_alone(rng.randbytes(FLOOD_MESSAGE), 9), rsv1=True
        )
        for _ in range(FLOOD_POOL)
    )


def tcp_state(sock: socket.socket) -> str:
    """Return ``open``, ``eof`` (FIN received) or ``rst``/``closed``, read from tcp_info."""
    state = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[0]
    name = monitor.TCP_STATES.get(state, "open")
    if name == "closed":
        error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        return "rst" if error in (errno.ECONNRESET, errno.EPIPE) else "closed"
    return name


def reset(sock: socket.socket) -> None:
    """Close ``sock`` with a reset (SO_LINGER 0), leaving no TIME_WAIT behind."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


async def connect(port: int, source: str | None = None) -> socket.socket:
    """Return a non-blocking socket connected to the server within :data:`CONNECT_BOUND`.

    Raises:
        OSError, TimeoutError: If the connect fails (the socket is closed).
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        if source is not None:
            sock.bind((source, 0))
        async with asyncio.timeout(CONNECT_BOUND):
            await asyncio.get_running_loop().sock_connect(sock, (HOST, port))
    except BaseException:
        sock.close()
        raise
    return sock


async def handshake(sock: socket.socket, port: int) -> tuple[int | None, bytes, str | None]:
    """Open the WebSocket with a deflate offer.

    Returns:
        The client window bits (None if deflate was declined), the bytes read
        past the answer's head, and why the handshake failed (None if it did not).
    """
    loop = asyncio.get_running_loop()
    key = wire.new_key()
    await loop.sock_sendall(sock, wire.handshake_request(port, key))
    head = bytearray()
    try:
        async with asyncio.timeout(HANDSHAKE_BOUND):
            while b"\r\n\r\n" not in head:
                data = await loop.sock_recv(sock, 65536)
                if not data:
                    return None, b"", "eof"
                head += data
    except TimeoutError:
        return None, b"", "timeout"
    except ConnectionResetError:
        return None, b"", "rst"
    end = head.index(b"\r\n\r\n")
    response = wire.parse_response(bytes(head[:end]))
    problem = wire.upgrade_problem(response, key)
    return wire.client_window_bits(response), bytes(head[end + 4 :]), problem


async def watch(sock: socket.socket, start: float, bound: float, *, frames: bool) -> Outcome:
    """Read until the server answers: a status line, a close frame, eof or rst.

    Args:
        sock: The client's socket.
        start: ``time.monotonic()`` the answer's time counts from.
        bound: Seconds after ``start`` to wait before recording ``none``.
        frames: The handshake is done: look for a close frame, not a status line.
    """
    loop = asyncio.get_running_loop()
    reader = wire.FrameReader()
    head = bytearray()
    while (left := start + bound - time.monotonic()) > 0:
        try:
            async with asyncio.timeout(left):
                data = await loop.sock_recv(sock, 65536)
        except TimeoutError:
            break
        except ConnectionResetError:
            return Outcome("", "rst", time.monotonic() - start)
        if not data:
            return Outcome("", "eof", time.monotonic() - start)
        if frames:
            try:
                closes = [f for f in reader.feed(data) if f.opcode == wire.CLOSE]
            except wire.WireError:
                return Outcome("", "invalid frames", time.monotonic() - start)
            if closes:
                code = wire.close_code(closes[0].payload)
                return Outcome("", f"close {code}", time.monotonic() - start)
        else:
            head += data
            if b"\r\n" in head:
                line = bytes(head.split(b"\r\n", 1)[0])
                parts = line.split(b" ")
                how = (
                    f"http {parts[1].decode()}"
                    if len(parts) > 1 and parts[1].isdigit()
                    else "text"
                )
                return Outcome("", how, time.monotonic() - start)
    return Outcome("", "none", None)


async def garbage(port: int, bound: float) -> Outcome:
    """Send random bytes instead of a handshake; wait for the server's answer."""
    sock = await connect(port)
    try:
        await asyncio.get_running_loop().sock_sendall(sock, GARBAGE)
        return await watch(sock, time.monotonic(), bound, frames=False)
    finally:
        reset(sock)


async def slowloris(port: int, bound: float) -> Outcome:
    """Send a request head one byte a second, never finishing; until the server drops it."""
    loop = asyncio.get_running_loop()
    sock = await connect(port)
    start = time.monotonic()
    try:
        for i in range(len(SLOWLORIS_REQUEST)):
            try:
                sock.send(SLOWLORIS_REQUEST[i : i + 1])
            except (ConnectionResetError, BrokenPipeError):
                return Outcome("", "rst", time.monotonic() - start)
            wait = min(SLOW_INTERVAL, start + bound - time.monotonic())
            if wait <= 0:
                break
            try:
                async with asyncio.timeout(wait):
                    data = await loop.sock_recv(sock, 65536)
            except TimeoutError:
                continue
            except ConnectionResetError:
                return Outcome("", "rst", time.monotonic() - start)
            if not data:
                return Outcome("", "eof", time.monotonic() - start)
            parts = data.split(b"\r\n", 1)[0].split(b" ")
            how = f"http {parts[1].decode()}" if len(parts) > 1 and parts[1].isdigit() else "text"
            return Outcome("", how, time.monotonic() - start)
        return Outcome("", "none", None)
    finally:
        reset(sock)


async def mid_frame_reset(port: int, bound: float) -> Outcome:
    """Open, send half of a 64 KiB frame, then reset the connection."""
    loop = asyncio.get_running_loop()
    sock = await connect(port)
    try:
        _, _, problem = await handshake(sock, port)
        if problem is not None:
            return Outcome("", f"handshake: {problem}", None)
        half = os.urandom(RESET_PROMISE // 2)
        await loop.sock_sendall(sock, wire.frame_head(wire.BINARY, RESET_PROMISE) + half)
        await asyncio.sleep(RESET_PAUSE)
        return Outcome("", "reset by client", None)
    finally:
        reset(sock)


async def bomb(port: int, bound: float) -> Outcome:
    """Send one small compressed frame that inflates past the server's message limit."""
    loop = asyncio.get_running_loop()
    sock = await connect(port)
    try:
        bits, _, problem = await handshake(sock, port)
        if problem is not None or bits is None:
            return Outcome("", f"handshake: {problem or 'deflate declined'}", None)
        frame = bomb_frame(bits)
        await loop.sock_sendall(sock, frame)
        outcome = await watch(sock, time.monotonic(), bound, frames=True)
        outcome.sent = len(frame)
        return outcome
    finally:
        reset(sock)


async def flood(sock: socket.socket, bound: float, *, stall: float | None) -> Outcome:
    """Send flood messages and never read, until the server ends it or ``bound`` passes.

    With ``stall``, stop as soon as no byte was accepted for that long (the
    server stopped reading); ``how`` is then ``stalled``.
    """
    frames = flood_frames()
    start = last_progress = time.monotonic()
    pending = memoryview(b"")
    sent = 0
    for i in range(FLOOD_LIMIT // FLOOD_MESSAGE + 1):
        now = time.monotonic()
        if now - start >= bound or sent >= FLOOD_LIMIT:
            break
        if stall is not None and now - last_progress >= stall:
            return Outcome("", "stalled", last_progress - start, sent)
        if not pending:
            pending = memoryview(frames[i % len(frames)])
        try:
            n = sock.send(pending)
        except BlockingIOError:
            n = 0
        except (ConnectionResetError, BrokenPipeError):
            return Outcome("", "rst", time.monotonic() - start, sent)
        sent += n
        pending = pending[n:]
        if n:
            last_progress = time.monotonic()
        state = tcp_state(sock)
        if state != "open":
            return Outcome("", state, time.monotonic() - start, sent)
        await asyncio.sleep(0 if n else POLL)
    return Outcome("", "none", None, sent)


async def slow_consumer(port: int, bound: float) -> Outcome:
    """Open with deflate, send messages to echo, never read; until the server drops it."""
    sock = await connect(port)
    try:
        _, _, problem = await handshake(sock, port)
        if problem is not None:
            return Outcome("", f"handshake: {problem}", None)
        outcome = await flood(sock, bound, stall=None)
        if outcome.how == "none":
            outcome.how = _wait_state(sock)
        return outcome
    finally:
        reset(sock)


def _wait_state(sock: socket.socket) -> str:
    """Return ``none`` unless the connection ended right at the bound."""
    state = tcp_state(sock)
    return "none" if state == "open" else state


KINDS: Final[dict[HostileKind, Callable[[int, float], Awaitable[Outcome]]]] = {
    "slow_consumer": slow_consumer,
    "garbage": garbage,
    "mid_frame_reset": mid_frame_reset,
    "slowloris": slowloris,
    "bomb": bomb,
}
"""Each hostile kind's client: ``await KINDS[kind](port, bound)``."""


async def _one(kind: HostileKind, port: int, bound: float, delay: float) -> Outcome:
    """Wait ``delay`` seconds, then run one client of ``kind``; never raises."""
    await asyncio.sleep(delay)
    try:
        outcome = await KINDS[kind](port, bound)
    except (OSError, TimeoutError) as exc:
        outcome = Outcome("", f"connect: {error_name(exc)}", None)
    outcome.kind = kind
    return outcome


async def run_hostile(spec: dict[str, Any], stop: asyncio.Event) -> dict[str, Any]:
    """Run ``per_kind`` clients of each of ``kinds`` at once, spread over ``ramp`` seconds.

    ``spec``: ``port``, ``kinds``, ``per_kind``, ``bound`` (seconds each
    waits for its answer), ``ramp``.
    """
    kinds: list[HostileKind] = spec["kinds"]
    jobs = [kind for _ in range(spec["per_kind"]) for kind in kinds]
    ramp = spec["ramp"]
    outcomes = await asyncio.gather(
        *(
            _one(kind, spec["port"], spec["bound"], ramp * i / max(len(jobs), 1))
            for i, kind in enumerate(jobs)
        )
    )
    return {"outcomes": [attrs.asdict(o) for o in outcomes]}


async def run_backpressure(spec: dict[str, Any], stop: asyncio.Event) -> dict[str, Any]:
    """Flood one connection and never read, until the server stops reading; measure queues.

    ``spec``: ``port``, ``bound``. The result says how many bytes the
    client's kernel accepted, and where they were when it stalled: still in
    the client's send queue, in the server's receive queue, read by the
    server and not yet written back (its own buffers), in the server's send
    queue, or echoed into the client's receive queue.
    """
    sock = await connect(spec["port"])
    try:
        _, rest, problem = await handshake(sock, spec["port"])
        if problem is not None:
            return {"how": f"handshake: {problem}"}
        outcome = await flood(sock, spec["bound"], stall=STALL)
        client_port = sock.getsockname()[1]
        unsent = _ioctl_int(sock, termios.TIOCOUTQ)
        unread = _ioctl_int(sock, termios.FIONREAD) + len(rest)
        server = monitor.socket_queues(spec["port"], client_port)
        return {
            "how": outcome.how,
            "seconds": outcome.seconds,
            "sent": outcome.sent,
            "client_unsent": unsent,
            "client_unread": unread,
            "server_send_queue": server[0] if server else None,
            "server_receive_queue": server[1] if server else None,
        }
    finally:
        reset(sock)


def _ioctl_int(sock: socket.socket, request: int) -> int:
    """Return the int an ioctl(2) on ``sock`` gives (a queue's length in bytes)."""
    return int(struct.unpack("i", fcntl.ioctl(sock.fileno(), request, b"\0\0\0\0"))[0])
