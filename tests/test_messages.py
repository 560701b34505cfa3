"""Tests of trio_wsext.messages: assembling received frames, framing sent messages."""

from __future__ import annotations

import sys

import pytest

from trio_wsext.exceptions import PayloadTooBig, ProtocolError
from trio_wsext.frames import Frame, Opcode
from trio_wsext.messages import MessageAssembler, MessageFramer, check_reserved_bits

# Frames as a peer sends them: "κόσμε" split inside its multi-byte characters.
KOSME = "κόσμε".encode()


def feed(assembler: MessageAssembler, *frames: Frame) -> list[str | bytes | None]:
    """Pass frames through check_frame and receive_frame; return what each gave."""
    results = []
    for frame in frames:
        assembler.check_frame(frame.opcode)
        results.append(assembler.receive_frame(frame))
    return results


# -- RFC 3629 §4: which byte strings can start a valid UTF-8 sequence --------------


def utf8_prefix_ok(prefix: bytes) -> bool:
    """Tell whether ``prefix`` is the start of a UTF-8 encoded character (RFC 3629 §4)."""
    lead = prefix[0]
    if lead < 0x80:
        return len(prefix) == 1
    if 0xC2 <= lead <= 0xDF:
        ranges = [(0x80, 0xBF)]
    elif lead == 0xE0:
        ranges = [(0xA0, 0xBF), (0x80, 0xBF)]
    elif 0xE1 <= lead <= 0xEC or 0xEE <= lead <= 0xEF:
        ranges = [(0x80, 0xBF)] * 2
    elif lead == 0xED:
        ranges = [(0x80, 0x9F), (0x80, 0xBF)]
    elif lead == 0xF0:
        ranges = [(0x90, 0xBF), (0x80, 0xBF), (0x80, 0xBF)]
    elif 0xF1 <= lead <= 0xF3:
        ranges = [(0x80, 0xBF)] * 3
    elif lead == 0xF4:
        ranges = [(0x80, 0x8F), (0x80, 0xBF), (0x80, 0xBF)]
    else:
        return False
    rest = prefix[1:]
    return len(rest) <= len(ranges) and all(
        low <= byte <= high for byte, (low, high) in zip(rest, ranges, strict=False)
    )


def incomplete_fails_fast(prefix: bytes) -> bool:
    """Tell whether a non-final text frame ending in ``prefix`` fails at once."""
    assembler = MessageAssembler(None)
    try:
        feed(assembler, Frame(Opcode.TEXT, prefix, fin=False))
    except ProtocolError:
        return True
    return False


def test_utf8_fails_fast_on_every_invalid_two_byte_prefix() -> None:
    """Every 2-byte sequence that cannot start a character fails with its frame."""
    wrong = [
        bytes([a, b])
        for a in range(0x80, 0x100)
        for b in range(0x100)
        if incomplete_fails_fast(bytes([a, b])) == utf8_prefix_ok(bytes([a, b]))
    ]
    assert wrong == []


def test_utf8_fails_fast_on_three_byte_prefixes_of_four_byte_characters() -> None:
    """3-byte prefixes of 4-byte characters fail with their frame when invalid."""
    wrong = [
        bytes([a, b, c])
        for a in range(0xF0, 0xF5)
        for b in range(0x80, 0xC0)
        for c in (0x00, 0x7F, 0x80, 0xBF, 0xC0, 0xFF)
        if utf8_prefix_ok(bytes([a, b]))
        and incomplete_fails_fast(bytes([a, b, c])) == utf8_prefix_ok(bytes([a, b, c]))
    ]
    assert wrong == []


@pytest.mark.parametrize(
    "prefix",
    [b"\xed\xa0", b"\xed\xbf", b"\xf4\x90", b"\xc0", b"\xe0\x80", b"\xf5"],
    ids=["surrogate-low", "surrogate-high", "over-max", "overlong-c0", "overlong-e0", "f5"],
)
def test_receive_text_fragment_with_invalid_prefix_fails_at_once(prefix: bytes) -> None:
    """A fragment that ends in an impossible prefix fails before the next frame (1007)."""
    assembler = MessageAssembler(None)
    with pytest.raises(ProtocolError, match=r"^invalid UTF-8 in text message: .+$") as info:
        feed(assembler, Frame(Opcode.TEXT, b"ok" + prefix, fin=False))
    assert info.value.code == 1007


# -- assembling --------------------------------------------------------------------------


def test_receive_unfragmented_text_and_binary() -> None:
    """A single frame is a whole message: str for TEXT, bytes for BINARY."""
    assembler = MessageAssembler(100)
    assert feed(assembler, Frame(Opcode.TEXT, KOSME), Frame(Opcode.BINARY, b"\xff")) == [
        "κόσμε",
        b"\xff",
    ]
    assert not assembler.in_progress
    assert assembler.remaining == 100


def test_receive_fragmented_text_split_inside_characters() -> None:
    """Fragments may split a character; the message is decoded as a whole."""
    assembler = MessageAssembler(None)
    frames = [
        Frame(Opcode.TEXT, KOSME[:1], fin=False),
        Frame(Opcode.CONT, KOSME[1:4], fin=False),
        Frame(Opcode.CONT, b"", fin=False),
        Frame(Opcode.CONT, KOSME[4:]),
    ]
    assert feed(assembler, *frames) == [None, None, None, "κόσμε"]
    assert not assembler.in_progress


def test_receive_fragmented_binary() -> None:
    """BINARY then CONT frames join into one bytes message."""
    assembler = MessageAssembler(10)
    results = feed(
        assembler, Frame(Opcode.BINARY, b"abc", fin=False), Frame(Opcode.CONT, b"def", fin=True)
    )
    assert results == [None, b"abcdef"]
    assert assembler.remaining == 10


def test_receive_empty_messages() -> None:
    """Empty text and binary messages, whole or fragmented, are messages."""
    assembler = MessageAssembler(1)
    frames = [Frame(Opcode.TEXT, b""), Frame(Opcode.BINARY, b"", fin=False), Frame(0, b"")]
    assert feed(assembler, *frames) == ["", None, b""]


def test_receive_tracks_remaining_budget() -> None:
    """remaining is what the message in progress may still add."""
    assembler = MessageAssembler(10)
    feed(assembler, Frame(Opcode.BINARY, b"abcd", fin=False))
    assert assembler.in_progress
    assert assembler.remaining == 6
    assert MessageAssembler(None).remaining is None


@pytest.mark.parametrize(
    "frames",
    [
        [Frame(Opcode.BINARY, bytes(11))],
        [Frame(Opcode.TEXT, b"x" * 6, fin=False), Frame(Opcode.CONT, b"x" * 5)],
        [Frame(Opcode.BINARY, bytes(10), fin=False), Frame(Opcode.CONT, b"x")],
    ],
    ids=["single", "fragmented-text", "fragmented-binary"],
)
def test_receive_message_over_max_size(frames: list[Frame]) -> None:
    """A message over max_size fails with 1009 on the frame that crosses it."""
    assembler = MessageAssembler(10)
    with pytest.raises(PayloadTooBig, match=r"^message exceeds the size limit of 10 bytes$"):
        feed(assembler, *frames)


def test_receive_message_of_exactly_max_size() -> None:
    """A message of exactly max_size bytes passes."""
    assembler = MessageAssembler(10)
    assert feed(assembler, Frame(Opcode.TEXT, b"x" * 4, fin=False), Frame(0, b"y" * 6)) == [
        None,
        "xxxxyyyyyy",
    ]


@pytest.mark.parametrize(
    ("frames", "message"),
    [
        ([Frame(Opcode.CONT, b"x")], r"^continuation frame without a message in progress$"),
        (
            [Frame(Opcode.TEXT, b"a", fin=False), Frame(Opcode.TEXT, b"b")],
            r"^TEXT frame while a fragmented message is in progress$",
        ),
        (
            [Frame(Opcode.TEXT, b"a", fin=False), Frame(Opcode.BINARY, b"b")],
            r"^BINARY frame while a fragmented message is in progress$",
        ),
        (
            [Frame(Opcode.BINARY, b"a"), Frame(Opcode.CONT, b"b")],
            r"^continuation frame without a message in progress$",
        ),
    ],
    ids=["cont-first", "text-in-text", "binary-in-text", "cont-after-fin"],
)
def test_receive_continuation_violations(frames: list[Frame], message: str) -> None:
    """RFC 6455 §5.4's continuation rules fail with 1002 from check_frame."""
    assembler = MessageAssembler(None)
    with pytest.raises(ProtocolError, match=message) as info:
        feed(assembler, *frames)
    assert info.value.code == 1002


@pytest.mark.parametrize(
    ("frames", "failing", "reason"),
    [
        ([Frame(Opcode.TEXT, b"\xff")], 0, "invalid start byte"),
        ([Frame(Opcode.TEXT, KOSME[:-1])], 0, "unexpected end of data"),
        (
            [
                Frame(Opcode.TEXT, KOSME, fin=False),
                Frame(0, b"\xf4\x90\x80\x80", fin=False),
                Frame(0, b"edited"),
            ],
            1,
            "invalid continuation byte",
        ),
        (
            [Frame(Opcode.TEXT, KOSME + b"\xce", fin=False), Frame(0, b"")],
            1,
            "unexpected end of data",
        ),
        (
            [Frame(Opcode.TEXT, b"\xed", fin=False), Frame(0, b"\xa0\x80")],
            1,
            "invalid continuation byte",
        ),
    ],
    ids=["invalid-start", "truncated", "autobahn-6.4.1", "truncated-at-fin", "surrogate-split"],
)
def test_receive_invalid_utf8_fails_on_its_frame(
    frames: list[Frame], failing: int, reason: str
) -> None:
    """Invalid UTF-8 fails (1007) as soon as the frame that makes it invalid arrives."""
    assembler = MessageAssembler(None)
    if failing:
        feed(assembler, *frames[:failing])
    with pytest.raises(ProtocolError, match=rf"^invalid UTF-8 in text message: {reason}$") as info:
        feed(assembler, frames[failing])
    assert info.value.code == 1007
    assert isinstance(info.value.__cause__, UnicodeDecodeError) or info.value.__cause__ is None


def test_receive_starts_fresh_after_a_message() -> None:
    """The UTF-8 state of one message does not leak into the next."""
    assembler = MessageAssembler(None)
    feed(assembler, Frame(Opcode.TEXT, b"a", fin=False), Frame(0, b"b"))
    assert feed(assembler, Frame(Opcode.TEXT, b"\xce", fin=False), Frame(0, b"\xba")) == [
        None,
        "κ",
    ]


# -- reserved bits -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frame", "declared", "message"),
    [
        (
            Frame(1, b"", rsv1=True),
            frozenset(),
            r"^reserved bit RSV1 set without a negotiated extension$",
        ),
        (
            Frame(1, b"", rsv2=True),
            frozenset({1}),
            r"^reserved bit RSV2 set without a negotiated extension$",
        ),
        (
            Frame(1, b"", rsv1=True, rsv3=True),
            frozenset(),
            r"^reserved bits RSV1, RSV3 set without a negotiated extension$",
        ),
        (Frame(9, b"", rsv1=True), frozenset({1}), r"^reserved bit RSV1 set on a PING frame$"),
        (Frame(0, b"", rsv1=True), frozenset({1, 2}), r"^reserved bit RSV1 set on a CONT frame$"),
    ],
    ids=["rsv1", "rsv2-other-declared", "rsv1-rsv3", "rsv1-on-ping", "rsv1-on-cont"],
)
def test_check_reserved_bits_fails(frame: Frame, declared: frozenset[int], message: str) -> None:
    """A bit left set after decoding fails with 1002, worded by whether it was declared."""
    with pytest.raises(ProtocolError, match=message) as info:
        check_reserved_bits(frame, declared)
    assert info.value.code == 1002


def test_check_reserved_bits_passes_clear_frames() -> None:
    """A frame without reserved bits passes."""
    check_reserved_bits(Frame(Opcode.TEXT, b"x"), frozenset())


# -- framing -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "frame"),
    [
        ("κόσμε", Frame(Opcode.TEXT, KOSME)),
        ("", Frame(Opcode.TEXT, b"")),
        (b"\x00\xff", Frame(Opcode.BINARY, b"\x00\xff")),
        (bytearray(b"ab"), Frame(Opcode.BINARY, b"ab")),
        (memoryview(b"abc")[1:], Frame(Opcode.BINARY, b"bc")),
    ],
    ids=["str", "empty-str", "bytes", "bytearray", "memoryview"],
)
def test_framer_message(data: str | bytes | bytearray | memoryview, frame: Frame) -> None:
    """str becomes a TEXT frame in UTF-8; bytes-like becomes BINARY."""
    assert MessageFramer().message(data) == frame


def test_framer_message_refuses_other_types() -> None:
    """A message of another type is a TypeError naming the type."""
    with pytest.raises(TypeError, match=r"^message must be str or bytes-like .*, not int$"):
        MessageFramer().message(42)  # type: ignore[arg-type]


def test_framer_fragments() -> None:
    """The first fragment sets the opcode and the compress wish; the rest are CONT."""
    framer = MessageFramer()
    assert framer.fragment("κό", text=True, fin=False, compress=False) == (
        Frame(Opcode.TEXT, "κό".encode(), fin=False),
        False,
    )
    started = framer.in_progress
    assert framer.fragment(b"\xcf", text=True, fin=False, compress=True) == (
        Frame(Opcode.CONT, b"\xcf", fin=False),
        False,
    )
    assert framer.fragment("", text=True, fin=True, compress=None) == (
        Frame(Opcode.CONT, b""),
        False,
    )
    assert (started, framer.in_progress) == (True, False)
    assert framer.fragment(b"x", text=False, fin=True, compress=None) == (
        Frame(Opcode.BINARY, b"x"),
        None,
    )


def test_framer_message_during_fragmented_message() -> None:
    """A whole message cannot interleave with a fragmented one."""
    framer = MessageFramer()
    framer.fragment(b"a", text=False, fin=False, compress=None)
    with pytest.raises(
        ProtocolError, match=r"^cannot send a message while a fragmented message is in progress$"
    ):
        framer.message(b"b")


def test_framer_fragment_type_mismatch() -> None:
    """Later fragments must keep the message type of the first."""
    framer = MessageFramer()
    framer.fragment(b"a", text=False, fin=False, compress=None)
    with pytest.raises(ValueError, match=r"^text=True but the message in progress is binary$"):
        framer.fragment(b"b", text=True, fin=True, compress=None)


def test_framer_str_fragment_needs_text() -> None:
    """A str fragment of a binary message is a TypeError."""
    with pytest.raises(TypeError, match=r"^a str fragment needs text=True$"):
        MessageFramer().fragment("a", text=False, fin=True, compress=None)


def test_framer_fragment_refuses_other_types() -> None:
    """A fragment of another type is a TypeError naming the type."""
    with pytest.raises(TypeError, match=r"^fragment must be str or bytes-like .*, not list$"):
        MessageFramer().fragment([1], text=False, fin=True, compress=None)  # type: ignore[arg-type]


@pytest.mark.parametrize("opcode", [Opcode.TEXT, Opcode.BINARY], ids=["text", "binary"])
def test_assembler_holds_no_object_per_empty_continuation_frame(opcode: Opcode) -> None:
    """A flood of empty continuation frames keeps one buffer, not a part per frame."""
    assembler = MessageAssembler(max_size=10)
    assembler.check_frame(opcode)
    assert assembler.receive_frame(Frame(opcode, b"ab", fin=False)) is None
    for _ in range(10_000):
        assembler.check_frame(Opcode.CONT)
        assert assembler.receive_frame(Frame(Opcode.CONT, b"", fin=False)) is None
    held = sys.getsizeof(assembler._parts) + sys.getsizeof(assembler._text_parts)
    assert held < 1_000
    assembler.check_frame(Opcode.CONT)
    message = assembler.receive_frame(Frame(Opcode.CONT, b"c", fin=True))
    assert message == ("abc" if opcode is Opcode.TEXT else b"abc")
