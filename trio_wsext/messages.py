"""Frames to messages and back: continuation rules, incremental UTF-8, the size budget.

Strategy: the receive side and the send side of a connection each own one
object here and share nothing, so that the two may run in different threads.

- :class:`MessageAssembler` turns the decoded data frames of the peer into
  whole messages. It enforces the continuation rules of :rfc:`6455#section-5.4`
  on the frame header, *before* the extension chain runs, and it validates
  text as UTF-8 frame by frame, so that an invalid sequence fails the
  connection as soon as the frame carrying it arrives. It also keeps the
  message-size budget: :attr:`MessageAssembler.remaining` is what the frame
  parser and the extension chain may still produce for the current message.
  Asked to (:meth:`MessageAssembler.stream`), it hands the next message over
  frame by frame instead, for a reader that cannot hold it whole.
- :class:`MessageFramer` turns outgoing messages and fragments into data
  frames: ``str`` becomes TEXT, bytes-like becomes BINARY, and the second and
  later fragments of a message become CONT frames.

The common case, one unfragmented frame per message, takes a short path in
both: one ``bytes.decode`` for text, no decoder object and no list.
"""

from __future__ import annotations

import codecs
import io
from typing import Final

from .exceptions import PayloadTooBig, ProtocolError
from .frames import Frame, Opcode, frame_unchecked

__all__ = ["MessageAssembler", "MessageFramer", "check_reserved_bits"]

_CONT: Final = Opcode.CONT
_TEXT: Final = Opcode.TEXT
_BINARY: Final = Opcode.BINARY

#: Close code for data that does not fit its message type (RFC 6455 §7.4.1).
INVALID_DATA: Final = 1007

_Utf8Decoder: Final = codecs.getincrementaldecoder("utf-8")


def _invalid_utf8(exc: UnicodeDecodeError) -> ProtocolError:
    # RFC 6455 §8.1: "When an endpoint is to interpret a byte stream as UTF-8
    # but finds that the byte stream is not, in fact, a valid UTF-8 stream,
    # that endpoint MUST _Fail the WebSocket Connection_." 1007 is the code
    # §7.4.1 gives for "non-UTF-8 [RFC3629] data within a text message".
    error = ProtocolError(f"invalid UTF-8 in text message: {exc.reason}", code=INVALID_DATA)
    error.__cause__ = exc
    return error


def check_reserved_bits(frame: Frame, declared: frozenset[int]) -> None:
    """Fail on any RSV bit that is still set after the extensions decoded ``frame``.

    RFC 6455 §5.2: "MUST be 0 unless an extension is negotiated that defines
    meanings for non-zero values. If a nonzero value is received and none of
    the negotiated extensions defines the meaning of such a nonzero value, the
    receiving endpoint MUST *Fail the WebSocket Connection*."

    Args:
        frame: the frame as the extension chain returned it.
        declared: the bits (1, 2, 3) that the negotiated extensions declare in
            :attr:`~trio_wsext.extensions.base.Extension.rsv_bits`; they only
            change the wording of the error.

    Raises:
        ProtocolError: a bit is set (close code 1002).
    """
    bits = [n for n, bit in ((1, frame.rsv1), (2, frame.rsv2), (3, frame.rsv3)) if bit]
    if not bits:
        return
    names = ", ".join(f"RSV{n}" for n in bits)
    noun = "reserved bits" if len(bits) > 1 else "reserved bit"
    if declared.isdisjoint(bits):
        raise ProtocolError(f"{noun} {names} set without a negotiated extension")
    # An extension that uses the bit saw the frame and left the bit set: it
    # is not valid on this frame (RSV1 on a CONT or control frame, for
    # permessage-deflate).
    raise ProtocolError(f"{noun} {names} set on a {frame.opcode.name} frame")


class MessageAssembler:
    """Assemble the peer's data frames into messages (the receive side).

    Call :meth:`check_frame` on each data frame as it comes off the wire, run
    the extension chain with ``max_size=`` :attr:`remaining`, then pass the
    decoded frame to :meth:`receive_frame`.

    Args:
        max_size: the largest message, in decoded payload bytes (UTF-8 bytes
            for text), or ``None`` for no limit.
    """

    __slots__ = (
        "_decoder",
        "_max_size",
        "_opcode",
        "_parts",
        "_stream_max_size",
        "_text_parts",
        "size",
        "streaming",
    )

    def __init__(self, max_size: int | None) -> None:
        self._max_size = max_size
        #: The opcode of the fragmented message in progress, or ``None``.
        self._opcode: Opcode | None = None
        #: Decoded bytes of the message in progress so far (0 between messages).
        self.size = 0
        # A fragmented message accumulates in one growing buffer, never in a
        # list of parts: a peer sending millions of empty or 1-byte frames
        # would otherwise hold a Python object per frame while the size
        # budget barely moves.
        self._parts = bytearray()
        self._text_parts: io.StringIO | None = None
        #: One decoder for the connection, reset at the start of each fragmented text message.
        self._decoder = _Utf8Decoder()
        #: Whether the message in progress (or the next one) goes out frame by
        #: frame, through :meth:`receive_fragment`.
        self.streaming = False
        self._stream_max_size: int | None = None

    @property
    def in_progress(self) -> bool:
        """Whether a fragmented message has started and not yet ended."""
        return self._opcode is not None

    @property
    def remaining(self) -> int | None:
        """What the next frame of the message in progress (or the next one) may add, or ``None``.

        While streaming: what is left of the stream's own limit, and never
        more than ``max_size`` in one frame (a frame is held whole).
        """
        if self.streaming:
            stream_max = self._stream_max_size
            left = None if stream_max is None else stream_max - self.size
            if self._max_size is None:
                return left
            return self._max_size if left is None else min(left, self._max_size)
        if self._max_size is None:
            return None
        return self._max_size - self.size

    @property
    def stream_max_size(self) -> int | None:
        """The limit of the message being streamed (see :meth:`stream`)."""
        return self._stream_max_size

    def stream(self, max_size: int | None) -> str | bytes | None:
        """Hand the message in progress, or the next one, over frame by frame.

        From now until that message's last frame, :meth:`receive_fragment`
        takes the data frames. The limit of the message becomes ``max_size``
        (``None``: none), and each frame stays within the assembler's own.

        Returns:
            What was assembled of the message in progress, to deliver first,
            or ``None`` when no message is in progress.

        Raises:
            PayloadTooBig: what was assembled is already over ``max_size``.
        """
        self.streaming = True
        self._stream_max_size = max_size
        if self._opcode is None:
            return None
        if max_size is not None and self.size > max_size:
            raise PayloadTooBig(f"message exceeds the size limit of {max_size} bytes")
        if self._opcode is _TEXT:
            partial: str | bytes = (
                self._text_parts.getvalue() if self._text_parts is not None else ""
            )
            self._text_parts = None
        else:
            partial = bytes(self._parts)
            self._parts = bytearray()
        return partial

    def receive_fragment(self, frame: Frame) -> str | bytes:
        """Take a decoded data frame while streaming; return its data to deliver.

        Text is decoded incrementally: a character cut between frames comes
        with the frame that completes it. After the last frame (``fin``),
        messages are assembled whole again.

        Raises:
            PayloadTooBig: the message grows past the stream's limit (1009).
            ProtocolError: text that is not UTF-8 (1007).
        """
        data = frame.data
        size = self.size + len(data)
        stream_max = self._stream_max_size
        if stream_max is not None and size > stream_max:
            raise PayloadTooBig(f"message exceeds the size limit of {stream_max} bytes")
        opcode = self._opcode
        if opcode is None:
            opcode = self._opcode = frame.opcode
            if opcode is _TEXT:
                self._decoder.reset()
        self.size = size
        fragment: str | bytes
        if opcode is _TEXT:
            decoder = self._decoder
            try:
                fragment = decoder.decode(data, frame.fin)
            except UnicodeDecodeError as exc:
                raise _invalid_utf8(exc) from exc
            if not frame.fin:
                self._check_pending(decoder)
        else:
            fragment = bytes(data)
        if frame.fin:
            self._opcode = None
            self.size = 0
            self.streaming = False
        return fragment

    def check_frame(self, opcode: Opcode) -> None:
        """Check a data frame's opcode against the message in progress.

        RFC 6455 §5.4: "The fragments of one message MUST NOT be interleaved
        between the fragments of another message unless an extension has been
        negotiated that can interpret the interleaving." A message starts with
        TEXT or BINARY and goes on with CONT frames; control frames may come
        in between (they never reach this method).

        Raises:
            ProtocolError: a CONT frame without a message in progress, or a
                TEXT or BINARY frame while one is in progress (1002).
        """
        if opcode is _CONT:
            if self._opcode is None:
                raise ProtocolError("continuation frame without a message in progress")
        elif self._opcode is not None:
            raise ProtocolError(f"{opcode.name} frame while a fragmented message is in progress")

    def receive_frame(self, frame: Frame) -> str | bytes | None:
        """Add a decoded data frame; return the message it completes, if any.

        Args:
            frame: a data frame that passed :meth:`check_frame` and the
                extension chain.

        Returns:
            The whole message (``str`` for text, ``bytes`` for binary) when
            ``frame.fin`` is set, else ``None``.

        Raises:
            PayloadTooBig: the message grows past ``max_size`` (1009).
            ProtocolError: text that is not UTF-8 (1007), detected in the
                first frame that makes the sequence invalid.
        """
        data = frame.data
        size = self.size + len(data)
        if self._max_size is not None and size > self._max_size:
            raise PayloadTooBig(f"message exceeds the size limit of {self._max_size} bytes")
        opcode = self._opcode
        if opcode is None:
            # The first frame of a message: the short path when it is also the last.
            if frame.fin:
                if frame.opcode is _TEXT:
                    try:
                        return data.decode("utf-8")
                    except UnicodeDecodeError as exc:
                        raise _invalid_utf8(exc) from exc
                return data
            opcode = self._opcode = frame.opcode
            if opcode is _TEXT:
                self._decoder.reset()
        self.size = size
        if opcode is _TEXT:
            decoder = self._decoder
            try:
                text = decoder.decode(data, frame.fin)
            except UnicodeDecodeError as exc:
                raise _invalid_utf8(exc) from exc
            if text:
                if self._text_parts is None:
                    self._text_parts = io.StringIO()
                self._text_parts.write(text)
            if not frame.fin:
                self._check_pending(decoder)
        else:
            self._parts += data
        if not frame.fin:
            return None
        message: str | bytes
        if opcode is _TEXT:
            message = self._text_parts.getvalue() if self._text_parts is not None else ""
            self._text_parts = None
        else:
            message = bytes(self._parts)
            self._parts = bytearray()
        self._opcode = None
        self.size = 0
        return message

    @staticmethod
    def _check_pending(decoder: codecs.IncrementalDecoder) -> None:
        # CPython's decoder rejects every invalid prefix at once except one:
        # ED followed by A0-BF, the start of a UTF-16 surrogate (U+D800-DFFF),
        # which it holds until the third byte. Checked by brute force over all
        # 1-3 byte prefixes (tests/test_messages.py).
        pending = decoder.getstate()[0]
        if len(pending) >= 2 and pending[0] == 0xED and pending[1] >= 0xA0:
            raise ProtocolError(
                "invalid UTF-8 in text message: invalid continuation byte", code=INVALID_DATA
            )


class MessageFramer:
    """Turn outgoing messages and fragments into data frames (the send side).

    It only tracks whether a fragmented message is in progress, and with which
    opcode and ``compress`` wish; extensions and the wire format are the
    caller's business.
    """

    __slots__ = ("_compress", "_opcode")

    def __init__(self) -> None:
        #: The opcode of the fragmented message being sent, or ``None``.
        self._opcode: Opcode | None = None
        self._compress: bool | None = None

    @property
    def in_progress(self) -> bool:
        """Whether :meth:`fragment` started a message that has not ended."""
        return self._opcode is not None

    def message(self, data: str | bytes | bytearray | memoryview) -> Frame:
        """Return the single frame of a whole message.

        Raises:
            ProtocolError: a fragmented message is in progress.
            TypeError: ``data`` is neither ``str`` nor bytes-like.
        """
        if self._opcode is not None:
            # RFC 6455 §5.4: fragments of two messages MUST NOT be interleaved.
            raise ProtocolError("cannot send a message while a fragmented message is in progress")
        if type(data) is str:
            return frame_unchecked(_TEXT, data.encode("utf-8"))
        if type(data) is bytes:
            return frame_unchecked(_BINARY, data)
        if isinstance(data, bytes | bytearray | memoryview):
            return Frame(_BINARY, data)
        raise TypeError(
            f"message must be str or bytes-like (bytes, bytearray, memoryview), "
            f"not {type(data).__name__}"
        )

    def fragment(
        self,
        data: str | bytes | bytearray | memoryview,
        *,
        text: bool,
        fin: bool,
        compress: bool | None,
    ) -> tuple[Frame, bool | None]:
        """Return the next frame of a fragmented message and its ``compress`` wish.

        The first fragment fixes the message type (``text``) and the
        ``compress`` wish, which every later frame of the message carries too.

        Args:
            data: ``str`` (only with ``text=True``) or bytes-like. Bytes of a
                text message go out as they are: the whole message must be
                UTF-8, not each fragment.
            text: whether the message is text; must be the same for each fragment.
            fin: whether this is the last fragment.
            compress: the per-message wish for the extensions; read on the
                first fragment only.

        Raises:
            TypeError: ``data`` is of the wrong type.
            ValueError: ``text`` differs from the message in progress.
        """
        if type(data) is str:
            if not text:
                raise TypeError("a str fragment needs text=True")
            payload: bytes | bytearray | memoryview = data.encode("utf-8")
        elif isinstance(data, bytes | bytearray | memoryview):
            payload = data
        else:
            raise TypeError(
                f"fragment must be str or bytes-like (bytes, bytearray, memoryview), "
                f"not {type(data).__name__}"
            )
        opcode = self._opcode
        if opcode is None:
            self._compress = compress
            frame_opcode = _TEXT if text else _BINARY
            if not fin:
                self._opcode = frame_opcode
        else:
            if text != (opcode is _TEXT):
                raise ValueError(
                    f"text={text} but the message in progress is {opcode.name.lower()}"
                )
            frame_opcode = _CONT
            compress = self._compress
            if fin:
                self._opcode = None
        return Frame(frame_opcode, payload, fin), compress
