"""Tests of trio_wsext.frames: values, close payloads, masking and the wire codec."""

from __future__ import annotations

import struct

import attrs
import pytest
from hypothesis import given, settings, strategies as st

from trio_wsext.exceptions import PayloadTooBig, ProtocolError
from trio_wsext.frames import (
    CONTROL_OPCODES,
    DATA_OPCODES,
    SEPARATE_PAYLOAD_FROM,
    Close,
    CloseCode,
    CloseReason,
    Frame,
    FrameParser,
    Opcode,
    apply_mask,
    close_code_name,
    frame_unchecked,
    is_valid_close_code,
    serialize_frame,
    serialize_frame_parts,
)

#: The masking key of the examples in RFC 6455 §5.7.
RFC_KEY = b"\x37\xfa\x21\x3d"


@pytest.fixture
def rfc_mask_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make serialize_frame pick the masking key of RFC 6455 §5.7."""
    monkeypatch.setattr("trio_wsext.frames.os.urandom", lambda n: RFC_KEY)


def parse_all(data: bytes, *, require_mask: bool, max_size: int | None = None) -> list[Frame]:
    """Feed ``data`` at once and return every frame it holds."""
    parser = FrameParser(require_mask=require_mask)
    parser.feed(data)
    frames = []
    while (frame := parser.next_frame(max_size)) is not None:
        frames.append(frame)
    assert parser.buffered == 0
    return frames


def parse_bytewise(data: bytes, *, require_mask: bool) -> list[Frame]:
    """Feed ``data`` one byte at a time and return every frame it holds."""
    parser = FrameParser(require_mask=require_mask)
    frames = []
    for i in range(len(data)):
        parser.feed(data[i : i + 1])
        while (frame := parser.next_frame()) is not None:
            frames.append(frame)
    return frames


# -- values ----------------------------------------------------------------------


def test_opcode_values_follow_rfc() -> None:
    """Opcode values are those of RFC 6455 §5.2."""
    assert [(op.name, op.value) for op in Opcode] == [
        ("CONT", 0),
        ("TEXT", 1),
        ("BINARY", 2),
        ("CLOSE", 8),
        ("PING", 9),
        ("PONG", 10),
    ]
    assert set(Opcode) == DATA_OPCODES | CONTROL_OPCODES
    assert not DATA_OPCODES & CONTROL_OPCODES


def test_close_code_values() -> None:
    """CloseCode names carry the numbers of RFC 6455 §7.4.1."""
    assert {code.name: code.value for code in CloseCode} == {
        "NORMAL_CLOSURE": 1000,
        "GOING_AWAY": 1001,
        "PROTOCOL_ERROR": 1002,
        "UNSUPPORTED_DATA": 1003,
        "NO_STATUS_RCVD": 1005,
        "ABNORMAL_CLOSURE": 1006,
        "INVALID_DATA": 1007,
        "POLICY_VIOLATION": 1008,
        "MESSAGE_TOO_BIG": 1009,
        "MANDATORY_EXTENSION": 1010,
        "INTERNAL_ERROR": 1011,
        "SERVICE_RESTART": 1012,
        "TRY_AGAIN_LATER": 1013,
        "BAD_GATEWAY": 1014,
        "TLS_HANDSHAKE": 1015,
    }


@pytest.mark.parametrize(
    ("code", "valid"),
    [
        (0, False),
        (999, False),
        (1000, True),
        (1003, True),
        (1004, False),
        (1005, False),
        (1006, False),
        (1007, True),
        (1014, True),
        (1015, False),
        (1016, False),
        (2999, False),
        (3000, True),
        (4999, True),
        (5000, False),
        (65535, False),
    ],
    ids=str,
)
def test_is_valid_close_code(code: int, valid: bool) -> None:
    """Only the codes RFC 6455 §7.4 lets an endpoint send are valid on the wire."""
    assert is_valid_close_code(code) is valid


def test_frame_defaults_and_converters() -> None:
    """Frame converts its opcode and bytes-like data, with fin set and rsv clear."""
    frame = Frame(1, bytearray(b"hi"))
    assert frame == Frame(Opcode.TEXT, b"hi", True, False, False, False)
    assert frame.opcode is Opcode.TEXT
    assert type(frame.data) is bytes
    assert Frame(Opcode.BINARY, memoryview(b"ab")).data == b"ab"


def test_frame_rejects_reserved_opcode() -> None:
    """A Frame cannot be built with a reserved opcode."""
    with pytest.raises(ValueError, match=r"^3 is not a valid Opcode$"):
        Frame(3, b"")


def test_frame_is_immutable() -> None:
    """Frames are frozen values."""
    frame = Frame(Opcode.TEXT, b"x")
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        frame.fin = False  # type: ignore[misc]


def test_frame_unchecked_equals_frame_and_is_frozen() -> None:
    """The converter-free constructor builds the same value, as frozen."""
    frame = frame_unchecked(Opcode.CONT, b"x", False, True, False, True)
    assert frame == Frame(Opcode.CONT, b"x", fin=False, rsv1=True, rsv3=True)
    assert hash(frame) == hash(Frame(Opcode.CONT, b"x", fin=False, rsv1=True, rsv3=True))
    assert frame_unchecked(Opcode.PING, b"") == Frame(Opcode.PING, b"")
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        frame.fin = True  # type: ignore[misc]


def test_frame_replace_and_namedtuple_alias() -> None:
    """replace() returns a modified copy, and _replace is the same method."""
    frame = Frame(Opcode.TEXT, b"x")
    assert frame.replace(rsv1=True, data=bytearray(b"y")) == Frame(Opcode.TEXT, b"y", rsv1=True)
    assert frame._replace(fin=False) == Frame(Opcode.TEXT, b"x", fin=False)
    assert frame == Frame(Opcode.TEXT, b"x")


def test_frame_repr_elides_long_payloads() -> None:
    """A long payload shows its start and its length only."""
    assert repr(Frame(Opcode.PING, b"ab")) == (
        "Frame(opcode=<Opcode.PING: 9>, data=b'ab', fin=True, rsv1=False, rsv2=False, rsv3=False)"
    )
    assert "data=b'xxxxxxxxxxxxxxxxxxxxxxxx'...<100 bytes>" in repr(Frame(2, b"x" * 100))


@pytest.mark.parametrize(
    ("code", "name"),
    [
        (1000, "NORMAL_CLOSURE"),
        (1006, "ABNORMAL_CLOSURE"),
        (3000, "LIBRARY"),
        (4999, "PRIVATE"),
        (1004, "UNKNOWN"),
        (5000, "UNKNOWN"),
    ],
    ids=str,
)
def test_close_code_name(code: int, name: str) -> None:
    """Codes are named after CloseCode, or after the range they lie in."""
    assert close_code_name(code) == name


def test_close_reason_from_code_and_str() -> None:
    """CloseReason names its code and prints code, name and reason."""
    reason = CloseReason.from_code(1001, "bye")
    assert reason == CloseReason(1001, "GOING_AWAY", "bye")
    assert str(reason) == "1001 (GOING_AWAY) bye"
    assert str(CloseReason.from_code(1006)) == "1006 (ABNORMAL_CLOSURE)"


# -- close payloads --------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "close"),
    [
        (b"", Close(1005, "")),
        (b"\x03\xe8", Close(1000, "")),
        (b"\x03\xe9bye", Close(1001, "bye")),
        (b"\x0b\xb8", Close(3000, "")),
        (b"\x13\x87" + "é".encode(), Close(4999, "é")),
    ],
    ids=["empty", "normal", "reason", "library", "utf8-reason"],
)
def test_close_parse_valid(payload: bytes, close: Close) -> None:
    """Close.parse reads the code and the UTF-8 reason; empty means 1005."""
    assert Close.parse(payload) == close


@pytest.mark.parametrize(
    ("payload", "code", "message"),
    [
        (b"\x03", 1002, r"^close frame payload of 1 byte$"),
        (b"\x03\xe7", 1002, r"^invalid close code 999$"),
        (b"\x03\xec", 1002, r"^invalid close code 1004$"),
        (b"\x03\xed", 1002, r"^invalid close code 1005$"),
        (b"\x03\xee", 1002, r"^invalid close code 1006$"),
        (b"\x03\xf7", 1002, r"^invalid close code 1015$"),
        (b"\x0b\xb7", 1002, r"^invalid close code 2999$"),
        (b"\x13\x88", 1002, r"^invalid close code 5000$"),
        (b"\x03\xe8\xff", 1007, r"^close reason is not valid UTF-8$"),
        (b"\x03\xe8\xed\xa0\x80", 1007, r"^close reason is not valid UTF-8$"),
    ],
    ids=["1-byte", "999", "1004", "1005", "1006", "1015", "2999", "5000", "ff", "surrogate"],
)
def test_close_parse_invalid(payload: bytes, code: int, message: str) -> None:
    """Close.parse refuses what RFC 6455 §5.5.1 and §7.4 forbid, with the right code."""
    with pytest.raises(ProtocolError, match=message) as info:
        Close.parse(payload)
    assert info.value.code == code


def test_close_serialize_round_trip() -> None:
    """serialize() writes the code big-endian, then the UTF-8 reason."""
    assert Close(1000, "ok").serialize() == b"\x03\xe8ok"
    assert Close(1005).serialize() == b""
    assert Close.parse(Close(4000, "ü" * 61).serialize()) == Close(4000, "ü" * 61)


def test_close_serialize_refuses_unsendable_code() -> None:
    """Codes that may not be sent raise ValueError."""
    with pytest.raises(ValueError, match=r"^close code 1006 may not be sent$"):
        Close(1006).serialize()


def test_close_serialize_refuses_long_reason() -> None:
    """A reason over 123 bytes would make the close frame exceed 125 bytes."""
    assert len(Close(1000, "x" * 123).serialize()) == 125
    with pytest.raises(ValueError, match=r"^close reason is longer than 123 bytes in UTF-8$"):
        Close(1000, "x" * 124).serialize()


# -- masking -----------------------------------------------------------------------


def test_apply_mask_rfc_vector() -> None:
    """Masking "Hello" with the key of RFC 6455 §5.7 gives its bytes."""
    assert apply_mask(b"Hello", RFC_KEY) == bytes.fromhex("7f9f4d5158")


@given(st.binary(max_size=300), st.binary(min_size=4, max_size=4))
def test_apply_mask_is_an_involution(data: bytes, key: bytes) -> None:
    """Masking twice gives the data back, and matches a bytewise XOR."""
    masked = apply_mask(data, key)
    assert masked == bytes(b ^ key[i % 4] for i, b in enumerate(data))
    assert apply_mask(memoryview(masked), key) == data


@pytest.mark.parametrize("size", [8191, 8192, 8193, 65537, 2 * 65536 + 3], ids=str)
def test_apply_mask_large_payloads(size: int) -> None:
    """The translate path for large payloads gives the same bytes as a bytewise XOR."""
    data = bytes(range(251)) * (size // 251) + bytes(size % 251)
    key = b"\x01\x80\xfe\x3c"
    expected = bytes(b ^ key[i % 4] for i, b in enumerate(data))
    assert apply_mask(data, key) == expected
    assert apply_mask(bytearray(data), key) == expected
    assert apply_mask(memoryview(expected), key) == data


# -- serializing -------------------------------------------------------------------


def test_serialize_rfc_unmasked_text() -> None:
    """RFC 6455 §5.7: a single-frame unmasked text message."""
    assert serialize_frame(Frame(Opcode.TEXT, b"Hello"), mask=False) == bytes.fromhex(
        "810548656c6c6f"
    )


@pytest.mark.usefixtures("rfc_mask_key")
def test_serialize_rfc_masked_text() -> None:
    """RFC 6455 §5.7: a single-frame masked text message."""
    assert serialize_frame(Frame(Opcode.TEXT, b"Hello"), mask=True) == bytes.fromhex(
        "818537fa213d7f9f4d5158"
    )


def test_serialize_rfc_fragmented_text() -> None:
    """RFC 6455 §5.7: a fragmented unmasked text message."""
    assert serialize_frame(Frame(Opcode.TEXT, b"Hel", fin=False), mask=False) == bytes.fromhex(
        "010348656c"
    )
    assert serialize_frame(Frame(Opcode.CONT, b"lo"), mask=False) == bytes.fromhex("80026c6f")


@pytest.mark.usefixtures("rfc_mask_key")
def test_serialize_rfc_ping_and_masked_pong() -> None:
    """RFC 6455 §5.7: an unmasked ping and a masked pong."""
    assert serialize_frame(Frame(Opcode.PING, b"Hello"), mask=False) == bytes.fromhex(
        "890548656c6c6f"
    )
    assert serialize_frame(Frame(Opcode.PONG, b"Hello"), mask=True) == bytes.fromhex(
        "8a8537fa213d7f9f4d5158"
    )


@pytest.mark.parametrize(
    ("size", "header"),
    [
        (0, "8200"),
        (125, "827d"),
        (126, "827e007e"),
        (256, "827e0100"),
        (65535, "827effff"),
        (65536, "827f0000000000010000"),
    ],
    ids=str,
)
def test_serialize_length_forms(size: int, header: str) -> None:
    """7-, 16- and 64-bit lengths, as in RFC 6455 §5.7's 256-byte and 64 KiB examples."""
    data = bytes(range(256)) * (size // 256) + bytes(size % 256)
    assert serialize_frame(Frame(Opcode.BINARY, data), mask=False) == bytes.fromhex(header) + data


def test_serialize_reserved_bits() -> None:
    """Each RSV bit lands in its place in the first byte."""
    frame = Frame(Opcode.TEXT, b"", fin=False, rsv1=True, rsv2=True, rsv3=True)
    assert serialize_frame(frame, mask=False) == b"\x71\x00"
    assert serialize_frame(Frame(Opcode.TEXT, b"", rsv2=True), mask=False) == b"\xa1\x00"


@pytest.mark.parametrize("size", [5, 9000], ids=str)
def test_serialize_masks_with_the_given_key(size: int) -> None:
    """A key passed by the caller is the one on the wire and in the XOR."""
    data = _pattern(size)
    wire = serialize_frame(Frame(Opcode.TEXT, data), mask=True, key=RFC_KEY)
    offset = 2 if size < 126 else 4
    assert wire[offset : offset + 4] == RFC_KEY
    assert wire[offset + 4 :] == bytes(b ^ RFC_KEY[i % 4] for i, b in enumerate(data))


def test_serialize_masked_uses_a_fresh_key() -> None:
    """Masked frames set the mask bit and carry a key that unmasks the payload."""
    wire = serialize_frame(Frame(Opcode.BINARY, b"payload"), mask=True)
    assert wire[:2] == b"\x82\x87"
    assert apply_mask(wire[6:], wire[2:6]) == b"payload"


@pytest.mark.parametrize("size", [8191, 8192, 65536, 2 * 65536 + 3], ids=str)
def test_serialize_masked_large_payloads(size: int) -> None:
    """Large payloads masked in place, across 64 KiB blocks, unmask to themselves."""
    data = bytes(range(251)) * (size // 251) + bytes(size % 251)
    wire = serialize_frame(Frame(Opcode.BINARY, data), mask=True)
    header = 4 if size < 65536 else 10
    assert wire[:2] == (b"\x82\xfe" if size < 65536 else b"\x82\xff")
    key = wire[header : header + 4]
    assert wire[header + 4 :] == bytes(b ^ key[i % 4] for i, b in enumerate(data))


# -- parsing -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("wire", "require_mask", "frames"),
    [
        ("810548656c6c6f", False, [Frame(Opcode.TEXT, b"Hello")]),
        ("818537fa213d7f9f4d5158", True, [Frame(Opcode.TEXT, b"Hello")]),
        (
            "010348656c80026c6f",
            False,
            [Frame(Opcode.TEXT, b"Hel", fin=False), Frame(Opcode.CONT, b"lo")],
        ),
        ("890548656c6c6f", False, [Frame(Opcode.PING, b"Hello")]),
        ("8a8537fa213d7f9f4d5158", True, [Frame(Opcode.PONG, b"Hello")]),
        ("c100", False, [Frame(Opcode.TEXT, b"", rsv1=True)]),
    ],
    ids=["unmasked-text", "masked-text", "fragmented", "ping", "masked-pong", "rsv1"],
)
def test_parse_rfc_vectors(wire: str, require_mask: bool, frames: list[Frame]) -> None:
    """The examples of RFC 6455 §5.7 parse, whole and one byte at a time."""
    data = bytes.fromhex(wire)
    assert parse_all(data, require_mask=require_mask) == frames
    assert parse_bytewise(data, require_mask=require_mask) == frames


@pytest.mark.parametrize("size", [0, 125, 126, 65535, 65536], ids=str)
def test_parse_length_forms(size: int) -> None:
    """Each length form parses, masked, whole and one byte at a time."""
    frame = Frame(Opcode.BINARY, bytes(range(256)) * (size // 256) + bytes(size % 256))
    wire = serialize_frame(frame, mask=True)
    assert parse_all(wire, require_mask=True) == [frame]
    assert parse_bytewise(wire, require_mask=True) == [frame]


def test_parse_waits_for_whole_header_and_payload() -> None:
    """next_frame returns None until the last byte of a frame is there."""
    parser = FrameParser(require_mask=False)
    wire = b"\x82\x7f" + struct.pack("!Q", 70000) + bytes(70000)
    for chunk in (wire[:1], wire[1:9], wire[9:10], wire[10:-1]):
        parser.feed(chunk)
        assert parser.next_frame() is None
    assert parser.buffered == len(wire) - 1
    parser.feed(wire[-1:])
    assert parser.next_frame() == Frame(Opcode.BINARY, bytes(70000))
    assert parser.buffered == 0


def test_parse_several_frames_in_one_feed() -> None:
    """Every frame of one chunk comes out, and a partial one stays buffered."""
    wire = b"\x81\x01a\x89\x00\x82\x02bc\x81\x05ab"
    parser = FrameParser(require_mask=False)
    parser.feed(wire)
    assert parser.next_frame() == Frame(Opcode.TEXT, b"a")
    assert parser.next_frame() == Frame(Opcode.PING, b"")
    assert parser.next_frame() == Frame(Opcode.BINARY, b"bc")
    assert parser.next_frame() is None
    assert parser.buffered == 4
    parser.feed(b"cde")
    assert parser.next_frame() == Frame(Opcode.TEXT, b"abcde")


@pytest.mark.parametrize(
    ("wire", "require_mask", "message"),
    [
        *[(bytes([0x80 | op, 0]), False, rf"^reserved opcode {op:#x}$") for op in range(3, 8)],
        *[(bytes([0x80 | op, 0]), False, rf"^reserved opcode {op:#x}$") for op in range(11, 16)],
        (b"\x09\x00", False, r"^fragmented control frame \(PING\)$"),
        (b"\x08\x00", False, r"^fragmented control frame \(CLOSE\)$"),
        (b"\x8a\x7e\x00\x7e", False, r"^control frame \(PONG\) of 126 bytes$"),
        (b"\x88\x7f" + struct.pack("!Q", 2**40), False, r"^control frame \(CLOSE\) of \d+ bytes$"),
        (b"\x81\x00", True, r"^unmasked frame from client$"),
        (b"\x81\x80\x00\x00\x00\x00", False, r"^masked frame from server$"),
        (
            b"\x82\x7f" + struct.pack("!Q", 2**63),
            False,
            r"^frame length has its most significant bit set$",
        ),
    ],
    ids=[
        *(f"opcode-{op:#x}" for op in [*range(3, 8), *range(11, 16)]),
        "fragmented-ping",
        "fragmented-close",
        "pong-126",
        "close-huge",
        "unmasked-to-server",
        "masked-to-client",
        "length-msb",
    ],
)
def test_parse_header_violations(wire: bytes, require_mask: bool, message: str) -> None:
    """Header rules of RFC 6455 §5.2-5.5 fail from the header alone, with code 1002."""
    parser = FrameParser(require_mask=require_mask)
    parser.feed(wire)
    with pytest.raises(ProtocolError, match=message) as info:
        parser.next_frame()
    assert type(info.value) is ProtocolError
    assert info.value.code == 1002


def test_parse_max_size_from_header_before_payload() -> None:
    """A frame announcing more than max_size fails (1009) before its payload arrives."""
    parser = FrameParser(require_mask=False)
    parser.feed(b"\x82\x7f" + struct.pack("!Q", 2**40))
    message = r"^frame of 1099511627776 bytes exceeds the limit of 10 bytes$"
    with pytest.raises(PayloadTooBig, match=message) as info:
        parser.next_frame(max_size=10)
    assert info.value.code == 1009
    assert parser.buffered == 10


def test_parse_max_size_allows_exact_fit() -> None:
    """A frame of exactly max_size bytes passes."""
    assert parse_all(b"\x82\x0a" + bytes(10), require_mask=False, max_size=10) == [
        Frame(Opcode.BINARY, bytes(10))
    ]


frames_strategy = st.one_of(
    st.builds(
        Frame,
        st.sampled_from(sorted(DATA_OPCODES)),
        st.one_of(st.binary(max_size=200), st.sampled_from([bytes(126), bytes(65536)])),
        st.booleans(),
        st.booleans(),
        st.booleans(),
        st.booleans(),
    ),
    st.builds(
        Frame,
        st.sampled_from(sorted(CONTROL_OPCODES)),
        st.binary(max_size=125),
        st.just(True),
        st.booleans(),
        st.booleans(),
        st.booleans(),
    ),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(frames_strategy, max_size=6), st.booleans(), st.data())
def test_frames_round_trip_any_split(frames: list[Frame], mask: bool, data: st.DataObject) -> None:
    """Any frames, serialized and fed back split anywhere, parse to themselves."""
    wire = b"".join(serialize_frame(frame, mask=mask) for frame in frames)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(wire)), max_size=20)))
    parser = FrameParser(require_mask=mask)
    parsed = []
    for start, end in zip([0, *cuts], [*cuts, len(wire)], strict=True):
        parser.feed(wire[start:end])
        while (frame := parser.next_frame()) is not None:
            parsed.append(frame)
    assert parsed == frames
    assert parser.buffered == 0


def _pattern(size: int) -> bytes:
    # A payload whose every 4-byte phase differs, so a misplaced key byte shows.
    return bytes(range(253)) * (size // 253) + bytes(range(size % 253))


_CHUNK_TYPES = [bytes, bytearray, memoryview]


@settings(max_examples=40, deadline=None)
@given(
    st.sampled_from([8192, 8193, 65536, 70001, 200003]),
    st.booleans(),
    st.data(),
)
def test_parse_large_frames_collected_chunk_by_chunk(
    size: int, mask: bool, data: st.DataObject
) -> None:
    """A large frame split anywhere, then a small one, parse exactly; buffered counts all."""
    frames = [Frame(Opcode.BINARY, _pattern(size), fin=False), Frame(Opcode.CONT, b"tail")]
    wire = b"".join(serialize_frame(frame, mask=mask) for frame in frames)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(wire)), max_size=12)))
    kind = data.draw(st.sampled_from(_CHUNK_TYPES))
    parser = FrameParser(require_mask=mask)
    parsed: list[Frame] = []
    fed = 0
    for start, end in zip([0, *cuts], [*cuts, len(wire)], strict=True):
        parser.feed(kind(wire[start:end]))
        fed = end
        while (frame := parser.next_frame()) is not None:
            parsed.append(frame)
        returned = sum(len(serialize_frame(f, mask=False)) + 4 * mask for f in parsed)
        assert parser.buffered == fed - returned
    assert parsed == frames
    assert parser.buffered == 0


def test_parse_large_unmasked_frame_keeps_no_reference_to_fed_buffers() -> None:
    """A bytearray fed for a large frame may be reused by the caller at once."""
    wire = serialize_frame(Frame(Opcode.BINARY, _pattern(20000)), mask=False)
    parser = FrameParser(require_mask=False)
    first = bytearray(wire[:100])
    parser.feed(first)
    assert parser.next_frame() is None
    for chunk in (bytearray(wire[100:15000]), bytearray(wire[15000:])):
        parser.feed(memoryview(chunk))
        chunk[:] = bytes(len(chunk))
    first[:] = bytes(len(first))
    assert parser.next_frame() == Frame(Opcode.BINARY, _pattern(20000))


def test_parse_large_masked_frame_waits_for_its_key() -> None:
    """A large masked frame whose key is not all there yet waits, then parses."""
    wire = serialize_frame(Frame(Opcode.TEXT, _pattern(9000)), mask=True)
    parser = FrameParser(require_mask=True)
    parser.feed(wire[:6])
    assert parser.next_frame() is None
    assert parser.buffered == 6
    parser.feed(wire[6:9000])
    assert parser.next_frame() is None
    parser.feed(wire[9000:])
    assert parser.next_frame() == Frame(Opcode.TEXT, _pattern(9000))
    assert parser.buffered == 0


def test_parse_large_frame_checks_header_before_collecting() -> None:
    """The size limit applies to a large frame's header, before any payload is kept."""
    wire = serialize_frame(Frame(Opcode.BINARY, _pattern(50000)), mask=True)
    parser = FrameParser(require_mask=True)
    parser.feed(wire[:20])
    with pytest.raises(
        PayloadTooBig, match=r"^frame of 50000 bytes exceeds the limit of 49999 bytes$"
    ):
        parser.next_frame(49999)


# -- serialize_frame_parts -----------------------------------------------------------------


@pytest.mark.parametrize("mask", [False, True], ids=["unmasked", "masked"])
@pytest.mark.parametrize(
    "size",
    [0, 125, 126, 8191, 8192, 65535, 65536, SEPARATE_PAYLOAD_FROM - 1, SEPARATE_PAYLOAD_FROM],
)
def test_serialize_frame_parts_are_the_frames_bytes(mask: bool, size: int) -> None:
    """Joined, the parts are serialize_frame's bytes; large payloads come apart, uncopied."""
    frame = Frame(Opcode.BINARY, bytes(range(256)) * (size // 256) + bytes(size % 256))
    key = b"\x01\x02\x03\x04" if mask else None
    parts = serialize_frame_parts(frame, mask=mask, key=key)
    assert b"".join(parts) == serialize_frame(frame, mask=mask, key=key)
    assert len(parts) == (2 if size >= SEPARATE_PAYLOAD_FROM else 1)
    if len(parts) == 2 and not mask:
        assert parts[1] is frame.data


@pytest.mark.parametrize(
    ("head", "fails"),
    [(0x82, True), (0xC2, False), (0xA2, False), (0x92, False)],
    ids=["no-rsv", "rsv1", "rsv2", "rsv3"],
)
def test_frames_with_a_reserved_bit_get_their_own_limit(head: int, fails: bool) -> None:
    """rsv_max_size applies to frames with any RSV bit; max_size to the others."""
    parser = FrameParser(require_mask=False)
    parser.feed(bytes([head, 126]) + struct.pack("!H", 1500))
    if fails:
        with pytest.raises(PayloadTooBig, match="frame of 1500 bytes exceeds the limit of 1000"):
            parser.next_frame(1000, rsv_max_size=2000)
    else:
        assert parser.next_frame(1000, rsv_max_size=2000) is None  # waits for the payload
