"""Fuzz the frame parser (:class:`trio_wsext.frames.FrameParser`), both masking directions.

The input's first bytes choose the direction (a server's parser requires
masked frames, a client's refuses them), the size limit and where the rest
is cut; the rest is the byte stream. The contract checked, from the
parser's docstrings and the README's "What trio_wsext enforces":

- ``next_frame`` returns frames or ``None``, or raises ``ProtocolError``
  (close code 1002) or ``PayloadTooBig`` (1009), and nothing else;
- a returned frame has a known opcode, a control frame is final and at most
  125 bytes, no payload exceeds the limit, and ``whole_frame_size`` announced
  its size;
- the outcome does not depend on how the stream was cut: the frames (and
  the error's type and message) equal those of the whole stream fed at once;
- each frame serializes back (masked as its direction requires) to bytes
  that parse to an equal frame, and ``Close.parse`` of a close payload
  raises only ``ProtocolError`` with 1002 or 1007.

Run: ``python tests/fuzz/fuzz_frames.py [-max_total_time=60] [corpus_dir]``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Final

from fuzzing import Reader, pieces, run

from trio_wsext.exceptions import PayloadTooBig, ProtocolError
from trio_wsext.frames import (
    CONTROL_OPCODES,
    MAX_CONTROL_PAYLOAD,
    Close,
    Frame,
    FrameParser,
    Opcode,
    serialize_frame,
)

#: Size limits the input chooses among: none, nothing but control frames,
#: small, and one above the parser's large-frame threshold (8 KiB).
LIMITS: Final[list[int | None]] = [None, 0, 125, 126, 4096, 20000]

#: Masking keys for the seeds: zero (the payload reads as plain text to the
#: fuzzer) and an arbitrary one.
KEYS: Final = [b"\0\0\0\0", b"\x37\xfa\x21\x3d"]

Outcome = tuple[list[Frame], str | None]


def parse_all(parser: FrameParser, chunks: list[bytes], max_size: int | None) -> Outcome:
    """Feed ``chunks`` one by one, taking every whole frame after each; check each frame.

    Returns:
        The frames, and the error (``"Type: message"``) that ended parsing, if any.
    """
    frames: list[Frame] = []
    fed = 0
    for chunk in chunks:
        parser.feed(chunk)
        fed += len(chunk)
        while True:
            announced = parser.whole_frame_size
            try:
                frame = parser.next_frame(max_size)
            except ProtocolError as exc:
                return frames, describe_error(exc)
            assert 0 <= parser.buffered <= fed
            if frame is None:
                break
            check_frame(frame, max_size, announced)
            frames.append(frame)
    return frames, None


def describe_error(error: ProtocolError) -> str:
    """Check that ``error`` is a documented header error (1002, or 1009); describe it."""
    expected = 1009 if isinstance(error, PayloadTooBig) else 1002
    assert error.code == expected, (error, error.code)
    return f"{type(error).__name__}: {error}"


def check_close_payload(data: bytes) -> None:
    """Parse a close payload: it serializes back, or fails with 1002 or 1007."""
    try:
        close = Close.parse(data)
    except ProtocolError as exc:
        error: ProtocolError | None = exc
    else:
        error = None
        assert close.serialize() == data
    assert error is None or error.code in (1002, 1007)


def check_frame(frame: Frame, max_size: int | None, announced: int) -> None:
    """Check one parsed frame against the header rules and the size limit."""
    assert isinstance(frame.opcode, Opcode)
    assert isinstance(frame.data, bytes)
    if announced:
        assert len(frame.data) == announced
    if max_size is not None:
        assert len(frame.data) <= max_size
    if frame.opcode in CONTROL_OPCODES:
        assert frame.fin
        assert len(frame.data) <= MAX_CONTROL_PAYLOAD
    if frame.opcode is Opcode.CLOSE:
        check_close_payload(frame.data)


def check_round_trip(frame: Frame, require_mask: bool) -> None:
    """Serialize ``frame`` as its sender would have; a fresh parser returns it unchanged."""
    parser = FrameParser(require_mask=require_mask)
    parser.feed(serialize_frame(frame, mask=require_mask))
    assert parser.next_frame() == frame
    assert parser.next_frame() is None
    assert parser.buffered == 0


def one_input(data: bytes) -> None:
    """Parse ``data`` as a frame stream, cut and whole; check the contract."""
    reader = Reader(data)
    require_mask = reader.flag()
    max_size = LIMITS[reader.choice(len(LIMITS))]
    seed = reader.byte()
    stream = reader.rest()
    cut = parse_all(FrameParser(require_mask=require_mask), list(pieces(stream, seed)), max_size)
    whole = parse_all(FrameParser(require_mask=require_mask), [stream] if stream else [], max_size)
    assert cut == whole, (cut, whole)
    for frame in whole[0]:
        check_round_trip(frame, require_mask)


def seeds() -> list[bytes]:
    """Return valid streams for both directions: every opcode, each length encoding."""
    frames = [
        Frame(Opcode.TEXT, b"Hello, world"),
        Frame(Opcode.BINARY, bytes(range(200))),
        Frame(Opcode.TEXT, b"frag", fin=False),
        Frame(Opcode.PING, b"ping"),
        Frame(Opcode.CONT, b"ment", fin=True),
        Frame(Opcode.BINARY, b"\xaa" * 70000, rsv1=True),
        Frame(Opcode.PONG, b""),
        Frame(Opcode.CLOSE, Close(1000, "bye").serialize()),
    ]
    out = []
    for require_mask in (False, True):
        for key in KEYS:
            stream = b"".join(
                serialize_frame(f, mask=require_mask, key=key if require_mask else None)
                for f in frames
            )
            for limit in (0, 5):  # no limit, then 20000: the large frame fails
                for seed in (0, 3, 200):
                    out.append(bytes([require_mask, limit, seed]) + stream)
            out.append(bytes([require_mask, 4, 9]) + stream[:300])
    return out


def main() -> None:
    """Fuzz with libFuzzer; arguments as for libFuzzer (``-help=1``)."""
    run(Path(__file__).stem, seeds, sys.argv)


if __name__ == "__main__":
    main()
