"""GOAWAY frames, handled beside h2 so that a connection can go away gracefully.

Strategy: RFC 9113 §6.8 makes GOAWAY the start of a graceful shutdown:
"the sender will ignore frames sent on streams initiated by the receiver if
the stream has an identifier higher than the included last stream
identifier", while streams up to it run to their end. h2, though, moves its
whole connection to CLOSED on sending or receiving one, and then refuses to
send anything more, even on streams that the GOAWAY let live (and it drops
what it had not sent yet). A server going away would then never get its
WebSockets' 1001 close frames answered. So GOAWAY never reaches h2 here:
:class:`GoAwayFilter` takes the peer's GOAWAY frames out of the received
bytes before h2 parses them, and :func:`serialize_goaway` makes ours, which
the connection's one writer puts on the wire in order with h2's output.
Pure: bytes in, bytes and :class:`GoAway` values out.
"""

from __future__ import annotations

from typing import Final, final

import attrs

from .selection import PREFACE

__all__ = ["FRAME_HEADER", "GOAWAY_TYPE", "GoAway", "GoAwayFilter", "serialize_goaway"]

#: RFC 9113 §4.1: a frame header is 9 octets: Length (24), Type (8), Flags
#: (8), Reserved (1), Stream Identifier (31).
FRAME_HEADER: Final = 9

#: RFC 9113 §6.8: "The GOAWAY frame (type=0x07)".
GOAWAY_TYPE: Final = 0x07

#: RFC 9113 §6.8: Last-Stream-ID (31 bits after a reserved bit) and Error
#: Code (32): 8 octets before the optional debug data.
_GOAWAY_FIXED: Final = 8

#: The debug data of a received GOAWAY that is kept (the rest is dropped:
#: a peer may send up to the frame size limit).
MAX_DEBUG_DATA: Final = 256


@final
@attrs.frozen
class GoAway:
    """A GOAWAY frame the peer sent (:rfc:`9113#section-6.8`)."""

    last_stream_id: int
    """The highest stream the peer processed or may still process."""
    error_code: int
    """0 (NO_ERROR) for a graceful shutdown."""
    debug_data: bytes = b""
    """Opaque diagnostics, cut to :data:`MAX_DEBUG_DATA` bytes."""
    malformed: bool = False
    """The frame was shorter than 8 octets or not on stream 0: a connection error."""


def serialize_goaway(last_stream_id: int, error_code: int = 0, debug_data: bytes = b"") -> bytes:
    """Build a GOAWAY frame (:rfc:`9113#section-6.8`) to send."""
    payload = (
        (last_stream_id & 0x7FFFFFFF).to_bytes(4, "big")
        + error_code.to_bytes(4, "big")
        + debug_data
    )
    header = len(payload).to_bytes(3, "big") + bytes([GOAWAY_TYPE, 0]) + b"\x00\x00\x00\x00"
    return header + payload


@final
class GoAwayFilter:
    """Split received bytes into what goes to h2 and the GOAWAY frames that do not.

    Bytes pass through as they come, frames cut anywhere; only a frame
    header split across reads waits (at most 8 bytes) for the rest, and a
    GOAWAY frame is held until whole.

    Args:
        server: whether this is the server side, whose received bytes start
            with the client's 24-byte connection preface rather than a frame.
    """

    def __init__(self, *, server: bool) -> None:
        self._preface_left = len(PREFACE) if server else 0
        self._header = b""  # a frame header received in part
        self._passing = 0  # bytes of the current frame still to pass through
        self._goaway: bytearray | None = None  # a GOAWAY frame's payload, being collected
        self._goaway_left = 0
        self._goaway_stream = 0

    def feed(self, data: bytes) -> tuple[bytes, list[GoAway]]:
        """Take received bytes; return those for h2 (in order) and any complete GOAWAY frames.

        GOAWAY frames are reported in the order received; the bytes for h2
        keep every other frame in its order. (A GOAWAY changes nothing about
        the frames around it, so h2 may see them all before it is handled.)
        """
        out: list[bytes | memoryview] = []
        goaways: list[GoAway] = []
        view = memoryview(data)
        pos = 0
        size = len(view)
        if self._preface_left:
            take = min(self._preface_left, size)
            out.append(view[:take])
            self._preface_left -= take
            pos = take
        while pos < size:
            if self._passing:
                take = min(self._passing, size - pos)
                out.append(view[pos : pos + take])
                self._passing -= take
                pos += take
                continue
            if self._goaway is not None:
                take = min(self._goaway_left, size - pos)
                self._goaway += view[pos : pos + take]
                self._goaway_left -= take
                pos += take
                if not self._goaway_left:
                    goaways.append(self._parse_goaway(bytes(self._goaway)))
                    self._goaway = None
                continue
            need = FRAME_HEADER - len(self._header)
            piece = bytes(view[pos : pos + need])
            pos += len(piece)
            header = self._header + piece
            if len(header) < FRAME_HEADER:
                self._header = header
                break
            self._header = b""
            length = int.from_bytes(header[:3], "big")
            if header[3] == GOAWAY_TYPE:
                self._goaway = bytearray()
                self._goaway_left = length
                self._goaway_stream = int.from_bytes(header[5:9], "big") & 0x7FFFFFFF
                if not length:
                    goaways.append(self._parse_goaway(b""))
                    self._goaway = None
            else:
                out.append(header)
                self._passing = length
        if len(out) == 1:
            return bytes(out[0]), goaways
        return b"".join(out), goaways

    def _parse_goaway(self, payload: bytes) -> GoAway:
        # RFC 9113 §6.8: "The GOAWAY frame applies to the connection, not a
        # specific stream. An endpoint MUST treat a GOAWAY frame with a stream
        # identifier other than 0x00 as a connection error".
        if len(payload) < _GOAWAY_FIXED or self._goaway_stream != 0:
            return GoAway(0, 1, malformed=True)  # PROTOCOL_ERROR
        return GoAway(
            last_stream_id=int.from_bytes(payload[:4], "big") & 0x7FFFFFFF,
            error_code=int.from_bytes(payload[4:8], "big"),
            debug_data=payload[_GOAWAY_FIXED : _GOAWAY_FIXED + MAX_DEBUG_DATA],
        )
