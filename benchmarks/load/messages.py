"""The good clients' messages: mixed sizes, each one checkable when it comes back.

Strategy: message ``seq`` of connection ``conn`` is the text
``{"c":CONN,"s":SEQ,"d":BODY}``; BODY comes from a small pool of JSON-like
documents (:func:`benchmarks.payloads.json_message`), so that each
connection's messages differ from one another while the pool is compressed
and masked once per process (see :mod:`benchmarks.load.wire`). An echo is
checked by reading CONN and SEQ back and comparing the whole text with the
one they name: a corrupted body, a message of another connection, a
duplicate and a message out of order all show.

Sizes follow ``seq``: one message in 50 is 64 KiB, one in 8 is 64 bytes,
the rest about 2 kB; a connection of 10 messages already has all three.
"""

from __future__ import annotations

from functools import cache
from typing import Final, Literal

from benchmarks.load import wire
from benchmarks.payloads import json_message

SizeName = Literal["small", "medium", "large"]
"""The three message sizes."""

SIZES: Final[dict[SizeName, int]] = {"small": 64, "medium": 2_048, "large": 65_536}
"""Approximate bytes of a whole message of each size (the header varies by a few)."""

POOLS: Final[dict[SizeName, int]] = {"small": 8, "medium": 16, "large": 4}
"""Distinct bodies per size: 4 x 64 KiB is 8 deflate windows, so no large echo can
refer back to an identical earlier one."""

HEADER_ROOM: Final = 24
"""Bytes of a message the header takes, about: the body is the size minus this."""


def size_of(seq: int) -> SizeName:
    """Return the size of message ``seq`` of any connection."""
    if seq % 50 == 7:
        return "large"
    if seq % 8 == 3:
        return "small"
    return "medium"


@cache
def body(size: SizeName, index: int) -> bytes:
    """Return body ``index`` of the pool of ``size``: JSON-like text, then the closing brace."""
    length = max(SIZES[size] - HEADER_ROOM, 8)
    return json_message(length, index).encode("ascii") + b"}"


def body_index(conn: int, seq: int, size: SizeName) -> int:
    """Return which body of its pool message ``seq`` of connection ``conn`` carries."""
    return (conn * 31 + seq) % POOLS[size]


def header(conn: int, seq: int) -> bytes:
    """Return the text in front of the body, padded so its stored block masks in place."""
    return wire.padded_for_mask(b'{"c":%d,"s":%d,"d":' % (conn, seq))


def text(conn: int, seq: int) -> bytes:
    """Return the whole text of message ``seq`` of connection ``conn``."""
    size = size_of(seq)
    return header(conn, seq) + body(size, body_index(conn, seq, size))


def parse_ids(message: bytes) -> tuple[int, int] | None:
    """Return (conn, seq) read from a message's header, or None if it has no such header."""
    if not message.startswith(b'{"c":'):
        return None
    end = message.find(b',"d":', 5, 64)
    conn_text, sep, seq_text = message[5:end].partition(b',"s":')
    if end < 0 or not sep or not conn_text.isdigit() or not seq_text.isdigit():
        return None
    return int(conn_text), int(seq_text)


class Payloads:
    """Masked, compressed bodies for one client window size, computed once per process."""

    def __init__(self, window_bits: int) -> None:
        """Compress and mask every pool body for a client window of ``window_bits``."""
        self.window_bits = window_bits
        self._bodies: dict[tuple[SizeName, int], bytes] = {
            (size, i): wire.apply_mask(wire.deflate_alone(body(size, i), window_bits))
            for size, count in POOLS.items()
            for i in range(count)
        }

    def frame(self, conn: int, seq: int) -> bytes:
        """Return the whole masked, compressed text frame of message ``seq`` of ``conn``."""
        size = size_of(seq)
        prefix = wire.apply_mask(wire.stored_block(header(conn, seq)))
        masked_body = self._bodies[size, body_index(conn, seq, size)]
        head = wire.frame_head(wire.TEXT, len(prefix) + len(masked_body), rsv1=True)
        return b"".join((head, prefix, masked_body))


@cache
def payloads(window_bits: int) -> Payloads:
    """Return the process's :class:`Payloads` for ``window_bits`` (made on first use)."""
    return Payloads(window_bits)
