"""Fuzz the permessage-deflate decoder (:meth:`PerMessageDeflate.decode`) with a size limit.

The input's first bytes choose the receiver's side, window and context
takeover, the ``max_size`` passed to each ``decode``, and a mode:

- *frames*: the rest is a list of frames (a flags byte: opcode, FIN, RSV1;
  a 2-byte length; the payload), decoded one after the other as a
  connection would, until one fails;
- *round trip*: the rest is a message that the peer's encoder compresses
  in fragments (the flags byte says how many), which this decoder must give
  back unchanged, then a second message in the same context.

The contract checked, from ``decode``'s docstring and the README's
"Safety": a decoded frame has RSV1 clear and its opcode and FIN unchanged,
and no more than ``max_size`` bytes of data, whatever the compressed data
says (an uncompressed frame passes unchanged: the frame parser bounds it);
failures are ``PayloadTooBig`` (1009), or ``ProtocolError`` with 1002 (RSV1
on a control or continuation frame) or 1007 (not DEFLATE), and nothing else.

Run: ``python tests/fuzz/fuzz_deflate.py [-max_total_time=60] [corpus_dir]``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Final

from fuzzing import Reader, run

from trio_wsext.exceptions import PayloadTooBig, ProtocolError
from trio_wsext.extensions.permessage_deflate import PerMessageDeflate
from trio_wsext.frames import Frame, Opcode

#: Opcodes a flags byte chooses among (its low 3 bits).
OPCODES: Final = [Opcode.TEXT, Opcode.BINARY, Opcode.CONT, Opcode.CONT, Opcode.PING, Opcode.CLOSE]

#: ``max_size`` values the input chooses among.
LIMITS: Final[list[int | None]] = [None, 0, 1, 100, 4096, 65536]

#: The RFC 7692 §7.2.3.1 vector: "Hello" compressed, without its tail.
HELLO: Final = bytes.fromhex("f248cdc9c90700")


def codec(reader: Reader, *, is_server: bool) -> tuple[PerMessageDeflate, PerMessageDeflate]:
    """Return this side's codec and the peer's, with the settings ``reader`` chooses."""
    bits = 8 + reader.choice(8)
    no_takeover = reader.flag()

    def make(server: bool) -> PerMessageDeflate:
        return PerMessageDeflate(
            server,
            server_max_window_bits=bits,
            client_max_window_bits=bits,
            server_no_context_takeover=no_takeover,
            client_no_context_takeover=no_takeover,
        )

    return make(is_server), make(not is_server)


def check_decoded(frame: Frame, decoded: Frame, max_size: int | None) -> None:
    """Check one decoded frame against the frame it came from."""
    assert decoded.opcode is frame.opcode
    assert decoded.fin == frame.fin
    assert not decoded.rsv1
    assert (decoded.rsv2, decoded.rsv3) == (frame.rsv2, frame.rsv3)
    if max_size is not None:
        assert len(decoded.data) <= max_size, (len(decoded.data), max_size)


def check_failure(
    error: ProtocolError, frame: Frame, *, compressed: bool, max_size: int | None
) -> None:
    """Check that ``decode`` failed on ``frame`` for a documented reason, with its code."""
    if isinstance(error, PayloadTooBig):
        assert error.code == 1009
        assert max_size is not None
        assert compressed
    elif error.code == 1002:
        # RSV1 on a control frame or a continuation frame (RFC 7692 §6.1).
        assert frame.rsv1, error
        assert frame.opcode not in (Opcode.TEXT, Opcode.BINARY), error
    else:
        assert error.code == 1007, error
        assert compressed


def decode_frames(extension: PerMessageDeflate, reader: Reader, max_size: int | None) -> None:
    """Decode the frames ``reader`` describes until one fails; check each outcome."""
    active = False  # a compressed message is in progress
    while reader.remaining():
        flags = reader.byte()
        size = int.from_bytes(reader.take(2), "big")
        opcode = OPCODES[flags & 7 if flags & 7 < len(OPCODES) else 0]
        frame = Frame(opcode, reader.take(size), fin=bool(flags & 0x80), rsv1=bool(flags & 0x40))
        if opcode in (Opcode.TEXT, Opcode.BINARY):
            active = frame.rsv1
        compressed = active and opcode.value < 8
        try:
            decoded = extension.decode(frame, max_size=max_size)
        except ProtocolError as exc:
            check_failure(exc, frame, compressed=compressed, max_size=max_size)
            return
        if compressed:
            check_decoded(frame, decoded, max_size)
        else:
            assert decoded == frame
        if frame.fin and opcode.value < 8:
            active = False


def round_trip(
    extension: PerMessageDeflate, peer: PerMessageDeflate, reader: Reader, max_size: int | None
) -> None:
    """Compress a message with ``peer`` in fragments; ``extension`` gives it back whole."""
    fragments = 1 + reader.choice(4)
    message = reader.rest()
    for _ in range(2):  # the second message may refer to the first one's window
        step = len(message) // fragments + 1
        parts = [message[i : i + step] for i in range(0, len(message), step)] or [b""]
        out = b""
        try:
            for index, part in enumerate(parts):
                opcode = Opcode.BINARY if index == 0 else Opcode.CONT
                frame = peer.encode(Frame(opcode, part, fin=index == len(parts) - 1))
                left = None if max_size is None else max_size - len(out)
                decoded = extension.decode(frame, max_size=left)
                check_decoded(frame, decoded, left)
                out += decoded.data
        except PayloadTooBig:
            assert max_size is not None
            assert len(message) > max_size
            return
        assert out == message


def one_input(data: bytes) -> None:
    """Decode the frames or the message ``data`` describes; check the contract."""
    reader = Reader(data)
    is_server = reader.flag()
    max_size = LIMITS[reader.choice(len(LIMITS))]
    mode = reader.choice(2)
    extension, peer = codec(reader, is_server=is_server)
    if mode == 0:
        decode_frames(extension, reader, max_size)
    else:
        round_trip(extension, peer, reader, max_size)


def frame_record(flags: int, data: bytes) -> bytes:
    """Return one frame in the harness' input encoding."""
    return bytes([flags]) + len(data).to_bytes(2, "big") + data


def seeds() -> list[bytes]:
    """Return real compressed messages (one frame and fragmented), the RFC vector, a bomb."""
    sender = PerMessageDeflate(False)
    text = "Hello, world! " * 30
    whole = sender.encode(Frame(Opcode.TEXT, text.encode())).data
    first = sender.encode(Frame(Opcode.BINARY, bytes(range(200)), fin=False)).data
    last = sender.encode(Frame(Opcode.CONT, bytes(range(200)), fin=True)).data
    bomb = PerMessageDeflate(False).encode(Frame(Opcode.BINARY, bytes(60000))).data
    frames = (
        frame_record(0xC1, HELLO)
        + frame_record(0xC1, whole)
        + frame_record(0x82, b"plain")
        + frame_record(0x44, b"")
        + frame_record(0x42, first)
        + frame_record(0x83, last)
        + frame_record(0xC2, bomb)
    )
    out = []
    for settings in (b"\1\0\0\7\0", b"\1\3\0\7\0", b"\1\5\0\7\1", b"\0\2\0\0\0"):
        out.append(settings + frames)
    out.append(b"\1\4\1\7\0\2" + text.encode())
    out.append(b"\0\3\1\0\1\1" + bytes(range(256)) * 4)
    return out


def main() -> None:
    """Fuzz with libFuzzer; arguments as for libFuzzer (``-help=1``)."""
    run(Path(__file__).stem, seeds, sys.argv)


if __name__ == "__main__":
    main()
