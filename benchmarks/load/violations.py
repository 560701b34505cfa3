"""Protocol violations on raw sockets, and the close code each server answers them with.

Strategy: each violation gets a fresh connection of its own. The client
opens it with a valid handshake that offers permessage-deflate, sends the
violation's bytes (masked, unless the violation is about masking), then
reads until the server's close frame, end of stream, a reset, or the
bound. It records the close code and reason, not just that the server
hung up: :rfc:`6455#section-7.4.1` gives each failure its code, and a
client can only tell a size limit (1009) from bad data (1007) or a broken
frame (1002) by it. All violations run at once; each has its own clock,
started when its bytes are sent.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import time
from collections.abc import Callable
from typing import Any, Final

import attrs

from benchmarks.adapters.base import MAX_SIZE
from benchmarks.load import attacks, wire
from benchmarks.load.traffic import error_name

RESERVED_OPCODE: Final = 0x3
"""A non-control opcode reserved for further definition (:rfc:`6455#section-5.2`)."""

FIN: Final = 0x80
"""The FIN bit of a frame's first byte."""

RSV1: Final = 0x40
"""The RSV1 bit: the message is compressed (:rfc:`7692#section-6`)."""

RSV2: Final = 0x20
"""The second reserved bit of a frame's first byte; permessage-deflate uses only RSV1."""

NOT_UTF8: Final = b"caf\xc3\x28 \xff"
"""Bytes that are not UTF-8: a lead byte with no continuation, and a byte UTF-8 never uses."""

NOT_DEFLATE: Final = b"\x07" + bytes(15)
"""A final deflate block of type 3, which :rfc:`1951#section-3.2.3` reserves as an error."""

HUGE_LENGTH: Final = 2**63 + 16
"""A 64-bit payload length with the most significant bit set (:rfc:`6455#section-5.2`)."""

LITTLE: Final = bytes(1024)
"""The payload sent after a header that announces far more."""

READS: Final = 1_000
"""Most reads a client makes while it waits for the close frame (the bound comes first)."""


def frame(
    first: int,
    payload: bytes,
    *,
    masked: bool = True,
    length: int | None = None,
) -> bytes:
    """Return a client frame with the first byte ``first``, masked with :data:`wire.MASK_KEY`.

    Args:
        first: FIN, RSV1-3 and the opcode, as on the wire.
        payload: The bytes that follow the header (masked if ``masked``).
        masked: Whether to set the MASK bit, send the key and mask ``payload``.
        length: The payload length the header announces (``len(payload)`` if None).
    """
    size = len(payload) if length is None else length
    mask_bit = 0x80 if masked else 0
    if size < 126:
        head = struct.pack("!BB", first, mask_bit | size)
    elif size < 2**16:
        head = struct.pack("!BBH", first, mask_bit | 126, size)
    else:
        head = struct.pack("!BBQ", first, mask_bit | 127, size)
    if not masked:
        return head + payload
    return head + wire.MASK_KEY + wire.apply_mask(payload)


@attrs.frozen
class Violation:
    """One protocol violation: what it sends and the close code the RFCs require."""

    name: str
    """Short key, used in the figures' names."""
    label: str
    """What the client does wrong, as the table shows it."""
    expected: int
    """The close code a server must fail the connection with."""
    data: Callable[[], bytes]
    """Return the bytes the client sends after the handshake."""


VIOLATIONS: Final[tuple[Violation, ...]] = (
    # RFC 6455 §5.1: "The server MUST close the connection upon receiving a frame
    # that is not masked."
    Violation("unmasked", "unmasked client frame", 1002,
              lambda: frame(FIN | wire.TEXT, b"hello", masked=False)),
    # §5.2: "If an unknown opcode is received, the receiving endpoint MUST _Fail
    # the WebSocket Connection_."
    Violation("reserved_opcode", "reserved opcode 0x3", 1002,
              lambda: frame(FIN | RESERVED_OPCODE, b"hello")),
    # §5.2: "If a nonzero value is received and none of the negotiated extensions
    # defines the meaning of such a nonzero value, the receiving endpoint MUST _Fail_."
    Violation("rsv2", "RSV2 set, no extension uses it", 1002,
              lambda: frame(FIN | RSV2 | wire.TEXT, b"hello")),
    # §5.5: "Control frames ... MUST NOT be fragmented."
    Violation("fragmented_ping", "ping with FIN=0", 1002,
              lambda: frame(wire.PING, b"ping")),
    # §5.5: "All control frames MUST have a payload length of 125 bytes or less."
    Violation("long_ping", "ping of 126 bytes", 1002,
              lambda: frame(FIN | wire.PING, bytes(126))),
    # §5.4: a continuation frame belongs to a message that a data frame with
    # FIN=0 started; there is none.
    Violation("lone_continuation", "continuation, no message started", 1002,
              lambda: frame(FIN | wire.CONT, b"hello")),
    # §5.4: "... the fragments of one message MUST NOT be interleaved between
    # the fragments of another message."
    Violation("interleaved", "text frame inside a fragmented one", 1002,
              lambda: frame(wire.TEXT, b"hel") + frame(FIN | wire.TEXT, b"lo")),
    # §8.1: "When an endpoint is to interpret a byte stream as UTF-8 but finds
    # that the byte stream is not, in fact, a valid UTF-8 stream, that endpoint
    # MUST _Fail the WebSocket Connection_." §7.4.1: 1007.
    Violation("text_not_utf8", "text message not UTF-8", 1007,
              lambda: frame(FIN | wire.TEXT, NOT_UTF8)),
    # §5.5.1: "If there is a body, the first two bytes of the body MUST be a
    # 2-byte unsigned integer ... representing a status code."
    Violation("close_one_byte", "close with a 1-byte payload", 1002,
              lambda: frame(FIN | wire.CLOSE, b"\x03")),
    # §7.4.1: 1005 "MUST NOT be set as a status code in a Close control frame
    # by an endpoint."
    Violation("close_1005", "close with code 1005", 1002,
              lambda: frame(FIN | wire.CLOSE, struct.pack("!H", 1005))),
    # §5.5.1: the reason "is not guaranteed to be human readable", but it is UTF-8;
    # §8.1 applies to it as to text.
    Violation("close_reason_not_utf8", "close reason not UTF-8", 1007,
              lambda: frame(FIN | wire.CLOSE, struct.pack("!H", 1000) + NOT_UTF8)),
    # §7.4.1: 1009 "a message that is too big for it to process"; the header
    # alone says so, and only a little of the payload follows.
    Violation("over_limit", "header announcing 64 MiB + 1", 1009,
              lambda: frame(FIN | wire.BINARY, LITTLE, length=MAX_SIZE + 1)),
    # RFC 7692 §6.2: the receiver inflates; data that is not DEFLATE is not
    # "consistent with the type of the message" (RFC 6455 §7.4.1: 1007).
    # Binary, so that no UTF-8 check can be what answers.
    Violation("bad_deflate", "RSV1 message not DEFLATE", 1007,
              lambda: frame(FIN | RSV1 | wire.BINARY, NOT_DEFLATE)),
    # §5.2: in the 64-bit length, "the most significant bit MUST be 0".
    Violation("length_msb", "64-bit length with its MSB set", 1002,
              lambda: frame(FIN | wire.BINARY, LITTLE[:16], length=HUGE_LENGTH)),
)  # fmt: skip
"""Every violation, in table order (1 to 14)."""


@attrs.define
class Answer:
    """What the server answered one violation."""

    name: str
    how: str
    """``close NNNN``, ``eof``, ``rst``, ``none`` (nothing within the bound),
    ``invalid frames``, or ``connect: ...`` / ``handshake: ...`` if it never got sent."""
    reason: str | None = None
    """The close frame's reason (undecodable bytes replaced), if there was a close frame."""
    seconds: float | None = None
    """From sending the violation to the answer; None without an answer."""


async def read_close(sock: socket.socket, start: float, bound: float, rest: bytes) -> Answer:
    """Read frames until the server's close frame, eof or rst, at most ``bound`` after ``start``.

    Args:
        sock: The client's non-blocking socket.
        start: ``time.monotonic()`` when the violation was sent.
        bound: Seconds to wait for the answer before recording ``none``.
        rest: Bytes the handshake read past the server's response head.
    """
    loop = asyncio.get_running_loop()
    reader = wire.FrameReader()
    data = rest
    for _ in range(READS):
        try:
            closes = [f for f in reader.feed(data) if f.opcode == wire.CLOSE]
        except wire.WireError:
            return Answer("", "invalid frames", None, time.monotonic() - start)
        if closes:
            payload = closes[0].payload
            reason = payload[2:].decode("utf-8", "replace")
            return Answer(
                "", f"close {wire.close_code(payload)}", reason, time.monotonic() - start
            )
        left = start + bound - time.monotonic()
        if left <= 0:
            return Answer("", "none")
        try:
            async with asyncio.timeout(left):
                data = await loop.sock_recv(sock, 65536)
        except TimeoutError:
            return Answer("", "none")
        except ConnectionResetError:
            return Answer("", "rst", None, time.monotonic() - start)
        if not data:
            return Answer("", "eof", None, time.monotonic() - start)
    return Answer("", "none")


async def commit(violation: Violation, port: int, bound: float) -> Answer:
    """Open a connection, commit ``violation`` on it, and return the server's answer."""
    loop = asyncio.get_running_loop()
    try:
        sock = await attacks.connect(port)
    except (OSError, TimeoutError) as exc:
        return Answer(violation.name, f"connect: {error_name(exc)}")
    try:
        try:
            _, rest, problem = await attacks.handshake(sock, port)
        except (OSError, wire.WireError) as exc:
            problem = type(exc).__name__
        if problem is not None:
            return Answer(violation.name, f"handshake: {problem}")
        start = time.monotonic()
        try:
            await loop.sock_sendall(sock, violation.data())
        except OSError:  # reset or broken pipe: the server hung up while we sent
            return Answer(violation.name, "rst", None, time.monotonic() - start)
        answer = await read_close(sock, start, bound, rest)
        answer.name = violation.name
        return answer
    finally:
        attacks.reset(sock)


async def commit_all(port: int, bound: float) -> list[Answer]:
    """Commit every violation, each on its own connection, all at once."""
    return list(await asyncio.gather(*(commit(v, port, bound) for v in VIOLATIONS)))


def run(port: int, bound: float) -> list[dict[str, Any]]:
    """Commit every violation against the server on ``port``; return the answers as dicts.

    Takes at most the connect and handshake bounds plus ``bound`` seconds.
    """
    return [attrs.asdict(answer) for answer in asyncio.run(commit_all(port, bound))]


def exact(how: str, expected: int) -> bool:
    """Return whether ``how`` is a close frame with the ``expected`` code."""
    return how == f"close {expected}"
