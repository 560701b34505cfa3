"""The client's half of RFC 6455 and RFC 7692, sans I/O, as cheap as the load clients need it.

Strategy: the load clients must cost far less than the servers they load,
so they are not WebSocket libraries: they write bytes built here and parse
what comes back with :class:`FrameReader`. A client message is compressed
once, not per connection: each message is its own deflate stream (a fresh
compressor, flushed with ``Z_SYNC_FLUSH``), which a server inflates with
context takeover as well as without, because nothing in it refers back to
an earlier message. The few bytes that differ per message (the connection
and sequence numbers) go in front, in a stored deflate block: deflate
streams are sequences of blocks, so a stored block followed by a compressed
stream is one valid message. Masking uses one fixed key (:data:`MASK_KEY`);
a server cannot tell a fixed key from a random one, and with a prefix whose
length is a multiple of 4 the masked body can be computed once too.
"""

from __future__ import annotations

import base64
import hashlib
import os
import struct
import zlib
from typing import Final, NamedTuple

GUID: Final = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
"""The GUID of the Sec-WebSocket-Accept computation (:rfc:`6455#section-1.3`)."""

MASK_KEY: Final = b"\x5a\x13\xc7\x39"
"""The masking key of every client frame (any four bytes; :rfc:`6455#section-5.3`)."""

SYNC_TAIL: Final = b"\x00\x00\xff\xff"
"""The empty stored block a sender strips and a receiver appends (:rfc:`7692#section-7.2.1`)."""

CONT: Final = 0x0
TEXT: Final = 0x1
BINARY: Final = 0x2
CLOSE: Final = 0x8
PING: Final = 0x9
PONG: Final = 0xA
"""Opcodes (:rfc:`6455#section-5.2`)."""

MAX_FRAME: Final = 128 * 2**20
"""Largest server frame the reader accepts: the servers' 64 MiB limit, with room."""

OFFER: Final = "permessage-deflate; client_max_window_bits"
"""The extension offer, as browsers make it: the server may shrink the client's window."""


class WireError(Exception):
    """The server sent bytes no RFC 6455 server may send."""


class Frame(NamedTuple):
    """One frame from the server (servers never mask)."""

    fin: bool
    rsv1: bool
    opcode: int
    payload: bytes


class Response(NamedTuple):
    """The head of the server's answer to the opening handshake."""

    status: int
    headers: dict[str, str]
    """Header names lower-cased; repeated headers joined with ``", "``."""


def new_key() -> str:
    """Return a fresh Sec-WebSocket-Key: 16 random bytes in base64."""
    return base64.b64encode(os.urandom(16)).decode("ascii")


def accept_for(key: str) -> str:
    """Return the Sec-WebSocket-Accept a server must answer to ``key``."""
    return base64.b64encode(hashlib.sha1(key.encode("ascii") + GUID).digest()).decode("ascii")


def handshake_request(port: int, key: str, *, offer: str | None = OFFER) -> bytes:
    """Return an opening handshake for ``ws://127.0.0.1:port/``, offering ``offer``."""
    lines = [
        "GET / HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
    ]
    if offer is not None:
        lines.append(f"Sec-WebSocket-Extensions: {offer}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")


def parse_response(head: bytes) -> Response:
    """Parse the status line and headers of ``head`` (up to and without the blank line).

    Raises:
        WireError: If the status line is not ``HTTP/1.x NNN ...``.
    """
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise WireError(f"not an HTTP status line: {lines[0][:80]!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep:
            continue
        key = name.strip().lower()
        headers[key] = f"{headers[key]}, {value.strip()}" if key in headers else value.strip()
    return Response(int(parts[1]), headers)


def upgrade_problem(response: Response, key: str) -> str | None:
    """Return why ``response`` does not open a WebSocket for ``key``, or None if it does."""
    if response.status != 101:
        return f"http {response.status}"
    if response.headers.get("upgrade", "").lower() != "websocket":
        return "101 without Upgrade: websocket"
    if response.headers.get("sec-websocket-accept") != accept_for(key):
        return "101 with a wrong Sec-WebSocket-Accept"
    return None


def client_window_bits(response: Response) -> int | None:
    """Return the window the client must compress with, or None if deflate was declined.

    The server may answer ``client_max_window_bits=N`` to the offer's bare
    parameter; without it the client may use the whole 32 KiB (15 bits).
    """
    for extension in response.headers.get("sec-websocket-extensions", "").split(","):
        name, *params = (part.strip() for part in extension.split(";"))
        if name != "permessage-deflate":
            continue
        for param in params:
            pname, _, value = param.partition("=")
            if pname.strip() == "client_max_window_bits" and value.strip().strip('"').isdigit():
                return int(value.strip().strip('"'))
        return 15
    return None


def apply_mask(data: bytes, key: bytes = MASK_KEY) -> bytes:
    """Return ``data`` XOR-ed with ``key`` repeated (masking and unmasking alike)."""
    size = len(data)
    if not size:
        return b""
    pad = (key * (size // 4 + 1))[:size]
    return (int.from_bytes(data, "little") ^ int.from_bytes(pad, "little")).to_bytes(
        size, "little"
    )


def frame_head(opcode: int, length: int, *, rsv1: bool = False, fin: bool = True) -> bytes:
    """Return a masked client frame's header for a payload of ``length`` bytes, key included."""
    first = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode
    if length < 126:
        return struct.pack("!BB", first, 0x80 | length) + MASK_KEY
    if length < 2**16:
        return struct.pack("!BBH", first, 0x80 | 126, length) + MASK_KEY
    return struct.pack("!BBQ", first, 0x80 | 127, length) + MASK_KEY


def client_frame(opcode: int, payload: bytes, *, rsv1: bool = False) -> bytes:
    """Return a whole masked client frame."""
    return frame_head(opcode, len(payload), rsv1=rsv1) + apply_mask(payload)


def close_frame(code: int = 1000) -> bytes:
    """Return a masked client close frame with ``code`` and no reason."""
    return client_frame(CLOSE, struct.pack("!H", code))


def close_code(payload: bytes) -> int:
    """Return the code of a close frame's payload (1005 when it has none)."""
    return struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005


def stored_block(data: bytes) -> bytes:
    """Return ``data`` (at most 65,535 bytes) as one non-final stored deflate block.

    :rfc:`1951#section-3.2.4`: BFINAL=0 and BTYPE=00 in the first byte (the
    rest of it padding), then LEN and its one's complement NLEN, little-endian.
    It ends on a byte boundary, so a message must not end with it: the
    receiver's :data:`SYNC_TAIL` is an empty stored block only after the three
    header bits a sync flush leaves in the last byte.
    """
    return b"\x00" + struct.pack("<HH", len(data), len(data) ^ 0xFFFF) + data


def deflate_alone(data: bytes, window_bits: int) -> bytes:
    """Return ``data`` as a message compressed on its own, without the sync tail.

    zlib cannot make a raw stream with an 8-bit window, so for 8 bits the data
    goes in stored blocks, which refer back to nothing.
    """
    level = 0 if window_bits < 9 else 6
    compressor = zlib.compressobj(level, zlib.DEFLATED, -max(window_bits, 9))
    stream = compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)
    return stream[: -len(SYNC_TAIL)]


def padded_for_mask(prefix_text: bytes) -> bytes:
    """Return ``prefix_text`` plus spaces so that its stored block is a multiple of 4 long.

    Then a body masked from offset 0 can follow it unchanged (:data:`MASK_KEY` repeats
    every 4 bytes), and only the short stored block needs masking per message.
    """
    return prefix_text + b" " * (-(len(prefix_text) + 5) % 4)


class FrameReader:
    """Turns the bytes a server sends into :class:`Frame` values, as they complete."""

    def __init__(self) -> None:
        """Start with an empty buffer."""
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[Frame]:
        """Add ``data``; return every frame completed by it, in order.

        Raises:
            WireError: If a frame is masked, uses a reserved opcode, or is over
                :data:`MAX_FRAME`.
        """
        buffer = self._buffer
        buffer += data
        frames: list[Frame] = []
        pos = 0
        end = len(buffer)
        while end - pos >= 2:
            first, second = buffer[pos], buffer[pos + 1]
            if second & 0x80:
                raise WireError("the server masked a frame")
            length = second & 0x7F
            start = pos + 2
            if length == 126:
                if end - start < 2:
                    break
                (length,) = struct.unpack_from("!H", buffer, start)
                start += 2
            elif length == 127:
                if end - start < 8:
                    break
                (length,) = struct.unpack_from("!Q", buffer, start)
                start += 8
                if length > MAX_FRAME:
                    raise WireError(f"a frame of {length} bytes")
            if end - start < length:
                break
            opcode = first & 0x0F
            if opcode not in (CONT, TEXT, BINARY, CLOSE, PING, PONG):
                raise WireError(f"reserved opcode {opcode:#x}")
            frames.append(
                Frame(
                    bool(first & 0x80),
                    bool(first & 0x40),
                    opcode,
                    bytes(buffer[start : start + length]),
                )
            )
            pos = start + length
        if pos:
            del buffer[:pos]
        return frames
