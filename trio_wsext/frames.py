"""WebSocket frames (:rfc:`6455#section-5`): values, the wire codec, close payloads.

Strategy: a :class:`Frame` is an immutable value that says nothing of masking,
which is a wire detail handled by :func:`serialize_frame` and
:class:`FrameParser`. The parser is incremental: bytes go in split anywhere,
whole frames come out, and every check that the header alone allows (reserved
opcodes, control-frame rules, masking direction, the size limit) is made before
the payload is buffered. Masking XORs the payload as one big integer, so no
Python loop runs per byte.
"""

from __future__ import annotations

import enum
import os
import struct
from typing import Any, Final

import attrs

from .exceptions import PayloadTooBig, ProtocolError
from .masking import SMALL_BELOW, mask_in_place as _mask_in_place, masked as _masked

__all__ = [
    "CONTROL_OPCODES",
    "DATA_OPCODES",
    "Close",
    "CloseCode",
    "CloseReason",
    "Frame",
    "FrameParser",
    "Opcode",
    "apply_mask",
    "serialize_frame",
]


class Opcode(enum.IntEnum):
    """Frame opcodes (:rfc:`6455#section-5.2`)."""

    CONT = 0x0
    TEXT = 0x1
    BINARY = 0x2
    CLOSE = 0x8
    PING = 0x9
    PONG = 0xA


DATA_OPCODES: Final = frozenset({Opcode.CONT, Opcode.TEXT, Opcode.BINARY})
CONTROL_OPCODES: Final = frozenset({Opcode.CLOSE, Opcode.PING, Opcode.PONG})

#: RFC 6455 §5.5: "All control frames MUST have a payload length of 125 bytes or less".
MAX_CONTROL_PAYLOAD: Final = 125


class CloseCode(enum.IntEnum):
    """Close status codes (:rfc:`6455#section-7.4.1` and the IANA registry)."""

    NORMAL_CLOSURE = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    UNSUPPORTED_DATA = 1003
    NO_STATUS_RCVD = 1005
    ABNORMAL_CLOSURE = 1006
    INVALID_DATA = 1007
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    MANDATORY_EXTENSION = 1010
    INTERNAL_ERROR = 1011
    SERVICE_RESTART = 1012
    TRY_AGAIN_LATER = 1013
    BAD_GATEWAY = 1014
    TLS_HANDSHAKE = 1015


#: Codes that may appear in a close frame: RFC 6455 §7.4.1 and the IANA
#: registry (1000-1003, 1007-1014), plus the ranges for libraries (3000-3999)
#: and applications (4000-4999). 1005, 1006 and 1015 are never sent.
_SENDABLE_CODES: Final = frozenset({1000, 1001, 1002, 1003, *range(1007, 1015)})


def is_valid_close_code(code: int) -> bool:
    """Tell whether ``code`` may be sent or received in a close frame."""
    return code in _SENDABLE_CODES or 3000 <= code <= 4999


def _as_opcode(value: int) -> Opcode:
    # Opcode(Opcode.TEXT) goes through EnumType.__call__ (~0.3 us); frames are
    # built on every send and receive, so skip it when there is nothing to convert.
    return value if isinstance(value, Opcode) else Opcode(value)


def _as_bytes(data: bytes | bytearray | memoryview) -> bytes:
    return data if type(data) is bytes else bytes(data)


def _elide_payload(data: bytes) -> str:
    if len(data) <= 32:
        return repr(data)
    return f"{data[:24]!r}...<{len(data)} bytes>"


@attrs.frozen
class Frame:
    """One WebSocket frame (:rfc:`6455#section-5.2`); masking is a wire detail.

    Attributes:
        opcode: the frame's :class:`Opcode`.
        data: the payload, unmasked.
        fin: whether this is the last frame of its message.
        rsv1: reserved bit 1 (permessage-deflate's "compressed" bit).
        rsv2: reserved bit 2.
        rsv3: reserved bit 3.
    """

    opcode: Opcode = attrs.field(converter=_as_opcode)
    data: bytes = attrs.field(converter=_as_bytes, repr=_elide_payload)
    fin: bool = True
    rsv1: bool = False
    rsv2: bool = False
    rsv3: bool = False

    def replace(self, **changes: Any) -> Frame:
        """Return a copy with ``changes``; converters run again."""
        return attrs.evolve(self, **changes)

    #: The namedtuple name used by code ported from websockets.
    _replace = replace


_new_object: Final = object.__new__
# The slots' own setters: attrs' __init__ of a frozen class runs converters
# and goes through object.__setattr__ per field (measured ~700 ns a frame).
_set_opcode, _set_data, _set_fin, _set_rsv1, _set_rsv2, _set_rsv3 = (
    Frame.__dict__[name].__set__ for name in ("opcode", "data", "fin", "rsv1", "rsv2", "rsv3")
)


def frame_unchecked(
    opcode: Opcode,
    data: bytes,
    fin: bool = True,
    rsv1: bool = False,
    rsv2: bool = False,
    rsv3: bool = False,
) -> Frame:
    """Build a :class:`Frame` without its converters, for hot paths.

    The caller guarantees what the converters would ensure: ``opcode`` is an
    :class:`Opcode` and ``data`` is ``bytes``. The frame is as frozen as any.
    """
    frame: Frame = _new_object(Frame)
    _set_opcode(frame, opcode)
    _set_data(frame, data)
    _set_fin(frame, fin)
    _set_rsv1(frame, rsv1)
    _set_rsv2(frame, rsv2)
    _set_rsv3(frame, rsv3)
    return frame


@attrs.frozen
class CloseReason:
    """Why a connection closed, as :attr:`trio_wsext.WebSocketConnection.closed` reports it.

    Attributes:
        code: the close code (1006 when no close frame was received).
        name: the code's name, for example ``"NORMAL_CLOSURE"``.
        reason: the reason text, or ``None``.
    """

    code: int
    name: str
    reason: str | None

    @classmethod
    def from_code(cls, code: int, reason: str | None = None) -> CloseReason:
        """Build a reason, naming ``code`` from :class:`CloseCode` or its range."""
        return cls(code, close_code_name(code), reason)

    def __str__(self) -> str:
        text = f"{self.code} ({self.name})"
        return f"{text} {self.reason}" if self.reason else text


def close_code_name(code: int) -> str:
    """Name a close code: its :class:`CloseCode` name, or the range it lies in."""
    try:
        return CloseCode(code).name
    except ValueError:
        if 3000 <= code <= 3999:
            return "LIBRARY"
        if 4000 <= code <= 4999:
            return "PRIVATE"
        return "UNKNOWN"


@attrs.frozen
class Close:
    """The payload of a close frame (:rfc:`6455#section-5.5.1`).

    Attributes:
        code: the status code; :attr:`CloseCode.NO_STATUS_RCVD` for an empty payload.
        reason: the reason text (UTF-8 on the wire).
    """

    code: int
    reason: str = ""

    @classmethod
    def parse(cls, data: bytes) -> Close:
        """Parse a close frame's payload.

        Raises:
            ProtocolError: a 1-byte payload, a code that may not be sent, or a
                reason that is not UTF-8.
        """
        if not data:
            # RFC 6455 §7.1.5: no status code in the frame means 1005.
            return cls(CloseCode.NO_STATUS_RCVD, "")
        if len(data) == 1:
            raise ProtocolError("close frame payload of 1 byte")
        (code,) = struct.unpack("!H", data[:2])
        if not is_valid_close_code(code):
            raise ProtocolError(f"invalid close code {code}")
        try:
            reason = data[2:].decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ProtocolError("close reason is not valid UTF-8", code=1007) from exc
        return cls(code, reason)

    def serialize(self) -> bytes:
        """Return the close frame payload.

        Raises:
            ValueError: a code that may not be sent, or a payload over 125 bytes.
        """
        if self.code == CloseCode.NO_STATUS_RCVD:
            return b""
        if not is_valid_close_code(self.code):
            raise ValueError(f"close code {self.code} may not be sent")
        data = struct.pack("!H", self.code) + self.reason.encode("utf-8")
        if len(data) > MAX_CONTROL_PAYLOAD:
            raise ValueError("close reason is longer than 123 bytes in UTF-8")
        return data


#: Below this many bytes, a payload is masked as one big integer (inline in
#: :class:`FrameParser`, and by :func:`apply_mask`); from here on, by the
#: masking backend's bulk path, in place where the payload already sits. The
#: bound is the backend's (:data:`trio_wsext.masking.SMALL_BELOW`): 8 KiB in
#: pure Python, 1 KiB with numpy.
_TRANSLATE_MASK_FROM: Final = SMALL_BELOW

#: A frame whose payload is at least this large and not whole yet is collected
#: outside the buffer (see :class:`FrameParser`); smaller ones wait in it.
_COLLECT_FROM: Final = 8192


def apply_mask(data: bytes | bytearray | memoryview, mask: bytes) -> bytes:
    """XOR ``data`` with the 4-byte ``mask`` repeated (:rfc:`6455#section-5.3`).

    No Python code runs per byte: small payloads are XORed as one integer,
    large ones by the backend of :mod:`trio_wsext.masking` (numpy when
    installed, else ``bytes.translate``). Masking and unmasking are the same
    operation.
    """
    if not data:
        return b""
    masked = _masked(data, mask)
    return masked if type(masked) is bytes else bytes(masked)


_pack_short: Final = struct.Struct("!BB").pack
_pack_medium: Final = struct.Struct("!BBH").pack
_pack_long: Final = struct.Struct("!BBQ").pack


#: Frames with at least this many payload bytes leave
#: :func:`serialize_frame_parts` as a header and a payload apart, so that the
#: payload is not copied once more only to sit behind its header.
SEPARATE_PAYLOAD_FROM: Final = 256 * 1024


def serialize_frame(frame: Frame, *, mask: bool, key: bytes | None = None) -> bytes:
    """Return ``frame`` as wire bytes; clients pass ``mask=True``.

    RFC 6455 §5.3: a client MUST mask every frame; a server MUST NOT mask any.

    Args:
        frame: the frame.
        mask: whether to mask it (on a client).
        key: the 4-byte masking key when ``mask`` is true, drawn by the
            caller from a strong source of entropy; ``None``: ``os.urandom(4)``.
    """
    parts = serialize_frame_parts(frame, mask=mask, key=key)
    return parts[0] if len(parts) == 1 else b"".join(parts)


def serialize_frame_parts(
    frame: Frame, *, mask: bool, key: bytes | None = None
) -> tuple[bytes] | tuple[bytes, bytes | bytearray]:
    """Return ``frame`` as wire bytes in one piece, or a large one as (header, payload).

    The same bytes as :func:`serialize_frame`; a payload of
    :data:`SEPARATE_PAYLOAD_FROM` bytes or more comes apart from its header
    (unmasked: the frame's own ``data``, not copied; masked: one masked
    copy), for a writer that sends pieces (``os.writev``) or one after the
    other.
    """
    head = (
        (0x80 if frame.fin else 0)
        | (0x40 if frame.rsv1 else 0)
        | (0x20 if frame.rsv2 else 0)
        | (0x10 if frame.rsv3 else 0)
        | frame.opcode
    )
    data = frame.data
    length = len(data)
    mask_bit = 0x80 if mask else 0
    if length < 126:
        header = _pack_short(head, mask_bit | length)
    elif length < 65536:
        header = _pack_medium(head, mask_bit | 126, length)
    else:
        header = _pack_long(head, mask_bit | 127, length)
    if not mask:
        if length >= SEPARATE_PAYLOAD_FROM:
            return (header, data)
        return (header + data,)
    if key is None:
        key = os.urandom(4)
    if length < _TRANSLATE_MASK_FROM:
        return (b"".join((header, key, apply_mask(data, key))),)
    if length >= SEPARATE_PAYLOAD_FROM:
        return (header + key, _masked(data, key))
    # One buffer for the whole frame, masked in place: one copy of the
    # payload fewer than masking it apart and joining.
    out = bytearray(header)
    out += key
    start = len(out)
    out += data
    _mask_in_place(out, start, start + length, key)
    return (bytes(out),)


class FrameParser:
    """Turn a byte stream, split anywhere, into frames.

    Header checks happen as soon as the header is complete, before the payload
    is buffered: reserved opcodes, fragmented or oversized control frames, the
    masking direction, and the size limit given to :meth:`next_frame`.

    A large frame that is not whole yet is collected chunk by chunk, outside
    the buffer: each received chunk is unmasked while it is still in the CPU
    cache, and unmasked chunks are kept as received, so that the payload is
    copied once, when the frame is whole, instead of into the buffer and out.

    Args:
        require_mask: ``True`` on a server (clients MUST mask), ``False`` on a
            client (servers MUST NOT mask).
    """

    def __init__(self, *, require_mask: bool) -> None:
        self._require_mask = require_mask
        self._buffer = bytearray()
        self._pos = 0
        # The large frame being collected (see the class docstring): its first
        # header byte (-1: none), masking key, payload so far (unmasked), the
        # payload bytes still missing, and the received bytes it holds.
        self._large_head = -1
        self._large_key: bytes | None = None
        self._large_parts: list[bytes | bytearray] = []
        self._large_missing = 0
        self._large_received = 0
        self._large_collected = 0

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Add received bytes to the buffer."""
        missing = self._large_missing
        if missing:
            if len(data) <= missing:
                self._collect(data, owned=False)
                return
            view = memoryview(data)
            self._collect(view[:missing], owned=False)
            data = view[missing:]
        buf = self._buffer
        if self._pos:
            if self._pos == len(buf):
                # Everything before was consumed: start afresh rather than
                # shift, and let the old buffer's capacity go.
                self._buffer = bytearray(data)
                self._pos = 0
                return
            del buf[: self._pos]
            self._pos = 0
        buf += data

    @property
    def buffered(self) -> int:
        """How many received bytes are not yet part of a returned frame."""
        return len(self._buffer) - self._pos + self._large_received

    @property
    def missing(self) -> int:
        """Payload bytes still to come of a large frame being collected, else 0."""
        return self._large_missing

    @property
    def whole_frame_size(self) -> int:
        """The payload length of the next frame if all of it is received, else 0."""
        if self._large_head >= 0:
            return 0 if self._large_missing else self._large_collected
        buf = self._buffer
        pos = self._pos
        available = len(buf) - pos
        if available < 2:
            return 0
        second = buf[pos + 1]
        length = second & 0x7F
        header = 2
        if length == 126:
            if available < 4:
                return 0
            length = (buf[pos + 2] << 8) | buf[pos + 3]
            header = 4
        elif length == 127:
            if available < 10:
                return 0
            (length,) = struct.unpack_from("!Q", buf, pos + 2)
            header = 10
        if second & 0x80:
            header += 4
        return length if available >= header + length else 0

    def release(self) -> None:
        """Drop the buffer's memory if every byte in it was consumed (an idle connection)."""
        if self._pos and self._pos == len(self._buffer):
            self._buffer = bytearray()
            self._pos = 0

    def next_frame(
        self, max_size: int | None = None, *, rsv_max_size: int | None = None
    ) -> Frame | None:
        """Return the next whole frame, or ``None`` until more bytes arrive.

        Args:
            max_size: the largest payload allowed for this frame, or ``None``.
            rsv_max_size: the largest payload allowed instead when the frame
                has a reserved bit set (an extension may have made it larger
                than what it decodes to, as DEFLATE does to random data);
                ``None`` for ``max_size``.

        Raises:
            ProtocolError: the header breaks RFC 6455 (close code 1002).
            PayloadTooBig: the header announces more than its limit (1009).
        """
        if self._large_head >= 0:
            return None if self._large_missing else self._finish_large()
        buf = self._buffer
        pos = self._pos
        available = len(buf) - pos
        if available < 2:
            return None
        head, second = buf[pos], buf[pos + 1]
        opcode_value = head & 0x0F
        length = second & 0x7F
        masked = bool(second & 0x80)
        offset = pos + 2
        if length == 126:
            if available < 4:
                return None
            length = (buf[offset] << 8) | buf[offset + 1]
            offset += 2
        elif length == 127:
            if available < 10:
                return None
            (length,) = struct.unpack_from("!Q", buf, offset)
            offset += 8
            if length >> 63:
                raise ProtocolError("frame length has its most significant bit set")
        if rsv_max_size is not None and head & 0x70:
            max_size = rsv_max_size
        if (
            opcode_value > 0x2  # control frames and reserved opcodes: the full checks
            or masked != self._require_mask
            or (max_size is not None and length > max_size)
        ):
            self._check_header(head, opcode_value, masked, length, max_size)
        start = offset + 4 if masked else offset
        end = start + length
        if len(buf) < end:
            if length >= _COLLECT_FROM and len(buf) >= start:
                self._start_large(
                    head, start, length, bytes(buf[offset:start]) if masked else None
                )
            return None
        if masked:
            key = bytes(buf[offset:start])
            if length < _TRANSLATE_MASK_FROM:
                # apply_mask's integer path, inline: most frames are small.
                repeated = key * (length // 4 + 1)
                value = int.from_bytes(buf[start:end], "little") ^ int.from_bytes(
                    repeated[:length], "little"
                )
                data = value.to_bytes(length, "little")
            else:
                # Unmask a copy in place: two copies, not three.
                payload = buf[start:end]
                _mask_in_place(payload, 0, length, key)
                data = bytes(payload)
        else:
            # One copy through a memoryview; slicing the bytearray first would
            # copy twice (measured: 1 MiB in 34 us against 600 us).
            data = bytes(memoryview(buf)[start:end]) if length > 4096 else bytes(buf[start:end])
        self._pos = end
        return frame_unchecked(
            _OPCODES[opcode_value],
            data,
            bool(head & 0x80),
            bool(head & 0x40),
            bool(head & 0x20),
            bool(head & 0x10),
        )

    def _start_large(self, head: int, start: int, length: int, key: bytes | None) -> None:
        # Move a large frame's header and payload so far out of the buffer.
        buf = self._buffer
        self._large_head = head
        self._large_key = key
        self._large_parts = []
        self._large_missing = length
        self._large_received = start - self._pos
        self._large_collected = 0
        if len(buf) > start:
            self._collect(buf[start:], owned=True)
        buf.clear()
        self._pos = 0

    def _collect(self, piece: bytes | bytearray | memoryview, *, owned: bool) -> None:
        # Add the next piece of a large frame's payload, unmasked; ``owned``:
        # a bytearray nobody else holds, which may be kept and unmasked in place.
        key = self._large_key
        size = len(piece)
        if key is not None:
            phase = self._large_collected & 3
            if phase:
                key = key[phase:] + key[:phase]
        part: bytes | bytearray
        if owned and isinstance(piece, bytearray):
            if key is not None and size >= _TRANSLATE_MASK_FROM:
                _mask_in_place(piece, 0, size, key)
                part = piece
            else:
                part = piece if key is None else _masked(piece, key)
        elif key is not None:
            part = _masked(piece, key)
        else:
            part = piece if isinstance(piece, bytes) else bytes(piece)  # the caller may reuse it
        self._large_parts.append(part)
        self._large_collected += size
        self._large_received += size
        self._large_missing -= size

    def _finish_large(self) -> Frame:
        parts = self._large_parts
        data = parts[0] if len(parts) == 1 and type(parts[0]) is bytes else b"".join(parts)
        head = self._large_head
        self._large_head = -1
        self._large_key = None
        self._large_parts = []
        self._large_received = 0
        return frame_unchecked(
            _OPCODES[head & 0x0F],
            data,
            bool(head & 0x80),
            bool(head & 0x40),
            bool(head & 0x20),
            bool(head & 0x10),
        )

    def _check_header(
        self, head: int, opcode_value: int, masked: bool, length: int, max_size: int | None
    ) -> None:
        if opcode_value not in _KNOWN_OPCODES:
            # RFC 6455 §5.2: "If an unknown opcode is received, the receiving
            # endpoint MUST _Fail the WebSocket Connection_."
            raise ProtocolError(f"reserved opcode {opcode_value:#x}")
        if opcode_value >= 0x8:
            # RFC 6455 §5.5: "All control frames MUST have a payload length of
            # 125 bytes or less and MUST NOT be fragmented."
            if not head & 0x80:
                raise ProtocolError(f"fragmented control frame ({Opcode(opcode_value).name})")
            if length > MAX_CONTROL_PAYLOAD:
                raise ProtocolError(
                    f"control frame ({Opcode(opcode_value).name}) of {length} bytes"
                )
        if masked != self._require_mask:
            # RFC 6455 §5.1: "a client MUST mask all frames that it sends to the
            # server" and "A server MUST NOT mask any frames".
            raise ProtocolError(
                "unmasked frame from client" if self._require_mask else "masked frame from server"
            )
        if max_size is not None and length > max_size:
            raise PayloadTooBig(f"frame of {length} bytes exceeds the limit of {max_size} bytes")


_KNOWN_OPCODES: Final = frozenset(int(op) for op in Opcode)
_OPCODES: Final = {int(op): op for op in Opcode}
