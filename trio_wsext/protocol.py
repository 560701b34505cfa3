"""The sans-I/O WebSocket protocol (:rfc:`6455`): bytes in, events out; calls in, bytes out.

Strategy: :class:`Protocol` is two independent halves that share nothing but
the close flags, so that the connection may run the receive side (a big
compressed frame, say) in one worker thread while the writer runs the send
side in another.

- The receive side (:meth:`~Protocol.receive_data`,
  :meth:`~Protocol.events_received`) runs every frame through the checks of
  RFC 6455 in the order the wire allows them: the header first (in
  :class:`~trio_wsext.frames.FrameParser`: reserved opcodes, control-frame
  rules, masking direction, the size budget, before the payload is buffered),
  then the continuation rules, then the extension chain (in reverse order,
  bounded by what is left of the budget), then the reserved bits that no
  extension consumed, then the payload (UTF-8, close payload). A violation
  *fails the connection*: the last event is :class:`ConnectionFailed`, which
  carries the close code and reason that the connection sends back; the
  receive side then ignores every later byte, as RFC 6455 §7.1.7 requires. The
  receive side never queues bytes to send: answering pings, echoing a close
  and sending the failure's close frame are the connection's decisions.
- The send side (``send_*``, :meth:`~Protocol.data_to_send`) frames messages,
  runs the extension chain in order on every frame (control frames too),
  masks on a client, and refuses everything once a close frame went out.

The core has no clock and no I/O: timeouts, keepalive and the TCP close belong
to the connection.

State (both halves feed it; the connection reads it)::

    OPEN ──close sent, close received, or failure──▶ CLOSING
    CLOSING ──the other close frame, or a failure and our close sent──▶ CLOSED
    any ──EOF──▶ CLOSED
"""

from __future__ import annotations

import enum
import os
from collections.abc import Sequence
from typing import Final, TypeAlias

import attrs

from .exceptions import PayloadTooBig, ProtocolError
from .extensions.base import Extension, ExtensionChain
from .frames import (
    MAX_CONTROL_PAYLOAD,
    Close,
    CloseCode,
    Frame,
    FrameParser,
    Opcode,
    serialize_frame_parts,
)
from .messages import MessageAssembler, MessageFramer, check_reserved_bits

__all__ = [
    "CloseReceived",
    "ConnectionFailed",
    "Event",
    "Fragment",
    "Message",
    "Ping",
    "Pong",
    "Protocol",
    "Side",
    "State",
]

#: Default ``max_message_size``: 1 MiB, as in trio-websocket and websockets.
DEFAULT_MAX_MESSAGE_SIZE: Final = 2**20

#: A close reason must fit a control frame: 125 bytes minus the 2-byte code
#: (RFC 6455 §5.5).
MAX_CLOSE_REASON: Final = MAX_CONTROL_PAYLOAD - 2

#: Masking keys are drawn from ``os.urandom`` this many bytes (64 keys) at a
#: time: one system call per 64 frames instead of one per frame (measured
#: ~350 ns for ``os.urandom(4)``). RFC 6455 §5.3: "the masking key MUST be
#: derived from a strong source of entropy"; each key is still 4 fresh bytes
#: of the operating system's CSPRNG, none used twice.
_KEY_POOL: Final = 256

#: Slack on the *wire* size of a frame when extensions are active, over what is
#: left of the decoded budget, so that incompressible data that fits the budget
#: is not refused from its header. The bound is zlib's conservative
#: ``deflateBound`` for any settings (n/8 + n/64 + a few bytes, about 14 %):
#: the tight bound (n/4096 + n/16384 + 13) holds only for windowBits 15 and
#: memLevel 8, and a peer with a small memLevel emits many small stored blocks
#: of 5 bytes' overhead each (memLevel 5: 0.25 %, measured against Node's ws
#: and websockets). The exact limit applies to the decoded size.
_WIRE_SLACK: Final = 64

#: The reserved bits declared by no extension (one set shared by every connection).
_NO_BITS: Final[frozenset[int]] = frozenset()

_TEXT: Final = Opcode.TEXT
_BINARY: Final = Opcode.BINARY
_CONT: Final = Opcode.CONT
_PING: Final = Opcode.PING
_PONG: Final = Opcode.PONG
_CLOSE: Final = Opcode.CLOSE


class Side(enum.Enum):
    """Which end of the connection a :class:`Protocol` plays."""

    CLIENT = "client"
    SERVER = "server"


class State(enum.Enum):
    """Where a connection is in its life (:rfc:`6455#section-7`)."""

    #: Messages flow both ways.
    OPEN = "open"
    #: A close frame was sent or received (or the peer broke the protocol),
    #: and the closing handshake is not over.
    CLOSING = "closing"
    #: Both close frames crossed, or the connection failed and our close
    #: frame went out, or the peer closed the TCP connection: nothing more
    #: will be exchanged; the TCP connection can be closed.
    CLOSED = "closed"


def _elide(data: str | bytes) -> str:
    if len(data) <= 32:
        return repr(data)
    return f"{data[:24]!r}...<{len(data)} {'chars' if isinstance(data, str) else 'bytes'}>"


@attrs.frozen
class Message:
    """A whole message from the peer.

    Attributes:
        data: ``str`` for a text message, ``bytes`` for a binary one.
    """

    data: str | bytes = attrs.field(repr=_elide)


@attrs.frozen
class Fragment:
    """A piece of a message being streamed (see :meth:`Protocol.stream_next_message`).

    Attributes:
        data: ``str`` for a text message (the characters the frame completed),
            ``bytes`` for a binary one.
        fin: whether this piece ends the message.
    """

    data: str | bytes = attrs.field(repr=_elide)
    fin: bool


@attrs.frozen
class Ping:
    """A ping from the peer; the connection answers it with a pong.

    Attributes:
        payload: the ping's application data (at most 125 bytes).
    """

    payload: bytes


@attrs.frozen
class Pong:
    """A pong from the peer.

    Attributes:
        payload: the pong's application data (at most 125 bytes).
    """

    payload: bytes


@attrs.frozen
class CloseReceived:
    """The peer's close frame.

    If no close frame was sent yet, the connection answers with
    ``send_close(code)`` (RFC 6455 §5.5.1: "If an endpoint receives a Close
    frame and did not previously send a Close frame, the endpoint MUST send a
    Close frame in response"). Later bytes from the peer are ignored.

    Attributes:
        code: the close code; 1005 (``NO_STATUS_RCVD``) for an empty payload.
        reason: the reason text, possibly empty.
    """

    code: int
    reason: str


@attrs.frozen
class ConnectionFailed:
    """The peer broke the protocol; this is the last event.

    The connection sends ``send_close(code, reason)`` (unless a close frame
    already went out) and closes the TCP connection. Later bytes from the peer
    are ignored.

    Attributes:
        code: the close code to send: 1002 (protocol error), 1007 (invalid
            UTF-8), 1009 (message too big) or 1011 (an extension crashed).
        reason: a one-line explanation, at most 123 bytes in UTF-8.
        exception: the error; its ``__cause__`` is the underlying exception,
            if any (a ``UnicodeDecodeError``, an extension's error).
    """

    code: int
    reason: str
    exception: ProtocolError


_set_message_data: Final = Message.__dict__["data"].__set__


def _message(data: str | bytes) -> Message:
    # Message(data) without attrs' frozen __init__ (a slot setter, ~3x faster);
    # one per received message.
    message: Message = object.__new__(Message)
    _set_message_data(message, data)
    return message


#: What :meth:`Protocol.events_received` returns.
Event: TypeAlias = Message | Fragment | Ping | Pong | CloseReceived | ConnectionFailed


def _truncate_reason(reason: str) -> str:
    encoded = reason.encode("utf-8")
    if len(encoded) <= MAX_CLOSE_REASON:
        return reason
    return encoded[:MAX_CLOSE_REASON].decode("utf-8", "ignore")


def _control_payload(payload: str | bytes | bytearray | memoryview, kind: str) -> bytes:
    if isinstance(payload, str):
        data = payload.encode("utf-8")
    elif isinstance(payload, bytes | bytearray | memoryview):
        data = bytes(payload)
    else:
        raise TypeError(f"{kind} payload must be bytes-like or str, not {type(payload).__name__}")
    if len(data) > MAX_CONTROL_PAYLOAD:
        # RFC 6455 §5.5: "All control frames MUST have a payload length of 125 bytes or less".
        raise ValueError(f"{kind} payload must be at most 125 bytes, not {len(data)}")
    return data


class Protocol:
    """One end of a WebSocket connection, without I/O (:rfc:`6455`).

    Feed received bytes to :meth:`receive_data` and collect
    :meth:`events_received`; call the ``send_*`` methods and write out
    :meth:`data_to_send`. The receive side and the send side may be driven
    from two different threads; nothing else is thread-safe.

    Args:
        side: :attr:`Side.CLIENT` (masks its frames, refuses masked ones) or
            :attr:`Side.SERVER` (the reverse).
        extensions: the negotiated extensions, in negotiation order: encode
            runs in this order on every outgoing frame, decode in reverse on
            every incoming frame.
        max_message_size: the largest incoming message, in payload bytes
            after the extensions decoded it (UTF-8 bytes for text), or
            ``None`` for no limit. Larger messages fail the connection with
            1009, from the frame header when it announces too much, before
            the payload is buffered.

    Raises:
        TypeError: ``side`` is not a :class:`Side`.
        ValueError: ``max_message_size`` is not a positive ``int`` or ``None``.
    """

    def __init__(
        self,
        side: Side,
        extensions: Sequence[Extension] = (),
        *,
        max_message_size: int | None = DEFAULT_MAX_MESSAGE_SIZE,
    ) -> None:
        if not isinstance(side, Side):
            raise TypeError(f"side must be Side.CLIENT or Side.SERVER, not {side!r}")
        if max_message_size is not None and (
            not isinstance(max_message_size, int)
            or isinstance(max_message_size, bool)
            or max_message_size <= 0
        ):
            raise ValueError(
                f"max_message_size must be a positive int or None, not {max_message_size!r}"
            )
        #: Which end this is.
        self.side: Final = side
        #: The largest incoming message accepted, or ``None``.
        self.max_message_size: Final = max_message_size
        #: The negotiated extensions, in chain (negotiation) order.
        self.extensions: Final[list[Extension]] = list(extensions)
        chain = ExtensionChain(self.extensions) if self.extensions else None
        self._chain = chain
        self._declared_bits = (
            frozenset[int]().union(*(ext.rsv_bits for ext in self.extensions))
            if self.extensions
            else _NO_BITS
        )
        # An extension that declares no reserved bits may transform any frame.
        self._undeclared_extension = any(not ext.rsv_bits for ext in self.extensions)

        # Receive side. RFC 6455 §5.1: "The server MUST close the connection
        # upon receiving a frame that is not masked. [...] A client MUST close
        # a connection if it detects a masked frame."
        self._parser = FrameParser(require_mask=side is Side.SERVER)
        self._assembler = MessageAssembler(max_message_size)
        self._whole_limits = self._frame_limits(self._assembler.remaining, marked=False)
        # Whether the message in progress began with a reserved bit set: its
        # continuation frames carry none (RFC 7692 §6.1) but are as expanded.
        self._marked_message = False
        self._events: list[Event] = []
        self._receiving = True
        self._failure: ConnectionFailed | None = None
        #: The peer's close frame, once received.
        self.close_received: Close | None = None
        #: Whether the peer closed the TCP connection (``receive_data(b"")``).
        #: EOF is not a protocol violation and emits no event; before a close
        #: frame it means an abnormal closure (1006), which the connection reports.
        self.eof_received = False
        #: Whole messages received.
        self.messages_received = 0
        #: Payload bytes of data frames received, as decoded by the extensions.
        self.bytes_received = 0

        # Send side. RFC 6455 §5.3: "The masking key is a 32-bit value chosen
        # at random by the client"; a server never masks.
        self._mask = side is Side.CLIENT
        self._keys = b""
        self._key_pos = 0
        self._framer = MessageFramer()
        self._out: list[bytes | bytearray] = []
        #: Our close frame, once sent.
        self.close_sent: Close | None = None
        #: Whole messages sent (a fragmented message counts when its last frame goes out).
        self.messages_sent = 0
        #: Payload bytes of data frames sent, before the extensions encoded them.
        self.bytes_sent = 0

    def __repr__(self) -> str:
        return f"<Protocol {self.side.name} {self.state.name} extensions={self.extensions!r}>"

    # -- state ---------------------------------------------------------------

    @property
    def state(self) -> State:
        """The connection's :class:`State`, from both halves' close flags."""
        if self.eof_received:
            return State.CLOSED
        ended = self.close_received is not None or self._failure is not None
        if self.close_sent is not None:
            return State.CLOSED if ended else State.CLOSING
        return State.CLOSING if ended else State.OPEN

    @property
    def failure(self) -> ConnectionFailed | None:
        """The :class:`ConnectionFailed` event, once the peer broke the protocol."""
        return self._failure

    # -- receive side ----------------------------------------------------------

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Add bytes received from the peer; ``b""`` means EOF.

        Nothing is parsed here: :meth:`next_event` parses frames one event at
        a time, so that a caller applying backpressure keeps what it has not
        taken yet as received (compressed) bytes, not as decoded messages.
        After a close frame or a failure, later bytes are ignored.

        Raises:
            ProtocolError: data after EOF (a bug of the caller).
        """
        if not data:
            self.eof_received = True
            return
        if self.eof_received:
            raise ProtocolError("data received after EOF")
        if not self._receiving:
            # After a close frame there is nothing to read (RFC 6455 §5.5.1:
            # "the endpoint MUST NOT send any more data frames"); after a
            # failure, RFC 6455 §7.1.7: "the endpoint MUST NOT continue to
            # attempt to process data (including a responding Close frame)
            # from the remote endpoint".
            return
        self._parser.feed(data)

    def next_event(self) -> Event | None:
        """Parse received bytes up to the next event and return it; ``None`` until more arrive.

        Every frame is checked and decoded (decompressed) only here, one
        event's worth at a time. After :class:`CloseReceived` or
        :class:`ConnectionFailed`, it returns ``None`` for good.
        """
        events = self._events
        if events:
            return events.pop(0)
        parser = self._parser
        assembler = self._assembler
        try:
            while self._receiving:
                try:
                    marked = self._marked_message
                    limit, rsv_limit = (
                        self._frame_limits(assembler.remaining, marked=marked)
                        if assembler.size or marked or assembler.streaming
                        else self._whole_limits
                    )
                    frame = parser.next_frame(limit, rsv_max_size=rsv_limit)
                except PayloadTooBig as exc:
                    raise self._too_big() from exc
                if frame is None:
                    parser.release()  # an idle connection keeps no receive buffer
                    return None
                self._receive_frame(frame)
                if events:
                    return events.pop(0)
        except ProtocolError as exc:
            self._fail(exc)
            return events.pop(0)
        return None

    def events_received(self) -> list[Event]:
        """Parse everything received so far; return its events (in order), and forget them."""
        events = []
        while (event := self.next_event()) is not None:
            events.append(event)
        return events

    @property
    def receiving(self) -> bool:
        """Whether later bytes will still be parsed (no close frame, no failure yet)."""
        return self._receiving

    @property
    def buffered(self) -> int:
        """Received bytes not yet parsed into events (0 once receiving ended)."""
        return self._parser.buffered if self._receiving else 0

    @property
    def frame_bytes_missing(self) -> int:
        """Bytes still to come of a large frame being received, else 0.

        The connection may read that much at once: the frame is bounded by
        the size limit, and reading it in larger pieces costs fewer wake-ups.
        """
        return self._parser.missing if self._receiving else 0

    @property
    def next_frame_size(self) -> int:
        """The payload size of the next frame if it is whole in the buffer, else 0.

        The connection parses a large whole frame (a long decompression) in a
        worker thread; this says when one is ready, without parsing it.
        """
        return self._parser.whole_frame_size if self._receiving else 0

    def _frame_limits(
        self, remaining: int | None, *, marked: bool
    ) -> tuple[int | None, int | None]:
        # The largest payload the next frame's header may announce, when the
        # message in progress may still grow by ``remaining`` bytes: that,
        # and never less than a control frame may carry. Second, the same for
        # a frame with a reserved bit set, which an extension may have made
        # larger than what it decodes to: plus DEFLATE's worst-case expansion.
        # A frame without one gets the slack too if the message it continues
        # was ``marked`` so, or if an extension declares no bits (it may
        # transform any frame), not otherwise: a header that announces more
        # than the limit then fails at once, as it does with no extension,
        # instead of after its whole payload.
        if remaining is None:
            return None, None
        exact = remaining if remaining > MAX_CONTROL_PAYLOAD else MAX_CONTROL_PAYLOAD
        if self._chain is None:
            return exact, None
        slack = remaining + (remaining >> 3) + (remaining >> 6) + _WIRE_SLACK
        widened = slack if slack > MAX_CONTROL_PAYLOAD else MAX_CONTROL_PAYLOAD
        if marked or self._undeclared_extension:
            return widened, None
        return exact, widened

    def _too_big(self) -> PayloadTooBig:
        # One reason for every way a message can be too big (header, decoded
        # size, an extension's bounded decode); the details stay in __cause__.
        if self._assembler.streaming:
            return PayloadTooBig(
                f"streamed message exceeds its size limit ({self._assembler.stream_max_size}"
                f" bytes), or one of its frames exceeds {self.max_message_size} bytes"
            )
        return PayloadTooBig(f"message exceeds the size limit of {self.max_message_size} bytes")

    def _decode(self, frame: Frame, max_size: int | None) -> Frame:
        chain = self._chain
        if chain is None:
            return frame
        try:
            return chain.decode(frame, max_size=max_size)
        except PayloadTooBig as exc:
            raise self._too_big() from exc
        except ProtocolError:
            raise
        except Exception as exc:
            # A bug or an unexpected condition in an extension is not the
            # peer's protocol error: 1011, "encountered an unexpected
            # condition that prevented it from fulfilling the request".
            raise ProtocolError(
                f"extension failed to decode a {frame.opcode.name} frame: {type(exc).__name__}",
                code=CloseCode.INTERNAL_ERROR,
            ) from exc

    def _receive_frame(self, frame: Frame) -> None:
        opcode = frame.opcode
        if opcode is _TEXT or opcode is _BINARY or opcode is _CONT:
            assembler = self._assembler
            assembler.check_frame(opcode)
            if opcode is not _CONT:
                self._marked_message = frame.rsv1 or frame.rsv2 or frame.rsv3
            if frame.fin:
                self._marked_message = False
            if self._chain is not None:
                frame = self._decode(frame, assembler.remaining)
            if frame.rsv1 or frame.rsv2 or frame.rsv3:
                check_reserved_bits(frame, self._declared_bits)
            if assembler.streaming:
                self._receive_fragment(frame)
                return
            try:
                message = assembler.receive_frame(frame)
            except PayloadTooBig as exc:
                raise self._too_big() from exc
            self.bytes_received += len(frame.data)
            if message is not None:
                self.messages_received += 1
                self._events.append(_message(message))
            return
        # Control frames: the parser checked "MUST have a payload length of
        # 125 bytes or less and MUST NOT be fragmented" (RFC 6455 §5.5).
        if self._chain is not None:
            frame = self._decode(frame, MAX_CONTROL_PAYLOAD)
        if frame.rsv1 or frame.rsv2 or frame.rsv3:
            check_reserved_bits(frame, self._declared_bits)
        if opcode is _PING:
            self._events.append(Ping(frame.data))
        elif opcode is _PONG:
            self._events.append(Pong(frame.data))
        else:
            # RFC 6455 §5.5.1: a 1-byte payload, a code that may not be sent
            # and a reason that is not UTF-8 all fail (in Close.parse).
            close = Close.parse(frame.data)
            self.close_received = close
            self._receiving = False
            self._events.append(CloseReceived(close.code, close.reason))

    def _receive_fragment(self, frame: Frame) -> None:
        data = self._assembler.receive_fragment(frame)  # PayloadTooBig names the stream's limit
        self.bytes_received += len(frame.data)
        if frame.fin:
            self.messages_received += 1
        self._events.append(Fragment(data, frame.fin))

    def stream_next_message(self, max_size: int | None) -> None:
        """Deliver the message in progress, or the next one, as :class:`Fragment` events.

        For a reader that cannot hold a message whole: each data frame, once
        decoded, becomes one :class:`Fragment` (what was assembled of a message
        in progress comes first, as one), until the one with ``fin``; then
        messages are whole again. ``max_size`` replaces ``max_message_size``
        as the limit of that message (``None``: no limit); each frame is still
        held whole, so no frame may be larger than ``max_message_size``.
        Exceeding either fails the connection with 1009, as always.
        """
        try:
            partial = self._assembler.stream(max_size)
        except PayloadTooBig as exc:
            if self._receiving:
                self._fail(exc)
            return
        if partial is not None:
            self._events.append(Fragment(partial, False))

    def _fail(self, exc: ProtocolError) -> None:
        self._receiving = False
        self._failure = ConnectionFailed(exc.code, _truncate_reason(str(exc)), exc)
        self._events.append(self._failure)

    # -- send side -------------------------------------------------------------

    def send_message(
        self, data: str | bytes | bytearray | memoryview, *, compress: bool | None = None
    ) -> None:
        """Queue one whole message: ``str`` as a TEXT frame, bytes-like as BINARY.

        Args:
            data: the message.
            compress: the per-message wish passed to the extensions
                (``False``: send this message uncompressed; ``None``: their settings).

        Raises:
            ProtocolError: a close frame was sent, or a fragmented message is
                in progress.
            TypeError: ``data`` is neither ``str`` nor bytes-like.
        """
        if self.close_sent is not None:
            raise ProtocolError("cannot send a message after sending a close frame")
        frame = self._framer.message(data)
        self._send_frame(frame, compress)
        self.messages_sent += 1
        self.bytes_sent += len(frame.data)

    def send_prepared_message(self, parts: Sequence[bytes], payload_size: int) -> None:
        """Queue one whole message framed and encoded elsewhere, for a broadcast.

        :func:`trio_wsext.broadcast` encodes a message once for every
        server connection whose extensions share a
        :meth:`~trio_wsext.extensions.base.Extension.broadcast_key`, and hands
        each the same bytes: they must be unmasked frames (a server's) made by
        an extension chain that encodes as this connection's would. The
        protocol counts the message as if :meth:`send_message` had framed it.

        Args:
            parts: the wire bytes of the message's frames.
            payload_size: the message's payload bytes before encoding.

        Raises:
            ProtocolError: a close frame was sent, a fragmented message is in
                progress, or this is a client (its frames must be masked).
        """
        if self.close_sent is not None:
            raise ProtocolError("cannot send a message after sending a close frame")
        if self._framer.in_progress:
            raise ProtocolError("cannot send a message while a fragmented message is in progress")
        if self._mask:
            raise ProtocolError("a client masks every frame: prepared frames are for servers")
        self._out.extend(parts)
        self.messages_sent += 1
        self.bytes_sent += payload_size

    @property
    def assembling(self) -> bool:
        """Whether a fragmented message is being assembled: its first frame in, not its last.

        A connection that lets its reader choose between assembling and
        :meth:`stream_next_message` stops parsing here until it has chosen.
        """
        assembler = self._assembler
        return assembler.in_progress and not assembler.streaming

    @property
    def sending_fragments(self) -> bool:
        """Whether a fragmented message is being sent (its last frame not yet queued)."""
        return self._framer.in_progress

    def send_fragment(
        self,
        data: str | bytes | bytearray | memoryview,
        *,
        text: bool,
        fin: bool,
        compress: bool | None = None,
    ) -> None:
        """Queue one frame of a fragmented message (:rfc:`6455#section-5.4`).

        The first call sends a TEXT (``text=True``) or BINARY frame, later
        calls CONT frames, until one with ``fin=True`` ends the message.
        Control frames may be sent in between; other messages may not.

        Args:
            data: ``str`` (only with ``text=True``) or bytes-like. For text,
                bytes go out as they are: the message as a whole must be
                UTF-8, each fragment need not be.
            text: whether the message is text; the same on every fragment.
            fin: whether this fragment ends the message.
            compress: the per-message wish passed to the extensions, read on
                the first fragment and passed with every frame of the message.

        Raises:
            ProtocolError: a close frame was sent.
            TypeError: ``data`` is of the wrong type.
            ValueError: ``text`` differs from the message in progress.
        """
        if self.close_sent is not None:
            raise ProtocolError("cannot send a fragment after sending a close frame")
        frame, compress = self._framer.fragment(data, text=text, fin=fin, compress=compress)
        self._send_frame(frame, compress)
        self.bytes_sent += len(frame.data)
        if fin:
            self.messages_sent += 1

    def send_ping(self, payload: str | bytes | bytearray | memoryview = b"") -> None:
        """Queue a ping; the peer answers with a pong that carries ``payload``.

        Raises:
            ProtocolError: a close frame was sent.
            ValueError: ``payload`` is over 125 bytes.
        """
        if self.close_sent is not None:
            raise ProtocolError("cannot send a ping after sending a close frame")
        self._send_frame(Frame(_PING, _control_payload(payload, "ping")), None)

    def send_pong(self, payload: str | bytes | bytearray | memoryview = b"") -> None:
        """Queue a pong (an answer to a ping, or an unsolicited heartbeat).

        Raises:
            ProtocolError: a close frame was sent.
            ValueError: ``payload`` is over 125 bytes.
        """
        if self.close_sent is not None:
            raise ProtocolError("cannot send a pong after sending a close frame")
        self._send_frame(Frame(_PONG, _control_payload(payload, "pong")), None)

    def send_close(self, code: int = CloseCode.NORMAL_CLOSURE, reason: str = "") -> None:
        """Queue a close frame; nothing can be sent after it.

        To answer the peer's :class:`CloseReceived`, echo its code (RFC 6455
        §5.5.1: "the endpoint typically echos the status code it received");
        1005 (no status received) sends an empty payload.

        Args:
            code: a close code that may be sent (1000-1003, 1007-1014,
                3000-4999), or 1005 for an empty payload.
            reason: the reason text, at most 123 bytes in UTF-8; empty with 1005.

        Raises:
            ProtocolError: a close frame was already sent.
            TypeError: ``code`` is not an ``int`` or ``reason`` not a ``str``.
            ValueError: the code may not be sent, or the reason is too long.
        """
        if self.close_sent is not None:
            raise ProtocolError("cannot send a close frame after sending a close frame")
        if not isinstance(code, int) or isinstance(code, bool):
            raise TypeError(f"close code must be an int, not {type(code).__name__}")
        if not isinstance(reason, str):
            raise TypeError(f"close reason must be a str, not {type(reason).__name__}")
        if code == CloseCode.NO_STATUS_RCVD and reason:
            raise ValueError("close code 1005 sends an empty payload and cannot carry a reason")
        close = Close(code, reason)
        self._send_frame(Frame(_CLOSE, close.serialize()), None)
        self.close_sent = close

    def data_to_send(self) -> bytes:
        """Return the bytes queued by the ``send_*`` calls, and forget them."""
        out = self._out
        if not out:
            return b""
        self._out = []
        if len(out) == 1 and type(out[0]) is bytes:
            return out[0]
        return b"".join(out)

    def data_to_send_parts(self) -> list[bytes | bytearray]:
        """Return the bytes queued by the ``send_*`` calls as pieces, and forget them.

        The same bytes as :meth:`data_to_send`, not joined: a large payload
        stays apart from its header, so a writer that sends pieces
        (``os.writev``) copies it once less.
        """
        out = self._out
        self._out = []
        return out

    def _send_frame(self, frame: Frame, compress: bool | None) -> None:
        if self._chain is not None:
            frame = self._chain.encode(frame, compress=compress)
        if not self._mask:
            self._out.extend(serialize_frame_parts(frame, mask=False))
            return
        pos = self._key_pos
        if pos >= len(self._keys):
            self._keys = os.urandom(_KEY_POOL)
            pos = 0
        self._key_pos = pos + 4
        self._out.extend(serialize_frame_parts(frame, mask=True, key=self._keys[pos : pos + 4]))
