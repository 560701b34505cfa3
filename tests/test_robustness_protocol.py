"""Fuzzing the sans-I/O Protocol: any bytes, split anywhere, give events, never an exception.

Each test builds a receiving :class:`~trio_wsext.protocol.Protocol` (either
side, with no extension, with permessage-deflate, or with an extension whose
decode crashes; with and without a size limit), feeds it bytes in pieces
that hypothesis chooses, and checks what a connection relies on:

- ``receive_data`` and ``events_received`` never raise (only ``ProtocolError``
  for data after EOF, which is the caller's bug);
- a failure is one :class:`~trio_wsext.protocol.ConnectionFailed`, the last
  event, with a close code the connection may send for a peer's fault (1002,
  1007, 1009, 1011) and a non-empty reason that fits a close frame;
- the messages of the valid bytes before the first bad byte are delivered
  first, unchanged.

The inputs are raw bytes, mutations of valid frame streams (flipped bits,
dropped, duplicated or truncated frames, bogus length fields, inserted
garbage) and headers that announce absurd lengths.
"""

from __future__ import annotations

import itertools
import random
import struct
from collections.abc import Callable, Sequence
from typing import Final, TypeAlias

import pytest
from hypothesis import event, given, settings, strategies as st

from trio_wsext.exceptions import ProtocolError
from trio_wsext.extensions.base import Extension
from trio_wsext.extensions.permessage_deflate import PerMessageDeflate
from trio_wsext.frames import Frame, is_valid_close_code
from trio_wsext.protocol import (
    DEFAULT_MAX_MESSAGE_SIZE,
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

SIDES: Final = [Side.CLIENT, Side.SERVER]

#: The codes a receiver may fail with for the peer's fault: protocol error,
#: invalid data, message too big, and an extension that crashed.
FAILURE_CODES: Final = frozenset({1002, 1007, 1009, 1011})

#: RFC 6455 §5.5: a close frame's payload is at most 125 bytes, 2 of them the code.
MAX_REASON_BYTES: Final = 123

#: A small size limit, so that fuzzed lengths and inflation reach it often.
SMALL_LIMIT: Final = 4096

#: Settings for the fuzz tests: enough examples to reach deep into the
#: parser, few enough that this file runs in seconds on two shared cores.
FUZZ: Final = settings(max_examples=300, deadline=None)

#: permessage-deflate settings of the two ends: (no_context_takeover, window_bits).
DEFLATE_CONFIGS: Final = [(False, 15), (True, 15), (False, 9)]

#: An extension with a bug: its decode crashes on a payload that starts with NUL.
CRASHY: Final = "crashy"

ExtensionConfig: TypeAlias = tuple[bool, int] | str | None


class CrashyExtension(Extension):
    """A pass-through extension whose decode raises on data starting with a NUL byte."""

    def __init__(self) -> None:
        super().__init__("x-crashy")

    def decode(self, frame: Frame, *, max_size: int | None = None) -> Frame:
        """Return ``frame``, or crash on a payload that starts with NUL."""
        if frame.data[:1] == b"\0":
            raise RuntimeError("bug")
        return frame


def extensions_for(config: ExtensionConfig, side: Side) -> list[Extension]:
    """Return the negotiated extensions of ``side`` for ``config`` (``None``: no extension)."""
    if config is None:
        return []
    if config == CRASHY:
        return [CrashyExtension()]
    assert isinstance(config, tuple)
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


def other(side: Side) -> Side:
    """Return the other side."""
    return Side.SERVER if side is Side.CLIENT else Side.CLIENT


def receiver(
    side: Side, config: ExtensionConfig, max_message_size: int | None = SMALL_LIMIT
) -> Protocol:
    """Return a fresh receiving Protocol playing ``side``."""
    return Protocol(side, extensions_for(config, side), max_message_size=max_message_size)


def check_event(event: Event) -> None:
    """Check one event's fields against what the connection relies on."""
    match event:
        case Message(data):
            assert isinstance(data, str | bytes)
        case Ping(payload) | Pong(payload):
            assert isinstance(payload, bytes)
            assert len(payload) <= 125
        case CloseReceived(code, reason):
            assert code == 1005 or is_valid_close_code(code)
            assert len(reason.encode("utf-8")) <= MAX_REASON_BYTES
        case ConnectionFailed(code, reason, exception):
            assert code in FAILURE_CODES
            assert reason
            assert len(reason.encode("utf-8")) <= MAX_REASON_BYTES
            assert isinstance(exception, ProtocolError)
            assert exception.code == code
        case _:  # pragma: no cover - only reached if the event types change
            raise AssertionError(f"unexpected event {event!r}")


def feed(
    protocol: Protocol, data: bytes, cuts: Sequence[int], *, eof: bool = False
) -> list[Event]:
    """Feed ``data`` cut at ``cuts``, collecting events after each piece; check them all.

    Returns:
        Every event, in order.
    """
    events: list[Event] = []
    bounds = sorted({0, len(data), *(cut % (len(data) + 1) for cut in cuts)})
    for start, end in itertools.pairwise(bounds):
        protocol.receive_data(data[start:end])
        events.extend(protocol.events_received())
    if eof:
        protocol.receive_data(b"")
        events.extend(protocol.events_received())
    for received in events:
        check_event(received)
    endings = [i for i, e in enumerate(events) if isinstance(e, ConnectionFailed | CloseReceived)]
    # The receive side stops at a close frame or a failure: it is the last event.
    assert endings in ([], [len(events) - 1])
    if events and isinstance(events[-1], ConnectionFailed):
        assert protocol.failure is events[-1]
        assert protocol.state is (State.CLOSED if eof else State.CLOSING)
    else:
        assert protocol.failure is None
    return events


# -- valid frame streams, from a real sender ----------------------------------------------------

#: One thing a sender does: a message, a fragmented message, a ping or a pong.
Action: TypeAlias = tuple[str, object, bool | None]

payloads = st.one_of(st.text(max_size=40), st.binary(max_size=60))


def actions_up_to(big: int) -> st.SearchStrategy[Action]:
    """Return the sender's actions, with "big" messages of up to ``big`` bytes."""
    return st.one_of(
        st.tuples(st.just("message"), payloads, st.sampled_from([None, False])),
        st.tuples(
            st.just("fragments"),
            st.lists(st.binary(max_size=20), min_size=1, max_size=4),
            st.sampled_from([None, False]),
        ),
        st.tuples(st.sampled_from(["ping", "pong"]), st.binary(max_size=10), st.none()),
        st.tuples(st.just("big"), st.integers(100, big), st.sampled_from([None, False])),
    )


#: The sender's actions, with messages small enough for SMALL_LIMIT.
actions = actions_up_to(3000)


def big_payload(size: int) -> bytes:
    """Return ``size`` bytes, half random (incompressible), half repetitive."""
    half = size // 2
    return random.Random(size).randbytes(half) + bytes(range(256)) * ((size - half) // 256 + 1)


def send_actions(sender: Protocol, script: Sequence[Action], close: bool) -> list[bytes]:
    """Run ``script`` on ``sender``; return the wire bytes of each frame it sent, in order."""
    chunks: list[bytes] = []

    def flush() -> None:
        chunks.append(sender.data_to_send())

    for kind, value, compress in script:
        if kind == "message":
            assert isinstance(value, str | bytes)
            sender.send_message(value, compress=compress)
            flush()
        elif kind == "big":
            assert isinstance(value, int)
            sender.send_message(big_payload(value))
            flush()
        elif kind == "fragments":
            assert isinstance(value, list)
            for i, part in enumerate(value):
                last = i == len(value) - 1
                sender.send_fragment(part, text=False, fin=last, compress=compress)
                flush()
                if not last and i == 0:
                    # Control frames may come between the fragments of a message.
                    sender.send_ping(b"between")
                    flush()
        elif kind == "ping":
            assert isinstance(value, bytes)
            sender.send_ping(value)
            flush()
        else:
            assert isinstance(value, bytes)
            sender.send_pong(value)
            flush()
    if close:
        sender.send_close(1000, "bye")
        flush()
    return chunks


def clean_events(
    side: Side, config: ExtensionConfig, data: bytes, limit: int | None = SMALL_LIMIT
) -> list[object]:
    """Return what a fresh receiver makes of ``data``, a prefix of a valid stream, in one piece.

    Failures (only the crashing extension's 1011 here) are compared by code
    and reason: their exception objects differ from run to run.
    """
    protocol = receiver(side, config, limit)
    protocol.receive_data(data)
    events = normalized(protocol.events_received())
    if config != CRASHY:
        assert not any(isinstance(event, tuple) for event in events)
    return events


def normalized(events: Sequence[Event]) -> list[object]:
    """Return ``events`` with each ConnectionFailed as a ``(code, reason)`` tuple."""
    return [(e.code, e.reason) if isinstance(e, ConnectionFailed) else e for e in events]


def flip_bits(chunks: list[bytes], draw: st.DrawFn) -> bytes:
    """Flip one to three random bits of the stream."""
    wire = bytearray(b"".join(chunks))
    if not wire:
        return bytes(wire)
    for _ in range(draw(st.integers(1, 3))):
        position = draw(st.integers(0, len(wire) - 1))
        wire[position] ^= 1 << draw(st.integers(0, 7))
    return bytes(wire)


def drop_frame(chunks: list[bytes], draw: st.DrawFn) -> bytes:
    """Leave out one frame (a lost fragment, a lost compressed message)."""
    index = draw(st.integers(0, len(chunks) - 1))
    return b"".join(chunks[:index] + chunks[index + 1 :])


def duplicate_frame(chunks: list[bytes], draw: st.DrawFn) -> bytes:
    """Send one frame twice."""
    index = draw(st.integers(0, len(chunks) - 1))
    return b"".join(chunks[: index + 1] + chunks[index:])


def truncate_frame(chunks: list[bytes], draw: st.DrawFn) -> bytes:
    """Cut one frame short, then go on with the next ones."""
    index = draw(st.integers(0, len(chunks) - 1))
    keep = draw(st.integers(0, max(len(chunks[index]) - 1, 0)))
    return b"".join([*chunks[:index], chunks[index][:keep], *chunks[index + 1 :]])


def bogus_length(chunks: list[bytes], draw: st.DrawFn) -> bytes:
    """Rewrite one frame's length field with another value in any of the three forms."""
    index = draw(st.integers(0, len(chunks) - 1))
    frame = chunks[index]
    if len(frame) < 2:
        return b"".join(chunks)
    mask_bit = frame[1] & 0x80
    # Skip the old length field; keep the mask key and the payload behind it.
    form = frame[1] & 0x7F
    rest = frame[2 + {126: 2, 127: 8}.get(form, 0) :]
    length = draw(
        st.one_of(
            st.integers(0, 125).map(lambda n: bytes([mask_bit | n])),
            st.integers(0, 2**16 - 1).map(
                lambda n: bytes([mask_bit | 126]) + struct.pack("!H", n)
            ),
            st.integers(0, 2**64 - 1).map(
                lambda n: bytes([mask_bit | 127]) + struct.pack("!Q", n)
            ),
        )
    )
    return b"".join([*chunks[:index], frame[:1] + length + rest, *chunks[index + 1 :]])


def insert_garbage(chunks: list[bytes], draw: st.DrawFn) -> bytes:
    """Insert random bytes between two frames."""
    index = draw(st.integers(0, len(chunks)))
    garbage = draw(st.binary(min_size=1, max_size=20))
    return b"".join([*chunks[:index], garbage, *chunks[index:]])


MUTATIONS: Final[list[Callable[[list[bytes], st.DrawFn], bytes]]] = [
    flip_bits,
    drop_frame,
    duplicate_frame,
    truncate_frame,
    bogus_length,
    insert_garbage,
]


@st.composite
def mutated_streams(
    draw: st.DrawFn, script_actions: st.SearchStrategy[Action] = actions, max_actions: int = 10
) -> tuple[Side, ExtensionConfig, bytes, bytes]:
    """Draw (receiving side, extension config, valid stream, mutated stream)."""
    side = draw(st.sampled_from(SIDES))
    config = draw(st.sampled_from([None, CRASHY, *DEFLATE_CONFIGS]))
    sender = Protocol(other(side), extensions_for(config, other(side)))
    script = draw(st.lists(script_actions, min_size=1, max_size=max_actions))
    chunks = send_actions(sender, script, draw(st.booleans()))
    mutation = draw(st.sampled_from(MUTATIONS))
    return side, config, b"".join(chunks), mutation(chunks, draw)


def common_prefix(a: bytes, b: bytes) -> int:
    """Return the length of the longest common prefix of ``a`` and ``b``."""
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


# -- the tests -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "config", [None, *DEFLATE_CONFIGS], ids=["plain", "deflate", "no-takeover", "wbits9"]
)
@pytest.mark.parametrize("side", SIDES, ids=["client", "server"])
@settings(max_examples=60, deadline=None)
@given(data=st.binary(max_size=300), cuts=st.lists(st.integers(0, 300), max_size=6))
def test_receiver_turns_arbitrary_bytes_into_events(
    side: Side, config: ExtensionConfig, data: bytes, cuts: list[int]
) -> None:
    """Arbitrary bytes, split anywhere, give only well-formed events, a failure last."""
    feed(receiver(side, config), data, cuts, eof=True)


@FUZZ
@given(
    case=mutated_streams(),
    cuts=st.lists(st.integers(0, 20000), max_size=8),
    bytewise=st.booleans(),
    limit=st.sampled_from([SMALL_LIMIT, None]),
)
def test_receiver_survives_mutated_stream_and_keeps_valid_prefix(
    case: tuple[Side, ExtensionConfig, bytes, bytes],
    cuts: list[int],
    bytewise: bool,
    limit: int | None,
) -> None:
    """A mutated valid stream gives events, and the messages before the damage come first."""
    side, config, wire, mutated = case
    if bytewise and len(mutated) <= 2000:
        cuts = list(range(len(mutated)))
    events = normalized(feed(receiver(side, config, limit), mutated, cuts))
    intact = clean_events(side, config, wire[: common_prefix(wire, mutated)], limit)
    # For --hypothesis-show-statistics: how the mutated streams end, how much survives.
    event(f"last event: {type(events[-1]).__name__ if events else None}")
    if events and isinstance(events[-1], tuple):
        event(f"failure code: {events[-1][0]}")
    event(f"events before the damage: {min(len(intact), 3)}{'+' if len(intact) > 3 else ''}")
    assert events[: len(intact)] == intact
    if mutated == wire:
        assert events == clean_events(side, config, wire, limit)


@settings(max_examples=40, deadline=None)
@given(
    case=mutated_streams(
        st.tuples(st.just("big"), st.integers(8193, 100_000), st.sampled_from([None, False])),
        max_actions=2,
    ),
    cuts=st.lists(st.integers(0, 400_000), max_size=12),
)
def test_receiver_survives_mutated_large_frames(
    case: tuple[Side, ExtensionConfig, bytes, bytes], cuts: list[int]
) -> None:
    """Frames big enough to be collected in chunks fail and recover the same way."""
    side, config, wire, mutated = case
    limit = DEFAULT_MAX_MESSAGE_SIZE
    events = normalized(feed(receiver(side, config, limit), mutated, cuts))
    intact = clean_events(side, config, wire[: common_prefix(wire, mutated)], limit)
    assert events[: len(intact)] == intact
    if mutated == wire:
        assert events == clean_events(side, config, wire, limit)


@FUZZ
@given(
    side=st.sampled_from(SIDES),
    config=st.sampled_from([None, *DEFLATE_CONFIGS]),
    script=st.lists(actions, min_size=1, max_size=6),
    cuts=st.lists(st.integers(0, 20000), max_size=8),
)
def test_receiver_gets_every_message_of_a_valid_stream_in_any_split(
    side: Side, config: ExtensionConfig, script: list[Action], cuts: list[int]
) -> None:
    """The unmutated stream, split anywhere, gives the sender's messages, in order, no failure."""
    sender = Protocol(other(side), extensions_for(config, other(side)))
    wire = b"".join(send_actions(sender, script, close=True))
    events = feed(receiver(side, config), wire, cuts)
    messages = [event.data for event in events if isinstance(event, Message)]
    expected: list[str | bytes] = []
    for kind, value, _ in script:
        if kind == "message":
            assert isinstance(value, str | bytes)
            expected.append(value)
        elif kind == "big":
            assert isinstance(value, int)
            expected.append(big_payload(value))
        elif kind == "fragments":
            assert isinstance(value, list)
            expected.append(b"".join(value))
    assert messages == expected
    assert events[-1] == CloseReceived(1000, "bye")


@pytest.mark.parametrize("config", [None, DEFLATE_CONFIGS[0]], ids=["plain", "deflate"])
@pytest.mark.parametrize("side", SIDES, ids=["client", "server"])
@settings(max_examples=40, deadline=None)
@given(
    first=st.integers(0, 255),
    length=st.integers(SMALL_LIMIT * 2, 2**64 - 1),
    tail=st.binary(max_size=64),
)
def test_receiver_refuses_huge_announced_length_before_the_payload(
    side: Side, config: ExtensionConfig, first: int, length: int, tail: bytes
) -> None:
    """A header announcing more than the limit fails at once: nothing waits for the payload."""
    mask_bit = 0x80 if side is Side.SERVER else 0
    header = bytes([first, mask_bit | 127]) + struct.pack("!Q", length)
    if side is Side.SERVER:
        header += b"\x00\x00\x00\x00"
    events = feed(receiver(side, config), header + tail, [])
    # Either the first byte is already wrong (opcode, RSV, a control frame's
    # rules) or the length is: either way the failure comes from the header.
    assert len(events) == 1
    failure = events[0]
    assert isinstance(failure, ConnectionFailed)
    if failure.code != 1002:
        assert failure == ConnectionFailed(
            1009, f"message exceeds the size limit of {SMALL_LIMIT} bytes", failure.exception
        )


@pytest.mark.parametrize("side", SIDES, ids=["client", "server"])
@settings(max_examples=30, deadline=None)
@given(data=st.binary(min_size=1, max_size=50))
def test_receive_data_after_eof_raises_protocol_error(side: Side, data: bytes) -> None:
    """Data after EOF is the caller's bug: ProtocolError, the one documented exception."""
    protocol = receiver(side, None)
    protocol.receive_data(b"")
    with pytest.raises(ProtocolError, match=r"^data received after EOF$"):
        protocol.receive_data(data)
    assert protocol.events_received() == []


@pytest.mark.parametrize("side", SIDES, ids=["client", "server"])
@settings(max_examples=30, deadline=None)
@given(garbage=st.binary(min_size=1, max_size=200), cuts=st.lists(st.integers(0, 200)))
def test_receiver_ignores_everything_after_a_failure(
    side: Side, garbage: bytes, cuts: list[int]
) -> None:
    """After a failure, more bytes of any kind give no event and raise nothing."""
    protocol = receiver(side, None)
    protocol.receive_data(b"\x8f\x80" if side is Side.SERVER else b"\x8f\x00")  # reserved opcode
    [failure] = protocol.events_received()
    assert isinstance(failure, ConnectionFailed)
    assert failure.code == 1002
    bounds = sorted({0, len(garbage), *(cut % (len(garbage) + 1) for cut in cuts)})
    for start, end in itertools.pairwise(bounds):
        protocol.receive_data(garbage[start:end])
        assert protocol.events_received() == []
    assert protocol.failure is failure
