"""Fuzz the sans-I/O :class:`trio_wsext.protocol.Protocol`, both sides, plain and compressed.

The input's first bytes choose the receiving side, the negotiated extension
(none, or permessage-deflate with or without context takeover, with a small
window or not), the size limit, EOF, and where the rest is cut; the rest is
what the peer sends. The contract checked, from the README's "What
trio_wsext enforces" and "The core without I/O":

- ``receive_data`` and ``events_received`` never raise;
- events are ``Message``, ``Ping``, ``Pong``, ``CloseReceived`` and
  ``ConnectionFailed``; a ``CloseReceived`` or ``ConnectionFailed`` is the
  last event, and nothing comes after it even when more bytes arrive;
- a failure carries 1002, 1007 or 1009 (1011 is documented only for an
  extension that crashes, and permessage-deflate must not), a one-line
  reason of at most 123 bytes, and the same code on its exception;
- no message is larger than ``max_message_size`` (UTF-8 bytes for text),
  no ping or pong payload over 125 bytes, a close code is one that may be
  sent (or 1005);
- the events do not depend on how the bytes were cut: cut and whole give
  the same events;
- the state follows: CLOSING after a close or failure, CLOSED after EOF, and
  answering (echoing the close, the pongs) never raises.

Run: ``python tests/fuzz/fuzz_protocol.py [-max_total_time=60] [corpus_dir]``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Final

from fuzzing import Reader, pieces, run

from trio_wsext.exceptions import ProtocolError
from trio_wsext.extensions.base import Extension
from trio_wsext.extensions.permessage_deflate import PerMessageDeflate
from trio_wsext.frames import FrameParser, is_valid_close_code, serialize_frame
from trio_wsext.protocol import (
    CloseReceived,
    ConnectionFailed,
    Event,
    Message,
    Ping,
    Pong,
    Protocol,
    Side,
    State,
)

#: Codes a receiver may fail with when no extension of its own crashes.
FAILURE_CODES: Final = frozenset({1002, 1007, 1009})

#: RFC 6455 §5.5: a close payload is at most 125 bytes, 2 of them the code.
MAX_REASON_BYTES: Final = 123

#: Extension settings: None, or (no_context_takeover, window_bits) on both ends.
EXTENSIONS: Final[list[tuple[bool, int] | None]] = [None, (False, 15), (True, 15), (False, 8)]

#: Size limits: none, small (inflation reaches it), and the default.
LIMITS: Final[list[int | None]] = [None, 100, 4096, 2**20]


def extensions_for(config: tuple[bool, int] | None, side: Side) -> list[Extension]:
    """Return ``side``'s negotiated extensions for ``config``."""
    if config is None:
        return []
    no_takeover, bits = config
    return [
        PerMessageDeflate(
            side is Side.SERVER,
            server_max_window_bits=bits,
            client_max_window_bits=bits,
            server_no_context_takeover=no_takeover,
            client_no_context_takeover=no_takeover,
        )
    ]


def check_event(event: Event, max_size: int | None) -> None:
    """Check one event's fields against the documented contract."""
    match event:
        case Message(data):
            size = len(data.encode("utf-8")) if isinstance(data, str) else len(data)
            assert max_size is None or size <= max_size, (size, max_size)
        case Ping(payload) | Pong(payload):
            assert len(payload) <= 125
        case CloseReceived(code, reason):
            assert code == 1005 or is_valid_close_code(code), code
            assert len(reason.encode("utf-8")) <= MAX_REASON_BYTES
        case ConnectionFailed(code, reason, exception):
            assert code in FAILURE_CODES, (code, reason, exception.__cause__)
            assert reason
            assert "\n" not in reason
            assert len(reason.encode("utf-8")) <= MAX_REASON_BYTES
            assert isinstance(exception, ProtocolError)
            assert exception.code == code


def receive(
    side: Side,
    config: tuple[bool, int] | None,
    max_size: int | None,
    chunks: list[bytes],
    eof: bool,
) -> tuple[Protocol, list[Event]]:
    """Feed ``chunks`` to a fresh Protocol, collecting events after each; check them."""
    protocol = Protocol(side, extensions_for(config, side), max_message_size=max_size)
    events: list[Event] = []
    for chunk in chunks:
        protocol.receive_data(chunk)
        events.extend(protocol.events_received())
    if eof:
        protocol.receive_data(b"")
        events.extend(protocol.events_received())
    for event in events:
        check_event(event, max_size)
    endings = [i for i, e in enumerate(events) if isinstance(e, CloseReceived | ConnectionFailed)]
    assert endings in ([], [len(events) - 1]), events
    return protocol, events


def check_state(protocol: Protocol, events: list[Event], eof: bool) -> None:
    """Check the state the events leave, and that answering them never raises."""
    last = events[-1] if events else None
    if eof:
        assert protocol.state is State.CLOSED
    elif isinstance(last, CloseReceived | ConnectionFailed):
        assert protocol.state is State.CLOSING
        assert not protocol.receiving
    else:
        assert protocol.state is State.OPEN
    if isinstance(last, ConnectionFailed):
        assert protocol.failure is last
    for event in events:
        if isinstance(event, Ping):
            protocol.send_pong(event.payload)
    if isinstance(last, CloseReceived):
        protocol.send_close(last.code)
    elif isinstance(last, ConnectionFailed):
        protocol.send_close(last.code, last.reason)
    if isinstance(last, CloseReceived | ConnectionFailed) and not eof:
        assert protocol.state is State.CLOSED
    # After the end, further bytes are ignored.
    if isinstance(last, CloseReceived | ConnectionFailed) and not eof:
        protocol.receive_data(b"\x81\x05hello")
        assert protocol.events_received() == []


def comparable(events: list[Event]) -> list[object]:
    """Return ``events`` with each failure reduced to its code and reason."""
    return [(e.code, e.reason) if isinstance(e, ConnectionFailed) else e for e in events]


def one_input(data: bytes) -> None:
    """Feed ``data`` as the peer's bytes, cut and whole; check the events and the state."""
    reader = Reader(data)
    side = Side.SERVER if reader.flag() else Side.CLIENT
    config = EXTENSIONS[reader.choice(len(EXTENSIONS))]
    max_size = LIMITS[reader.choice(len(LIMITS))]
    eof = reader.flag()
    seed = reader.byte()
    stream = reader.rest()
    protocol, events = receive(side, config, max_size, list(pieces(stream, seed)), eof)
    _, whole = receive(side, config, max_size, [stream] if stream else [], eof)
    assert comparable(events) == comparable(whole), (events, whole)
    check_state(protocol, events, eof)


def sender_stream(side: Side, config: tuple[bool, int] | None) -> bytes:
    """Return what a real peer of ``side`` sends: messages, fragments, pings, a close.

    A client's frames are masked again with a zero key, so that the fuzzer
    sees their payloads (compressed or not) as they are.
    """
    peer = Side.CLIENT if side is Side.SERVER else Side.SERVER
    sender = Protocol(peer, extensions_for(config, peer))
    sender.send_message("Hello")
    sender.send_message(b"\x00\xff" * 40)
    sender.send_fragment("frag", text=True, fin=False)
    sender.send_ping(b"ping")
    sender.send_fragment("mentéd", text=True, fin=True)
    sender.send_message("Hello")
    sender.send_message(bytes(range(256)) * 20)
    sender.send_pong(b"")
    sender.send_close(1000, "bye")
    data = sender.data_to_send()
    if peer is Side.SERVER:
        return data
    parser = FrameParser(require_mask=True)
    parser.feed(data)
    out = []
    while (frame := parser.next_frame()) is not None:
        out.append(serialize_frame(frame, mask=True, key=b"\0\0\0\0"))
    return b"".join(out)


def seeds() -> list[bytes]:
    """Return a real peer's stream for every side, extension and limit."""
    out = []
    for side_flag, side in ((0, Side.CLIENT), (1, Side.SERVER)):
        for index, config in enumerate(EXTENSIONS):
            stream = sender_stream(side, config)
            for limit in (0, 2):
                out.append(bytes([side_flag, index, limit, 0, 0]) + stream)
            out.append(bytes([side_flag, index, 1, 1, 5]) + stream)
    return out


def main() -> None:
    """Fuzz with libFuzzer; arguments as for libFuzzer (``-help=1``)."""
    run(Path(__file__).stem, seeds, sys.argv)


if __name__ == "__main__":
    main()
